//! A DynamoDB outage never becomes a cached lock-out (issue 29, item 1): the shipped
//! `verify-secret`, under the Lambda Runtime API stand-in, answers a store failure with a
//! function error of its own for every authorizer event kind (API Gateway answers 500 and
//! caches nothing), never its denial, while a wrong secret with DynamoDB up still gets the
//! ordinary denial of its kind.

#[path = "support/release.rs"]
mod release;
#[path = "support/runtime_api.rs"]
#[allow(dead_code)] // the benches and `make invoke` use the rest
mod runtime_api;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use oidc_client_secret::authorizer::{STORE_UNAVAILABLE, UNAUTHORIZED};
use oidc_client_secret::store::seed::NewApp;
use release::release_binary;
use runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use support::*;

const TIMEOUT: Duration = Duration::from_secs(20);
/// The demo app's secret in the `authorizer-*` sample events (a fixture, never issued).
const EVENTS_SECRET: &str = "sample-only-secret";

/// The sample authorizer events, by file name: every kind API Gateway sends (the
/// `authorizer-whoami.json` request is the example route's, not an authorizer event).
fn authorizer_events() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("authorizer-") && name != "authorizer-whoami.json"
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let event = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_str().unwrap().to_owned(), event)
        })
        .collect()
}

/// The event's kind, as API Gateway's answer to it depends on it.
fn kind(event: &Value) -> &'static str {
    match (event["version"].as_str(), event["type"].as_str()) {
        (Some("2.0"), _) => "HTTP API payload 2.0",
        (Some("1.0"), _) => "HTTP API payload 1.0",
        _ => "REST API REQUEST",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_a_function_error_and_never_a_denial_for_every_authorizer_event_kind() {
    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}-verify-outage.log", unique_table()));
    // Nothing listens on port 1: every read is refused, as when DynamoDB is unreachable.
    let mut function = api.start_function(
        &release_binary("verify-secret"),
        &function_env_at("http://127.0.0.1:1", "unreachable"),
        Some(&log),
    );
    let events = authorizer_events();
    let mut kinds: Vec<&str> = events.iter().map(|(_, e)| kind(e)).collect();
    kinds.dedup();
    assert_eq!(kinds.len(), 3, "a sample of every kind: {kinds:?}");
    for (name, event) in &events {
        let outcome = api.invoke(&mut function, &serde_json::to_vec(event).unwrap(), TIMEOUT).await;
        assert_eq!(
            outcome,
            Outcome::Error(json!({"errorType": STORE_UNAVAILABLE, "errorMessage": STORE_UNAVAILABLE})),
            "{name}: API Gateway must answer 500 and cache nothing"
        );
        let Outcome::Error(error) = outcome else { unreachable!() };
        assert_ne!(error["errorType"], json!(UNAUTHORIZED), "{name}: a denial would be cached");
    }
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    // The log and the metric as before: one line per call, outcome `unavailable`.
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> =
        log.lines().filter(|l| l.contains("authenticate client")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), events.len(), "{log}");
    for line in &lines {
        assert_eq!(line["Outcome"], json!("unavailable"), "{line}");
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], json!("Authentications"));
    }
    for forbidden in [EVENTS_SECRET, "Basic ", "ZGVtby1hcHA"] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_up_a_wrong_secret_still_gets_the_ordinary_denial_of_its_kind() {
    let store = empty_table().await;
    let demo = key("demo-org", "demo-project", "demo-app");
    seed_app(&store, NewApp::oidc(demo.clone(), "demo-app@demo-project")).await;
    let hash = bcrypt::hash(EVENTS_SECRET, 4).unwrap();
    set_app_attribute(&store, &demo, "secretHash", Some(AttributeValue::S(hash))).await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make test`");
    let mut api = RuntimeApi::start().await;
    let mut function =
        api.start_function(&release_binary("verify-secret"), &function_env_at(&endpoint, store.table()), None);
    // The sample events' header, with another secret.
    let wrong = {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("demo-app%40demo-project:not-the-secret"))
    };
    for (name, mut event) in authorizer_events() {
        for field in ["headers", "multiValueHeaders"] {
            for header in ["authorization", "Authorization"] {
                if let Some(value) = event[field].get_mut(header) {
                    *value = if value.is_array() { json!([wrong]) } else { json!(wrong) };
                }
            }
        }
        let denial = match kind(&event) {
            "HTTP API payload 2.0" => Outcome::Response(json!({"isAuthorized": false})),
            _ => Outcome::Error(json!({"errorType": UNAUTHORIZED, "errorMessage": UNAUTHORIZED})),
        };
        let outcome = api.invoke(&mut function, &serde_json::to_vec(&event).unwrap(), TIMEOUT).await;
        assert_eq!(outcome, denial, "{name}");
    }
}
