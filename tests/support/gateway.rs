//! A stand-in for API Gateway's HTTP API in front of a function under the Lambda Runtime
//! API: it turns each HTTP request into the payload-2.0 event API Gateway would send, with
//! a JWT authorizer's claims, invokes the function, and turns its proxy response back
//! into HTTP. Published clients (tests/clients/) talk to it as they would to API Gateway.
//!
//! The JWT authorizer is played by the bearer token itself: `Bearer <user>@<org>` stands
//! for a token whose claims are `sub` = user and the org claim = org; an empty or missing
//! token is a route without an authorizer's identity.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::runtime_api::{Function, Outcome, RuntimeApi};

const ORG_CLAIM: &str = "urn:zitadel:iam:user:resourceowner:id";

/// Content types API Gateway passes as text; every other body arrives base64-encoded.
fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.contains("grpc-web-text")
}

pub struct Gateway {
    addr: SocketAddr,
}

/// What the stand-in puts in front of the function.
#[derive(Clone, Copy)]
enum Front {
    /// The JWT authorizer, played by the bearer token.
    Jwt,
    /// A Lambda authorizer (payload 2.0, simple responses) played by the same function:
    /// API Gateway's 401 without an `Authorization` header, its 403 for `isAuthorized: false`,
    /// else the request with the authorizer's context.
    LambdaAuthorizer,
}

impl Gateway {
    /// Serves HTTP on loopback, one invocation of `function` at a time, as Lambda does.
    pub async fn start(api: RuntimeApi, function: Function) -> Self {
        Self::serve(Self::listener().await, api, function, Front::Jwt).await
    }

    #[allow(dead_code)] // tests/oauth.rs alone
    /// A loopback listener on a free port: for a function that must know the gateway's URL
    /// before it starts (the oauth function's `ISSUER`), then [`Gateway::start_on`].
    pub async fn listener() -> TcpListener {
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap()
    }

    #[allow(dead_code)] // tests/oauth.rs alone
    /// As [`Gateway::start`], on `listener`.
    pub async fn start_on(listener: TcpListener, api: RuntimeApi, function: Function) -> Self {
        Self::serve(listener, api, function, Front::Jwt).await
    }

    /// The same, behind a Lambda authorizer that is `function` itself (verify-secret, which
    /// also answers the example route behind it).
    pub async fn start_behind_lambda_authorizer(api: RuntimeApi, function: Function) -> Self {
        Self::serve(Self::listener().await, api, function, Front::LambdaAuthorizer).await
    }

    async fn serve(listener: TcpListener, api: RuntimeApi, function: Function, front: Front) -> Self {
        let addr = listener.local_addr().unwrap();
        let lambda = Arc::new(Mutex::new((api, function)));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let lambda = lambda.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| forward(request, lambda.clone(), front));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// API Gateway's own answer, in its own body.
fn gateway_answer(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json!({"message": message}).to_string())));
    *response.status_mut() = status;
    response
}

async fn forward(
    request: Request<Incoming>,
    lambda: Arc<Mutex<(RuntimeApi, Function)>>,
    front: Front,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        let joined = match headers.get(name.as_str()).and_then(Value::as_str) {
            Some(previous) => format!("{previous},{value}"),
            None => value,
        };
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let content_type = headers.get("content-type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let token = headers
        .get("authorization")
        .and_then(Value::as_str)
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let authorizer = match front {
        Front::Jwt => match token.split_once('@') {
            Some((user, org)) => {
                json!({"jwt": {"claims": {"sub": user, ORG_CLAIM: org, "iss": "https://issuer.example.com"}, "scopes": null}})
            }
            None => Value::Null,
        },
        Front::LambdaAuthorizer => {
            let Some(authorization) = headers.get("authorization").cloned() else {
                return Ok(gateway_answer(StatusCode::UNAUTHORIZED, "Unauthorized"));
            };
            let event = json!({
                "version": "2.0",
                "type": "REQUEST",
                "routeArn": format!("arn:aws:execute-api:eu-central-1:123456789012:gateway/$default/{}{path}", parts.method),
                "identitySource": [authorization],
                "routeKey": format!("{} {path}", parts.method),
                "rawPath": path,
                "rawQueryString": parts.uri.query().unwrap_or_default(),
                "headers": headers,
                "requestContext": request_context(parts.method.as_str(), &path, Value::Null),
            });
            let outcome = invoke(&lambda, &event).await;
            match outcome {
                Outcome::Response(answer) if answer["isAuthorized"] == json!(true) => {
                    json!({"lambda": answer["context"]})
                }
                Outcome::Response(_) => return Ok(gateway_answer(StatusCode::FORBIDDEN, "Forbidden")),
                _ => return Ok(gateway_answer(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")),
            }
        }
    };
    let (text, body) = match is_text(&content_type) {
        true => (true, Value::String(String::from_utf8_lossy(&body).into_owned())),
        false => (false, Value::String(STANDARD.encode(&body))),
    };
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": request_context(parts.method.as_str(), &path, authorizer),
        "body": body,
        "isBase64Encoded": !text
    });
    let outcome = invoke(&lambda, &event).await;
    let Outcome::Response(proxied) = outcome else {
        let mut response = Response::new(Full::new(Bytes::from(format!("{outcome:?}"))));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        return Ok(response);
    };
    let body = proxied["body"].as_str().unwrap_or_default();
    let body = match proxied["isBase64Encoded"].as_bool() {
        Some(true) => STANDARD.decode(body).map_err(std::io::Error::other)?,
        _ => body.as_bytes().to_vec(),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(proxied["statusCode"].as_u64().unwrap_or(502) as u16).unwrap();
    for (name, value) in proxied["headers"].as_object().into_iter().flatten() {
        if let Some(value) = value.as_str() {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(std::io::Error::other)?;
            response.headers_mut().append(name, value.parse().map_err(std::io::Error::other)?);
        }
    }
    for (name, values) in proxied["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !response.headers().contains_key(name.as_str()) {
                let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(std::io::Error::other)?;
                response.headers_mut().append(name, value.parse().map_err(std::io::Error::other)?);
            }
        }
    }
    Ok(response)
}

fn request_context(method: &str, path: &str, authorizer: Value) -> Value {
    json!({
        "accountId": "123456789012",
        "apiId": "gateway",
        "authorizer": authorizer,
        "domainName": "127.0.0.1",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "requestId": format!("gw-{:08x}", rand::random::<u32>()),
        "routeKey": "$default",
        "stage": "$default",
        "time": "29/Nov/2026:12:00:00 +0000",
        "timeEpoch": 1795953600000u64
    })
}

async fn invoke(lambda: &Mutex<(RuntimeApi, Function)>, event: &Value) -> Outcome {
    let mut lambda = lambda.lock().await;
    let (api, function) = &mut *lambda;
    api.invoke(function, event.to_string().as_bytes(), Duration::from_secs(30)).await
}
