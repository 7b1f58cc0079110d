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

use super::MAX_BODY_BYTES;
use super::doors::{Decoded, Wire};
use super::proto::{self, ERROR_DETAIL_TYPE};
use super::rest::{answer, respond};
use crate::error::{Error, code};
use crate::regenerate::Outcome;

/// The one message of a request body, as the door's wire reads it; `json` for
/// `application/json` (the protobuf JSON mapping: each field by its JSON or proto name).
pub fn decode(body: &[u8], json: bool, wire: Wire) -> Result<Decoded, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::invalid(format!("invalid body: must be at most {MAX_BODY_BYTES} bytes")));
    }
    if json { wire.decode_json(body) } else { wire.decode_proto(body) }
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
pub fn encode(result: &Result<Outcome, Error>, json: bool, wire: Wire) -> Response<Body> {
    match result {
        Ok(outcome) if json => respond(200, &wire.encode_json(outcome)),
        Ok(outcome) => answer(200, Body::Binary(wire.encode_proto(outcome)), "application/proto"),
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
        let ids = |body: &[u8], wire| decode(body, true, wire).map(|d| (d.project, d.app));
        let expected = ("p".to_owned(), "a".to_owned());
        assert_eq!(ids(br#"{"projectId":"p","appId":"a","x":1}"#, Wire::V1).unwrap(), expected);
        assert_eq!(ids(br#"{"project_id":"p","app_id":"a"}"#, Wire::V1).unwrap(), expected);
        assert_eq!(ids(br#"{"projectId":"p","applicationId":"a"}"#, Wire::V2).unwrap(), expected);
        assert_eq!(ids(b"", Wire::V1).unwrap(), (String::new(), String::new()));
        for bad in [&b"[]"[..], b"{", br#"{"projectId":1}"#] {
            assert_eq!(ids(bad, Wire::V1).unwrap_err().grpc_code(), 3);
        }
        assert_eq!(decode(b"\xff\xff", false, Wire::V1).err().unwrap().grpc_code(), 3);
    }

    #[test]
    fn an_error_is_connects_json_with_the_detail() {
        let response = encode(&Err(Error::PermissionDenied), true, Wire::V1);
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
