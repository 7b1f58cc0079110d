//! `make bench`, verify-secret: the release binary under the local Lambda Runtime API
//! against DynamoDB Local, on HTTP API payload 2.0 authorizer events. It measures init,
//! CPU and instructions per warm authentication with the current secret (against one bcrypt
//! verification at the configured cost, measured in this process, and the tuned floor's
//! cost per DynamoDB call, measured in this run: the target is at most one verification +
//! twice the floor's call, since an authentication is two dependent reads), peak RSS and
//! the zip; and the timing check: the median time of a denial for an
//! unknown client id against a wrong secret for a known one, in the same run, alternated
//! call by call (target: within 5 %).

mod common;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use oidc_client_secret::secret::ClientSecret;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

fn event(client: &str, secret: &str) -> Vec<u8> {
    let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")));
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/authorizer-http-v2-allowed.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    event["headers"]["authorization"] = json!(header);
    event["identitySource"] = json!([header]);
    serde_json::to_vec(&event).unwrap()
}

/// `count` calls alternating between the events; the latencies of each, in ms, sorted.
async fn alternate(
    api: &mut RuntimeApi,
    f: &mut runtime_api::Function,
    events: &[&[u8]],
    count: usize,
    allowed: bool,
) -> Vec<Vec<f64>> {
    let mut latencies = vec![Vec::with_capacity(count); events.len()];
    for i in 0..count * events.len() {
        let which = i % events.len();
        let started = Instant::now();
        let outcome = api.invoke(f, events[which], TIMEOUT).await;
        latencies[which].push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(matches!(&outcome, Outcome::Response(r) if r["isAuthorized"] == json!(allowed)), "{outcome:?}");
    }
    for l in &mut latencies {
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    latencies
}

async fn set_hash(store: &DynamoStore, table: &str, hash: &str) {
    store
        .client()
        .update_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("ORG#demo-org".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("APP#demo-project#demo-app".into()))
        .update_expression("SET secretHash = :h")
        .expression_attribute_values(":h", aws_sdk_dynamodb::types::AttributeValue::S(hash.to_owned()))
        .send()
        .await
        .unwrap();
}

/// Instructions per allowed authentication (callgrind; see `common`). An authorizer's
/// answer has no status code: each call is checked allowed here instead.
async fn instructions_allowed(binary: &std::path::Path, env: &[(&str, String)], event: &[u8]) -> f64 {
    common::instructions_per_call(binary, env, event, 20, 100, |answer| answer["isAuthorized"] == json!(true)).await
}

fn verification_ms(hash: &str, secret: &str) -> f64 {
    let started = Instant::now();
    for _ in 0..200 {
        assert!(oidc_client_secret::secret::matches_hash(secret, hash));
    }
    started.elapsed().as_secs_f64() * 1000.0 / 200.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // run by `cargo test --all-targets`: only `cargo bench` measures
    }
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/verify-secret");
    assert!(binary.exists(), "{} is missing: run `make bench`", binary.display());
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let table = common::demo_table().await;
    let store = DynamoStore::new(client_from_env().await, &table);
    let secret = ClientSecret::generate(64);
    let hash = secret.hash(4).unwrap();
    set_hash(&store, &table, &hash).await;
    let (floor_cpu, floor_instructions) = common::floor_per_call(&table, requests).await;
    let mut api = RuntimeApi::start().await;
    let env = common::function_env(&table);
    let mut function = api.spawn(&binary, &env, None);
    let pid = function.child.id().expect("pid");
    let allowed = event("demo-app@demo-project", secret.expose());
    let first = api.invoke(&mut function, &allowed, TIMEOUT).await;
    assert!(matches!(&first, Outcome::Response(r) if r["isAuthorized"] == json!(true)), "{first:?}");
    let init = api.init_duration(&function).expect("init").as_secs_f64() * 1000.0;
    let ticks = common::clock_ticks_per_second();
    alternate(&mut api, &mut function, &[&allowed], requests / 3, true).await; // warm-up, not counted
    let cpu_before = common::cpu_seconds(pid, ticks);
    let allowed_latency = alternate(&mut api, &mut function, &[&allowed], requests, true).await.remove(0);
    let cpu = (common::cpu_seconds(pid, ticks) - cpu_before) * 1000.0 / requests as f64;
    let unknown = event("nobody@nowhere", secret.expose());
    let wrong = event("demo-app@demo-project", "not-the-secret");
    let denials = alternate(&mut api, &mut function, &[&unknown, &wrong], requests, false).await;
    let rss = common::peak_rss_mib(pid);
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let verification = verification_ms(&hash, secret.expose());
    let zip = common::zip_mib(&binary);
    // Instructions per allowed call; with a cost-5 hash, the difference is one cost-4
    // verification's work (bcrypt's expensive part doubles per cost step).
    let allowed_instructions = instructions_allowed(&binary, &env, &allowed).await;
    set_hash(&store, &table, &secret.hash(5).unwrap()).await;
    let cost5 = instructions_allowed(&binary, &env, &allowed).await;
    set_hash(&store, &table, &hash).await;
    let verification_instructions = cost5 - allowed_instructions;
    let (unknown_p50, wrong_p50) = (common::percentile(&denials[0], 0.5), common::percentile(&denials[1], 0.5));
    let gap = (unknown_p50 - wrong_p50).abs() / wrong_p50;
    println!("\nverify-secret ({requests} calls each)");
    println!("| figure | value | target | met |");
    println!("|---|---|---|---|");
    println!("| init (ms) | {init:.2} | | |");
    println!(
        "| allowed p50 / p99 (ms) | {:.2} / {:.2} | | |",
        common::percentile(&allowed_latency, 0.5),
        common::percentile(&allowed_latency, 0.99)
    );
    let budget = verification + 2.0 * floor_cpu;
    println!(
        "| CPU per allowed call (ms) | {cpu:.2} | <= one verification {verification:.2} + 2 x floor's call {floor_cpu:.2} = {budget:.2} | {} |",
        if cpu <= budget { "yes" } else { "NO" }
    );
    let instruction_budget = verification_instructions + 2.0 * floor_instructions;
    println!(
        "| instructions per allowed call | {allowed_instructions:.0} | <= one verification {verification_instructions:.0} + 2 x floor's call {floor_instructions:.0} = {instruction_budget:.0} | {} |",
        if allowed_instructions <= instruction_budget { "yes" } else { "NO" }
    );
    println!(
        "| denial p50, unknown client / wrong secret (ms) | {unknown_p50:.2} / {wrong_p50:.2} | within 5 % | {} ({:.1} %) |",
        if gap <= 0.05 { "yes" } else { "NO" },
        gap * 100.0
    );
    println!("| peak RSS (MiB) | {rss:.2} | | |");
    println!("| zip (MiB) | {zip:.2} | | |");
}
