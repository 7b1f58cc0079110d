//! The `oauth` function's face (SPEC section 13): a small OAuth 2.0 authorization server for
//! the apps of the table, at ZITADEL's paths, so ZITADEL's SDKs find it by discovery.
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/oauth-authorization-server` | discovery ([`discovery`]) |
//! | `GET /oauth/v2/keys` | the JWKS: the signer's public keys |
//! | `POST /oauth/v2/token` | the client credentials grant ([`token`]) |
//! | `POST /oauth/v2/introspect` | introspection, for API apps ([`introspect`]) |
//!
//! Both POST endpoints read the form and the client's credentials the same way ([`form`]),
//! and authenticate the client with the authorizer's own [`Authenticator`]: the same rules,
//! the same work whatever fails, so neither an answer nor its timing tells which client ids
//! exist. Every answer, error or not, is built from one table ([`error`]); every request
//! writes one log line (never a secret, a token, a hash or the `Authorization` header) that
//! is also an EMF document.

pub mod discovery;
pub mod error;
pub mod form;
pub mod introspect;
pub mod token;

#[cfg(test)]
mod adversarial_tests;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value};

use crate::api::event::BadBase64Body;
use crate::api::{panic_message, path_of, request_id};
use crate::app::AppKey;
use crate::authenticate::{Authentication, Authenticator, Denial, Directory};
use crate::config::OAuthConfig;
use crate::deadline::Deadline;
use crate::jwt::Signer;
use crate::{logging, metrics};
use error::OAuthError;

pub const DISCOVERY_PATHS: [&str; 2] = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"];
pub const KEYS_PATH: &str = "/oauth/v2/keys";
pub const TOKEN_PATH: &str = "/oauth/v2/token";
pub const INTROSPECT_PATH: &str = "/oauth/v2/introspect";

/// The longest client id a log line carries.
const LOGGED_CLIENT_ID: usize = 200;

/// The routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Discovery,
    Keys,
    Token,
    Introspect,
    Unknown,
}

impl Route {
    fn of(path: &str) -> Self {
        match path {
            p if DISCOVERY_PATHS.contains(&p) => Route::Discovery,
            KEYS_PATH => Route::Keys,
            TOKEN_PATH => Route::Token,
            INTROSPECT_PATH => Route::Introspect,
            _ => Route::Unknown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Discovery => "discovery",
            Route::Keys => "keys",
            Route::Token => "token",
            Route::Introspect => "introspect",
            Route::Unknown => "unknown",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Route::Discovery | Route::Keys => "GET",
            _ => "POST",
        }
    }
}

/// The function's state, built once at start-up.
pub struct OAuth<D, S> {
    authenticator: Authenticator<D>,
    signer: S,
    config: OAuthConfig,
    function: String,
}

/// What serving one request came to: its answer, and the fields of its log line.
pub(crate) struct Served {
    answer: Result<Answer, OAuthError>,
    /// The client id as presented (token and introspection).
    client: Option<String>,
    key: Option<AppKey>,
    /// Why, for the log only.
    reason: &'static str,
    scope: String,
    jti: String,
}

/// A successful answer: the JSON body and whether it may be cached.
pub(crate) struct Answer {
    body: Value,
    outcome: &'static str,
    cacheable: bool,
}

impl Served {
    fn refused(error: OAuthError, reason: &'static str) -> Self {
        Self { answer: Err(error), client: None, key: None, reason, scope: String::new(), jti: String::new() }
    }

    fn answered(body: Value, outcome: &'static str, cacheable: bool) -> Self {
        Self {
            answer: Ok(Answer { body, outcome, cacheable }),
            client: None,
            key: None,
            reason: "",
            scope: String::new(),
            jti: String::new(),
        }
    }

    /// The client's authentication as the log reads it.
    fn by(mut self, client: Option<String>, auth: Option<&Authentication>) -> Self {
        self.client = client;
        self.key = auth.and_then(|a| a.key.clone());
        self
    }
}

/// `Err` of an authentication, as the endpoint answers it: an outage is 503, never a
/// client error; every other denial is the one `invalid_client`.
fn refusal(denial: &Denial) -> OAuthError {
    match denial {
        Denial::Unavailable(_) => OAuthError::TemporarilyUnavailable,
        _ => OAuthError::InvalidClient,
    }
}

impl<D: Directory, S: Signer> OAuth<D, S> {
    pub fn new(directory: D, signer: S, hash_cost: u32, config: OAuthConfig) -> Self {
        Self {
            authenticator: Authenticator::new(directory, hash_cost),
            signer,
            config,
            function: metrics::function_name(),
        }
    }

    /// Answers one request. Never fails: every error is its RFC answer, and a panic below
    /// is a `server_error` for this request alone.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let route = Route::of(path_of(&request));
        let served = AssertUnwindSafe(self.serve(route, &request)).catch_unwind().await.unwrap_or_else(|panic| {
            tracing::error!(request_id, detail = panic_message(&*panic), "request failed");
            Served::refused(OAuthError::ServerError, "panic")
        });
        let response = respond(&served.answer);
        self.log(&request_id, route, &served, response.status().as_u16(), started);
        response
    }

    async fn serve(&self, route: Route, request: &Request) -> Served {
        if route == Route::Unknown {
            return Served::refused(OAuthError::NotFound, "no such route");
        }
        let allowed = route.method();
        if request.method() != Method::from_bytes(allowed.as_bytes()).expect("a method") {
            return Served::refused(OAuthError::MethodNotAllowed(allowed), "method not allowed");
        }
        let deadline =
            request.lambda_context_ref().map_or_else(Deadline::for_request, |c| Deadline::from_lambda(c.deadline));
        let Some(issuer) = self.issuer(request) else {
            return Served::refused(OAuthError::ServerError, "no ISSUER and no domain name to make it from");
        };
        match route {
            Route::Discovery => Served::answered(discovery::document(&issuer), "served", true),
            Route::Keys => match self.signer.keys(deadline).await {
                Ok(keys) => Served::answered(discovery::jwks(&keys), "served", true),
                Err(error) => {
                    tracing::error!(detail = error.log_detail().unwrap_or_default(), "reading the public keys failed");
                    Served::refused(error.into(), "public keys unavailable")
                }
            },
            Route::Token => self.token(request, &issuer, deadline).await,
            Route::Introspect => introspect::serve(self, request, &issuer, deadline).await,
            Route::Unknown => unreachable!("answered above"),
        }
    }

    /// The form and the client's credentials, then the authentication: step 1's rules
    /// first, so nothing is read for a request that is malformed.
    async fn authenticate<T>(
        &self,
        request: &Request,
        deadline: Deadline,
        check: impl FnOnce(&form::Form) -> Result<T, OAuthError>,
    ) -> Result<(T, Authentication, Option<String>), Served> {
        let form = form_of(request).map_err(|e| Served::refused(e, "malformed request"))?;
        let presented =
            form::credentials(request.headers(), &form).map_err(|e| Served::refused(e, "malformed request"))?;
        let client = presented.client_id.as_deref().map(|c| c.chars().take(LOGGED_CLIENT_ID).collect());
        let checked = check(&form).map_err(|e| Served::refused(e, "refused request").by(client.clone(), None))?;
        let auth = self.authenticator.authenticate(&presented, deadline).await;
        if let Err(denial) = &auth.result {
            if let Denial::Unavailable(detail) = denial {
                tracing::error!(detail, "authentication failed: the store is unavailable");
            }
            return Err(Served::refused(refusal(denial), denial.reason()).by(client, Some(&auth)));
        }
        Ok((checked, auth, client))
    }

    async fn token(&self, request: &Request, issuer: &str, deadline: Deadline) -> Served {
        let (requested, auth, client) = match self.authenticate(request, deadline, token::check_request).await {
            Ok(authenticated) => authenticated,
            Err(served) => return served,
        };
        let app = auth.app.as_ref().expect("an allowed authentication carries its app");
        let granted = match token::grant(app, &requested) {
            Ok(granted) => granted,
            Err(error) => {
                return Served::refused(error, "the app has no client_credentials grant").by(client, Some(&auth));
            }
        };
        let claims = token::claims(app, &granted, issuer, crate::jwt::unix_now(), self.config.token_lifetime);
        match crate::jwt::issue(&self.signer, &claims, deadline).await {
            Ok(access_token) => {
                let mut body = Map::from_iter([
                    ("access_token".to_owned(), Value::from(access_token)),
                    ("token_type".to_owned(), Value::from("Bearer")),
                    ("expires_in".to_owned(), Value::from(self.config.token_lifetime)),
                ]);
                if let Some(scope) = &claims.scope {
                    body.insert("scope".into(), Value::from(scope.as_str()));
                }
                let mut served = Served::answered(Value::Object(body), "issued", false).by(client, Some(&auth));
                served.scope = claims.scope.unwrap_or_default();
                served.jti = claims.jti;
                served
            }
            Err(error) => {
                tracing::error!(detail = error.log_detail().unwrap_or_default(), "signing the token failed");
                Served::refused(error.into(), "signing failed").by(client, Some(&auth))
            }
        }
    }

    /// `ISSUER`, else `https://` + the API's domain name, + `/` + the stage unless `$default`.
    fn issuer(&self, request: &Request) -> Option<String> {
        if let Some(issuer) = &self.config.issuer {
            return Some(issuer.clone());
        }
        let (domain, stage) = match request.request_context_ref()? {
            RequestContext::ApiGatewayV2(c) => (c.domain_name.clone()?, c.stage.clone()),
            RequestContext::ApiGatewayV1(c) => (c.domain_name.clone()?, c.stage.clone()),
            _ => return None,
        };
        let valid = !domain.is_empty()
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            && stage
                .as_deref()
                .is_none_or(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$')));
        if !valid {
            return None;
        }
        Some(match stage.as_deref() {
            Some(stage) if stage != "$default" && !stage.is_empty() => format!("https://{domain}/{stage}"),
            _ => format!("https://{domain}"),
        })
    }

    /// One line per request: route, client, app, outcome and why, scopes, jti, duration;
    /// never a secret, a token, a hash or a header.
    fn log(&self, request_id: &str, route: Route, served: &Served, status: u16, started: Instant) {
        let outcome = match &served.answer {
            Ok(answer) => answer.outcome,
            Err(OAuthError::InvalidClient) => "denied",
            Err(OAuthError::TemporarilyUnavailable) => "unavailable",
            Err(OAuthError::ServerError) => "internal",
            Err(_) => "refused",
        };
        let app = served.key.as_ref().map(|k| format!("{}/{}/{}", k.org, k.project, k.app)).unwrap_or_default();
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        let fields = Map::from_iter([
            ("request_id".to_owned(), Value::from(request_id)),
            ("route".to_owned(), Value::from(route.name())),
            ("client_id".to_owned(), Value::from(served.client.clone().unwrap_or_default())),
            ("app".to_owned(), Value::from(app)),
            ("reason".to_owned(), Value::from(served.reason)),
            ("scope".to_owned(), Value::from(served.scope.as_str())),
            ("jti".to_owned(), Value::from(served.jti.as_str())),
            ("status".to_owned(), Value::from(status)),
            ("duration_ms".to_owned(), Value::from(duration_ms)),
            ("Function".to_owned(), Value::from(self.function.as_str())),
            ("Route".to_owned(), Value::from(route.name())),
            ("Outcome".to_owned(), Value::from(outcome)),
        ]);
        let metric = match route {
            Route::Token => "TokensIssued",
            Route::Introspect => "Introspections",
            _ => "Requests",
        };
        logging::request_line("oauth request", fields, |line| {
            metrics::document(
                metrics::now_ms(),
                vec![vec!["Function", "Route", "Outcome"], vec!["Function", "Outcome"]],
                &[(metric, "Count", 1.0), ("Duration", "Milliseconds", duration_ms)],
                line,
            )
        });
    }
}

/// The request's form (see [`form::parse`]), from its body as the event carried it.
fn form_of(request: &Request) -> Result<form::Form, OAuthError> {
    if request.extensions().get::<BadBase64Body>().is_some() {
        return Err(OAuthError::InvalidRequest("the body is flagged base64 but is not"));
    }
    let body = match request.body() {
        Body::Empty => None,
        Body::Text(text) => Some(text.as_bytes()),
        Body::Binary(bytes) => Some(bytes.as_slice()),
        _ => None,
    };
    form::parse(request.headers(), body)
}

/// The HTTP answer: the body as JSON, the cache headers of the route, the error's headers.
fn respond(answer: &Result<Answer, OAuthError>) -> Response<Body> {
    let (status, body, cacheable, extra) = match answer {
        Ok(answer) => (200, &answer.body, answer.cacheable, Vec::new()),
        Err(error) => (error.status(), &error.body(), false, error.headers()),
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-content-type-options", "nosniff");
    builder = if cacheable {
        builder.header("cache-control", "public, max-age=300")
    } else {
        builder.header("cache-control", "no-store").header("pragma", "no-cache")
    };
    for (name, value) in extra {
        builder = builder.header(name, value);
    }
    builder.body(Body::Text(body.to_string())).expect("a valid response")
}

/// Serves the OAuth routes through the Lambda Runtime API until the runtime stops.
pub async fn run<D: Directory, S: Signer>(oauth: OAuth<D, S>) -> Result<(), lambda_http::Error> {
    let oauth = &oauth;
    crate::api::serve(move |request| oauth.handle(request)).await
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::ids::ClientId;
    use crate::jwt::tests::FakeSigner;
    use crate::secret::ClientSecret;
    use crate::store::memory::{MemoryStore, key, oidc_app};

    const CLIENT: &str = "client-1";
    const ISSUER: &str = "https://auth.example.com";

    fn oauth(signer: FakeSigner) -> (OAuth<MemoryStore, FakeSigner>, ClientSecret, crate::app::App) {
        let store = MemoryStore::default();
        let secret = ClientSecret::generate(64);
        let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
        app.client_id = CLIENT.into();
        app.secret_hash = Some(secret.hash(4).unwrap());
        app.grant_types = vec!["client_credentials".into()];
        app.scopes = vec!["read".into()];
        store.put_app(app.clone());
        store.index_client(&ClientId::parse(CLIENT, "c").unwrap(), &app.key);
        let config = OAuthConfig { signing_keys: vec!["k".into()], token_lifetime: 600, issuer: Some(ISSUER.into()) };
        (OAuth::new(store, signer, 4, config), secret, app)
    }

    /// A form POST to `path`, as API Gateway hands it over (shared with the adversarial tests).
    pub(super) fn post(path: &str, body: &str, authorization: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    pub(super) fn basic(client: &str, secret: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
    }

    async fn answer(oauth: &OAuth<MemoryStore, FakeSigner>, request: Request) -> (u16, Value, Response<Body>) {
        let response = oauth.handle(request).await;
        let body = serde_json::from_slice(response.body().as_ref()).unwrap();
        (response.status().as_u16(), body, response)
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn a_client_with_its_secret_gets_a_token_with_the_granted_scopes() {
        let (oauth, secret, _) = oauth(FakeSigner::new());
        let body = "grant_type=client_credentials&scope=read+write+openid";
        let (status, body, response) =
            answer(&oauth, post(TOKEN_PATH, body, Some(&basic(CLIENT, secret.expose())))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["token_type"].clone(), body["expires_in"].clone()), (json!("Bearer"), json!(600)));
        assert_eq!(body["scope"], "read");
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        assert_eq!(header(&response, "pragma"), Some("no-cache"));
        // client_secret_post too.
        let posted = format!("grant_type=client_credentials&client_id={CLIENT}&client_secret={}", secret.expose());
        let (status, body, _) = answer(&oauth, post(TOKEN_PATH, &posted, None)).await;
        assert_eq!(status, 200);
        assert!(body.get("scope").is_none(), "no scope asked, none granted: {body}");
    }

    #[tokio::test]
    async fn every_authentication_failure_is_the_one_invalid_client() {
        let (oauth, secret, mut app) = oauth(FakeSigner::new());
        let reads = oauth.authenticator.directory().directory_reads();
        for authorization in [basic(CLIENT, "wrong"), basic("nobody", secret.expose()), "Bearer x".into()] {
            let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&authorization));
            let (status, body, response) = answer(&oauth, request).await;
            assert_eq!((status, body), (401, json!({"error": "invalid_client"})));
            assert_eq!(header(&response, "www-authenticate"), Some("Basic realm=\"oauth\""));
        }
        assert_eq!(oauth.authenticator.directory().directory_reads() - reads, 6, "two reads each, whatever failed");
        app.state = "INACTIVE".into();
        oauth.authenticator.directory().put_app(app);
        let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, secret.expose())));
        assert_eq!(answer(&oauth, request).await.1, json!({"error": "invalid_client"}));
    }

    #[tokio::test]
    async fn request_errors_come_before_any_read_in_the_rfc_order() {
        let (oauth, secret, _) = oauth(FakeSigner::new());
        let auth = basic(CLIENT, secret.expose());
        let cases = [
            ("grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"),
            ("scope=read", 400, "invalid_request"),
            ("grant_type=password", 400, "unsupported_grant_type"),
            ("grant_type=client_credentials&scope=a%22b%5C", 400, "invalid_scope"),
        ];
        for (body, status, error) in cases {
            let (got, answered, _) = answer(&oauth, post(TOKEN_PATH, body, Some(&auth))).await;
            assert_eq!((got, answered["error"].as_str()), (status, Some(error)), "{body}");
        }
        let both = format!("grant_type=client_credentials&client_secret={}", secret.expose());
        assert_eq!(answer(&oauth, post(TOKEN_PATH, &both, Some(&auth))).await.1["error"], "invalid_request");
        assert_eq!(oauth.authenticator.directory().directory_reads(), 0, "nothing read for a malformed request");
    }

    #[tokio::test]
    async fn a_client_without_the_grant_is_unauthorized_client() {
        let (oauth, secret, mut app) = oauth(FakeSigner::new());
        app.grant_types.clear();
        oauth.authenticator.directory().put_app(app);
        let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, secret.expose())));
        assert_eq!(answer(&oauth, request).await.1, json!({"error": "unauthorized_client"}));
    }

    #[tokio::test]
    async fn a_store_or_signer_outage_is_temporarily_unavailable_and_no_token() {
        let (oauth_, secret, _) = oauth(FakeSigner::new());
        oauth_.authenticator.directory().fail_next_directory_read(crate::error::Error::Unavailable("down".into()));
        let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, secret.expose())));
        let (status, body, _) = answer(&oauth_, request).await;
        assert_eq!((status, body), (503, json!({"error": "temporarily_unavailable"})));
        let mut failing = FakeSigner::new();
        failing.fail = true;
        let (oauth_, secret, _) = oauth(failing);
        let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, secret.expose())));
        let (status, body, _) = answer(&oauth_, request).await;
        assert_eq!((status, body), (503, json!({"error": "temporarily_unavailable"})));
    }

    #[tokio::test]
    async fn routes_methods_and_cache_headers() {
        let (oauth, _, _) = oauth(FakeSigner::new());
        let get = |path: &str| lambda_http::http::Request::builder().uri(path).body(Body::Empty).unwrap();
        for path in DISCOVERY_PATHS {
            let (status, body, response) = answer(&oauth, get(path)).await;
            assert_eq!((status, body["issuer"].as_str()), (200, Some(ISSUER)));
            assert_eq!(header(&response, "cache-control"), Some("public, max-age=300"));
        }
        let (status, body, _) = answer(&oauth, get(KEYS_PATH)).await;
        assert_eq!((status, body["keys"][0]["kty"].as_str()), (200, Some("RSA")));
        let (status, body, response) = answer(&oauth, get(TOKEN_PATH)).await;
        assert_eq!(
            (status, body["error"].as_str(), header(&response, "allow")),
            (405, Some("invalid_request"), Some("POST"))
        );
        let (status, _, response) = answer(&oauth, post(KEYS_PATH, "", None)).await;
        assert_eq!((status, header(&response, "allow")), (405, Some("GET")));
        assert_eq!(answer(&oauth, get("/oauth/v2/authorize")).await.0, 404);
    }

    #[tokio::test]
    async fn introspection_is_for_api_apps_and_needs_a_token() {
        let (oauth, secret, mut app) = oauth(FakeSigner::new());
        let auth = basic(CLIENT, secret.expose());
        assert_eq!(answer(&oauth, post(INTROSPECT_PATH, "", Some(&auth))).await.1["error"], "invalid_request");
        let (status, body, _) = answer(&oauth, post(INTROSPECT_PATH, "token=abc", Some(&auth))).await;
        assert_eq!((status, body), (401, json!({"error": "invalid_client"})), "an OIDC app may not introspect");
        app.app_type = "API".into();
        oauth.authenticator.directory().put_app(app);
        let (status, body, response) = answer(&oauth, post(INTROSPECT_PATH, "token=abc", Some(&auth))).await;
        assert_eq!((status, body), (200, json!({"active": false})));
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
    }

    #[tokio::test]
    async fn the_issuer_is_made_from_the_domain_and_the_stage_without_issuer() {
        let (mut oauth, _, _) = oauth(FakeSigner::new());
        oauth.config.issuer = None;
        let event = |stage: &str| {
            json!({"version": "2.0", "routeKey": "$default", "rawPath": "/.well-known/openid-configuration",
                "rawQueryString": "", "headers": {}, "isBase64Encoded": false,
                "requestContext": {"accountId": "1", "apiId": "a", "domainName": "a.execute-api.eu-central-1.amazonaws.com",
                    "domainPrefix": "a", "http": {"method": "GET", "path": "/.well-known/openid-configuration",
                    "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}, "requestId": "r",
                    "routeKey": "$default", "stage": stage, "time": "", "timeEpoch": 0}})
        };
        for (stage, issuer) in [
            ("$default", "https://a.execute-api.eu-central-1.amazonaws.com"),
            ("prod", "https://a.execute-api.eu-central-1.amazonaws.com/prod"),
        ] {
            let request = lambda_http::request::from_str(&event(stage).to_string()).unwrap();
            let (status, body, _) = answer(&oauth, request).await;
            assert_eq!((status, body["issuer"].as_str()), (200, Some(issuer)));
        }
    }
}
