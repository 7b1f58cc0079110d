//! The one error type of the crate, and its mapping to ZITADEL's error envelope.
//!
//! Every failure a caller can see is one variant here, which knows its gRPC code, the
//! HTTP status grpc-gateway maps that code to, ZITADEL's error id and the text. The
//! variants that wrap internals (`Unavailable`, `Internal`) carry a detail for the log
//! only: the envelope never shows it.

use serde::Serialize;

/// gRPC status codes used by the envelope.
pub mod code {
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const NOT_FOUND: u32 = 5;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const FAILED_PRECONDITION: u32 = 9;
    pub const ABORTED: u32 = 10;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const UNAUTHENTICATED: u32 = 16;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("Token is invalid")]
    Unauthenticated,
    #[error("ID missing")]
    IdMissing,
    /// The v2 door's own id for a missing id.
    #[error("ID missing")]
    IdMissingV2,
    /// Malformed input; the text names the field and the rule.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("No matching permissions found")]
    PermissionDenied,
    #[error("Application doesn't exist")]
    AppNotFound,
    /// The v2 door's own id for an app that is missing, REMOVED, SAML, or not the caller's.
    #[error("Application doesn't exist")]
    AppNotFoundV2,
    #[error("Application is not type OIDC")]
    NotOidc,
    #[error("Application is not type API")]
    NotApi,
    /// v2beta: the request named neither OIDC nor API.
    #[error("unknown app type")]
    UnknownAppType,
    #[error("Chosen OIDC Auth Method does not require a secret")]
    NoSecretRequired,
    #[error("Application was changed concurrently, try again")]
    Conflict,
    /// DynamoDB throttled, unreachable or timed out. The detail is for the log only.
    #[error("Service temporarily unavailable, try again")]
    Unavailable(String),
    /// A write may or may not have landed, and the deadline left no time to know: the one
    /// answer that says "it may have happened" (SPEC section 6a). The detail is for the log.
    #[error("The outcome is unknown: read the app before trying again")]
    OutcomeUnknown(String),
    /// Anything else. The detail is for the log only.
    #[error("Internal error")]
    Internal(String),
    #[error("Not Found")]
    RouteNotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }

    /// The gRPC code of the envelope.
    pub fn grpc_code(&self) -> u32 {
        match self {
            Error::Unauthenticated => code::UNAUTHENTICATED,
            Error::IdMissing
            | Error::IdMissingV2
            | Error::InvalidArgument(_)
            | Error::NotOidc
            | Error::NotApi
            | Error::UnknownAppType => code::INVALID_ARGUMENT,
            Error::PermissionDenied => code::PERMISSION_DENIED,
            Error::AppNotFound | Error::AppNotFoundV2 | Error::RouteNotFound => code::NOT_FOUND,
            Error::NoSecretRequired => code::FAILED_PRECONDITION,
            Error::Conflict => code::ABORTED,
            Error::Unavailable(_) => code::UNAVAILABLE,
            Error::OutcomeUnknown(_) => code::DEADLINE_EXCEEDED,
            Error::Internal(_) => code::INTERNAL,
            Error::MethodNotAllowed => code::UNIMPLEMENTED,
        }
    }

    /// The HTTP status grpc-gateway gives the gRPC code (405 for a wrong method).
    pub fn http_status(&self) -> u16 {
        match self.grpc_code() {
            code::INVALID_ARGUMENT | code::FAILED_PRECONDITION => 400,
            code::UNAUTHENTICATED => 401,
            code::PERMISSION_DENIED => 403,
            code::NOT_FOUND => 404,
            code::UNIMPLEMENTED => 405,
            code::ABORTED => 409,
            code::UNAVAILABLE => 503,
            code::DEADLINE_EXCEEDED => 504,
            _ => 500,
        }
    }

    /// ZITADEL's error id, or `None` for the routing errors, whose `details` are empty.
    pub fn id(&self) -> Option<&'static str> {
        Some(match self {
            Error::Unauthenticated => "AUTH-7fs1e",
            Error::IdMissing => "COMMAND-99i83",
            Error::IdMissingV2 => "COMMAND-KJ29c",
            Error::InvalidArgument(_) => "REQ-invalid",
            Error::PermissionDenied => "AUTH-5mWD2",
            Error::AppNotFound => "COMMAND-2g66f",
            Error::AppNotFoundV2 => "COMMAND-Kd92s",
            Error::NotOidc => "COMMAND-Ghrh3",
            Error::NotApi => "COMMAND-aeH4",
            Error::UnknownAppType => "APP-aLWIzw",
            Error::NoSecretRequired => "COMMAND-GDrg2",
            Error::Conflict => "STORE-conflict",
            Error::Unavailable(_) => "STORE-unavailable",
            Error::OutcomeUnknown(_) => "STORE-unknown",
            Error::Internal(_) => "INTERNAL",
            Error::RouteNotFound | Error::MethodNotAllowed => return None,
        })
    }

    /// The internal detail that goes to the log and never to the caller.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            Error::Unavailable(detail) | Error::OutcomeUnknown(detail) | Error::Internal(detail) => Some(detail),
            _ => None,
        }
    }

    /// ZITADEL's error envelope: `{"code","message","details":[ErrorDetail]}`.
    pub fn envelope(&self) -> Envelope {
        let text = self.to_string();
        match self.id() {
            Some(id) => Envelope {
                code: self.grpc_code(),
                message: format!("{text} ({id})"),
                details: vec![ErrorDetail { kind: ERROR_DETAIL_TYPE, id, message: text }],
            },
            None => Envelope { code: self.grpc_code(), message: text, details: Vec::new() },
        }
    }
}

const ERROR_DETAIL_TYPE: &str = "type.googleapis.com/zitadel.v1.ErrorDetail";

/// The error body, its fields in ZITADEL's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    pub code: u32,
    pub message: String,
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    #[serde(rename = "@type")]
    pub kind: &'static str,
    pub id: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(error: Error) -> serde_json::Value {
        serde_json::to_value(error.envelope()).unwrap()
    }

    #[test]
    fn envelope_has_message_with_id_and_one_detail() {
        let body = serde_json::to_string(&Error::AppNotFound.envelope()).unwrap();
        assert_eq!(
            body,
            r#"{"code":5,"message":"Application doesn't exist (COMMAND-2g66f)","details":[{"@type":"type.googleapis.com/zitadel.v1.ErrorDetail","id":"COMMAND-2g66f","message":"Application doesn't exist"}]}"#
        );
    }

    #[test]
    fn internal_detail_never_reaches_the_envelope() {
        let body = envelope(Error::Internal("table oidc-prod: AccessDenied".into())).to_string();
        assert!(!body.contains("oidc-prod"), "{body}");
        assert!(body.contains("Internal error (INTERNAL)"));
        let body = envelope(Error::Unavailable("dispatch failure: connection refused".into())).to_string();
        assert!(!body.contains("refused"), "{body}");
    }

    #[test]
    fn routing_errors_have_no_details() {
        assert_eq!(envelope(Error::RouteNotFound), json!({"code":5,"message":"Not Found","details":[]}));
        assert_eq!(Error::MethodNotAllowed.http_status(), 405);
        assert_eq!(envelope(Error::MethodNotAllowed)["code"], 12);
    }

    #[test]
    fn an_unknown_outcome_is_a_504_deadline_exceeded() {
        let error = Error::OutcomeUnknown("TransactWriteItems: timed out; fence: timed out".into());
        assert_eq!((error.http_status(), error.grpc_code()), (504, 4));
        assert_eq!(
            envelope(error),
            json!({"code":4,"message":"The outcome is unknown: read the app before trying again (STORE-unknown)","details":[{"@type":"type.googleapis.com/zitadel.v1.ErrorDetail","id":"STORE-unknown","message":"The outcome is unknown: read the app before trying again"}]})
        );
    }
}
