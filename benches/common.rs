//! What both benches share: the process's CPU from /proc, percentiles, and a table with
//! the demo app and member that `events/` names.
#![allow(dead_code)] // each bench uses its own part

use std::process::Command;
use std::time::{Duration, Instant};

use crate::runtime_api::{Function, Outcome, RuntimeApi};

use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};

pub fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields[11].parse().unwrap(), fields[12].parse().unwrap());
    (utime + stime) / ticks
}

pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/pid/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// A fresh table in DynamoDB Local with demo-org/demo-project/demo-app and demo-user.
pub async fn demo_table() -> String {
    let table = format!("bench-{:08x}", rand::random::<u32>());
    let store = DynamoStore::new(client_from_env().await, &table);
    store.seed_demo().await.expect("seed the bench table");
    table
}

/// `count` requests of `event`, each answered 200; their latencies in ms, sorted.
pub async fn warm_requests(
    api: &mut RuntimeApi,
    function: &mut Function,
    event: &[u8],
    count: usize,
    timeout: Duration,
) -> Vec<f64> {
    warm_requests_answered(api, function, event, count, timeout, 200).await
}

/// `count` requests of `event`, each answered `status`; their latencies in ms, sorted.
pub async fn warm_requests_answered(
    api: &mut RuntimeApi,
    function: &mut Function,
    event: &[u8],
    count: usize,
    timeout: Duration,
    status: u16,
) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let outcome = api.invoke(function, event, timeout).await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(matches!(&outcome, Outcome::Response(r) if r["statusCode"] == status), "{outcome:?}");
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    latencies
}

/// Instructions per warm request, as callgrind counts them: a figure that does not move
/// with the machine's load, so two runs (or two commits) agree on it. The binary runs
/// under `valgrind --tool=callgrind`; after `warm` requests (the connection open, the caches
/// full) `callgrind_control` zeroes its counters, and dumps them after `counted` requests:
/// the dump's total over `counted` is the figure. Only the function's
/// own process is counted (DynamoDB Local and the Runtime API stand-in are not).
pub async fn instructions_per_request(
    binary: &std::path::Path,
    env: &[(&str, String)],
    event: &[u8],
    warm: usize,
    counted: usize,
) -> f64 {
    instructions_per_request_answered(binary, env, event, warm, counted, 200).await
}

/// As [`instructions_per_request`], for requests answered `status`.
pub async fn instructions_per_request_answered(
    binary: &std::path::Path,
    env: &[(&str, String)],
    event: &[u8],
    warm: usize,
    counted: usize,
    status: u16,
) -> f64 {
    instructions_per_call(binary, env, event, warm, counted, move |answer| answer["statusCode"] == status).await
}

/// As [`instructions_per_request`], for calls whose answer `expected` accepts.
pub async fn instructions_per_call(
    binary: &std::path::Path,
    env: &[(&str, String)],
    event: &[u8],
    warm: usize,
    counted: usize,
    expected: impl Fn(&serde_json::Value) -> bool,
) -> f64 {
    let dir = std::env::temp_dir().join(format!("callgrind-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("callgrind.out");
    let runner =
        ["valgrind".to_owned(), "--tool=callgrind".to_owned(), format!("--callgrind-out-file={}", out.display())];
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn_under(&runner, binary, env, None);
    let pid = function.child.id().expect("pid").to_string();
    let timeout = Duration::from_secs(120);
    let mut calls = async |count: usize| {
        for _ in 0..count {
            let outcome = api.invoke(&mut function, event, timeout).await;
            assert!(matches!(&outcome, Outcome::Response(r) if expected(r)), "{outcome:?}");
        }
    };
    calls(warm).await;
    let control = |args: &[&str]| {
        let status =
            Command::new("callgrind_control").args(args).arg(&pid).stdout(std::process::Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "callgrind_control {args:?} failed");
    };
    control(&["--zero"]);
    calls(counted).await;
    control(&["--dump"]);
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    // The explicit dump is the file with a part number (`callgrind.out.1`); the one
    // written at exit, after the kill, has none.
    let mut total = None;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e != "out") {
            let text = std::fs::read_to_string(&path).unwrap();
            let summary = text.lines().find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")));
            total = summary.and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
            // BENCH_CALLGRIND_DIR keeps the profiles, for callgrind_annotate.
            if let Some(keep) = std::env::var_os("BENCH_CALLGRIND_DIR") {
                let name = format!("{}.{pid}.callgrind", binary.file_name().unwrap().to_string_lossy());
                std::fs::create_dir_all(&keep).unwrap();
                std::fs::copy(&path, std::path::Path::new(&keep).join(name)).unwrap();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    total.expect("callgrind dumped a total") / counted as f64
}

/// The environment a measured binary runs with, as the template deploys it (one JSON line
/// per request), against this run's DynamoDB Local (and moto's KMS, when set).
pub fn function_env(table: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("TABLE_NAME", table.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ];
    if let Ok(kms) = std::env::var("AWS_ENDPOINT_URL_KMS") {
        env.push(("AWS_ENDPOINT_URL_KMS", kms));
        env.push(("AWS_REGION", std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())));
    }
    env
}

/// The tuned floor's cost of one DynamoDB call (`benches/floor.rs`: one `UpdateItem` per
/// request, the rest of a request being the runtime's and the SDK's own): CPU ms and
/// instructions per request, measured now, for the targets that are "so many calls".
pub async fn floor_per_call(table: &str, requests: usize) -> (f64, f64) {
    let binary = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/floor");
    assert!(binary.exists(), "{} is missing: run `make bench`", binary.display());
    let event =
        std::fs::read(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/apigw-http-jwt.json")).unwrap();
    let env = function_env(table);
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn(&binary, &env, None);
    let pid = function.child.id().expect("pid");
    let timeout = Duration::from_secs(30);
    warm_requests(&mut api, &mut function, &event, requests / 3 + 1, timeout).await;
    let ticks = clock_ticks_per_second();
    let before = cpu_seconds(pid, ticks);
    warm_requests(&mut api, &mut function, &event, requests, timeout).await;
    let cpu_ms = (cpu_seconds(pid, ticks) - before) * 1000.0 / requests as f64;
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let instructions = instructions_per_request(&binary, &env, &event, 20, 100).await;
    (cpu_ms, instructions)
}

/// The size of the zip Lambda would get: the binary as `bootstrap`, deflated.
pub fn zip_mib(binary: &std::path::Path) -> f64 {
    let script = "import sys, zipfile, io\nb = io.BytesIO()\nz = zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED, compresslevel=9)\nz.write(sys.argv[1], 'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new("python3").args(["-c", script]).arg(binary).output().expect("python3 for the zip size");
    let bytes: f64 = String::from_utf8_lossy(&output.stdout).trim().parse().expect("zip size");
    bytes / (1024.0 * 1024.0)
}
