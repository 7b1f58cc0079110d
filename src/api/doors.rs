//! ZITADEL's methods that give an app a new client secret (SPEC section 12), one small
//! declaration each over the one shared flow of [`super`]: the method under its gRPC
//! service, its REST route if it has one, the messages it speaks, which app types it
//! serves, and where the app's org comes from. A new door is a row here.

use serde::Serialize;

use super::proto;
use crate::app::{AppKind, format_timestamp};
use crate::error::Error;
use crate::regenerate::Outcome;

/// Where a door finds the org that owns the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgFrom {
    /// `x-zitadel-orgid`, else the caller's own org (v1).
    Header,
    /// The project lookup (SPEC section 5): the v2 calls name no org.
    ProjectLookup,
}

/// The messages a door speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `{project_id = 1, app_id = 2}` -> `{client_secret = 1, details = 2}` (ObjectDetails).
    V1,
    /// `{project_id = 1, application_id = 2, oneof is_oidc = 3 | is_api = 4}` ->
    /// `{client_secret = 1, creation_date = 2}`: the message names the app's type.
    V2Beta,
    /// `{application_id = 1, project_id = 2}` -> `{client_secret = 1, creation_date = 2}`.
    V2,
}

/// A door's REST mapping, as grpc-gateway serves it.
pub struct Rest {
    /// The route, segment by segment; `{projectId}`, `{appId}` and `{applicationId}` mark
    /// the ids it carries.
    pub segments: &'static [&'static str],
    /// The same route as a REST API resource.
    pub resource: &'static str,
    /// Whether the body is the request message (grpc-gateway's `body: "*"`; the path's ids
    /// win), or ignored.
    pub body_is_message: bool,
}

pub struct Door {
    /// The gRPC service's path prefix, `/package.Service/`.
    pub service: &'static str,
    pub method: &'static str,
    /// The REST route; none for the v2 service.
    pub rest: Option<Rest>,
    pub wire: Wire,
    /// The app types it serves (v2beta: narrowed by the message).
    pub apps: AppKind,
    pub org: OrgFrom,
}

const MANAGEMENT: &str = "/zitadel.management.v1.ManagementService/";
const APP_V2BETA: &str = "/zitadel.app.v2beta.AppService/";
const APPLICATION_V2: &str = "/zitadel.application.v2.ApplicationService/";

/// v1 `RegenerateOIDCClientSecret` (SPEC section 2).
pub const V1_OIDC: Door = Door {
    service: MANAGEMENT,
    method: "RegenerateOIDCClientSecret",
    rest: Some(Rest {
        segments: &[
            "management",
            "v1",
            "projects",
            "{projectId}",
            "apps",
            "{appId}",
            "oidc_config",
            "_generate_client_secret",
        ],
        resource: "/management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret",
        body_is_message: false,
    }),
    wire: Wire::V1,
    apps: AppKind::Oidc,
    org: OrgFrom::Header,
};

/// v1 `RegenerateAPIClientSecret`: the same messages, for API apps.
pub const V1_API: Door = Door {
    service: MANAGEMENT,
    method: "RegenerateAPIClientSecret",
    rest: Some(Rest {
        segments: &[
            "management",
            "v1",
            "projects",
            "{projectId}",
            "apps",
            "{appId}",
            "api_config",
            "_generate_client_secret",
        ],
        resource: "/management/v1/projects/{projectId}/apps/{appId}/api_config/_generate_client_secret",
        body_is_message: false,
    }),
    wire: Wire::V1,
    apps: AppKind::Api,
    org: OrgFrom::Header,
};

/// v2beta `AppService/RegenerateClientSecret`: the message says OIDC or API, the org comes
/// from the project, the v1 ids otherwise; REST with the project id and the type in the body.
pub const V2BETA: Door = Door {
    service: APP_V2BETA,
    method: "RegenerateClientSecret",
    rest: Some(Rest {
        segments: &["v2beta", "applications", "{applicationId}", "generate_client_secret"],
        resource: "/v2beta/applications/{applicationId}/generate_client_secret",
        body_is_message: true,
    }),
    wire: Wire::V2Beta,
    apps: AppKind::WithSecret,
    org: OrgFrom::ProjectLookup,
};

/// v2 `ApplicationService/GenerateClientSecret`: OIDC and API apps, the org from the
/// project, ZITADEL's v2 error ids; no REST mapping (Connect JSON is its plain-HTTP form).
pub const V2: Door = Door {
    service: APPLICATION_V2,
    method: "GenerateClientSecret",
    rest: None,
    wire: Wire::V2,
    apps: AppKind::WithSecret,
    org: OrgFrom::ProjectLookup,
};

pub const DOORS: [&Door; 4] = [&V1_OIDC, &V1_API, &V2BETA, &V2];

/// Whether a path is under one of the doors' gRPC services.
pub fn is_grpc_path(path: &str) -> bool {
    DOORS.iter().any(|door| path.starts_with(door.service))
}

/// The door of a gRPC path, `/package.Service/Method`.
pub fn by_grpc_path(path: &str) -> Option<&'static Door> {
    DOORS.into_iter().find(|door| path.strip_prefix(door.service) == Some(door.method))
}

impl Door {
    /// An error of the shared flow as this door answers it. The v2 door has ids of its
    /// own. The v2beta and v2 doors name no org: a caller without permission there would
    /// learn that the project exists in some org, so that is "doesn't exist" too (the log
    /// says which).
    pub fn error(&self, error: Error) -> Error {
        match (self.wire, error) {
            (Wire::V2, Error::IdMissing) => Error::IdMissingV2,
            (Wire::V2, Error::AppNotFound | Error::PermissionDenied) => Error::AppNotFoundV2,
            (Wire::V2Beta, Error::PermissionDenied) => Error::AppNotFound,
            (_, error) => error,
        }
    }

    /// The app types this request may change: the door's, or the one its message named.
    pub fn kind(&self, decoded: &Decoded) -> AppKind {
        decoded.kind.unwrap_or(self.apps)
    }
}

/// The project and app ids a request message carries, as spelled, and the app type it
/// names (v2beta only).
#[derive(Debug, Default)]
pub struct Decoded {
    pub project: String,
    pub app: String,
    pub kind: Option<AppKind>,
}

impl Wire {
    /// The app id's field name in these messages' JSON form, for error messages.
    pub fn app_field(self) -> &'static str {
        match self {
            Wire::V1 => "appId",
            Wire::V2Beta | Wire::V2 => "applicationId",
        }
    }

    /// The request message, in protobuf.
    pub fn decode_proto(self, bytes: &[u8]) -> Result<Decoded, Error> {
        use prost::Message;
        let invalid = |_| Error::invalid("invalid body: not a valid protobuf message");
        Ok(match self {
            Wire::V1 => {
                let m = proto::RegenerateOidcClientSecretRequest::decode(bytes).map_err(invalid)?;
                Decoded { project: m.project_id, app: m.app_id, kind: None }
            }
            Wire::V2Beta => {
                let m = proto::RegenerateClientSecretRequest::decode(bytes).map_err(invalid)?;
                let kind = match m.app_type {
                    Some(proto::AppType::IsOidc(true)) => Some(AppKind::Oidc),
                    Some(proto::AppType::IsApi(true)) => Some(AppKind::Api),
                    _ => None,
                };
                Decoded { project: m.project_id, app: m.application_id, kind: Some(kind.ok_or(Error::UnknownAppType)?) }
            }
            Wire::V2 => {
                let m = proto::GenerateClientSecretRequest::decode(bytes).map_err(invalid)?;
                Decoded { project: m.project_id, app: m.application_id, kind: None }
            }
        })
    }

    /// The request message in the protobuf JSON mapping: a JSON object, each field by its
    /// JSON name or its proto name; other fields are ignored; empty is the empty message.
    /// v2beta's type is `isOidc` or `isApi` set to true, exactly one of them.
    pub fn decode_json(self, body: &[u8]) -> Result<Decoded, Error> {
        let (app_json, app_proto) = match self {
            Wire::V1 => ("appId", "app_id"),
            Wire::V2Beta | Wire::V2 => ("applicationId", "application_id"),
        };
        let invalid =
            || Error::invalid(format!("invalid body: must be a JSON object with string projectId and {app_json}"));
        let object: serde_json::Map<String, serde_json::Value> = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Map::new()
        } else {
            serde_json::from_slice(body).map_err(|_| invalid())?
        };
        let get = |json: &str, proto: &str| object.get(json).or_else(|| object.get(proto));
        let text = |json: &str, proto: &str| match get(json, proto) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(invalid()),
        };
        let set = |json: &str, proto: &str| match get(json, proto) {
            None | Some(serde_json::Value::Null) => Ok(false),
            Some(serde_json::Value::Bool(set)) => Ok(*set),
            Some(_) => Err(Error::invalid(format!("invalid body: {json} must be a boolean"))),
        };
        let kind = match self {
            Wire::V2Beta => Some(match (set("isOidc", "is_oidc")?, set("isApi", "is_api")?) {
                (true, false) => AppKind::Oidc,
                (false, true) => AppKind::Api,
                _ => return Err(Error::UnknownAppType),
            }),
            Wire::V1 | Wire::V2 => None,
        };
        Ok(Decoded { project: text("projectId", "project_id")?, app: text(app_json, app_proto)?, kind })
    }

    /// The response message of a success, in protobuf.
    pub fn encode_proto(self, outcome: &Outcome) -> Vec<u8> {
        use prost::Message;
        match self {
            Wire::V1 => proto::response(outcome).encode_to_vec(),
            Wire::V2Beta | Wire::V2 => proto::v2_response(outcome).encode_to_vec(),
        }
    }

    /// The response of a success in the protobuf JSON mapping.
    pub fn encode_json(self, outcome: &Outcome) -> serde_json::Value {
        match self {
            Wire::V1 => serde_json::to_value(super::rest::SecretResponse::of(outcome)),
            Wire::V2Beta | Wire::V2 => serde_json::to_value(V2Response {
                client_secret: outcome.secret.expose(),
                creation_date: format_timestamp(outcome.change_date),
            }),
        }
        .unwrap_or_default()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Response<'a> {
    client_secret: &'a str,
    creation_date: String,
}
