//! Log hygiene: every log line of the request scenarios, at the most verbose level a
//! user can set, holds no secret, no hash, no Authorization header and no claim beyond
//! the ids. Alone in its test binary, since `tracing`'s callsite cache is process-wide.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

use oidc_client_secret::api::Service;
use oidc_client_secret::config::SecretSettings;
use serde_json::json;
use support::*;

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_log_line_holds_a_secret_a_hash_a_token_or_claims_beyond_the_ids() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish()
        .with(oidc_client_secret::logging::filter(Some("TRACE")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = fixture().await;
    let token = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNlY3JldA";
    let mut claims = claims(USER, ORG);
    claims["email"] = json!("alice@example.com");
    claims["name"] = json!("Alice Liddell");
    let mut secrets = Vec::new();
    let scenarios = [
        Call::post(PROJECT, APP).header("authorization", token),
        Call::post(PROJECT, APP).header("authorization", token).org(OTHER_ORG),
        Call::post(PROJECT, "missing").header("authorization", token),
        Call::post("bad#id", APP).header("authorization", token),
        Call::post(PROJECT, APP).header("authorization", token).body("[1,2]"),
        Call::raw("GET", &route(PROJECT, APP)).header("authorization", token),
        Call::post(PROJECT, APP).header("authorization", token),
    ];
    for call in scenarios {
        let answer = send(&f.service, http_v2_jwt(&call, Some(claims.clone()))).await;
        if answer.status == 200 {
            secrets.push(answer.secret().to_owned());
        }
    }
    let unavailable = Service::new(unreachable_store().await, &config("unreachable", SecretSettings::default()));
    send(&unavailable, http_v2_jwt(&Call::post(PROJECT, APP).header("authorization", token), Some(claims.clone())))
        .await;
    let stored_hash = app(&f.store, ORG, PROJECT, APP).await.secret_hash.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines = log.lines().filter(|l| l.contains("regenerate client secret")).count();
    assert_eq!(lines, 8, "one line per request");
    assert_eq!(secrets.len(), 2);
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
    for forbidden in [
        stored_hash.as_str(),
        "$2b$",
        "eyJhbGciOiJSUzI1NiJ9",
        "Bearer",
        "alice@example.com",
        "Alice Liddell",
        "issuer.example.com",
    ] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
    // Through `tracing`, the request line's fields are one JSON value, quoted in the line.
    assert!(log.contains(r#"\"org\":\"org-a\""#) && log.contains(r#"\"app\":\"app-1\""#), "the ids are logged");
}
