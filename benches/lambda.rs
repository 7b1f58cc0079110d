//! `make bench`: the release `regenerate-secret` binary, the baseline (a minimal
//! `lambda_http` function doing one `UpdateItem`, written with every default:
//! `benches/baseline/`) and the tuned floor (the same function with this crate's SDK
//! settings and runtime flavour: `benches/floor.rs`) each run under the local Lambda
//! Runtime API against DynamoDB Local, in several rounds, measured side by side: init time (spawn to first `next`),
//! warm latency p50/p99, CPU per warm request (the process's own utime + stime), peak RSS
//! (VmHWM), and the size of the deployable zip. The function is measured again on a
//! gRPC-web request (`events/grpc-web-binary.json`) and on a v2 Connect JSON request
//! (`events/connect-json-v2.json`, on the demo app: the org from the project lookup, one
//! read more), each one's CPU per request held against the REST request's of the same run.

mod common;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oidc_client_secret::secret::ClientSecret;
use runtime_api::{Outcome, RuntimeApi};

/// Rounds and warm requests per round; `BENCH_ROUNDS` and `BENCH_REQUESTS` override them.
const ROUNDS: usize = 5;
const WARM_REQUESTS: usize = 300;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default, Clone, Copy)]
struct Round {
    init_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_request: f64,
    peak_rss_mib: f64,
}

async fn measure(binary: &Path, table: &str, event: &[u8], ticks: f64) -> Round {
    let mut api = RuntimeApi::start().await;
    let env = common::function_env(table);
    let mut function = api.spawn(binary, &env, None);
    let pid = function.child.id().expect("pid");
    let first = api.invoke(&mut function, event, TIMEOUT).await;
    assert!(matches!(&first, Outcome::Response(r) if r["statusCode"] == 200), "{}: {first:?}", binary.display());
    let init = api.init_duration(&function).expect("the function asked for an event");
    let cpu_before = common::cpu_seconds(pid, ticks);
    let requests = setting("BENCH_REQUESTS", WARM_REQUESTS);
    let latencies = common::warm_requests(&mut api, &mut function, event, requests, TIMEOUT).await;
    let cpu = common::cpu_seconds(pid, ticks) - cpu_before;
    let rss = common::peak_rss_mib(pid);
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    Round {
        init_ms: init.as_secs_f64() * 1000.0,
        p50_ms: common::percentile(&latencies, 0.5),
        p99_ms: common::percentile(&latencies, 0.99),
        cpu_ms_per_request: cpu * 1000.0 / requests as f64,
        peak_rss_mib: rss,
    }
}

fn bcrypt_cost4_ms() -> f64 {
    let secret = ClientSecret::generate(64);
    let started = Instant::now();
    for _ in 0..200 {
        secret.hash(4).unwrap();
    }
    started.elapsed().as_secs_f64() * 1000.0 / 200.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // run by `cargo test --all-targets`: only `cargo bench` measures
    }
    // BENCH_PROFILE=bisect measures the builds of that profile (docs/performance.md).
    let profile = std::env::var("BENCH_PROFILE").unwrap_or_else(|_| "release".into());
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(profile);
    // BENCH_FUNCTION measures another build of the function (say, one with symbols).
    let function =
        std::env::var_os("BENCH_FUNCTION").map(PathBuf::from).unwrap_or_else(|| release.join("regenerate-secret"));
    let binaries = [function, release.join("baseline"), release.join("examples/floor")];
    for binary in &binaries {
        assert!(binary.exists(), "{} is missing: run `make bench`", binary.display());
    }
    let table = common::demo_table().await;
    let events = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
    let event = std::fs::read(events.join("apigw-http-jwt.json")).unwrap();
    // The other doors, each on the demo app: (name, event).
    let v2_event = String::from_utf8(std::fs::read(events.join("connect-json-v2.json")).unwrap()).unwrap();
    let others = [
        ("gRPC-web request", std::fs::read(events.join("grpc-web-binary.json")).unwrap()),
        ("v2 Connect request", v2_event.replace(r#"\"demo-api\""#, r#"\"demo-app\""#).into_bytes()),
    ];
    let ticks = common::clock_ticks_per_second();
    // Instructions per warm request (callgrind), which two runs agree on whatever the load;
    // BENCH_INSTRUCTIONS_ONLY=1 prints these alone, for bisecting (docs/performance.md).
    let instructions = |binary: &Path, event: &[u8], cost: u32| {
        let mut env = common::function_env(&table);
        env.push(("SECRET_HASH_COST", cost.to_string()));
        let (binary, event) = (binary.to_owned(), event.to_owned());
        async move { common::instructions_per_request(&binary, &env, &event, 20, 100).await }
    };
    let counted = [
        instructions(&binaries[0], &event, 4).await,
        instructions(&binaries[1], &event, 4).await,
        instructions(&binaries[2], &event, 4).await,
    ];
    // A cost-5 hash is a cost-4 one's work twice over: the difference is one cost-4 hash.
    let bcrypt_instructions = instructions(&binaries[0], &event, 5).await - counted[0];
    let other_instructions =
        [instructions(&binaries[0], &others[0].1, 4).await, instructions(&binaries[0], &others[1].1, 4).await];
    let instruction_budget = 1.5 * counted[1] + bcrypt_instructions;
    println!("instructions per warm request (callgrind, 100 requests after 20)");
    println!("| | instructions | target | met |");
    println!("|---|---|---|---|");
    println!(
        "| regenerate-secret | {:.0} | <= 1.5 x baseline + one cost-4 hash {bcrypt_instructions:.0} = {instruction_budget:.0} | {} |",
        counted[0],
        ok(counted[0] <= instruction_budget)
    );
    println!("| baseline | {:.0} | | |", counted[1]);
    println!("| tuned floor | {:.0} | | |", counted[2]);
    println!("| gRPC-web request | {:.0} | | |", other_instructions[0]);
    println!(
        "| v2 Connect request | {:.0} | <= REST + the floor's call {:.0} | {} |",
        other_instructions[1],
        counted[0] + counted[2],
        ok(other_instructions[1] <= counted[0] + counted[2])
    );
    if std::env::var_os("BENCH_INSTRUCTIONS_ONLY").is_some() {
        return;
    }

    // DynamoDB Local (a JVM) answers faster once warm, and a client's CPU per call follows
    // the server's latency (shorter waits, warmer caches): one round of each binary,
    // not counted, warms it before the measured rounds.
    for binary in &binaries {
        measure(binary, &table, &event, ticks).await;
    }
    for (_, other) in &others {
        measure(&binaries[0], &table, other, ticks).await;
    }
    let mut rounds: [Vec<Round>; 3] = Default::default();
    let mut other_rounds: [Vec<Round>; 2] = Default::default();
    let rounds_wanted = setting("BENCH_ROUNDS", ROUNDS);
    for round in 0..rounds_wanted {
        // Rotate the order, so no side always runs first on a cooler machine.
        for step in 0..binaries.len() {
            let side = (round + step) % binaries.len();
            rounds[side].push(measure(&binaries[side], &table, &event, ticks).await);
        }
        for ((_, other), measured) in others.iter().zip(&mut other_rounds) {
            measured.push(measure(&binaries[0], &table, other, ticks).await);
        }
        eprint!(".");
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let stat = |side: usize, f: fn(&Round) -> f64| common::median(rounds[side].iter().map(f).collect());
    let sides = |f: fn(&Round) -> f64| [stat(0, f), stat(1, f), stat(2, f)];
    let bcrypt = bcrypt_cost4_ms();
    let (init, cpu, rss) = (sides(|r| r.init_ms), sides(|r| r.cpu_ms_per_request), sides(|r| r.peak_rss_mib));
    let zip = binaries.each_ref().map(|binary| common::zip_mib(binary));
    let cpu_budget = |side: usize| 1.5 * cpu[side] + bcrypt;
    let rows: [(&str, [f64; 3], String); 6] = [
        ("init (ms)", init, "<= 1.3x".into()),
        ("warm p50 (ms)", sides(|r| r.p50_ms), String::new()),
        ("warm p99 (ms)", sides(|r| r.p99_ms), String::new()),
        ("CPU per request (ms)", cpu, format!("<= 1.5x + bcrypt {bcrypt:.2} = {:.2}", cpu_budget(1))),
        ("peak RSS (MiB)", rss, "<= 1.3x".into()),
        ("zip (MiB)", zip, "<= 6 MiB".into()),
    ];
    let requests = setting("BENCH_REQUESTS", WARM_REQUESTS);
    println!(
        "{rounds_wanted} rounds after a warm-up round, medians; {requests} warm requests per round; DynamoDB Local on loopback"
    );
    println!(
        "{:<22} {:>18} {:>9} {:>6}  {:<31} {:>12} {:>6}",
        "", "regenerate-secret", "baseline", "ratio", "target", "tuned floor", "ratio"
    );
    for (name, [ours, base, floor], target) in &rows {
        println!(
            "{name:<22} {ours:>18.2} {base:>9.2} {:>6.2}  {target:<31} {floor:>12.2} {:>6.2}",
            ours / base,
            ours / floor
        );
    }
    let met = |side: usize| [init[0] <= 1.3 * init[side], cpu[0] <= cpu_budget(side), rss[0] <= 1.3 * rss[side]];
    let [init_ok, cpu_ok, rss_ok] = met(1);
    let zip_ok = zip[0] <= 6.0;
    println!("targets: init {}, CPU {}, RSS {}, zip {}", ok(init_ok), ok(cpu_ok), ok(rss_ok), ok(zip_ok));
    let rest_p50 = stat(0, |r| r.p50_ms);
    for (i, ((name, _), measured)) in others.iter().zip(&other_rounds).enumerate() {
        let other = |f: fn(&Round) -> f64| common::median(measured.iter().map(f).collect());
        let (other_cpu, other_p50) = (other(|r| r.cpu_ms_per_request), other(|r| r.p50_ms));
        // The v2 door reads the project lookup first: one call more than the REST request.
        let (budget, rule) =
            if i == 1 { (cpu[0] + cpu[2], "REST + the floor's call") } else { (1.05 * cpu[0], "1.05 x REST") };
        println!(
            "{name}: warm p50 {other_p50:.2} ms ({:+.2} ms), CPU per request {other_cpu:.2} ms = {:.3}x the REST request's (target <= {rule} = {budget:.2}: {})",
            other_p50 - rest_p50,
            other_cpu / cpu[0],
            ok(other_cpu <= budget)
        );
    }
    let [init_ok, cpu_ok, rss_ok] = met(2);
    println!(
        "the same rules against the tuned floor: init {}, CPU {} (1.5x + bcrypt = {:.2}), RSS {}",
        ok(init_ok),
        ok(cpu_ok),
        cpu_budget(2),
        ok(rss_ok)
    );
}

fn ok(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
