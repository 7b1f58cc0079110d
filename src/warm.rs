//! What the first request would otherwise do once, done during init instead, where Lambda
//! gives the function more CPU than during an invocation: resolve credentials and the
//! endpoint, load the root certificates, open the connection and complete its TLS
//! handshake (with a read no item answers: `GetItem` of a key no item has, which the
//! policy already allows and which touches no data), and run the secret generator (the
//! OS random source) and the response encoder once. Not a bcrypt hash: at cost 4 it takes
//! a millisecond of init for code that faults in within microseconds on first use.
//! Bounded: whatever fails or hangs here is logged as a warning and init goes on, since a
//! request does it all again anyway.

use std::future::Future;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::config::SecretSettings;
use crate::ids::OrgId;
use crate::regenerate::Outcome;
use crate::secret::ClientSecret;

/// The most a warm-up step may add to init.
pub const LIMIT: Duration = Duration::from_millis(700);

/// Runs `call` within [`LIMIT`]; a failure or a time-out is a warning, never an error.
pub async fn step<T, E: std::fmt::Display>(what: &'static str, call: impl Future<Output = Result<T, E>>) {
    let started = Instant::now();
    match tokio::time::timeout(LIMIT, call).await {
        Ok(Ok(_)) => tracing::debug!(what, took_ms = started.elapsed().as_millis() as u64, "warmed up"),
        Ok(Err(error)) => tracing::warn!(what, %error, "warm-up call failed; the first request will do it"),
        Err(_) => tracing::warn!(what, limit_ms = LIMIT.as_millis() as u64, "warm-up call timed out; going on"),
    }
}

/// The secret generator and the response encoder, once.
pub fn code_paths(settings: &SecretSettings) {
    let now = OffsetDateTime::now_utc();
    let outcome = Outcome {
        secret: ClientSecret::generate(settings.length),
        sequence: 1,
        creation_date: now,
        change_date: now,
        resource_owner: OrgId::parse("warm-up", "org").expect("a valid id"),
    };
    drop(crate::api::success(&outcome));
}

/// The signer's public keys, read once (they are read once per process anyway).
pub async fn keys<S: crate::jwt::Signer>(signer: &S) -> Result<(), crate::error::Error> {
    signer.keys(crate::deadline::Deadline::after(LIMIT)).await.map(drop)
}
