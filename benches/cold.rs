//! `make bench-cold`: cold starts as Lambda runs them. DynamoDB Local sits behind a TLS
//! terminator on loopback (a throwaway CA made at run time, handed to the function through
//! `SSL_CERT_FILE` bundled with the system's roots, so that loading roots costs what it
//! costs on Lambda), and the function's CPU is capped through a cgroup to
//! `memory / 1769` of one CPU, Lambda's share, with a 20 ms CFS period (with the default
//! 100 ms, a request's few milliseconds fit in one period's quota and run at full speed,
//! which hides exactly what is measured). Two variants: capped from the start, and capped
//! only after init (Lambda gives init more CPU than an invocation).
//!
//! Per binary (the function, and the baseline of `benches/baseline/`) and variant, the
//! medians of `BENCH_COLD_STARTS` cold starts (default 5): init (spawn to the first
//! `next`), the first request, the warm p50, first/warm, and the function's own CPU during
//! init and during the first request. `BENCH_MEMORY` (default 128) takes a list of memory
//! sizes, e.g. `128,256,512,1024`, for the price/latency table.

mod common;
#[path = "../tests/support/runtime_api.rs"]
#[allow(dead_code)] // `spawn`: every function here starts through `spawn_under`
mod runtime_api;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use runtime_api::{Outcome, RuntimeApi};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

const FULL_CPU_MB: f64 = 1769.0;
const PERIOD_US: u64 = 20_000;
const TIMEOUT: Duration = Duration::from_secs(60);
const WARM_REQUESTS: usize = 20;
/// Lambda's price per GB-second on arm64 (us-east-1, first tier), for the GB-s column.
const ARM64_USD_PER_GB_S: f64 = 0.000_013_333_4;

/// A CPU cap: a cgroup whose quota is `memory / 1769` of one CPU per 20 ms period.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// v1's `cpu` controller, else v2's `cpu.max`; `None` when neither is writable.
    fn create(memory_mb: u32) -> Option<Self> {
        let quota = (PERIOD_US as f64 * f64::from(memory_mb) / FULL_CPU_MB).round() as u64;
        let name = format!("oidc-bench-{}-{memory_mb}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).ok()?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).ok()?;
            return Some(Self { dir });
        }
        let v2 = Path::new("/sys/fs/cgroup");
        if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"))
        {
            let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+cpu");
            let dir = v2.join(&name);
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::write(dir.join("cpu.max"), format!("{quota} {PERIOD_US}")).ok()?;
            return Some(Self { dir });
        }
        None
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.procs(), pid.to_string()).expect("move the function into the cgroup");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A TLS terminator on loopback in front of `upstream`; returns its port and the CA bundle
/// (the system's roots and the throwaway CA) for `SSL_CERT_FILE`.
async fn tls_terminator(upstream: SocketAddr) -> (u16, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Ok(mut plain) = TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let system = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let bundle = std::env::temp_dir().join(format!("oidc-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&bundle, format!("{system}\n{}", ca.pem())).unwrap();
    (port, bundle)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capped {
    FromStart,
    AfterInit,
}

#[derive(Default, Clone, Copy)]
struct Cold {
    init_ms: f64,
    first_ms: f64,
    warm_p50_ms: f64,
    init_cpu_ms: f64,
    first_cpu_ms: f64,
}

/// The CPU time of every thread of a process, from the scheduler's nanosecond counters
/// (`/proc/<pid>/task/*/schedstat`): /proc's stat counts in 10 ms ticks, too coarse here.
fn cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/pid/task");
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    nanos as f64 / 1e9
}

async fn cold_start(binary: &Path, env: &[(&str, String)], event: &[u8], cap: Option<(&Cgroup, Capped)>) -> Cold {
    let mut api = RuntimeApi::start().await;
    // Capped from the start: a shell joins the cgroup, then becomes the function.
    let runner: Vec<String> = match cap {
        Some((cgroup, Capped::FromStart)) => {
            vec!["sh".into(), "-c".into(), format!("echo $$ > {} && exec \"$0\"", cgroup.procs().display())]
        }
        _ => Vec::new(),
    };
    let mut function = api.spawn_under(&runner, binary, env, None);
    let pid = function.child.id().expect("pid");
    let init = loop {
        if let Some(init) = api.init_duration(&function) {
            break init;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let init_cpu = cpu_seconds(pid);
    if let Some((cgroup, Capped::AfterInit)) = cap {
        cgroup.add(pid);
    }
    let started = Instant::now();
    let first = api.invoke(&mut function, event, TIMEOUT).await;
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(matches!(&first, Outcome::Response(r) if r["statusCode"] == 200), "{}: {first:?}", binary.display());
    let first_cpu = cpu_seconds(pid) - init_cpu;
    let latencies = common::warm_requests(&mut api, &mut function, event, WARM_REQUESTS, TIMEOUT).await;
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    Cold {
        init_ms: init.as_secs_f64() * 1000.0,
        first_ms,
        warm_p50_ms: common::percentile(&latencies, 0.5),
        init_cpu_ms: init_cpu * 1000.0,
        first_cpu_ms: first_cpu * 1000.0,
    }
}

fn medians(runs: &[Cold]) -> Cold {
    let m = |f: fn(&Cold) -> f64| common::median(runs.iter().map(f).collect());
    Cold {
        init_ms: m(|c| c.init_ms),
        first_ms: m(|c| c.first_ms),
        warm_p50_ms: m(|c| c.warm_p50_ms),
        init_cpu_ms: m(|c| c.init_cpu_ms),
        first_cpu_ms: m(|c| c.first_cpu_ms),
    }
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // run by `cargo test --all-targets`: only `cargo bench` measures
    }
    let release = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release");
    let binaries = [("regenerate-secret", release.join("regenerate-secret")), ("baseline", release.join("baseline"))];
    for (_, binary) in &binaries {
        assert!(binary.exists(), "{} is missing: run `make bench-cold`", binary.display());
    }
    let table = common::demo_table().await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make bench-cold`");
    let upstream: SocketAddr = endpoint.trim_start_matches("http://").parse().expect("an http://host:port endpoint");
    let (port, bundle) = tls_terminator(upstream).await;
    let env = vec![
        ("TABLE_NAME", table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", format!("https://localhost:{port}")),
        ("SSL_CERT_FILE", bundle.display().to_string()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ];
    let event = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events/apigw-http-jwt.json")).unwrap();
    let starts: usize = setting("BENCH_COLD_STARTS", "5").parse().expect("BENCH_COLD_STARTS");
    let memories: Vec<u32> = setting("BENCH_MEMORY", "128")
        .split(',')
        .map(|m| m.trim().parse().expect("BENCH_MEMORY: sizes in MB"))
        .collect();

    // One uncapped start of each, not counted: DynamoDB Local's JVM warms up.
    for (_, binary) in &binaries {
        cold_start(binary, &env, &event, None).await;
    }
    println!(
        "DynamoDB Local behind TLS on loopback; {starts} cold starts per row, medians; {WARM_REQUESTS} warm requests each"
    );
    let mut price_rows = Vec::new();
    for memory in memories {
        let cgroup = Cgroup::create(memory);
        if cgroup.is_none() {
            println!("no writable cgroup cpu controller (v1 /sys/fs/cgroup/cpu or v2 cpu.max): running UNCAPPED");
        }
        let share = f64::from(memory) / FULL_CPU_MB;
        println!(
            "\n{memory} MB: {:.1} % of one CPU ({} us per {} us period)",
            share * 100.0,
            (PERIOD_US as f64 * share).round(),
            PERIOD_US
        );
        println!(
            "{:<18} {:<16} {:>9} {:>10} {:>9} {:>10} {:>11} {:>12}",
            "binary", "capped", "init ms", "first ms", "warm p50", "first/warm", "init CPU ms", "first CPU ms"
        );
        let mut results = Vec::new();
        for capped in [Capped::FromStart, Capped::AfterInit] {
            for (name, binary) in &binaries {
                let mut runs = Vec::with_capacity(starts);
                for _ in 0..starts {
                    runs.push(cold_start(binary, &env, &event, cgroup.as_ref().map(|c| (c, capped))).await);
                }
                let m = medians(&runs);
                let label = if capped == Capped::FromStart { "from the start" } else { "after init" };
                println!(
                    "{name:<18} {label:<16} {:>9.1} {:>10.1} {:>9.1} {:>10.2} {:>11.1} {:>12.1}",
                    m.init_ms,
                    m.first_ms,
                    m.warm_p50_ms,
                    m.first_ms / m.warm_p50_ms,
                    m.init_cpu_ms,
                    m.first_cpu_ms
                );
                results.push((*name, capped, m));
            }
        }
        let find = |name: &str, capped| results.iter().find(|r| r.0 == name && r.1 == capped).map(|r| r.2).unwrap();
        let ours_after = find("regenerate-secret", Capped::AfterInit);
        let (ours_start, base_start) =
            (find("regenerate-secret", Capped::FromStart), find("baseline", Capped::FromStart));
        let first_ok = ours_after.first_ms <= 1.5 * ours_after.warm_p50_ms;
        let start_ok = ours_start.init_ms + ours_start.first_ms <= base_start.init_ms + base_start.first_ms;
        println!(
            "targets: first request <= 1.5x warm p50 (capped after init): {:.2}x {}; capped from the start, init + first <= the baseline's: {:.1} vs {:.1} ms {}",
            ours_after.first_ms / ours_after.warm_p50_ms,
            if first_ok { "met" } else { "MISSED" },
            ours_start.init_ms + ours_start.first_ms,
            base_start.init_ms + base_start.first_ms,
            if start_ok { "met" } else { "MISSED" }
        );
        let gb_s = |ms: f64| f64::from(memory) / 1024.0 * (ms / 1000.0).max(0.001);
        price_rows.push((
            memory,
            ours_after.warm_p50_ms,
            ours_start.init_ms + ours_start.first_ms,
            gb_s(ours_after.warm_p50_ms),
        ));
    }
    if price_rows.len() > 1 {
        println!("\nregenerate-secret by memory size (billed per ms; arm64 at {ARM64_USD_PER_GB_S} USD per GB-s)");
        println!(
            "{:>8} {:>12} {:>20} {:>16} {:>18}",
            "MB", "warm p50 ms", "cold init+first ms", "GB-s per request", "USD per 1M warm"
        );
        for (memory, warm, cold, gb_s) in &price_rows {
            println!("{memory:>8} {warm:>12.1} {cold:>20.1} {gb_s:>16.6} {:>18.2}", gb_s * ARM64_USD_PER_GB_S * 1e6);
        }
        let cheapest = price_rows.iter().min_by(|a, b| a.3.partial_cmp(&b.3).unwrap()).unwrap();
        let fastest = price_rows.iter().min_by(|a, b| a.1.partial_cmp(&b.1).unwrap()).unwrap();
        println!("cheapest: {} MB; fastest warm: {} MB", cheapest.0, fastest.0);
    }
    let _ = std::fs::remove_file(bundle);
}
