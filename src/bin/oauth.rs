//! The OAuth function: discovery, keys, client credentials, introspection -> `oauth::OAuth`.

use oidc_client_secret::config::{Config, OAuthConfig};
use oidc_client_secret::kms::KmsSigner;
use oidc_client_secret::oauth::{OAuth, run};
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let oauth = OAuthConfig::from_env_or_exit();
    // One SDK configuration for both clients: one HTTP client (its root certificates loaded
    // once) and one credentials cache.
    let sdk = oidc_client_secret::aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name);
    let signer = KmsSigner::new(aws_sdk_kms::Client::new(&sdk), oauth.signing_keys.clone());
    // The public keys are read once per process, by a task of their own started here: init
    // does not wait for KMS's answer, yet the read's CPU (the KMS client's first call) runs
    // mostly during init, which Lambda does not throttle to the memory size's share (started
    // after the DynamoDB warm-up instead, it made init 1.08 times verify-secret's, not 1.35,
    // and moved that CPU into the first request: docs/performance.md). The first request,
    // whose client check (two reads and a bcrypt verification) comes before it needs a key,
    // finds them read or being read (it then waits for that read, and reads them itself if
    // it failed).
    let reader = signer.clone();
    tokio::spawn(async move { warm::step("KMS public keys", warm::keys(&reader)).await });
    warm::step("DynamoDB connection", store.warm_up()).await;
    run(OAuth::new(store, signer, config.secret.hash_cost, oauth)).await
}
