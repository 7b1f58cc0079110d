//! `make bench`, oauth: the release binary under the local Lambda Runtime API against
//! DynamoDB Local and moto's KMS, on `POST /oauth/v2/token` (client credentials, Basic).
//! Beside it, in the same run: the tuned floor (one DynamoDB call per request) and
//! verify-secret (the other function that authenticates a client). It prints:
//!
//! - CPU and instructions per issued token against one bcrypt verification plus three times
//!   the floor's cost per call (a token is two reads and one KMS call); the verification's
//!   instructions are the difference between a token whose client's hash has cost 5 and
//!   one of cost 4 (the expensive part of bcrypt doubles per cost step);
//! - init (the median of `BENCH_COLD_STARTS` cold starts, 5 by default, alternated with
//!   verify-secret's) and peak RSS against verify-secret's (at most 1.3 times), the zip
//!   (at most 6 MiB);
//! - the denial for an unknown client id against a wrong secret for a known one, alternated
//!   call by call: median time and CPU, and instructions, which should be the same.

mod common;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use oidc_client_secret::secret::ClientSecret;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT: &str = "demo-app@demo-project";

fn basic(client: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
}

/// A token request as API Gateway's HTTP API hands it over (payload 2.0, the form base64).
fn token_event(authorization: &str) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode("grant_type=client_credentials&scope=read");
    let path = "/oauth/v2/token";
    let event = json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": authorization, "content-type": "application/x-www-form-urlencoded"},
        "isBase64Encoded": true, "body": body,
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "bench"}, "requestId": "bench",
            "routeKey": format!("POST {path}"), "stage": "$default", "time": "", "timeEpoch": 0},
    });
    serde_json::to_vec(&event).unwrap()
}

fn status(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Response(r) => r["statusCode"].as_u64().unwrap_or(0),
        other => panic!("{other:?}"),
    }
}

/// Gives the demo app a secret of `cost` and the client credentials grant.
async fn set_secret(store: &DynamoStore, secret: &ClientSecret, cost: u32) {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("ORG#demo-org".into()))
        .key("sk", AttributeValue::S("APP#demo-project#demo-app".into()))
        .update_expression("SET secretHash = :h, grantTypes = :g, scopes = :s")
        .expression_attribute_values(":h", AttributeValue::S(secret.hash(cost).unwrap()))
        .expression_attribute_values(":g", AttributeValue::Ss(vec!["client_credentials".into()]))
        .expression_attribute_values(":s", AttributeValue::Ss(vec!["read".into()]))
        .send()
        .await
        .unwrap();
}

struct Measured {
    cpu_ms: f64,
    p50_ms: f64,
    rss_mib: f64,
}

/// CPU per warm call, p50 and peak RSS of `binary` on `event`, each answered `expect`.
async fn measure(binary: &Path, env: &[(&str, String)], event: &[u8], requests: usize, expect: u64) -> Measured {
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn(binary, env, None);
    let pid = function.child.id().expect("pid");
    let first = api.invoke(&mut function, event, TIMEOUT).await;
    assert_eq!(status(&first), expect, "{first:?}");
    for _ in 0..requests / 3 {
        api.invoke(&mut function, event, TIMEOUT).await;
    }
    let ticks = common::clock_ticks_per_second();
    let before = common::cpu_seconds(pid, ticks);
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let outcome = api.invoke(&mut function, event, TIMEOUT).await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status(&outcome), expect, "{outcome:?}");
    }
    let cpu_ms = (common::cpu_seconds(pid, ticks) - before) * 1000.0 / requests as f64;
    let rss_mib = common::peak_rss_mib(pid);
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Measured { cpu_ms, p50_ms: common::percentile(&latencies, 0.5), rss_mib }
}

/// Alternates the two denials call by call; the median latency and the CPU of each.
async fn denials(binary: &Path, env: &[(&str, String)], events: [&[u8]; 2], requests: usize) -> [(f64, f64); 2] {
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn(binary, env, None);
    let pid = function.child.id().expect("pid");
    let ticks = common::clock_ticks_per_second();
    let mut latencies = [Vec::new(), Vec::new()];
    let mut cpu = [0.0, 0.0];
    for i in 0..(requests + requests / 3) * 2 {
        let which = i % 2;
        let before = common::cpu_seconds(pid, ticks);
        let started = Instant::now();
        let outcome = api.invoke(&mut function, events[which], TIMEOUT).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(status(&outcome), 401, "{outcome:?}");
        if i >= requests / 3 * 2 {
            latencies[which].push(elapsed);
            cpu[which] += common::cpu_seconds(pid, ticks) - before;
        }
    }
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    [0, 1].map(|w| {
        latencies[w].sort_by(|a, b| a.partial_cmp(b).unwrap());
        (common::percentile(&latencies[w], 0.5), cpu[w] * 1000.0 / requests as f64)
    })
}

fn verification_ms(secret: &ClientSecret) -> f64 {
    let hash = secret.hash(4).unwrap();
    let started = Instant::now();
    for _ in 0..200 {
        assert!(oidc_client_secret::secret::matches_hash(secret.expose(), &hash));
    }
    started.elapsed().as_secs_f64() * 1000.0 / 200.0
}

fn ok(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // run by `cargo test --all-targets`: only `cargo bench` measures
    }
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release");
    let (oauth, verify) = (release.join("oauth"), release.join("verify-secret"));
    for binary in [&oauth, &verify] {
        assert!(binary.exists(), "{} is missing: run `make bench`", binary.display());
    }
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let table = common::demo_table().await;
    let store = DynamoStore::new(client_from_env().await, &table);
    let secret = ClientSecret::generate(64);
    set_secret(&store, &secret, 4).await;
    let kms = oidc_client_secret::kms::client_from_env().await;
    let key = oidc_client_secret::kms::create_signing_key(&kms).await.expect("a key on moto's KMS");
    let mut env = common::function_env(&table);
    env.push(("TOKEN_SIGNING_KEYS", key));
    let issued = token_event(&basic(CLIENT, secret.expose()));

    let (floor_cpu, floor_instructions) = common::floor_per_call(&table, requests).await;
    let token = measure(&oauth, &env, &issued, requests, 200).await;
    let token_instructions = common::instructions_per_request(&oauth, &env, &issued, 20, 100).await;
    // The same with a cost-5 hash: the difference is one cost-4 verification's work.
    set_secret(&store, &secret, 5).await;
    let mut env5 = env.clone();
    env5.push(("SECRET_HASH_COST", "5".into()));
    let cost5_instructions = common::instructions_per_request(&oauth, &env5, &issued, 20, 100).await;
    set_secret(&store, &secret, 4).await;
    let verification_instructions = cost5_instructions - token_instructions;
    let verification = verification_ms(&secret);

    let authorizer_event = {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/authorizer-http-v2-allowed.json");
        let mut event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let header = basic(CLIENT, secret.expose());
        event["headers"]["authorization"] = json!(header);
        event["identitySource"] = json!([header]);
        serde_json::to_vec(&event).unwrap()
    };
    let verify_env = common::function_env(&table);
    let verify_measured = measure_authorizer(&verify, &verify_env, &authorizer_event, requests).await;
    let starts: usize = std::env::var("BENCH_COLD_STARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let [(oauth_init, oauth_cold), (verify_init, verify_cold)] =
        inits([(&oauth, &env, &issued), (&verify, &verify_env, &authorizer_event)], starts).await;

    let unknown = token_event(&basic("nobody@nowhere", secret.expose()));
    let wrong = token_event(&basic(CLIENT, "not-the-secret"));
    let [(unknown_p50, unknown_cpu), (wrong_p50, wrong_cpu)] =
        denials(&oauth, &env, [&unknown, &wrong], requests).await;
    let unknown_instructions = common::instructions_per_request_answered(&oauth, &env, &unknown, 20, 100, 401).await;
    let wrong_instructions = common::instructions_per_request_answered(&oauth, &env, &wrong, 20, 100, 401).await;
    let zip = common::zip_mib(&oauth);

    let cpu_budget = verification + 3.0 * floor_cpu;
    let instruction_budget = verification_instructions + 3.0 * floor_instructions;
    println!("\noauth, POST /oauth/v2/token ({requests} calls per figure)");
    println!("| figure | oauth | against | target | met |");
    println!("|---|---|---|---|---|");
    println!(
        "| CPU per issued token (ms) | {:.2} | verification {verification:.2}, floor per call {floor_cpu:.2} | <= {cpu_budget:.2} | {} |",
        token.cpu_ms,
        ok(token.cpu_ms <= cpu_budget)
    );
    println!(
        "| instructions per issued token | {token_instructions:.0} | verification {verification_instructions:.0}, floor per call {floor_instructions:.0} | <= {instruction_budget:.0} | {} |",
        ok(token_instructions <= instruction_budget)
    );
    println!("| warm p50 (ms) | {:.2} | | | |", token.p50_ms);
    println!(
        "| init (ms) | {:.2} | verify-secret {:.2} | <= 1.3x | {} |",
        oauth_init,
        verify_init,
        ok(oauth_init <= 1.3 * verify_init)
    );
    println!(
        "| cold start, process start to the first answer (ms) | {oauth_cold:.2} | verify-secret {verify_cold:.2} | | |"
    );
    println!(
        "| peak RSS (MiB) | {:.2} | verify-secret {:.2} | <= 1.3x | {} |",
        token.rss_mib,
        verify_measured.rss_mib,
        ok(token.rss_mib <= 1.3 * verify_measured.rss_mib)
    );
    println!("| zip (MiB) | {zip:.2} | | <= 6 | {} |", ok(zip <= 6.0));
    let gap = (unknown_p50 - wrong_p50).abs() / wrong_p50;
    println!(
        "| denial p50, unknown client / wrong secret (ms) | {unknown_p50:.2} / {wrong_p50:.2} | | within 5 % | {} ({:.1} %) |",
        ok(gap <= 0.05),
        gap * 100.0
    );
    println!("| denial CPU, unknown client / wrong secret (ms) | {unknown_cpu:.2} / {wrong_cpu:.2} | | | |");
    let instruction_gap = (unknown_instructions - wrong_instructions).abs() / wrong_instructions;
    println!(
        "| denial instructions, unknown client / wrong secret | {unknown_instructions:.0} / {wrong_instructions:.0} | | within 2 % | {} ({:.2} %) |",
        ok(instruction_gap <= 0.02),
        instruction_gap * 100.0
    );
}

/// A function to start: its binary, environment and first event.
type Started<'a> = (&'a Path, &'a [(&'a str, String)], &'a [u8]);

/// Init (process start to the first `next`) and the whole cold start (process start to the
/// first answer) of each of `functions`, the medians of `starts` cold starts after an
/// uncounted one each, the functions started in turn, so that both meet DynamoDB Local,
/// moto and the machine in the same state.
async fn inits(functions: [Started<'_>; 2], starts: usize) -> [(f64, f64); 2] {
    let mut inits = [Vec::new(), Vec::new()];
    let mut colds = [Vec::new(), Vec::new()];
    for round in 0..=starts {
        for (which, (binary, env, event)) in functions.iter().enumerate() {
            let mut api = RuntimeApi::start().await;
            let started = Instant::now();
            let mut function = api.spawn(binary, env, None);
            api.invoke(&mut function, event, TIMEOUT).await;
            let cold_ms = started.elapsed().as_secs_f64() * 1000.0;
            let init_ms = api.init_duration(&function).expect("init").as_secs_f64() * 1000.0;
            function.child.start_kill().unwrap();
            let _ = function.child.wait().await;
            if round > 0 {
                inits[which].push(init_ms);
                colds[which].push(cold_ms);
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        common::percentile(&v, 0.5)
    };
    let [i0, i1] = inits;
    let [c0, c1] = colds;
    [(median(i0), median(c0)), (median(i1), median(c1))]
}

/// verify-secret on an allowed authorizer event: its peak RSS.
async fn measure_authorizer(binary: &Path, env: &[(&str, String)], event: &[u8], requests: usize) -> Measured {
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn(binary, env, None);
    let pid = function.child.id().expect("pid");
    let first = api.invoke(&mut function, event, TIMEOUT).await;
    assert!(matches!(&first, Outcome::Response(r) if r["isAuthorized"] == json!(true)), "{first:?}");
    for _ in 0..requests {
        api.invoke(&mut function, event, TIMEOUT).await;
    }
    let rss_mib = common::peak_rss_mib(pid);
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    Measured { cpu_ms: 0.0, p50_ms: 0.0, rss_mib }
}
