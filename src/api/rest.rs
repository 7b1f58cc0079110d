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
use super::doors::{DOORS, Door};
use crate::app::format_timestamp;
use crate::error::Error;
use crate::regenerate::Outcome;

/// The door and the raw project and app ids, from `pathParameters` or else from the raw
/// path (function URLs, ALB, `$default` and `{proxy+}` routes), percent-decoded. The route
/// is checked either way: the raw path, or a REST API's resource, must be a door's, so no
/// other route that happens to name `projectId` and `appId` reaches the use case.
pub(super) fn route(request: &Request, path: &str) -> Result<(&'static Door, (String, String)), Error> {
    let resource = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.resource_path.as_deref(),
        _ => None,
    };
    let matched = DOORS.into_iter().find_map(|door| {
        let (route, door_resource) = door.rest.as_ref()?;
        match match_path(route, path) {
            Some(ids) => Some((door, Some(ids))),
            None if resource == Some(*door_resource) => Some((door, None)),
            None => None,
        }
    });
    let Some((door, from_path)) = matched else { return Err(Error::RouteNotFound) };
    let from_parameters = request
        .path_parameters_ref()
        .and_then(|params| Some((params.first("projectId")?.to_owned(), params.first("appId")?.to_owned())));
    let ids = match (from_parameters, from_path) {
        (Some(ids), _) => ids,
        (None, Some(ids)) => ids?,
        (None, None) => return Err(Error::RouteNotFound),
    };
    if request.method() != Method::POST {
        return Err(Error::MethodNotAllowed);
    }
    Ok((door, ids))
}

/// `None` when the path is not this route; an error when a segment is not UTF-8.
fn match_path(route: &[&str], path: &str) -> Option<Result<(String, String), Error>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.len() != route.len() {
        return None;
    }
    let mut ids = Vec::with_capacity(2);
    for (segment, expected) in segments.iter().zip(route) {
        if *expected == "{}" {
            ids.push(*segment);
        } else if segment != expected {
            return None;
        }
    }
    let decode = |segment: &str, field: &str| {
        percent_decode_str(segment)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| Error::invalid(format!("invalid {field}: not UTF-8 once percent-decoded")))
    };
    Some(decode(ids[0], "projectId").and_then(|p| Ok((p, decode(ids[1], "appId")?))))
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

/// The REST answer to a result.
pub(super) fn encode(result: &Result<Outcome, Error>) -> Response<Body> {
    match result {
        Ok(outcome) => success(outcome),
        Err(error) => failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::super::doors::V1_OIDC;
    use super::*;

    #[test]
    fn raw_path_matches_and_decodes() {
        let (p, a) = match_path(
            &V1_OIDC.rest.unwrap().0,
            "/management/v1/projects/p%2Dx/apps/a%40b/oidc_config/_generate_client_secret",
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.as_str(), a.as_str()), ("p-x", "a@b"));
        assert!(match_path(&V1_OIDC.rest.unwrap().0, "/management/v1/projects/p/apps/a/oidc_config").is_none());
        assert!(
            match_path(
                &V1_OIDC.rest.unwrap().0,
                "/management/v1/projects/p/apps/a/oidc_config/_generate_client_secret/x"
            )
            .is_none()
        );
        assert!(
            match_path(
                &V1_OIDC.rest.unwrap().0,
                "/management/v2/projects/p/apps/a/oidc_config/_generate_client_secret"
            )
            .is_none()
        );
        assert!(
            match_path(
                &V1_OIDC.rest.unwrap().0,
                "/management/v1/projects/%FF/apps/a/oidc_config/_generate_client_secret"
            )
            .unwrap()
            .is_err()
        );
        let (p, _) =
            match_path(&V1_OIDC.rest.unwrap().0, "/management/v1/projects//apps/a/oidc_config/_generate_client_secret")
                .unwrap()
                .unwrap();
        assert_eq!(p, "");
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
