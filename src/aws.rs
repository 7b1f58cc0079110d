//! The AWS SDK configuration every client shares: region, credentials and endpoints from
//! the environment (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` point
//! them at local emulators), with bounds fit for a request path: a few seconds, then give up
//! (the figures are in [`crate::deadline`]; each DynamoDB call is bounded further by what
//! its request's deadline leaves).
//!
//! TLS is rustls on `ring`, chosen here rather than the SDK's default (aws-lc): it is
//! smaller, which keeps the deployable zip and the cold start down, and needs no C
//! toolchain beyond a linker when cross-compiling for arm64.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::deadline::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OPERATION_TIMEOUT};

pub async fn sdk_config() -> SdkConfig {
    let https =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        // The operation timeouts bound every call already; stalled-stream protection would
        // add a throughput monitor to every request and response body.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(1)),
        )
        .load()
        .await
}
