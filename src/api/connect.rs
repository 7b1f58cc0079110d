//! Connect unary (beyond ZITADEL, which serves Connect for its v2 services only), for
//! `@connectrpc` clients: `application/proto` or `application/json` (the protobuf JSON
//! mapping: `projectId`, `appId`; `clientSecret`, `details.sequence` as a string) at the
//! same path. An error is JSON with Connect's HTTP status for its code:
//! `{"code":"not_found","message":"... (id)","details":[{"type":"zitadel.v1.ErrorDetail","value":"<base64>"}]}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use lambda_http::{Body, Response};
use prost::Message;
use serde::Serialize;
use serde_json::Value;

use super::MAX_BODY_BYTES;
use super::proto::{self, ERROR_DETAIL_TYPE, RegenerateOidcClientSecretRequest};
use super::rest::{SecretResponse, answer, respond};
use crate::error::{Error, code};
use crate::regenerate::Outcome;

/// The one message of a request body; `json` for `application/json`.
pub fn decode(body: &[u8], json: bool) -> Result<RegenerateOidcClientSecretRequest, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::invalid(format!("invalid body: must be at most {MAX_BODY_BYTES} bytes")));
    }
    if !json {
        return RegenerateOidcClientSecretRequest::decode(body)
            .map_err(|_| Error::invalid("invalid body: not a valid protobuf message"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RegenerateOidcClientSecretRequest::default());
    }
    // The protobuf JSON mapping: a JSON object, each field by its JSON name or its proto
    // name; other fields are ignored, as the REST path ignores its body's.
    let invalid = || Error::invalid("invalid body: must be a JSON object with string projectId and appId");
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|_| invalid())?;
    let field = |json: &str, proto: &str| match object.get(json).or_else(|| object.get(proto)) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(invalid()),
    };
    Ok(RegenerateOidcClientSecretRequest {
        project_id: field("projectId", "project_id")?,
        app_id: field("appId", "app_id")?,
    })
}

/// Connect's name for a gRPC code, and the HTTP status it travels with.
fn code_and_status(error: &Error) -> (&'static str, u16) {
    match error.grpc_code() {
        code::INVALID_ARGUMENT => ("invalid_argument", 400),
        code::NOT_FOUND => ("not_found", 404),
        code::PERMISSION_DENIED => ("permission_denied", 403),
        code::FAILED_PRECONDITION => ("failed_precondition", 400),
        code::ABORTED => ("aborted", 409),
        code::UNIMPLEMENTED => ("unimplemented", 501),
        code::UNAVAILABLE => ("unavailable", 503),
        code::DEADLINE_EXCEEDED => ("deadline_exceeded", 504),
        code::UNAUTHENTICATED => ("unauthenticated", 401),
        _ => ("internal", 500),
    }
}

#[derive(Serialize)]
struct ConnectError<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<ConnectDetail<'a>>,
}

#[derive(Serialize)]
struct ConnectDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    value: String,
}

/// The response message, or Connect's JSON error.
pub fn encode(result: &Result<Outcome, Error>, json: bool) -> Response<Body> {
    match result {
        Ok(outcome) if json => respond(200, &SecretResponse::of(outcome)),
        Ok(outcome) => answer(200, Body::Binary(proto::response(outcome).encode_to_vec()), "application/proto"),
        Err(error) => {
            let (code, status) = code_and_status(error);
            let details = proto::error_detail(error)
                .map(|detail| ConnectDetail {
                    kind: ERROR_DETAIL_TYPE,
                    value: STANDARD_NO_PAD.encode(detail.encode_to_vec()),
                })
                .into_iter()
                .collect();
            respond(status, &ConnectError { code, message: proto::error_message(error), details })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_takes_either_field_name_and_ignores_others() {
        let expected = RegenerateOidcClientSecretRequest { project_id: "p".into(), app_id: "a".into() };
        assert_eq!(decode(br#"{"projectId":"p","appId":"a","x":1}"#, true).unwrap(), expected);
        assert_eq!(decode(br#"{"project_id":"p","app_id":"a"}"#, true).unwrap(), expected);
        assert_eq!(decode(b"", true).unwrap(), RegenerateOidcClientSecretRequest::default());
        for bad in [&b"[]"[..], b"{", br#"{"projectId":1}"#] {
            assert_eq!(decode(bad, true).unwrap_err().grpc_code(), 3);
        }
        assert_eq!(decode(b"\xff\xff", false).unwrap_err().grpc_code(), 3);
    }

    #[test]
    fn an_error_is_connects_json_with_the_detail() {
        let response = encode(&Err(Error::PermissionDenied), true);
        assert_eq!(response.status(), 403);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["code"], "permission_denied");
        assert_eq!(body["message"], "No matching permissions found (AUTH-5mWD2)");
        assert_eq!(body["details"][0]["type"], "zitadel.v1.ErrorDetail");
        let value = STANDARD_NO_PAD.decode(body["details"][0]["value"].as_str().unwrap()).unwrap();
        let detail = proto::ErrorDetail::decode(value.as_slice()).unwrap();
        assert_eq!(detail.id, "AUTH-5mWD2");
    }
}
