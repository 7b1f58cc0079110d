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

use tracing::Metadata;
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The crates that may log below INFO: this one and its binaries, which never log a
/// payload. A target is theirs when it is the name itself or a module under it
/// (`oidc_client_secret::api`), never a crate whose name merely starts with it
/// (`oidc_client_secret_extras`, `adminapi`, `local_ip_address`).
const OWN: [&str; 6] = ["oidc_client_secret", "regenerate_secret", "rotate_secret", "verify_secret", "local", "admin"];

/// Whether a target belongs to [`OWN`].
fn is_own(target: &str) -> bool {
    OWN.iter().any(|own| target.strip_prefix(own).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

/// The level for a setting such as `INFO` or `trace` (INFO when absent or unknown).
pub fn level(setting: Option<&str>) -> LevelFilter {
    setting.and_then(|l| l.trim().parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO)
}

/// Whether a span or event of `target` at `event_level` passes under the configured level:
/// this crate's own at that level, everyone else's at most at INFO.
pub fn allows(level: LevelFilter, target: &str, event_level: &tracing::Level) -> bool {
    let ceiling = if is_own(target) { level } else { level.min(LevelFilter::INFO) };
    ceiling >= *event_level
}

/// The filter for a level setting.
pub fn filter(setting: Option<&str>) -> FilterFn<impl Fn(&Metadata<'_>) -> bool + Clone + use<>> {
    let level = level(setting);
    FilterFn::new(move |meta: &Metadata<'_>| allows(level, meta.target(), meta.level())).with_max_level_hint(level)
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

/// One line per request or rotation step: with JSON lines, an Embedded Metric Format
/// document (see [`crate::metrics`]) written as it is, since CloudWatch reads the metrics
/// from its top level; otherwise, the same fields through `tracing`, at INFO.
///
/// The EMF line is the function's metrics, so it is written whatever the log level: a
/// level above INFO silences the log, never the dashboard and the alarms. (Lambda's own
/// application log level filter would still drop it, as an INFO line: the template allows
/// no level above INFO for that reason.)
pub fn request_line(
    message: &'static str,
    fields: serde_json::Map<String, serde_json::Value>,
    document: impl FnOnce(serde_json::Map<String, serde_json::Value>) -> serde_json::Value,
) {
    let json = JSON_LINES.load(Ordering::Relaxed);
    let _ = write_request_line(&mut std::io::stdout().lock(), json, message, fields, document);
}

fn write_request_line(
    out: &mut impl Write,
    json: bool,
    message: &'static str,
    fields: serde_json::Map<String, serde_json::Value>,
    document: impl FnOnce(serde_json::Map<String, serde_json::Value>) -> serde_json::Value,
) -> std::io::Result<()> {
    if json {
        let mut line = serde_json::Map::new();
        line.insert("level".into(), "INFO".into());
        line.insert("message".into(), message.into());
        line.extend(fields);
        writeln!(out, "{}", document(line))
    } else {
        tracing::info!(fields = %serde_json::Value::Object(fields), "{message}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn only_this_crate_logs_below_info_whatever_the_level() {
        let trace = level(Some("TRACE"));
        assert!(allows(trace, "oidc_client_secret", &Level::TRACE));
        assert!(allows(trace, "oidc_client_secret::store::dynamodb", &Level::TRACE));
        assert!(allows(trace, "rotate_secret", &Level::DEBUG));
        for other in ["aws_sdk_dynamodb", "aws_sigv4::http_request", "hyper", "lambda_runtime"] {
            assert!(!allows(trace, other, &Level::DEBUG), "{other}");
            assert!(allows(trace, other, &Level::INFO), "{other}");
        }
        let warn = level(Some("warn"));
        assert!(!allows(warn, "oidc_client_secret::api", &Level::INFO));
        assert!(allows(warn, "oidc_client_secret::api", &Level::WARN));
        assert!(!allows(warn, "aws_config", &Level::INFO));
        assert_eq!(level(None), LevelFilter::INFO);
        assert_eq!(level(Some("loud")), LevelFilter::INFO);
    }

    #[test]
    fn the_metrics_line_is_written_whatever_the_log_level() {
        for setting in ["warn", "error", "off"] {
            let subscriber = tracing_subscriber::registry().with(filter(Some(setting)));
            let mut out = Vec::new();
            tracing::subscriber::with_default(subscriber, || {
                assert!(!tracing::enabled!(Level::INFO), "{setting}: INFO is off");
                let fields = serde_json::Map::from_iter([("Outcome".to_owned(), "unavailable".into())]);
                let document =
                    |line| crate::metrics::document(1, vec![vec!["Outcome"]], &[("Requests", "Count", 1.0)], line);
                write_request_line(&mut out, true, "regenerate client secret", fields, document).unwrap();
            });
            let line: serde_json::Value = serde_json::from_slice(&out).expect("one JSON line");
            assert_eq!(line["Outcome"], "unavailable", "{setting}");
            assert_eq!(line["Requests"], 1.0, "{setting}");
            assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "Requests", "{setting}");
        }
    }

    #[test]
    fn a_crate_whose_name_only_starts_like_ours_stays_at_info() {
        let trace = level(Some("trace"));
        for lookalike in
            ["oidc_client_secret_extras", "oidc_client_secretive::x", "adminapi", "local_ip_address", "localhost"]
        {
            assert!(!allows(trace, lookalike, &Level::DEBUG), "{lookalike}");
            assert!(!allows(trace, lookalike, &Level::TRACE), "{lookalike}");
            assert!(allows(trace, lookalike, &Level::INFO), "{lookalike}");
        }
    }
}
