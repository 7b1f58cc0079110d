//! The errors of the token and introspection endpoints: RFC 6749 section 5.2's table, each
//! row with its status and headers, so no writer can disagree on a 400 or a 401.
//!
//! Every error body is `{"error": code}`, with an `error_description` only where it says
//! what in the request was malformed; never why a client failed to authenticate (the log
//! line says that). Store and KMS failures are `temporarily_unavailable` (503): a token is
//! never answered unsigned or half made, and an outage is never answered as bad credentials.

use serde_json::{Map, Value};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// "The request is missing a required parameter, includes an unsupported parameter
    /// value (other than grant type), repeats a parameter, includes multiple credentials,
    /// utilizes more than one mechanism for authenticating the client, or is otherwise
    /// malformed." The text says which, for the caller.
    InvalidRequest(&'static str),
    /// "Client authentication failed": 401 with `WWW-Authenticate: Basic`.
    InvalidClient,
    /// "The authenticated client is not authorized to use this authorization grant type."
    UnauthorizedClient,
    /// "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType,
    /// "The requested scope is invalid, unknown, malformed."
    InvalidScope,
    /// The store or KMS failed: nothing was issued; try again.
    TemporarilyUnavailable,
    /// Anything else (a misconfigured key, a bug): for the log.
    ServerError,
    /// Another method on an endpoint's path: 405 with `Allow`.
    MethodNotAllowed(&'static str),
    /// No such endpoint.
    NotFound,
}

/// The realm of the `WWW-Authenticate` challenge of an `invalid_client` answer.
pub const REALM: &str = "oauth";

impl OAuthError {
    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient => 401,
            OAuthError::TemporarilyUnavailable => 503,
            OAuthError::ServerError => 500,
            OAuthError::MethodNotAllowed(_) => 405,
            OAuthError::NotFound => 404,
            _ => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::MethodNotAllowed(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::ServerError => "server_error",
            OAuthError::NotFound => "not_found",
        }
    }

    /// The headers beyond the ones every answer carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            OAuthError::InvalidClient => vec![("www-authenticate", format!("Basic realm=\"{REALM}\""))],
            OAuthError::MethodNotAllowed(allow) => vec![("allow", (*allow).to_owned())],
            _ => Vec::new(),
        }
    }

    pub fn body(&self) -> Value {
        let mut body = Map::from_iter([("error".to_owned(), Value::from(self.code()))]);
        let description = match self {
            OAuthError::InvalidRequest(text) => Some(*text),
            OAuthError::MethodNotAllowed(_) => Some("method not allowed"),
            _ => None,
        };
        if let Some(text) = description {
            body.insert("error_description".into(), Value::from(text));
        }
        Value::Object(body)
    }
}

/// A store or KMS failure, whatever it is (throttled, unreachable, a key disabled or its
/// grant gone): 503, as SPEC section 13 says; the detail goes to the log.
impl From<Error> for OAuthError {
    fn from(_: Error) -> Self {
        OAuthError::TemporarilyUnavailable
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_row_has_its_status_code_and_headers() {
        let rows = [
            (OAuthError::InvalidRequest("x"), 400, "invalid_request"),
            (OAuthError::InvalidClient, 401, "invalid_client"),
            (OAuthError::UnauthorizedClient, 400, "unauthorized_client"),
            (OAuthError::UnsupportedGrantType, 400, "unsupported_grant_type"),
            (OAuthError::InvalidScope, 400, "invalid_scope"),
            (OAuthError::TemporarilyUnavailable, 503, "temporarily_unavailable"),
            (OAuthError::ServerError, 500, "server_error"),
            (OAuthError::MethodNotAllowed("POST"), 405, "invalid_request"),
        ];
        for (error, status, code) in rows {
            assert_eq!((error.status(), error.code()), (status, code), "{error:?}");
        }
        assert_eq!(OAuthError::InvalidClient.headers(), [("www-authenticate", "Basic realm=\"oauth\"".to_owned())]);
        assert_eq!(OAuthError::InvalidClient.body(), json!({"error": "invalid_client"}));
        assert_eq!(OAuthError::MethodNotAllowed("POST").headers(), [("allow", "POST".to_owned())]);
    }

    #[test]
    fn an_outage_is_temporarily_unavailable_never_a_client_error() {
        assert_eq!(OAuthError::from(Error::Unavailable("throttled".into())), OAuthError::TemporarilyUnavailable);
        assert_eq!(OAuthError::from(Error::OutcomeUnknown("timeout".into())), OAuthError::TemporarilyUnavailable);
        assert_eq!(OAuthError::from(Error::Internal("key disabled".into())), OAuthError::TemporarilyUnavailable);
    }
}
