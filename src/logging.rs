//! The log subscriber of every binary: Lambda's conventions (`AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, default INFO; `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), with one
//! difference from `lambda_runtime`'s default: only this crate's own code may log below
//! INFO. Every dependency, present or future, is held at INFO whatever the level, since
//! below it they log payloads: the SDK's SigV4 signer logs canonical requests at TRACE and,
//! with `LOG_SIGNABLE_BODY=true`, whole request bodies (a hash, or the plaintext of
//! `PutSecretValue`); the SDK and hyper log responses. It is an allow-list, not a list of
//! crates to silence, and only a level is read (no per-target directives), so no setting
//! lifts it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The targets that may log below INFO: this crate and its binaries, which never log a
/// payload.
const OWN: [&str; 5] = ["oidc_client_secret", "regenerate_secret", "rotate_secret", "local", "admin"];

/// The filter for a level such as `INFO` or `trace` (INFO when absent or unknown).
pub fn filter(level: Option<&str>) -> EnvFilter {
    let level = level.and_then(|l| l.trim().parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let everyone_else = level.min(LevelFilter::INFO);
    OWN.iter().fold(EnvFilter::default().add_directive(everyone_else.into()), |filter, target| {
        filter.add_directive(format!("{target}={level}").parse().expect("a valid directive"))
    })
}

/// Installs the subscriber, writing to stdout as Lambda expects.
/// With X-Ray's daemon address in the environment (active tracing), the subsegments of
/// [`crate::xray`] go to it.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    let registry =
        tracing_subscriber::registry().with(filter(level.as_deref())).with(crate::xray::XrayLayer::from_env());
    let lines = tracing_subscriber::fmt::layer().with_target(false).without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        JSON_LINES.store(true, Ordering::Relaxed);
        registry.with(lines.json()).init();
    } else {
        registry.with(lines).init();
    }
}

/// Whether [`init`] chose JSON lines.
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// One line per request or rotation step, at INFO: with JSON lines, an Embedded Metric
/// Format document (see [`crate::metrics`]) written as it is, since CloudWatch reads the
/// metrics from its top level; otherwise, the same fields through `tracing`.
pub fn request_line(
    message: &'static str,
    fields: serde_json::Map<String, serde_json::Value>,
    document: impl FnOnce(serde_json::Map<String, serde_json::Value>) -> serde_json::Value,
) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    if JSON_LINES.load(Ordering::Relaxed) {
        let mut line = serde_json::Map::new();
        line.insert("level".into(), "INFO".into());
        line.insert("message".into(), message.into());
        line.extend(fields);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", document(line));
    } else {
        tracing::info!(fields = %serde_json::Value::Object(fields), "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_crate_logs_below_info_whatever_the_level() {
        let trace = filter(Some("TRACE")).to_string();
        let directives: Vec<&str> = trace.split(',').collect();
        assert!(directives.contains(&"info"), "{trace}");
        assert!(directives.contains(&"oidc_client_secret=trace"), "{trace}");
        assert!(!directives.iter().any(|d| d.starts_with("aws") || d.starts_with("hyper")), "{trace}");
        let warn = filter(Some("warn")).to_string();
        assert!(warn.split(',').any(|d| d == "warn") && warn.contains("oidc_client_secret=warn"), "{warn}");
        assert!(filter(None).to_string().split(',').any(|d| d == "info"));
        assert!(filter(Some("loud")).to_string().split(',').any(|d| d == "info"));
    }
}
