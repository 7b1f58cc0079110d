//! The log subscriber of every binary: Lambda's conventions (`AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, default INFO; `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), with one
//! difference from `lambda_runtime`'s default: the crates that log whole requests,
//! responses or events at TRACE (the AWS SDK, hyper, the Lambda runtime) are capped at
//! DEBUG, since those hold hashes, tokens and secrets. Only a level is read (no
//! per-target directives), so no setting lifts the cap.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Targets (by prefix) whose TRACE output would carry payloads.
const CAPPED: [&str; 6] = ["aws_smithy", "aws_sdk", "aws_config", "aws_runtime", "hyper", "lambda_runtime"];

/// The filter for a level such as `INFO` or `trace` (INFO when absent or unknown).
pub fn filter(level: Option<&str>) -> EnvFilter {
    let level = level.and_then(|l| l.trim().parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let cap = level.min(LevelFilter::DEBUG);
    CAPPED.iter().fold(EnvFilter::default().add_directive(level.into()), |filter, target| {
        filter.add_directive(format!("{target}={cap}").parse().expect("a valid directive"))
    })
}

/// Installs the subscriber, writing to stdout as Lambda expects.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter(level.as_deref()));
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_crates_are_capped_at_debug_whatever_the_level() {
        let trace = filter(Some("TRACE")).to_string();
        assert!(trace.contains("aws_smithy=debug") && trace.contains("hyper=debug"), "{trace}");
        assert!(trace.split(',').any(|d| d == "trace"), "{trace}");
        let warn = filter(Some("warn")).to_string();
        assert!(warn.contains("aws_smithy=warn") && warn.split(',').any(|d| d == "warn"), "{warn}");
        assert!(filter(None).to_string().split(',').any(|d| d == "info"));
    }
}
