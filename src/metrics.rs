//! Metrics with no extra API call: the one log line per request (or rotation step) is, in
//! JSON mode (`AWS_LAMBDA_LOG_FORMAT=JSON`, as the template deploys), a CloudWatch
//! Embedded Metric Format document, from which CloudWatch makes metrics. Dimensions are
//! low-cardinality only (function, transport, outcome, step): never an org, app or user,
//! which stay plain log properties.
//!
//! | metric | unit | per |
//! |---|---|---|
//! | `Requests` | Count | function x transport x outcome, function x outcome, function |
//! | `Attempts` | Count | the same (read-check-write rounds; above 1 means lost races) |
//! | `Duration` | Milliseconds | the same |
//! | `RotationSteps` | Count | function x step x outcome |
//! | `RotationDuration` | Milliseconds | function x step x outcome |

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, code};

pub const NAMESPACE: &str = "OidcClientSecret";

/// The outcome dimension of a request: `success`, or the error's class.
pub fn outcome(result: Result<(), &Error>) -> &'static str {
    let Err(error) = result else { return "success" };
    match error.grpc_code() {
        code::INVALID_ARGUMENT => "invalid_argument",
        code::NOT_FOUND => "not_found",
        code::PERMISSION_DENIED => "permission_denied",
        code::FAILED_PRECONDITION => "failed_precondition",
        code::ABORTED => "conflict",
        code::UNIMPLEMENTED => "unimplemented",
        code::UNAVAILABLE => "unavailable",
        code::DEADLINE_EXCEEDED => "unknown",
        code::UNAUTHENTICATED => "unauthenticated",
        _ => "internal",
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive {
    namespace: &'static str,
    dimensions: Vec<Vec<&'static str>>,
    metrics: Vec<MetricDefinition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDefinition {
    name: &'static str,
    unit: &'static str,
}

/// An EMF document: `properties` (the log line's fields, the dimensions' values among
/// them), the metric values, and the `_aws` block that declares them.
pub fn document(
    timestamp_ms: u64,
    dimensions: Vec<Vec<&'static str>>,
    metrics: &[(&'static str, &'static str, f64)],
    properties: Map<String, Value>,
) -> Value {
    let directive = Directive {
        namespace: NAMESPACE,
        dimensions,
        metrics: metrics.iter().map(|(name, unit, _)| MetricDefinition { name, unit }).collect(),
    };
    let mut document = properties;
    for (name, _, value) in metrics {
        document.insert((*name).to_owned(), json!(value));
    }
    document.insert("_aws".into(), json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]}));
    Value::Object(document)
}

/// Milliseconds since the epoch, as EMF's `Timestamp` wants them.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The function's name, as Lambda sets it; `local` elsewhere.
pub fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_class_has_a_bounded_outcome() {
        assert_eq!(outcome(Ok(())), "success");
        assert_eq!(outcome(Err(&Error::Conflict)), "conflict");
        assert_eq!(outcome(Err(&Error::Unavailable("x".into()))), "unavailable");
        assert_eq!(outcome(Err(&Error::Internal("x".into()))), "internal");
        assert_eq!(outcome(Err(&Error::IdMissing)), "invalid_argument");
        assert_eq!(outcome(Err(&Error::Unauthenticated)), "unauthenticated");
    }

    #[test]
    fn a_document_declares_what_it_carries() {
        let mut properties = Map::new();
        properties.insert("Function".into(), json!("f"));
        properties.insert("Outcome".into(), json!("success"));
        let doc = document(7, vec![vec!["Function", "Outcome"]], &[("Requests", "Count", 1.0)], properties);
        assert_eq!(doc["_aws"]["Timestamp"], 7);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function", "Outcome"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "Requests", "Unit": "Count"}]));
        assert_eq!(doc["Requests"], 1.0);
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(doc[dimension.as_str().unwrap()].is_string(), "every dimension has a value");
        }
    }
}
