//! What the first request would otherwise do once, done during init instead, where Lambda
//! gives the function more CPU than during an invocation: resolve credentials and the
//! endpoint, load the root certificates, open the connection and complete its TLS
//! handshake (with a read no item answers: `GetItem` of a key no item has, which the
//! policy already allows and which touches no data), and run the hash and encode paths
//! once. Bounded: whatever fails or hangs here is logged as a warning and init goes on,
//! since a request does it all again anyway.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::SecretSettings;
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

/// The hash and the secret generator, once, at the configured cost.
pub fn hashing(settings: &SecretSettings) {
    let secret = ClientSecret::generate(settings.length);
    if let Err(error) = secret.hash(settings.hash_cost) {
        tracing::warn!(%error, "warm-up hash failed");
    }
}
