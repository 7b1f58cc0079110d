//! Serves the operation on 127.0.0.1 through the same handler as the Lambda, so that
//! `curl` works with no AWS account. The caller's identity comes from the command line,
//! as if an HTTP API JWT authorizer had set it; nothing in a request can change it.
//! `GET /client/whoami` plays the template's example route behind the client-secret
//! authorizer: the same authorizer handler as `verify-secret`, on the request's
//! `Authorization: Basic` header (API Gateway's 401 without one, 403 when denied).
//! The OAuth routes (`/.well-known/...`, `/oauth/v2/...`) are the `oauth` function's
//! handler, with the issuer `http://127.0.0.1:<port>` and KMS at `AWS_ENDPOINT_URL_KMS`
//! (moto's server under `make run`): the key of `TOKEN_SIGNING_KEYS`, or, when unset, a key
//! it creates there at start-up.
//! Never deployed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use clap::Parser;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use oidc_client_secret::api::{MAX_BODY_BYTES, Service};
use oidc_client_secret::authorizer::{Authorizer, Refusal, simple_request_event};
use oidc_client_secret::config::{Config, OAuthConfig};
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::kms::{KmsSigner, create_signing_key};
use oidc_client_secret::oauth::OAuth;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "Serve the regenerate-secret operation on 127.0.0.1 against DynamoDB (Local)")]
struct Args {
    /// The caller's user id, as the authorizer's USER_CLAIM would carry it.
    #[arg(long, default_value = "demo-user")]
    user: String,
    /// The caller's home organization, as the authorizer's ORG_CLAIM would carry it.
    #[arg(long, default_value = "demo-org")]
    org: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    oidc_client_secret::logging::init();
    let args = Args::parse();
    let config = Config::from_env_or_exit();
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = HashMap::from([(config.claims.user.clone(), args.user), (config.claims.org.clone(), args.org)]);
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let store =
        DynamoStore::new(client_from_env().await, &config.table_name).with_event_retention(config.event_retention);
    let verifier = Arc::new(Authorizer::new(store.clone(), config.secret.hash_cost));
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    let address = listener.local_addr()?;
    let oauth = Arc::new(oauth(store.clone(), &config, address).await?);
    let service = Arc::new(Service::new(store, &config));

    eprintln!("listening on http://{address}");
    loop {
        let (stream, _) = listener.accept().await?;
        let (service, authorizer, verifier, oauth) =
            (service.clone(), authorizer.clone(), verifier.clone(), oauth.clone());
        tokio::spawn(async move {
            let serve = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let (service, authorizer, verifier, oauth) =
                    (service.clone(), authorizer.clone(), verifier.clone(), oauth.clone());
                async move {
                    let path = request.uri().path();
                    if path == "/client/whoami" {
                        return Ok(whoami(&verifier, request.headers()).await);
                    }
                    if path.starts_with("/.well-known/") || path.starts_with("/oauth/") {
                        let request = into_lambda_request(request, None).await;
                        return Ok(oauth.handle(request).await.map(body_bytes));
                    }
                    let request = into_lambda_request(request, Some(authorizer)).await;
                    Ok::<_, std::convert::Infallible>(service.handle(request).await.map(body_bytes))
                }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), serve).await {
                tracing::debug!(%error, "connection closed");
            }
        });
    }
}

/// The request as API Gateway's HTTP API would hand it over, with the command line's
/// identity as JWT claims. The body is read up to one byte past the handler's limit,
/// which is enough for the handler to refuse it.
async fn into_lambda_request(
    request: hyper::Request<Incoming>,
    authorizer: Option<ApiGatewayRequestAuthorizer>,
) -> lambda_http::Request {
    let (parts, mut incoming) = request.into_parts();
    let mut body = Vec::new();
    while body.len() <= MAX_BODY_BYTES {
        match incoming.frame().await {
            Some(Ok(frame)) => body.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
            _ => break,
        }
    }
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = authorizer;
    context.http.method = parts.method.clone();
    context.http.path = Some(parts.uri.path().to_owned());
    context.http.source_ip = Some("127.0.0.1".into());
    let path = parts.uri.path().to_owned();
    let body = if body.is_empty() { Body::Empty } else { Body::Binary(body) };
    lambda_http::Request::from_parts(parts, body)
        .with_raw_http_path(path)
        .with_request_context(RequestContext::ApiGatewayV2(context))
}

/// The OAuth face with the issuer of this server's address, signing with KMS at
/// `AWS_ENDPOINT_URL_KMS`: the keys of `TOKEN_SIGNING_KEYS`, else a key made there now.
async fn oauth(
    store: DynamoStore,
    config: &Config,
    address: SocketAddr,
) -> Result<OAuth<DynamoStore, KmsSigner>, Box<dyn std::error::Error>> {
    let kms = oidc_client_secret::kms::client_from_env().await;
    let keys = match std::env::var("TOKEN_SIGNING_KEYS").ok().filter(|k| !k.trim().is_empty()) {
        Some(keys) => keys,
        None => {
            // Only on an emulator: a key on AWS costs money, and the template makes its own.
            let endpoint = std::env::var("AWS_ENDPOINT_URL_KMS").unwrap_or_default();
            if !(endpoint.starts_with("http://127.") || endpoint.starts_with("http://localhost")) {
                return Err(
                    "TOKEN_SIGNING_KEYS is unset and AWS_ENDPOINT_URL_KMS is no loopback emulator: set one of them"
                        .into(),
                );
            }
            let key = create_signing_key(&kms).await.map_err(|e| {
                format!(
                    "creating a token signing key (is moto running at AWS_ENDPOINT_URL_KMS?): {}",
                    e.log_detail().unwrap_or_default()
                )
            })?;
            eprintln!("token signing key: {key} (KMS at AWS_ENDPOINT_URL_KMS)");
            key
        }
    };
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| format!("http://{address}"));
    let settings = OAuthConfig::from_lookup(|name| match name {
        "TOKEN_SIGNING_KEYS" => Some(keys.clone()),
        "ISSUER" => Some(issuer.clone()),
        other => std::env::var(other).ok(),
    })?;
    let signer = KmsSigner::new(kms, settings.signing_keys.clone());
    Ok(OAuth::new(store, signer, config.secret.hash_cost, settings))
}

/// The example route behind the client-secret authorizer, as API Gateway would serve it.
async fn whoami(
    verifier: &Authorizer<DynamoStore>,
    headers: &hyper::HeaderMap,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let answer = |status: u16, body: serde_json::Value| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
            .expect("a response")
    };
    let Some(authorization) = headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return answer(401, serde_json::json!({"message": "Unauthorized"}));
    };
    let event = simple_request_event(authorization, "GET", "/client/whoami");
    match verifier.handle(event, "local", Deadline::for_request()).await {
        Ok(allowed) if allowed["isAuthorized"] == serde_json::json!(true) => answer(200, allowed["context"].clone()),
        // API Gateway's answer to an authorizer that failed: nothing is judged, or cached.
        Err(Refusal::StoreUnavailable) => answer(500, serde_json::json!({"message": "Internal Server Error"})),
        _ => answer(403, serde_json::json!({"message": "Forbidden"})),
    }
}

fn body_bytes(body: Body) -> http_body_util::Full<bytes::Bytes> {
    http_body_util::Full::new(bytes::Bytes::copy_from_slice(body.as_ref()))
}
