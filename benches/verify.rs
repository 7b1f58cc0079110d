//! `make bench`, verify-secret: the release binary under the local Lambda Runtime API
//! against DynamoDB Local, on HTTP API payload 2.0 authorizer events. It measures init,
//! CPU per warm authentication with the current secret (against one bcrypt verification at
//! the configured cost, measured in this process: the target is at most one verification +
//! 0.3 ms), peak RSS and the zip; and the timing check: the median time of a denial for an
//! unknown client id against a wrong secret for a known one, in the same run, alternated
//! call by call (target: within 5 %).

mod common;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::process::Command;
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
    store
        .client()
        .update_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("ORG#demo-org".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("APP#demo-project#demo-app".into()))
        .update_expression("SET secretHash = :h")
        .expression_attribute_values(":h", aws_sdk_dynamodb::types::AttributeValue::S(hash.clone()))
        .send()
        .await
        .unwrap();
    let mut api = RuntimeApi::start().await;
    let env = vec![
        ("TABLE_NAME", table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ];
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
    let zip = {
        let script = "import sys, zipfile, io\nb = io.BytesIO()\nz = zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED, compresslevel=9)\nz.write(sys.argv[1], 'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
        let out = Command::new("python3").args(["-c", script]).arg(&binary).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap() / (1024.0 * 1024.0)
    };
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
    let budget = verification + 0.3;
    println!(
        "| CPU per allowed call (ms) | {cpu:.2} | <= one verification {verification:.2} + 0.3 = {budget:.2} | {} |",
        if cpu <= budget { "yes" } else { "NO" }
    );
    println!(
        "| denial p50, unknown client / wrong secret (ms) | {unknown_p50:.2} / {wrong_p50:.2} | within 5 % | {} ({:.1} %) |",
        if gap <= 0.05 { "yes" } else { "NO" },
        gap * 100.0
    );
    println!("| peak RSS (MiB) | {rss:.2} | | |");
    println!("| zip (MiB) | {zip:.2} | | |");
}
