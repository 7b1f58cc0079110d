//! The REST transport, ZITADEL's grpc-gateway face: the route
//! `POST /management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret`,
//! an empty or JSON-object body, and JSON out: the response or the error envelope, with
//! grpc-gateway's HTTP status for the code.

use std::collections::BTreeMap;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::de::IgnoredAny;

use super::MAX_BODY_BYTES;
use super::doors::{DOORS, Decoded, Door, Wire};
use crate::app::format_timestamp;
use crate::error::Error;
use crate::regenerate::Outcome;

/// The ids a REST route carried, by name: as API Gateway's `pathParameters` gave them
/// (decoded), or as the raw path spelled them (percent-encoded until [`ids`] decodes them,
/// after the identity: a bad encoding is an input error, checked in the input's turn).
pub(super) struct RouteIds {
    ids: Vec<(&'static str, String)>,
    encoded: bool,
}

/// The door and the ids its route carries, from `pathParameters` or else from the raw path
/// (function URLs, ALB, `$default` and `{proxy+}` routes). The route is checked either way:
/// the raw path, or a REST API's resource, must be a door's, so no other route that happens
/// to name the same parameters reaches the use case.
pub(super) fn route(request: &Request, path: &str) -> Result<(&'static Door, RouteIds), Error> {
    let resource = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.resource_path.as_deref(),
        _ => None,
    };
    let matched = DOORS.into_iter().find_map(|door| {
        let rest = door.rest.as_ref()?;
        match match_path(rest.segments, path) {
            Some(ids) => Some((door, rest, Some(ids))),
            None if resource == Some(rest.resource) => Some((door, rest, None)),
            None => None,
        }
    });
    let Some((door, rest, from_path)) = matched else { return Err(Error::RouteNotFound) };
    let from_parameters = request.path_parameters_ref().and_then(|params| {
        let names = rest.segments.iter().filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
        names.map(|name| Some((name, params.first(name)?.to_owned()))).collect::<Option<Vec<_>>>()
    });
    let ids = match (from_parameters, from_path) {
        (Some(ids), _) => RouteIds { ids, encoded: false },
        (None, Some(ids)) => RouteIds { ids, encoded: true },
        (None, None) => return Err(Error::RouteNotFound),
    };
    if request.method() != Method::POST {
        return Err(Error::MethodNotAllowed);
    }
    Ok((door, ids))
}

/// The request's ids: the route's, and for a door whose body is the message, the body's
/// fields beneath them (the path wins, as in grpc-gateway).
pub(super) fn ids(door: &Door, route: RouteIds, body: &Body) -> Result<Decoded, Error> {
    let mut decoded = Decoded::default();
    for (name, value) in route.ids {
        let value = if route.encoded { percent_decoded(name, &value)? } else { value };
        match name {
            "projectId" => decoded.project = value,
            _ => decoded.app = value,
        }
    }
    if !door.rest.as_ref().is_some_and(|rest| rest.body_is_message) {
        return Ok(decoded);
    }
    check_body(body)?;
    let message = door.wire.decode_json(body.as_ref())?;
    Ok(Decoded { app: decoded.app, ..message })
}

fn percent_decoded(name: &str, segment: &str) -> Result<String, Error> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid(format!("invalid {name}: not UTF-8 once percent-decoded")))
}

/// `None` when the path is not this route; else its ids by name, as the path spells them.
fn match_path(route: &[&'static str], path: &str) -> Option<Vec<(&'static str, String)>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.len() != route.len() {
        return None;
    }
    let mut ids = Vec::with_capacity(2);
    for (segment, expected) in segments.iter().zip(route) {
        if let Some(name) = expected.strip_prefix('{').and_then(|e| e.strip_suffix('}')) {
            ids.push((name, (*segment).to_owned()));
        } else if segment != expected {
            return None;
        }
    }
    Some(ids)
}

/// Empty, or a JSON object of at most 16 KiB whose fields are ignored (the path wins).
pub(super) fn check_body(body: &Body) -> Result<(), Error> {
    let bytes: &[u8] = body.as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::invalid(format!("invalid body: must be at most {MAX_BODY_BYTES} bytes")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(bytes)
        .map(drop)
        .map_err(|_| Error::invalid("invalid body: must be empty or a JSON object"))
}

/// A response with the headers every answer carries: it may hold a secret, so nothing
/// may cache it.
pub(super) fn answer(status: u16, body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// JSON with the common headers.
pub(super) fn respond(status: u16, body: &impl Serialize) -> Response<Body> {
    let json = serde_json::to_string(body)
        .unwrap_or_else(|_| r#"{"code":13,"message":"Internal error (INTERNAL)","details":[]}"#.into());
    answer(status, Body::Text(json), "application/json")
}

/// ZITADEL's `RegenerateOIDCClientSecretResponse`, fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SecretResponse<'a> {
    client_secret: &'a str,
    details: ObjectDetails<'a>,
}

/// `zitadel.v1.ObjectDetails`; the uint64 sequence is a string, as protobuf JSON has it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectDetails<'a> {
    sequence: String,
    creation_date: String,
    change_date: String,
    resource_owner: &'a str,
}

impl<'a> SecretResponse<'a> {
    pub(super) fn of(outcome: &'a Outcome) -> Self {
        SecretResponse {
            client_secret: outcome.secret.expose(),
            details: ObjectDetails {
                sequence: outcome.sequence.to_string(),
                creation_date: format_timestamp(outcome.creation_date),
                change_date: format_timestamp(outcome.change_date),
                resource_owner: outcome.resource_owner.as_str(),
            },
        }
    }
}

/// The plaintext secret, once, and the change's details.
pub fn success(outcome: &Outcome) -> Response<Body> {
    respond(200, &SecretResponse::of(outcome))
}

pub fn failure(error: &Error) -> Response<Body> {
    let mut response = respond(error.http_status(), &error.envelope());
    if matches!(error, Error::Unauthenticated) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The REST answer to a result, in the door's messages.
pub(super) fn encode(result: &Result<Outcome, Error>, wire: Wire) -> Response<Body> {
    match result {
        Ok(outcome) if wire == Wire::V1 => success(outcome),
        Ok(outcome) => respond(200, &wire.encode_json(outcome)),
        Err(error) => failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::super::doors::{V1_OIDC, V2BETA};
    use super::*;

    fn path_ids(route: &[&'static str], path: &str) -> Option<Result<Vec<String>, Error>> {
        let ids = match_path(route, path)?;
        Some(ids.into_iter().map(|(name, value)| percent_decoded(name, &value)).collect())
    }

    fn route_ids(app: &str) -> RouteIds {
        RouteIds { ids: vec![("applicationId", app.to_owned())], encoded: false }
    }

    #[test]
    fn raw_path_matches_and_decodes() {
        let route = V1_OIDC.rest.as_ref().unwrap().segments;
        let found = path_ids(route, "/management/v1/projects/p%2Dx/apps/a%40b/oidc_config/_generate_client_secret");
        assert_eq!(found.unwrap().unwrap(), ["p-x", "a@b"]);
        assert!(path_ids(route, "/management/v1/projects/p/apps/a/oidc_config").is_none());
        assert!(path_ids(route, "/management/v1/projects/p/apps/a/oidc_config/_generate_client_secret/x").is_none());
        assert!(path_ids(route, "/management/v2/projects/p/apps/a/oidc_config/_generate_client_secret").is_none());
        let bad = path_ids(route, "/management/v1/projects/%FF/apps/a/oidc_config/_generate_client_secret");
        assert!(bad.unwrap().is_err());
        let found = path_ids(route, "/management/v1/projects//apps/a/oidc_config/_generate_client_secret");
        assert_eq!(found.unwrap().unwrap(), ["", "a"]);
        let v2beta = V2BETA.rest.as_ref().unwrap().segments;
        let found = match_path(v2beta, "/v2beta/applications/a%2D1/generate_client_secret").unwrap();
        assert_eq!(found, [("applicationId", "a%2D1".to_owned())], "decoded later, by ids()");
        let encoded = RouteIds { ids: found, encoded: true };
        let body = Body::Text(r#"{"projectId":"p","isOidc":true}"#.into());
        assert_eq!(ids(&V2BETA, encoded, &body).unwrap().app, "a-1");
    }

    #[test]
    fn the_v2beta_body_is_the_message_under_the_paths_id() {
        let body = Body::Text(r#"{"projectId":"p","applicationId":"from-body","isApi":true}"#.into());
        let decoded = ids(&V2BETA, route_ids("from-path"), &body).unwrap();
        assert_eq!((decoded.project.as_str(), decoded.app.as_str()), ("p", "from-path"));
        assert_eq!(decoded.kind, Some(crate::app::AppKind::Api));
        for neither in ["", "{}", r#"{"projectId":"p"}"#, r#"{"isOidc":true,"isApi":true}"#, r#"{"isOidc":false}"#] {
            let error = ids(&V2BETA, route_ids("a"), &Body::Text(neither.into())).unwrap_err();
            assert_eq!(error, Error::UnknownAppType, "{neither}");
        }
        for bad in ["[]", r#"{"isOidc":"yes"}"#, r#"{"projectId":1,"isOidc":true}"#] {
            let error = ids(&V2BETA, route_ids("a"), &Body::Text(bad.into())).unwrap_err();
            assert_eq!(error.grpc_code(), 3, "{bad}");
            assert_ne!(error, Error::UnknownAppType, "{bad}");
        }
        let route = RouteIds { ids: vec![("projectId", "p".into()), ("appId", "a".into())], encoded: false };
        let v1 = ids(&V1_OIDC, route, &body).unwrap();
        assert_eq!((v1.project.as_str(), v1.app.as_str(), v1.kind), ("p", "a", None), "v1 ignores its body");
    }

    #[test]
    fn body_is_empty_or_an_object() {
        assert!(check_body(&Body::Empty).is_ok());
        assert!(check_body(&Body::Text(" \n".into())).is_ok());
        assert!(check_body(&Body::Text(r#"{"projectId":"ignored","x":[1,{}]}"#.into())).is_ok());
        for bad in ["[]", "1", "\"s\"", "{", "null"] {
            assert!(check_body(&Body::Text(bad.into())).is_err(), "{bad}");
        }
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES));
        assert!(check_body(&Body::Text(big)).is_err());
    }
}
