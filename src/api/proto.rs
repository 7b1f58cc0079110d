//! The protobuf messages of this call, with ZITADEL's field numbers (the wire contract),
//! derived with `prost`: `zitadel.management.v1.RegenerateOIDCClientSecretRequest` and
//! `...Response`, `zitadel.v1.ObjectDetails`, `zitadel.v1.ErrorDetail`, and
//! `google.rpc.Status`, which carries an error's detail in `grpc-status-details-bin`.

use prost::Message;
use prost_types::{Any, Timestamp};
use time::OffsetDateTime;

use crate::error::Error;
use crate::regenerate::Outcome;

#[derive(Clone, PartialEq, Message)]
pub struct RegenerateOidcClientSecretRequest {
    #[prost(string, tag = "1")]
    pub project_id: String,
    #[prost(string, tag = "2")]
    pub app_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct RegenerateOidcClientSecretResponse {
    #[prost(string, tag = "1")]
    pub client_secret: String,
    #[prost(message, optional, tag = "2")]
    pub details: Option<ObjectDetails>,
}

/// `zitadel.app.v2beta.RegenerateClientSecretRequest`: the app's type as a oneof.
#[derive(Clone, PartialEq, Message)]
pub struct RegenerateClientSecretRequest {
    #[prost(string, tag = "1")]
    pub project_id: String,
    #[prost(string, tag = "2")]
    pub application_id: String,
    #[prost(oneof = "AppType", tags = "3, 4")]
    pub app_type: Option<AppType>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AppType {
    #[prost(bool, tag = "3")]
    IsOidc(bool),
    #[prost(bool, tag = "4")]
    IsApi(bool),
}

/// `zitadel.application.v2.GenerateClientSecretRequest`: note the order of the ids.
#[derive(Clone, PartialEq, Message)]
pub struct GenerateClientSecretRequest {
    #[prost(string, tag = "1")]
    pub application_id: String,
    #[prost(string, tag = "2")]
    pub project_id: String,
}

/// The answer of v2beta `RegenerateClientSecret` and v2 `GenerateClientSecret`: the
/// secret and the time of the change.
#[derive(Clone, PartialEq, Message)]
pub struct ClientSecretResponse {
    #[prost(string, tag = "1")]
    pub client_secret: String,
    #[prost(message, optional, tag = "2")]
    pub creation_date: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ObjectDetails {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(message, optional, tag = "2")]
    pub creation_date: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub change_date: Option<Timestamp>,
    #[prost(string, tag = "4")]
    pub resource_owner: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ErrorDetail {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

pub const ERROR_DETAIL_TYPE: &str = "zitadel.v1.ErrorDetail";

fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp { seconds: at.unix_timestamp(), nanos: at.nanosecond() as i32 }
}

/// The response message of a success.
pub fn response(outcome: &Outcome) -> RegenerateOidcClientSecretResponse {
    RegenerateOidcClientSecretResponse {
        client_secret: outcome.secret.expose().to_owned(),
        details: Some(ObjectDetails {
            sequence: outcome.sequence,
            creation_date: Some(timestamp(outcome.creation_date)),
            change_date: Some(timestamp(outcome.change_date)),
            resource_owner: outcome.resource_owner.as_str().to_owned(),
        }),
    }
}

/// The v2beta and v2 answer of a success.
pub fn v2_response(outcome: &Outcome) -> ClientSecretResponse {
    ClientSecretResponse {
        client_secret: outcome.secret.expose().to_owned(),
        creation_date: Some(timestamp(outcome.change_date)),
    }
}

/// ZITADEL's detail of an error: its id and text; none for the routing errors.
pub fn error_detail(error: &Error) -> Option<ErrorDetail> {
    error.id().map(|id| ErrorDetail { id: id.to_owned(), message: error.to_string() })
}

/// The text clients see: the text then ` (id)`, as in the REST envelope's `message`.
pub fn error_message(error: &Error) -> String {
    error.envelope().message
}

/// `google.rpc.Status` with the error's code, message and `ErrorDetail`.
pub fn status(error: &Error) -> Status {
    let details = error_detail(error)
        .map(|detail| Any {
            type_url: format!("type.googleapis.com/{ERROR_DETAIL_TYPE}"),
            value: detail.encode_to_vec(),
        })
        .into_iter()
        .collect();
    Status { code: error.grpc_code() as i32, message: error_message(error), details }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_numbers_are_zitadels() {
        // project_id = 1 ("p"), app_id = 2 ("a"): tags 0x0a and 0x12.
        let request = RegenerateOidcClientSecretRequest { project_id: "p".into(), app_id: "a".into() };
        assert_eq!(request.encode_to_vec(), b"\x0a\x01p\x12\x01a");
        let detail = ErrorDetail { id: "X".into(), message: "y".into() };
        assert_eq!(detail.encode_to_vec(), b"\x0a\x01X\x12\x01y");
    }

    #[test]
    fn status_carries_the_error_detail() {
        let status = status(&Error::AppNotFound);
        assert_eq!((status.code, status.message.as_str()), (5, "Application doesn't exist (COMMAND-2g66f)"));
        assert_eq!(status.details[0].type_url, "type.googleapis.com/zitadel.v1.ErrorDetail");
        let detail = ErrorDetail::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!((detail.id.as_str(), detail.message.as_str()), ("COMMAND-2g66f", "Application doesn't exist"));
        assert!(super::status(&Error::RouteNotFound).details.is_empty());
    }
}
