//! The HTTP face of the use case: a `lambda_http` request in, ZITADEL's JSON out.
//!
//! Routing (from `pathParameters`, else the raw path), the caller's identity, the ids,
//! the org header and the body are checked here, in that order, before anything
//! touches storage. Every answer, error or not, is JSON with the same no-cache headers,
//! and every request leaves exactly one log line, which never holds a secret.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::FutureExt;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, LambdaEvent, Request, RequestExt, Response, Service as _, service_fn};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::de::IgnoredAny;

use crate::app::{AppKey, format_timestamp};
use crate::config::{ClaimNames, Config};
use crate::error::Error;
use crate::identity;
use crate::ids::{AppId, OrgId, ProjectId};
use crate::regenerate::{Attempted, Authority, Outcome, Regenerator, Store};

pub const ORG_HEADER: &str = "x-zitadel-orgid";
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Header values a request may carry, and bytes per header (name and value).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The route, segment by segment; `{}` marks the project id and the app id.
const ROUTE: [&str; 8] = ["management", "v1", "projects", "{}", "apps", "{}", "oidc_config", "_generate_client_secret"];

/// The handler's state, built once at start-up.
pub struct Service<S> {
    regenerator: Regenerator<S>,
    claims: ClaimNames,
}

impl<S: Store> Service<S> {
    pub fn new(store: S, config: &Config) -> Self {
        Self { regenerator: Regenerator::new(store, config.secret), claims: config.claims.clone() }
    }

    /// Answers one request. Never fails: every error becomes its envelope, and a panic
    /// below, the encoding of the answer included, becomes a 500 for this request alone
    /// (panics unwind; see Cargo.toml).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let served = AssertUnwindSafe(async {
            let served = self.serve(&request, &request_id).await;
            let response = encode(&served.result);
            (served, response)
        })
        .catch_unwind()
        .await;
        let (served, response) = served.unwrap_or_else(|panic| {
            let served = Served { key: None, attempts: 0, result: Err(Error::Internal(panic_message(&*panic))) };
            let response = encode(&served.result);
            (served, response)
        });
        let field = |f: fn(&AppKey) -> &str| served.key.as_ref().map(f).unwrap_or("");
        let code = served.result.as_ref().err().map_or(0, Error::grpc_code);
        tracing::info!(
            request_id = %request_id,
            org = field(|k| k.org.as_str()),
            project = field(|k| k.project.as_str()),
            app = field(|k| k.app.as_str()),
            code,
            status = response.status().as_u16(),
            attempts = served.attempts,
            duration_ms = started.elapsed().as_micros() as f64 / 1000.0,
            "regenerate client secret"
        );
        if let Some(detail) = served.result.as_ref().err().and_then(Error::log_detail) {
            tracing::error!(request_id = %request_id, detail, "request failed");
        }
        response
    }

    async fn serve(&self, request: &Request, request_id: &str) -> Served {
        let parsed = match self.parse(request) {
            Ok(parsed) => parsed,
            Err(error) => return Served { key: None, attempts: 0, result: Err(error) },
        };
        let use_case = crate::regenerate::Request {
            key: parsed.key,
            authority: Authority::Member(parsed.caller.user),
            request_id: request_id.to_owned(),
        };
        let Attempted { attempts, result } = self.regenerator.regenerate(&use_case).await;
        Served { key: Some(use_case.key), attempts, result }
    }

    /// Everything that can be refused without storage, in SPEC order: route, identity,
    /// ids, headers, body.
    fn parse(&self, request: &Request) -> Result<Parsed, Error> {
        let (project, app) = route(request)?;
        let caller = identity::caller(request.request_context_ref(), &self.claims)?;
        let project = ProjectId::parse(&project)?;
        let app = AppId::parse(&app)?;
        check_headers(request.headers())?;
        let org = match org_header(request)? {
            Some(org) => org,
            None => caller.home_org.clone(),
        };
        if request.extensions().get::<BadBase64Body>().is_some() {
            return Err(Error::invalid("invalid body: flagged base64 but not base64"));
        }
        check_body(request.body())?;
        Ok(Parsed { key: AppKey { org, project, app }, caller })
    }
}

/// Serves `service` through the Lambda Runtime API until the runtime stops.
pub async fn run<S: Store>(service: Service<S>) -> Result<(), lambda_http::Error> {
    let service = &service;
    // Lambda hands a function one event at a time, so the flag set for an event below is
    // the one its request reads here.
    let bad_base64 = &AtomicBool::new(false);
    let handler = service_fn(move |mut request: Request| async move {
        if bad_base64.swap(false, Ordering::SeqCst) {
            request.extensions_mut().insert(BadBase64Body);
        }
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    });
    let mut adapter = Adapter::from(handler);
    lambda_http::lambda_runtime::run(service_fn(move |mut event: LambdaEvent<LambdaRequest>| {
        bad_base64.store(prepare(&mut event.payload), Ordering::SeqCst);
        adapter.call(event)
    }))
    .await
}

/// The request an event stands for, as the Lambda runtime builds it.
pub fn request_from_event(mut event: LambdaRequest) -> Request {
    let bad_base64 = prepare(&mut event);
    let mut request: Request = event.into();
    if bad_base64 {
        request.extensions_mut().insert(BadBase64Body);
    }
    request
}

/// Fixes up an event before `lambda_http` converts it; true when its body was flagged
/// base64 but was not, and has been taken out.
fn prepare(event: &mut LambdaRequest) -> bool {
    keep_repeated_headers(event);
    take_bad_base64_body(event)
}

/// Marks a request whose `isBase64Encoded` body was not base64.
#[derive(Clone, Copy)]
struct BadBase64Body;

/// `lambda_http` panics on a body flagged base64 that does not decode; such a body is
/// taken out here, before the conversion, and refused by the body check instead.
fn take_bad_base64_body(event: &mut LambdaRequest) -> bool {
    use base64::Engine;
    let (flagged, body) = match event {
        LambdaRequest::ApiGatewayV1(e) => (e.is_base64_encoded, &mut e.body),
        LambdaRequest::ApiGatewayV2(e) => (e.is_base64_encoded, &mut e.body),
        LambdaRequest::Alb(e) => (e.is_base64_encoded, &mut e.body),
        _ => return false,
    };
    let bad = flagged && body.as_deref().is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err());
    if bad {
        *body = None;
    }
    bad
}

/// `lambda_http` lays a REST API's or ALB's `headers` (the last value of each name) over
/// `multiValueHeaders` (every value), which would hide a repeated `x-zitadel-orgid`.
/// Dropping the single values that the multi-value map also holds lets every value through.
fn keep_repeated_headers(event: &mut LambdaRequest) {
    let (single, multi) = match event {
        LambdaRequest::ApiGatewayV1(e) => (&mut e.headers, &e.multi_value_headers),
        LambdaRequest::Alb(e) => (&mut e.headers, &e.multi_value_headers),
        _ => return,
    };
    for name in multi.keys() {
        single.remove(name);
    }
}

struct Parsed {
    key: AppKey,
    caller: identity::Caller,
}

/// What serving one request came to: the fields of its log line, and its result.
struct Served {
    key: Option<AppKey>,
    attempts: u32,
    result: Result<Outcome, Error>,
}

fn encode(result: &Result<Outcome, Error>) -> Response<Body> {
    match result {
        Ok(outcome) => success(outcome),
        Err(error) => failure(error),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    format!("panic: {}", text.unwrap_or("(no message)"))
}

/// The Lambda request id, else API Gateway's, else a fresh one (local server).
fn request_id(request: &Request) -> String {
    if let Some(context) = request.lambda_context_ref() {
        return context.request_id.clone();
    }
    let from_gateway = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        _ => None,
    };
    from_gateway.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()))
}

/// The REST API resource of this operation.
const RESOURCE: &str = "/management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret";

/// The raw project and app ids, from `pathParameters` or else from the raw path
/// (function URLs, ALB, `$default` and `{proxy+}` routes), percent-decoded. The route is
/// checked either way: the raw path, or a REST API's resource, must be this operation's,
/// so no other route that happens to name `projectId` and `appId` reaches the use case.
fn route(request: &Request) -> Result<(String, String), Error> {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    let from_path = match_path(without_stage(request, path));
    let rest_resource = matches!(
        request.request_context_ref(),
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) if c.resource_path.as_deref() == Some(RESOURCE)
    );
    if from_path.is_none() && !rest_resource {
        return Err(Error::RouteNotFound);
    }
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
    Ok(ids)
}

/// An HTTP API's `rawPath` starts with the stage name unless the stage is `$default`.
fn without_stage<'a>(request: &Request, path: &'a str) -> &'a str {
    let stage = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.stage.as_deref(),
        _ => None,
    };
    match stage {
        Some(stage) if stage != "$default" => path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path),
        _ => path,
    }
}

/// `None` when the path is not this route; an error when a segment is not UTF-8.
fn match_path(path: &str) -> Option<Result<(String, String), Error>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.len() != ROUTE.len() {
        return None;
    }
    let mut ids = Vec::with_capacity(2);
    for (segment, expected) in segments.iter().zip(ROUTE) {
        if expected == "{}" {
            ids.push(*segment);
        } else if *segment != expected {
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

/// Bounds on the headers as a whole, so no request is worth more than a few KiB of work.
fn check_headers(headers: &lambda_http::http::HeaderMap) -> Result<(), Error> {
    if headers.len() > MAX_HEADERS {
        return Err(Error::invalid(format!("invalid headers: at most {MAX_HEADERS} allowed")));
    }
    if headers.iter().any(|(name, value)| name.as_str().len() + value.len() > MAX_HEADER_BYTES) {
        return Err(Error::invalid(format!("invalid headers: each must be at most {MAX_HEADER_BYTES} bytes")));
    }
    Ok(())
}

/// The `x-zitadel-orgid` header: absent, or given once with a valid org id.
fn org_header(request: &Request) -> Result<Option<OrgId>, Error> {
    let mut values = request.headers().get_all(ORG_HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::invalid(format!("invalid {ORG_HEADER}: must be given at most once")));
    }
    let value = value.to_str().map_err(|_| Error::invalid(format!("invalid {ORG_HEADER}: not ASCII")))?;
    OrgId::parse(value, ORG_HEADER).map(Some)
}

/// Empty, or a JSON object of at most 16 KiB whose fields are ignored (the path wins).
fn check_body(body: &Body) -> Result<(), Error> {
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

fn respond(status: u16, body: &impl Serialize) -> Response<Body> {
    let json = serde_json::to_string(body)
        .unwrap_or_else(|_| r#"{"code":13,"message":"Internal error (INTERNAL)","details":[]}"#.into());
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// ZITADEL's `RegenerateOIDCClientSecretResponse`, fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretResponse<'a> {
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

/// The plaintext secret, once, and the change's details.
pub fn success(outcome: &Outcome) -> Response<Body> {
    respond(
        200,
        &SecretResponse {
            client_secret: outcome.secret.expose(),
            details: ObjectDetails {
                sequence: outcome.sequence.to_string(),
                creation_date: format_timestamp(outcome.creation_date),
                change_date: format_timestamp(outcome.change_date),
                resource_owner: outcome.resource_owner.as_str(),
            },
        },
    )
}

pub fn failure(error: &Error) -> Response<Body> {
    let mut response = respond(error.http_status(), &error.envelope());
    if matches!(error, Error::Unauthenticated) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_path_matches_and_decodes() {
        let (p, a) = match_path("/management/v1/projects/p%2Dx/apps/a%40b/oidc_config/_generate_client_secret")
            .unwrap()
            .unwrap();
        assert_eq!((p.as_str(), a.as_str()), ("p-x", "a@b"));
        assert!(match_path("/management/v1/projects/p/apps/a/oidc_config").is_none());
        assert!(match_path("/management/v1/projects/p/apps/a/oidc_config/_generate_client_secret/x").is_none());
        assert!(match_path("/management/v2/projects/p/apps/a/oidc_config/_generate_client_secret").is_none());
        assert!(match_path("/management/v1/projects/%FF/apps/a/oidc_config/_generate_client_secret").unwrap().is_err());
        let (p, _) =
            match_path("/management/v1/projects//apps/a/oidc_config/_generate_client_secret").unwrap().unwrap();
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
