//! The HTTP function's face: a `lambda_http` request in, the answer out, over one shared
//! flow whatever the transport:
//!
//! route -> the transport decodes the request -> identity, ids, org -> the use case ->
//! the transport encodes the outcome -> one log line.
//!
//! Transports, chosen by path and `content-type`: [`rest`] (ZITADEL's JSON face),
//! [`grpc_web`] and [`connect`] at `/zitadel.management.v1.ManagementService/...`, over the
//! messages of [`proto`]. `event` repairs Lambda events before `lambda_http` converts
//! them; [`identity`] reads the caller from the authorizer's context. Everything that can
//! be refused without storage is refused before the use case; every answer carries the
//! no-cache headers; every request leaves exactly one log line, which never holds a secret.

pub mod connect;
pub mod doors;
pub(crate) mod event;
pub mod grpc_web;
pub mod identity;
pub mod proto;
pub mod rest;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use lambda_http::http::Method;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, LambdaEvent, Request, RequestExt, Response, Service as _, service_fn};

use doors::{Decoded, Door, OrgFrom};
pub use event::request_from_event;
pub use rest::{failure, success};

use crate::app::{AppKey, AppKind};
use crate::config::{ClaimNames, Config};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::{AppId, OrgId, ProjectId, UserId};
use crate::regenerate::{Attempted, Authority, Outcome, Regenerator, Store};
use crate::{logging, metrics};
use event::BadBase64Body;
use serde_json::{Map, Value};

pub const ORG_HEADER: &str = "x-zitadel-orgid";
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Header values a request may carry, and bytes per header (name and value).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// How a request is spoken, from its path and `content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Rest,
    /// `text`: the base64 form, `application/grpc-web-text`.
    GrpcWeb {
        text: bool,
    },
    /// `json`: `application/json`, else `application/proto`.
    Connect {
        json: bool,
    },
    /// `application/grpc`: answered `grpc-status: 12`.
    NativeGrpc,
    /// Another content type at the gRPC path.
    Unsupported,
}

impl Transport {
    fn of(request: &Request, path: &str) -> Self {
        if !doors::is_grpc_path(path) {
            return Transport::Rest;
        }
        let content_type = request.headers().get(lambda_http::http::header::CONTENT_TYPE);
        let media = content_type.and_then(|v| v.to_str().ok()).unwrap_or_default();
        let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match media.as_str() {
            "application/grpc-web" | "application/grpc-web+proto" => Transport::GrpcWeb { text: false },
            "application/grpc-web-text" | "application/grpc-web-text+proto" => Transport::GrpcWeb { text: true },
            "application/proto" => Transport::Connect { json: false },
            "application/json" => Transport::Connect { json: true },
            "application/grpc" | "application/grpc+proto" => Transport::NativeGrpc,
            _ => Transport::Unsupported,
        }
    }

    /// The door, and for REST the route's raw ids; for the gRPC transports, the method's
    /// door (their ids are in the message).
    fn route(self, request: &Request, path: &str) -> Result<(&'static Door, Option<rest::RouteIds>), Error> {
        match self {
            Transport::Rest => rest::route(request, path).map(|(door, ids)| (door, Some(ids))),
            Transport::NativeGrpc => Err(Error::MethodNotAllowed),
            Transport::Unsupported => Err(Error::invalid(
                "invalid content-type: the gRPC path takes application/grpc-web+proto, application/grpc-web-text+proto, application/proto or application/json",
            )),
            Transport::GrpcWeb { .. } | Transport::Connect { .. } => match doors::by_grpc_path(path) {
                Some(door) if request.method() == Method::POST => Ok((door, None)),
                _ => Err(Error::MethodNotAllowed),
            },
        }
    }

    /// The raw ids in the request's message, in the door's messages.
    fn message_ids(self, request: &Request, door: &Door) -> Result<Decoded, Error> {
        let body: &[u8] = body(request)?.as_ref();
        match self {
            Transport::GrpcWeb { text } => grpc_web::decode(body, text, door.wire),
            Transport::Connect { json } => connect::decode(body, json, door.wire),
            _ => Err(Error::Internal("no message in a REST request".into())),
        }
    }

    /// The REST body rules; the other transports checked their body with the message.
    fn check_body(self, request: &Request) -> Result<(), Error> {
        if self != Transport::Rest {
            return Ok(());
        }
        rest::check_body(body(request)?)
    }

    /// The answer, in the messages of the door (the first one's where the route named none:
    /// only an error has no door).
    fn encode(self, door: Option<&Door>, result: &Result<Outcome, Error>) -> Response<Body> {
        let wire = door.map_or(doors::Wire::V1, |door| door.wire);
        match self {
            Transport::Rest | Transport::Unsupported => rest::encode(result, wire),
            Transport::GrpcWeb { text } => grpc_web::encode(result, text, wire),
            Transport::Connect { json } => connect::encode(result, json, wire),
            Transport::NativeGrpc => grpc_web::native_grpc_unsupported(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Rest | Transport::Unsupported => "rest",
            Transport::GrpcWeb { .. } => "grpc-web",
            Transport::Connect { .. } => "connect",
            Transport::NativeGrpc => "grpc",
        }
    }
}

/// The handler's state, built once at start-up.
pub struct Service<S> {
    regenerator: Regenerator<S>,
    claims: ClaimNames,
    /// Scopes the caller's token must all carry.
    required_scopes: Vec<String>,
    /// The metrics' `Function` dimension.
    function: String,
}

/// What serving one request came to: the fields of its log line, and its result.
struct Served {
    /// The door, once the route named one.
    door: Option<&'static Door>,
    key: Option<AppKey>,
    attempts: u32,
    result: Result<Outcome, Error>,
}

impl<S: Store> Service<S> {
    pub fn new(store: S, config: &Config) -> Self {
        Self {
            regenerator: Regenerator::new(store, config.secret),
            claims: config.claims.clone(),
            required_scopes: config.required_scopes.clone(),
            function: metrics::function_name(),
        }
    }

    /// Answers one request. Never fails: every error becomes its transport's error, and a
    /// panic below, the encoding of the answer included, becomes an internal error for
    /// this request alone (panics unwind; see Cargo.toml).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let path = path_of(&request);
        let transport = Transport::of(&request, path);
        let served = AssertUnwindSafe(async {
            let served = self.serve(transport, &request, path, &request_id).await;
            let response = transport.encode(served.door, &served.result);
            (served, response)
        })
        .catch_unwind()
        .await;
        let (served, response) = served.unwrap_or_else(|panic| {
            let result = Err(Error::Internal(panic_message(&*panic)));
            let response = transport.encode(None, &result);
            (Served { door: None, key: None, attempts: 0, result }, response)
        });
        let field = |f: fn(&AppKey) -> &str| Value::from(served.key.as_ref().map(f).unwrap_or(""));
        let error = served.result.as_ref().err();
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        let fields = Map::from_iter([
            ("request_id".to_owned(), Value::from(request_id.as_str())),
            ("method".to_owned(), Value::from(served.door.map_or("", |door| door.method))),
            ("org".to_owned(), field(|k| k.org.as_str())),
            ("project".to_owned(), field(|k| k.project.as_str())),
            ("app".to_owned(), field(|k| k.app.as_str())),
            ("code".to_owned(), Value::from(error.map_or(0, Error::grpc_code))),
            ("status".to_owned(), Value::from(response.status().as_u16())),
            ("attempts".to_owned(), Value::from(served.attempts)),
            ("duration_ms".to_owned(), Value::from(duration_ms)),
            ("Function".to_owned(), Value::from(self.function.as_str())),
            ("Transport".to_owned(), Value::from(transport.name())),
            ("Outcome".to_owned(), Value::from(metrics::outcome(error.map_or(Ok(()), Err)))),
        ]);
        logging::request_line("regenerate client secret", fields, |line| {
            metrics::document(
                metrics::now_ms(),
                vec![vec!["Function", "Transport", "Outcome"], vec!["Function", "Outcome"], vec!["Function"]],
                &[
                    ("Requests", "Count", 1.0),
                    ("Attempts", "Count", f64::from(served.attempts)),
                    ("Duration", "Milliseconds", duration_ms),
                ],
                line,
            )
        });
        if let Some(detail) = served.result.as_ref().err().and_then(Error::log_detail) {
            tracing::error!(request_id = %request_id, detail, "request failed");
        }
        response
    }

    async fn serve(&self, transport: Transport, request: &Request, path: &str, request_id: &str) -> Served {
        let door = match transport.route(request, path) {
            Ok((door, route_ids)) => (door, route_ids),
            Err(error) => return Served { door: None, key: None, attempts: 0, result: Err(error) },
        };
        let (door, route_ids) = door;
        let refused =
            |error: Error| Served { door: Some(door), key: None, attempts: 0, result: Err(door.error(error)) };
        let (project, app, kind, org, user) = match self.parse(transport, request, door, route_ids) {
            Ok(parsed) => parsed,
            Err(error) => return refused(error),
        };
        // Lambda's deadline for this invocation, or the function timeout's from now.
        let deadline =
            request.lambda_context_ref().map_or_else(Deadline::for_request, |c| Deadline::from_lambda(c.deadline));
        // A door that names no org finds it from the project (SPEC section 12).
        let org = match org {
            Some(org) => org,
            None => match self.regenerator.project_org(&project, deadline).await {
                Ok(Some(org)) => org,
                Ok(None) => {
                    tracing::info!(request_id, project = %project, "no org owns the project");
                    // The same read a project of another org costs, against keys that hold
                    // nothing: the time does not tell whether the project exists.
                    let nowhere =
                        OrgId::parse(&format!("NOTHING-{:032x}", rand::random::<u128>()), "org").expect("a valid id");
                    let key = AppKey { org: nowhere, project, app };
                    // And the same answer when that read fails as a real one's failure
                    // would be: only what the read found (nothing) is "not found".
                    return match self.regenerator.writable_app(&key, kind, &Authority::Member(user), deadline).await {
                        Err(error) if !matches!(error, Error::PermissionDenied | Error::AppNotFound) => refused(error),
                        _ => refused(Error::AppNotFound),
                    };
                }
                Err(error) => return refused(error),
            },
        };
        let use_case = crate::regenerate::Request {
            key: AppKey { org, project, app },
            kind,
            authority: Authority::Member(user),
            request_id: request_id.to_owned(),
            deadline,
        };
        let Attempted { attempts, result } = self.regenerator.regenerate(&use_case).await;
        if let (OrgFrom::ProjectLookup, Err(Error::PermissionDenied)) = (door.org, &result) {
            tracing::info!(request_id, "the caller has no permission in the project's org: answered as not found");
        }
        Served { door: Some(door), key: Some(use_case.key), attempts, result: result.map_err(|e| door.error(e)) }
    }

    /// Everything that can be refused without storage, in SPEC order after the route:
    /// identity, the message (v2beta: its app type), ids (from the path, or the message),
    /// headers, org (none for a door that finds it from the project), body, scopes.
    fn parse(
        &self,
        transport: Transport,
        request: &Request,
        door: &Door,
        route_ids: Option<rest::RouteIds>,
    ) -> Result<(ProjectId, AppId, AppKind, Option<OrgId>, UserId), Error> {
        let caller = identity::caller(request.request_context_ref(), &self.claims)?;
        let decoded = match route_ids {
            Some(ids) => rest::ids(door, ids, body(request)?)?,
            None => transport.message_ids(request, door)?,
        };
        let kind = door.kind(&decoded);
        let project = ProjectId::parse(&decoded.project)?;
        let app = AppId::parse_as(&decoded.app, door.wire.app_field())?;
        check_headers(request.headers())?;
        let org = match door.org {
            OrgFrom::Header => Some(org_header(request)?.unwrap_or_else(|| caller.home_org.clone())),
            // `x-zitadel-orgid` plays no part in the call.
            OrgFrom::ProjectLookup => None,
        };
        transport.check_body(request)?;
        // A token without the scopes the deployment requires may not drive a read (a
        // permission, so after every input rule, as SPEC section 2 orders them).
        if !self.required_scopes.is_empty() {
            let scopes = identity::scopes(request.request_context_ref());
            if let Some(missing) = self.required_scopes.iter().find(|s| !scopes.contains(s)) {
                tracing::warn!(scope = %missing, "the token lacks a required scope");
                return Err(Error::PermissionDenied);
            }
        }
        Ok((project, app, kind, org, caller.user))
    }
}

/// Serves `service` through the Lambda Runtime API until the runtime stops.
pub async fn run<S: Store>(service: Service<S>) -> Result<(), lambda_http::Error> {
    let service = &service;
    serve(move |request| service.handle(request)).await
}

/// Serves `handle` through the Lambda Runtime API until the runtime stops, with the event
/// repairs of `api::event`: every HTTP function of the crate runs through here.
pub async fn serve<F, Fut>(handle: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Sync,
    Fut: std::future::Future<Output = Response<Body>> + Send,
{
    let handle = &handle;
    // Lambda hands a function one event at a time, so the flag set for an event below is
    // the one its request reads here.
    let bad_base64 = &AtomicBool::new(false);
    let handler = service_fn(move |mut request: Request| async move {
        if bad_base64.swap(false, Ordering::SeqCst) {
            request.extensions_mut().insert(BadBase64Body);
        }
        Ok::<_, std::convert::Infallible>(handle(request).await)
    });
    let mut adapter = Adapter::from(handler);
    lambda_http::lambda_runtime::run(service_fn(move |mut event: LambdaEvent<LambdaRequest>| {
        bad_base64.store(event::prepare(&mut event.payload), Ordering::SeqCst);
        adapter.call(event)
    }))
    .await
}

/// The request's body, unless the event flagged it base64 and it was not (see `event`).
fn body(request: &Request) -> Result<&Body, Error> {
    match request.extensions().get::<BadBase64Body>() {
        Some(_) => Err(Error::invalid("invalid body: flagged base64 but not base64")),
        None => Ok(request.body()),
    }
}

/// The raw path without an HTTP API's stage prefix.
pub(crate) fn path_of(request: &Request) -> &str {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    without_stage(request, path)
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

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    format!("panic: {}", text.unwrap_or("(no message)"))
}

/// The Lambda request id, else API Gateway's, else a fresh one (local server).
pub(crate) fn request_id(request: &Request) -> String {
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
