//! The regenerate doors the soak drives, one row each (SPEC section 12), the transports
//! they are reached by, and how a client reads each answer. A new door is a row of
//! [`DOORS`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oidc_client_secret::api::proto;
use prost::Message;
use serde_json::{Value, json};

use super::history::Outcome;
use crate::support::{self, Call, ORG_CLAIM};

/// The app a call names.
#[derive(Debug, Clone)]
pub struct Target {
    pub org: String,
    pub project: String,
    pub app: String,
    /// OIDC or API: what the v2beta request says the app is.
    pub app_type: &'static str,
}

/// A door's REST route and JSON body for a target.
pub type RestRoute = fn(&Target) -> (String, Option<Value>);

pub struct Door {
    pub name: &'static str,
    /// `/package.Service/Method`, for gRPC-web and Connect.
    pub grpc: &'static str,
    /// The REST route and JSON body, where the door has one.
    pub rest: Option<RestRoute>,
    /// The request message: protobuf, and its JSON mapping.
    pub message: fn(&Target) -> (Vec<u8>, Value),
    /// The app types the door serves.
    pub apps: &'static [&'static str],
    /// The answer carries `details.sequence` (v1), else `creationDate` (v2beta, v2).
    pub v1: bool,
    /// The door acts in the org of `x-zitadel-orgid` (v1), else the project's.
    pub org_header: bool,
}

fn v1_message(t: &Target) -> (Vec<u8>, Value) {
    let message = proto::RegenerateOidcClientSecretRequest { project_id: t.project.clone(), app_id: t.app.clone() };
    (message.encode_to_vec(), json!({"projectId": t.project, "appId": t.app}))
}

fn v1_rest(config: &'static str) -> impl Fn(&Target) -> (String, Option<Value>) {
    move |t| {
        let oidc = support::route(&t.project, &t.app);
        (oidc.replace("/oidc_config/", &format!("/{config}/")), None)
    }
}

pub const DOORS: &[Door] = &[
    Door {
        name: "v1-oidc",
        grpc: "/zitadel.management.v1.ManagementService/RegenerateOIDCClientSecret",
        rest: Some(|t| v1_rest("oidc_config")(t)),
        message: v1_message,
        apps: &["OIDC"],
        v1: true,
        org_header: true,
    },
    Door {
        name: "v1-api",
        grpc: "/zitadel.management.v1.ManagementService/RegenerateAPIClientSecret",
        rest: Some(|t| v1_rest("api_config")(t)),
        message: v1_message,
        apps: &["API"],
        v1: true,
        org_header: true,
    },
    Door {
        name: "v2beta",
        grpc: "/zitadel.app.v2beta.AppService/RegenerateClientSecret",
        rest: Some(|t| {
            let path = format!("/v2beta/applications/{}/generate_client_secret", t.app);
            let mut body = json!({"projectId": t.project});
            body[if t.app_type == "API" { "isApi" } else { "isOidc" }] = json!(true);
            (path, Some(body))
        }),
        message: |t| {
            let app_type = if t.app_type == "API" { proto::AppType::IsApi(true) } else { proto::AppType::IsOidc(true) };
            let message = proto::RegenerateClientSecretRequest {
                project_id: t.project.clone(),
                application_id: t.app.clone(),
                app_type: Some(app_type),
            };
            let mut json = json!({"projectId": t.project, "applicationId": t.app});
            json[if t.app_type == "API" { "isApi" } else { "isOidc" }] = json!(true);
            (message.encode_to_vec(), json)
        },
        apps: &["OIDC", "API"],
        v1: false,
        org_header: false,
    },
    Door {
        name: "v2",
        grpc: "/zitadel.application.v2.ApplicationService/GenerateClientSecret",
        rest: None,
        message: |t| {
            let message =
                proto::GenerateClientSecretRequest { application_id: t.app.clone(), project_id: t.project.clone() };
            (message.encode_to_vec(), json!({"applicationId": t.app, "projectId": t.project}))
        },
        apps: &["OIDC", "API"],
        v1: false,
        org_header: false,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Rest,
    GrpcWeb,
    GrpcWebText,
    ConnectJson,
    ConnectProto,
}

impl Transport {
    pub const ALL: [Transport; 5] =
        [Transport::Rest, Transport::GrpcWeb, Transport::GrpcWebText, Transport::ConnectJson, Transport::ConnectProto];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::GrpcWeb => "grpc-web",
            Transport::GrpcWebText => "grpc-web-text",
            Transport::ConnectJson => "connect-json",
            Transport::ConnectProto => "connect-proto",
        }
    }
}

/// How API Gateway handed the request over, and who the authorizer said the caller is.
#[derive(Debug, Clone, Copy)]
pub enum Envelope {
    HttpJwt,
    HttpLambdaAuthorizer,
    RestClaims,
    /// No authorizer: no identity.
    Anonymous,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The Lambda event of one call of `door` over `transport`.
pub fn event(
    door: &Door,
    transport: Transport,
    target: &Target,
    envelope: Envelope,
    caller: (&str, &str),
    org_header: Option<&str>,
) -> Vec<u8> {
    let (proto, json) = (door.message)(target);
    let (path, content_type, body, base64) = match transport {
        Transport::Rest => {
            let (path, body) = (door.rest.expect("a REST door"))(target);
            (path, "application/json", body.map(|b| b.to_string()), false)
        }
        Transport::GrpcWeb => {
            (door.grpc.into(), "application/grpc-web+proto", Some(STANDARD.encode(frame(&proto))), true)
        }
        Transport::GrpcWebText => {
            (door.grpc.into(), "application/grpc-web-text", Some(STANDARD.encode(frame(&proto))), false)
        }
        Transport::ConnectJson => (door.grpc.into(), "application/json", Some(json.to_string()), false),
        Transport::ConnectProto => (door.grpc.into(), "application/proto", Some(STANDARD.encode(&proto)), true),
    };
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    if matches!(transport, Transport::ConnectJson | Transport::ConnectProto) {
        headers.push(("connect-protocol-version".into(), "1".into()));
    }
    if matches!(transport, Transport::GrpcWeb | Transport::GrpcWebText) {
        headers.push(("x-grpc-web".into(), "1".into()));
    }
    if let Some(org) = org_header {
        headers.push(("x-zitadel-orgid".into(), org.into()));
    }
    let call = Call { method: "POST".into(), path, path_parameters: None, headers, body, base64 };
    let (user, org) = caller;
    let event = match envelope {
        Envelope::HttpJwt => support::http_v2_event_with(
            &call,
            Some(json!({"jwt": {"claims": support::claims(user, org), "scopes": null}})),
        ),
        Envelope::HttpLambdaAuthorizer => {
            support::http_v2_event_with(&call, Some(json!({"lambda": {"sub": user, ORG_CLAIM: org}})))
        }
        Envelope::RestClaims => support::rest_v1_event(&call, json!({"claims": support::claims(user, org)})),
        Envelope::Anonymous => support::http_v2_event_with(&call, None),
    };
    serde_json::to_vec(&event).unwrap()
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"][name].as_str().or_else(|| response["multiValueHeaders"][name][0].as_str())
}

/// The id at the end of an error message, `text (id)`.
fn id_of(message: &str) -> String {
    message.rsplit_once(" (").map_or("", |(_, id)| id.trim_end_matches(')')).to_owned()
}

fn connect_code(name: &str) -> u32 {
    let names = [
        "ok",
        "canceled",
        "unknown",
        "invalid_argument",
        "deadline_exceeded",
        "not_found",
        "already_exists",
        "permission_denied",
        "resource_exhausted",
        "failed_precondition",
        "aborted",
        "out_of_range",
        "unimplemented",
        "internal",
        "unavailable",
        "data_loss",
        "unauthenticated",
    ];
    names.iter().position(|n| *n == name).map_or(2, |p| p as u32)
}

fn body_bytes(response: &Value) -> Result<Vec<u8>, String> {
    let body = response["body"].as_str().unwrap_or_default();
    if response["isBase64Encoded"].as_bool() == Some(true) {
        STANDARD.decode(body).map_err(|e| format!("body flagged base64: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn secret_message(bytes: &[u8], v1: bool) -> Result<Outcome, String> {
    if v1 {
        let m = proto::RegenerateOidcClientSecretResponse::decode(bytes).map_err(|e| e.to_string())?;
        let sequence = m.details.map(|d| d.sequence);
        Ok(Outcome::Secret { secret: m.client_secret, sequence })
    } else {
        let m = proto::ClientSecretResponse::decode(bytes).map_err(|e| e.to_string())?;
        Ok(Outcome::Secret { secret: m.client_secret, sequence: None })
    }
}

/// The HTTP status a Connect error travels with (connectrpc.com/docs/protocol, "Error
/// Codes"), by gRPC code.
pub fn connect_status(code: u32) -> u64 {
    match code {
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// The HTTP status an error of `code` must travel with over `transport`: grpc-gateway's
/// (SPEC section 2) for REST, Connect's for Connect.
fn expected_status(transport: Transport, code: u32) -> Option<u64> {
    match transport {
        Transport::Rest => super::history::http_class(code).parse().ok(),
        Transport::ConnectJson | Transport::ConnectProto => Some(connect_status(code)),
        Transport::GrpcWeb | Transport::GrpcWebText => None,
    }
}

fn json_answer(status: u64, body: &[u8], v1: bool, transport: Transport) -> Result<Outcome, String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if status == 200 {
        let secret = json["clientSecret"].as_str().ok_or("no clientSecret")?.to_owned();
        let sequence = if v1 {
            Some(json["details"]["sequence"].as_str().and_then(|s| s.parse().ok()).ok_or("no details.sequence")?)
        } else {
            None
        };
        return Ok(Outcome::Secret { secret, sequence });
    }
    let code = match &json["code"] {
        Value::Number(n) => n.as_u64().unwrap_or(2) as u32,
        Value::String(name) => connect_code(name),
        _ => return Err(format!("error without a code: {json}")),
    };
    let id = json["details"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| id_of(json["message"].as_str().unwrap_or("")));
    if let Some(expected) = expected_status(transport, code)
        && status != expected
    {
        return Err(format!("code {code} ({id}) with HTTP status {status}, not {expected}"));
    }
    Ok(Outcome::Failed { code, id })
}

fn grpc_status(lines: &str) -> Option<Outcome> {
    let field = |name: &str| lines.split("\r\n").find_map(|l| l.strip_prefix(name)?.strip_prefix(": "));
    let code: u32 = field("grpc-status")?.parse().ok()?;
    let message =
        percent_encoding::percent_decode_str(field("grpc-message").unwrap_or("")).decode_utf8_lossy().into_owned();
    Some(Outcome::Failed { code, id: id_of(&message) })
}

/// What the client of `transport` reads in the function's answer.
pub fn read(response: &Value, transport: Transport, v1: bool) -> Outcome {
    let status = response["statusCode"].as_u64().unwrap_or(0);
    let result = match transport {
        Transport::Rest | Transport::ConnectJson => {
            body_bytes(response).and_then(|b| json_answer(status, &b, v1, transport))
        }
        Transport::ConnectProto if status == 200 => body_bytes(response).and_then(|b| secret_message(&b, v1)),
        Transport::ConnectProto => body_bytes(response).and_then(|b| json_answer(status, &b, v1, transport)),
        Transport::GrpcWeb | Transport::GrpcWebText => (|| {
            if let Some(code) = header(response, "grpc-status") {
                let message = header(response, "grpc-message").unwrap_or("");
                return grpc_status(&format!("grpc-status: {code}\r\ngrpc-message: {message}\r\n"))
                    .ok_or("bad grpc-status".into());
            }
            let mut bytes = body_bytes(response)?;
            if transport == Transport::GrpcWebText {
                bytes = STANDARD.decode(&bytes).map_err(|e| format!("grpc-web-text body: {e}"))?;
            }
            let (mut message, mut trailers, mut rest) = (None, None, bytes.as_slice());
            while rest.len() >= 5 {
                let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
                let payload = rest.get(5..5 + length).ok_or("a short frame")?;
                if rest[0] & 0x80 != 0 {
                    trailers = Some(String::from_utf8_lossy(payload).into_owned());
                } else {
                    message = Some(payload.to_vec());
                }
                rest = &rest[5 + length..];
            }
            match grpc_status(trailers.as_deref().ok_or("no trailers")?) {
                Some(Outcome::Failed { code: 0, .. }) => secret_message(&message.ok_or("status 0 and no message")?, v1),
                Some(failed) => Ok(failed),
                None => Err("trailers without grpc-status".into()),
            }
        })(),
    };
    result.unwrap_or_else(|why| Outcome::Unreadable(format!("HTTP {status}: {why}")))
}

/// The oauth function's paths (SPEC section 13).
pub const TOKEN_PATH: &str = "/oauth/v2/token";
pub const INTROSPECT_PATH: &str = "/oauth/v2/introspect";
pub const KEYS_PATH: &str = "/oauth/v2/keys";

/// An HTTP API payload 2.0 event for an oauth route (no authorizer); a form body arrives
/// base64-encoded, as API Gateway sends a body that is not text. Its body as the event
/// carries it too, for the log scan.
pub fn oauth_event(method: &str, path: &str, authorization: Option<&str>, form: Option<&str>) -> (Vec<u8>, String) {
    let mut headers = Vec::new();
    if let Some(authorization) = authorization {
        headers.push(("authorization".to_owned(), authorization.to_owned()));
    }
    if form.is_some() {
        headers.push(("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()));
    }
    let body = form.map(|f| STANDARD.encode(f));
    let base64 = body.is_some();
    let call = Call { method: method.into(), path: path.into(), path_parameters: None, headers, body, base64 };
    let mut event = support::http_v2_event_with(&call, None);
    event["routeKey"] = json!(format!("{method} {path}"));
    event["requestContext"]["routeKey"] = event["routeKey"].clone();
    (serde_json::to_vec(&event).unwrap(), call.body.unwrap_or_default())
}

/// The HTTP status of each RFC 6749 error the oauth function answers (SPEC section 13).
fn oauth_status(error: &str) -> Option<u64> {
    match error {
        "invalid_request" | "unsupported_grant_type" | "invalid_scope" | "unauthorized_client" | "invalid_grant" => {
            Some(400)
        }
        "invalid_client" => Some(401),
        "server_error" => Some(500),
        "temporarily_unavailable" => Some(503),
        _ => None,
    }
}

/// What an OAuth client reads in a token or introspection answer: a token, `active`, or
/// an RFC 6749 error whose status is its own (a 401 with its `WWW-Authenticate`), each
/// with `Cache-Control: no-store`; anything else is unreadable.
pub fn read_oauth(response: &Value, introspect: bool) -> Outcome {
    let status = response["statusCode"].as_u64().unwrap_or(0);
    let result = (|| {
        let body: Value = serde_json::from_slice(&body_bytes(response)?).map_err(|e| format!("not JSON: {e}"))?;
        if header(response, "cache-control") != Some("no-store") {
            return Err(format!("an answer without Cache-Control: no-store: {body}"));
        }
        match (status, introspect) {
            (200, false) => {
                let token = body["access_token"].as_str().ok_or("200 without an access_token")?;
                if body["token_type"] != "Bearer" {
                    return Err(format!("token_type {}", body["token_type"]));
                }
                Ok(Outcome::Token { token: token.to_owned() })
            }
            (200, true) => Ok(Outcome::Introspected { active: body["active"].as_bool().ok_or("200 without active")? }),
            _ => {
                let error = body["error"].as_str().ok_or_else(|| format!("an error without error: {body}"))?;
                if oauth_status(error) != Some(status) {
                    return Err(format!("error {error} with HTTP status {status}"));
                }
                if status == 401 && header(response, "www-authenticate") != Some("Basic realm=\"oauth\"") {
                    return Err("a 401 without WWW-Authenticate: Basic realm=\"oauth\"".into());
                }
                Ok(Outcome::OAuthError { status: status as u16, error: error.to_owned() })
            }
        }
    })();
    result.unwrap_or_else(|why: String| Outcome::Unreadable(format!("HTTP {status}: {why}")))
}
