//! The `oauth` function as Lambda runs it (SPEC section 13): the bootstrap that ships,
//! under the Lambda Runtime API stand-in, against DynamoDB Local and KMS on moto's server.
//! ZITADEL's own Python SDK gets a token from it through the API Gateway stand-in, and an
//! independent JWT library (PyJWT) verifies that token against the published JWKS; every
//! row of the token errors and of introspection's rules is asserted on the whole answer.

#[path = "support/gateway.rs"]
#[allow(dead_code)] // only the listener and start_on
mod gateway;
#[path = "support/release.rs"]
mod release;
#[path = "support/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::jwt::{self, Claims, Signer};
use oidc_client_secret::kms::{KmsSigner, create_signing_key};
use oidc_client_secret::secret::ClientSecret;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use release::release_binary;
use runtime_api::{Function, Outcome, RuntimeApi};
use serde_json::{Value, json};
use support::*;

const TIMEOUT: Duration = Duration::from_secs(30);
const ISSUER: &str = "https://auth.example.com";

async fn kms() -> aws_sdk_kms::Client {
    assert!(std::env::var_os("AWS_ENDPOINT_URL_KMS").is_some(), "run with `make test`: it starts moto for KMS");
    oidc_client_secret::kms::client_from_env().await
}

/// An app of org-a with a secret and the given grants; its secret.
async fn app_with_secret(
    store: &DynamoStore,
    project: &str,
    app: &str,
    app_type: &str,
    grants: &[&str],
    scopes: &[&str],
    audiences: &[&str],
) -> ClientSecret {
    let key = key(ORG, project, app);
    seed_app(store, NewApp { app_type: app_type.into(), ..NewApp::oidc(key.clone(), app) }).await;
    let secret = ClientSecret::generate(64);
    set_app_attribute(store, &key, "secretHash", Some(AttributeValue::S(secret.hash(4).unwrap()))).await;
    for (name, values) in [("grantTypes", grants), ("scopes", scopes), ("audiences", audiences)] {
        if !values.is_empty() {
            let set = AttributeValue::Ss(values.iter().map(|v| (*v).to_owned()).collect());
            set_app_attribute(store, &key, name, Some(set)).await;
        }
    }
    secret
}

/// The table of these tests: `client-1` (OIDC, proj-1, may ask for proj-2's audience),
/// `api-1` (API, proj-1) and `api-2` (API, proj-2), the resource servers that introspect.
struct Apps {
    store: DynamoStore,
    client: ClientSecret,
    api1: ClientSecret,
    api2: ClientSecret,
}

async fn apps() -> Apps {
    let store = empty_table().await;
    let grants = ["client_credentials"];
    let client = app_with_secret(&store, "proj-1", "client-1", "OIDC", &grants, &["read", "write"], &["proj-2"]).await;
    let api1 = app_with_secret(&store, "proj-1", "api-1", "API", &[], &[], &[]).await;
    let api2 = app_with_secret(&store, "proj-2", "api-2", "API", &[], &[], &[]).await;
    Apps { store, client, api1, api2 }
}

/// [`function_env`] (the most verbose log settings: still no secret or token in the log),
/// with moto's KMS and the token settings.
fn oauth_env(table: &str, keys: &str, issuer: &str) -> Vec<(&'static str, String)> {
    let kms = std::env::var("AWS_ENDPOINT_URL_KMS").expect("AWS_ENDPOINT_URL_KMS: run with `make test`");
    let mut env = function_env(table);
    env.extend([
        ("AWS_ENDPOINT_URL_KMS", kms),
        // moto keeps keys per region: the one the tests made them in.
        ("AWS_REGION", std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())),
        ("TOKEN_SIGNING_KEYS", keys.to_owned()),
        ("ISSUER", issuer.to_owned()),
        ("TOKEN_LIFETIME_SECONDS", "300".into()),
    ]);
    env
}

/// The shipped function under the Runtime API stand-in, logging to a file.
struct Oauth {
    api: RuntimeApi,
    function: Function,
    log: PathBuf,
}

impl Oauth {
    async fn start(env: &[(&str, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let log = std::env::temp_dir().join(format!("oauth-{:016x}.log", rand::random::<u64>()));
        let function = api.start_function(&release_binary("oauth"), env, Some(&log));
        Self { api, function, log }
    }

    async fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let event = event(method, path, headers, body);
        let outcome = self.api.invoke(&mut self.function, event.to_string().as_bytes(), TIMEOUT).await;
        Answer::parse(outcome)
    }

    async fn token(&mut self, authorization: &str, body: &str) -> Answer {
        self.call("POST", "/oauth/v2/token", &[("authorization", authorization), FORM], body).await
    }

    async fn introspect(&mut self, authorization: &str, token: &str) -> Answer {
        self.call("POST", "/oauth/v2/introspect", &[("authorization", authorization), FORM], &format!("token={token}"))
            .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// API Gateway's HTTP API payload 2.0 event for a request without an authorizer; a form
/// body arrives base64-encoded, as API Gateway sends every body that is not text.
fn event(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let joined = match map.get(*name).and_then(Value::as_str) {
            Some(previous) => format!("{previous},{value}"),
            None => (*value).to_owned(),
        };
        map.insert((*name).to_owned(), Value::from(joined));
    }
    json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": map, "isBase64Encoded": true, "body": STANDARD.encode(body),
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "test"}, "requestId": format!("r-{:08x}", rand::random::<u32>()),
            "routeKey": format!("{method} {path}"), "stage": "$default", "time": "", "timeEpoch": 0},
    })
}

/// A proxy response: status, headers, JSON body.
#[derive(Debug)]
struct Answer {
    status: u64,
    headers: Value,
    body: Value,
}

impl Answer {
    fn parse(outcome: Outcome) -> Self {
        let Outcome::Response(response) = outcome else { panic!("expected a response, got {outcome:?}") };
        let body = serde_json::from_str(response["body"].as_str().expect("a text body")).expect("a JSON body");
        Self { status: response["statusCode"].as_u64().unwrap(), headers: response["headers"].clone(), body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }

    /// An RFC 6749 error with its status and the no-store headers.
    fn assert_error(&self, status: u64, error: &str) {
        assert_eq!((self.status, self.body["error"].as_str()), (status, Some(error)), "{self:?}");
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.header("pragma"), Some("no-cache"), "{self:?}");
        let challenge = (status == 401).then_some("Basic realm=\"oauth\"");
        assert_eq!(self.header("www-authenticate"), challenge, "{self:?}");
    }

    fn token(&self) -> String {
        assert_eq!(self.status, 200, "{self:?}");
        self.body["access_token"].as_str().expect("an access token").to_owned()
    }
}

fn basic(client: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client}:{secret}")))
}

fn decode_part(token: &str, part: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(part).unwrap()).unwrap()).unwrap()
}

/// No secret, token, hash or `Authorization` value in a log.
fn assert_clean_log(log: &str, secrets: &[&str], tokens: &[&str]) {
    assert!(!log.is_empty(), "the function logged nothing");
    for secret in secrets {
        assert!(!log.contains(secret), "a secret in the log");
        assert!(!log.contains(&STANDARD.encode(format!(":{secret}"))[4..]), "an Authorization value in the log");
    }
    for token in tokens {
        for part in token.split('.').filter(|p| p.len() >= 16) {
            assert!(!log.contains(part), "a token (or a part of one) in the log");
        }
    }
    assert!(!log.contains("$2b$") && !log.contains("$2a$"), "a bcrypt hash in the log");
}

#[tokio::test]
async fn zitadels_python_sdk_gets_a_token_that_pyjwt_verifies_against_the_jwks() {
    let apps = apps().await;
    let kms = kms().await;
    let key = create_signing_key(&kms).await.unwrap();
    let listener = gateway::Gateway::listener().await;
    let host = format!("http://{}", listener.local_addr().unwrap());
    let server = Oauth::start(&oauth_env(apps.store.table(), &key, &host)).await;
    let log = server.log.clone();
    let _gateway = gateway::Gateway::start_on(listener, server.api, server.function).await;
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/oauth/bin/python");
    assert!(python.exists(), "{}: run `make oauth-clients`", python.display());
    let (secret, host_arg) = (apps.client.expose().to_owned(), host.clone());
    let run = move |scopes: &[&str]| {
        let mut child = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oauth_client.py"))
            .arg(&host_arg)
            .arg("client-1")
            .args(scopes)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(secret.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "the SDK failed: {}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> = output
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        lines
    };
    // The SDK's defaults (`openid` and ZITADEL's own audience scope, both dropped), then
    // scopes of ours.
    let mut checked =
        tokio::task::spawn_blocking(move || run(&["read", "urn:zitadel:iam:org:project:id:proj-2:aud", "admin"]))
            .await
            .unwrap();
    assert_eq!(checked.len(), 2, "two tokens: {checked:?}");
    let (scoped, default) = (checked.pop().unwrap(), checked.pop().unwrap());
    let signer = KmsSigner::new(kms, vec![key]);
    let kid = signer.keys(Deadline::for_request()).await.unwrap()[0].kid.clone();
    assert_eq!(default["header"], json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}));
    assert_eq!(default["verified_with_kid"], kid);
    assert_eq!(default["auth_header_scheme"], "Bearer");
    let claims = &default["claims"];
    assert_eq!(claims["iss"], host);
    assert_eq!((claims["sub"].clone(), claims["client_id"].clone()), (json!("client-1"), json!("client-1")));
    assert_eq!(claims["aud"], json!(["proj-1"]));
    assert_eq!(claims["urn:zitadel:iam:user:resourceowner:id"], ORG);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert_eq!(URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len(), 16);
    assert!(claims.get("scope").is_none(), "openid and zitadel's audience are not granted: {claims}");
    let claims = &scoped["claims"];
    assert_eq!(claims["aud"], json!(["proj-1", "proj-2"]));
    let scope: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    let mut sorted = scope.clone();
    sorted.sort();
    assert_eq!(sorted, ["read", "urn:zitadel:iam:org:project:id:proj-2:aud"], "admin is dropped");
    assert_clean_log(&std::fs::read_to_string(log).unwrap(), &[apps.client.expose()], &[]);
}

#[tokio::test]
async fn every_token_error_row_through_the_shipped_binary() {
    let apps = apps().await;
    let key = create_signing_key(&kms().await).await.unwrap();
    let mut oauth = Oauth::start(&oauth_env(apps.store.table(), &key, ISSUER)).await;
    let good = basic("client-1", apps.client.expose());
    let cc = "grant_type=client_credentials";
    // 1: the request's own rules, before any read.
    let answer = oauth.call("GET", "/oauth/v2/token", &[], "").await;
    answer.assert_error(405, "invalid_request");
    assert_eq!(answer.header("allow"), Some("POST"));
    let json_body = oauth
        .call("POST", "/oauth/v2/token", &[("authorization", &good), ("content-type", "application/json")], "{}")
        .await;
    json_body.assert_error(400, "invalid_request");
    oauth.token(&good, &format!("{cc}&{cc}")).await.assert_error(400, "invalid_request");
    oauth.token(&good, "scope=read").await.assert_error(400, "invalid_request");
    oauth.token(&good, &format!("{cc}&client_secret=x")).await.assert_error(400, "invalid_request");
    let twice =
        oauth.call("POST", "/oauth/v2/token", &[("authorization", &good), ("authorization", &good), FORM], cc).await;
    twice.assert_error(400, "invalid_request");
    // 2, 3.
    oauth.token(&good, "grant_type=password&scope=%5C").await.assert_error(400, "unsupported_grant_type");
    oauth.token(&good, &format!("{cc}&scope=read%5Cwrite")).await.assert_error(400, "invalid_scope");
    // 4: every client failure is the one invalid_client.
    for authorization in [basic("client-1", "wrong"), basic("nobody", apps.client.expose()), "Basic !!".into()] {
        oauth.token(&authorization, cc).await.assert_error(401, "invalid_client");
    }
    let posted = format!("{cc}&client_id=client-1&client_secret={}", apps.client.expose());
    assert_eq!(oauth.call("POST", "/oauth/v2/token", &[FORM], &posted).await.status, 200, "client_secret_post");
    // 5: an API app without the grant.
    let api = basic("api-1", apps.api1.expose());
    oauth.token(&api, cc).await.assert_error(400, "unauthorized_client");
    // 6 and the answer.
    let answer = oauth.token(&good, &format!("{cc}&scope=write+openid+read+delete")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 300);
    assert_eq!(answer.body["scope"], "write read");
    let token = answer.token();
    assert_eq!(decode_part(&token, 1)["scope"], "write read");
    // An INACTIVE client gets no token.
    set_app_attribute(&apps.store, &key_of("proj-1", "client-1"), "state", Some(AttributeValue::S("INACTIVE".into())))
        .await;
    oauth.token(&good, cc).await.assert_error(401, "invalid_client");
    // The discovery document and the keys.
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc = oauth.call("GET", path, &[], "").await;
        assert_eq!(doc.status, 200);
        assert_eq!(doc.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(
            doc.body,
            json!({"issuer": ISSUER, "token_endpoint": format!("{ISSUER}/oauth/v2/token"),
                "introspection_endpoint": format!("{ISSUER}/oauth/v2/introspect"),
                "jwks_uri": format!("{ISSUER}/oauth/v2/keys"), "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "response_types_supported": ["token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]})
        );
    }
    assert_clean_log(&oauth.log(), &[apps.client.expose(), apps.api1.expose()], &[&token]);
}

fn key_of(project: &str, app: &str) -> oidc_client_secret::app::AppKey {
    key(ORG, project, app)
}

#[tokio::test]
async fn the_previous_secret_gets_a_token_only_within_its_grace() {
    let apps = apps().await;
    let key = create_signing_key(&kms().await).await.unwrap();
    let mut oauth = Oauth::start(&oauth_env(apps.store.table(), &key, ISSUER)).await;
    let previous = ClientSecret::generate(64);
    let app = key_of("proj-1", "client-1");
    set_app_attribute(&apps.store, &app, "previousSecretHash", Some(AttributeValue::S(previous.hash(4).unwrap())))
        .await;
    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(60);
    let at = |t| AttributeValue::S(oidc_client_secret::app::format_timestamp(t));
    set_app_attribute(&apps.store, &app, "previousSecretExpiresAt", Some(at(later))).await;
    let cc = "grant_type=client_credentials";
    assert_eq!(oauth.token(&basic("client-1", previous.expose()), cc).await.status, 200);
    let past = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    set_app_attribute(&apps.store, &app, "previousSecretExpiresAt", Some(at(past))).await;
    oauth.token(&basic("client-1", previous.expose()), cc).await.assert_error(401, "invalid_client");
    assert_eq!(oauth.token(&basic("client-1", apps.client.expose()), cc).await.status, 200);
}

#[tokio::test]
async fn two_signing_keys_are_both_published_and_the_first_signs() {
    let apps = apps().await;
    let kms = kms().await;
    let (first, second) = (create_signing_key(&kms).await.unwrap(), create_signing_key(&kms).await.unwrap());
    let mut oauth = Oauth::start(&oauth_env(apps.store.table(), &format!("{first},{second}"), ISSUER)).await;
    let keys = oauth.call("GET", "/oauth/v2/keys", &[], "").await;
    assert_eq!(keys.header("cache-control"), Some("public, max-age=300"));
    let signer = KmsSigner::new(kms, vec![first, second]);
    let expected: Vec<Value> = signer.keys(Deadline::for_request()).await.unwrap().iter().map(|k| k.jwk()).collect();
    assert_eq!(keys.body, json!({"keys": expected}));
    for jwk in &expected {
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
            (Some("RSA"), Some("RS256"), Some("sig"))
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256, "RSA 2048");
    }
    let token = oauth.token(&basic("client-1", apps.client.expose()), "grant_type=client_credentials").await.token();
    assert_eq!(decode_part(&token, 0)["kid"], expected[0]["kid"]);
    assert_ne!(expected[0]["kid"], expected[1]["kid"]);
}

/// `TOKEN_SIGNING_KEYS` may name an alias. Moved to another key under a warm process (whose
/// JWKS still publishes the first key's public half), the alias signs with a key no client
/// can verify: no token is answered (503), and the log says which keys differ. Moved back,
/// tokens come again. On moto's KMS, whose `Sign` names the key by ARN and `GetPublicKey`
/// by id.
#[tokio::test]
async fn an_alias_moved_to_another_key_under_a_warm_process_issues_no_token() {
    let apps = apps().await;
    let kms = kms().await;
    let (first, second) = (create_signing_key(&kms).await.unwrap(), create_signing_key(&kms).await.unwrap());
    let alias = format!("alias/oauth-test-{:08x}", rand::random::<u32>());
    kms.create_alias().alias_name(&alias).target_key_id(&first).send().await.unwrap();
    let mut oauth = Oauth::start(&oauth_env(apps.store.table(), &alias, ISSUER)).await;
    let client = basic("client-1", apps.client.expose());
    let cc = "grant_type=client_credentials";
    let token = oauth.token(&client, cc).await.token();
    let published = oauth.call("GET", "/oauth/v2/keys", &[], "").await.body;
    assert_eq!(decode_part(&token, 0)["kid"], published["keys"][0]["kid"]);

    kms.update_alias().alias_name(&alias).target_key_id(&second).send().await.unwrap();
    let refused = oauth.token(&client, cc).await;
    refused.assert_error(503, "temporarily_unavailable");
    assert!(refused.body.get("access_token").is_none());
    let log = oauth.log();
    assert!(log.contains("signed by key") && log.contains(&second), "the log names the key that signed");

    kms.update_alias().alias_name(&alias).target_key_id(&first).send().await.unwrap();
    assert_eq!(oauth.token(&client, cc).await.status, 200);
}

/// Claims as the function would issue them to client-1, changed by `change`.
fn claims_for_client(change: impl FnOnce(&mut Claims)) -> Claims {
    let now = jwt::unix_now();
    let mut claims = Claims {
        iss: ISSUER.into(),
        sub: "client-1".into(),
        client_id: "client-1".into(),
        aud: vec!["proj-1".into()],
        iat: now,
        exp: now + 300,
        jti: jwt::new_jti(),
        scope: Some("read".into()),
        org: ORG.into(),
    };
    change(&mut claims);
    claims
}

#[tokio::test]
async fn introspection_answers_active_only_for_a_genuine_live_token_meant_for_the_caller() {
    let apps = apps().await;
    let kms = kms().await;
    let key = create_signing_key(&kms).await.unwrap();
    let mut oauth = Oauth::start(&oauth_env(apps.store.table(), &key, ISSUER)).await;
    let api1 = basic("api-1", apps.api1.expose());
    let api2 = basic("api-2", apps.api2.expose());
    let client = basic("client-1", apps.client.expose());
    let issued = oauth
        .token(
            &client,
            "grant_type=client_credentials&scope=read+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Aid%3Aproj-2%3Aaud",
        )
        .await
        .token();
    let claims = decode_part(&issued, 1);
    // Active, for either project it names.
    for caller in [&api1, &api2] {
        let answer = oauth.introspect(caller, &issued).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(
            answer.body,
            json!({"active": true, "scope": claims["scope"], "client_id": "client-1", "sub": "client-1",
                "aud": ["proj-1", "proj-2"], "iss": ISSUER, "exp": claims["exp"], "iat": claims["iat"],
                "jti": claims["jti"], "token_type": "Bearer"})
        );
    }
    // Only API apps may introspect; the rules of the form come first.
    oauth.introspect(&client, &issued).await.assert_error(401, "invalid_client");
    oauth.introspect(&basic("api-1", "wrong"), &issued).await.assert_error(401, "invalid_client");
    let no_token = oauth.call("POST", "/oauth/v2/introspect", &[("authorization", &api1), FORM], "").await;
    no_token.assert_error(400, "invalid_request");
    // A token for proj-1 only is not active for proj-2's API.
    let own = oauth.token(&client, "grant_type=client_credentials").await.token();
    assert_eq!(
        oauth.introspect(&api1, &own).await.body,
        json!({"active": true, "client_id": "client-1", "sub": "client-1", "aud": ["proj-1"], "iss": ISSUER, "exp": decode_part(&own, 1)["exp"], "iat": decode_part(&own, 1)["iat"], "jti": decode_part(&own, 1)["jti"], "token_type": "Bearer"})
    );
    assert_eq!(oauth.introspect(&api2, &own).await.body, json!({"active": false}), "another project's token");

    // Forgeries, each inactive.
    let signer = KmsSigner::new(kms.clone(), vec![key.clone()]);
    let public = signer.keys(Deadline::for_request()).await.unwrap();
    let kid = public[0].kid.clone();
    let sign = |claims: Claims| {
        let signer = &signer;
        async move { jwt::issue(signer, &claims, Deadline::for_request()).await.unwrap() }
    };
    let inactive = |token: String, what: &'static str| (token, what);
    let mut forged = vec![
        inactive(sign(claims_for_client(|c| c.exp = jwt::unix_now() - 1)).await, "expired"),
        inactive(sign(claims_for_client(|c| c.iat = jwt::unix_now() + 3600)).await, "issued an hour ahead"),
        inactive(sign(claims_for_client(|c| c.iss = "https://evil.example".into())).await, "another issuer"),
        inactive(sign(claims_for_client(|c| c.aud = vec!["proj-9".into()])).await, "another audience"),
    ];
    // A genuine signature over a tampered payload.
    let mut parts: Vec<String> = issued.split('.').map(str::to_owned).collect();
    let mut tampered = decode_part(&issued, 1);
    tampered["scope"] = json!("read write admin");
    parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
    forged.push(inactive(parts.join("."), "tampered payload"));
    // Another key: neither under its own kid nor under ours.
    let other = create_signing_key(&kms).await.unwrap();
    let other_signer = KmsSigner::new(kms.clone(), vec![other]);
    forged.push(inactive(
        jwt::issue(&other_signer, &claims_for_client(|_| {}), Deadline::for_request()).await.unwrap(),
        "another key",
    ));
    let other_token = jwt::issue(&other_signer, &claims_for_client(|_| {}), Deadline::for_request()).await.unwrap();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string());
    let rest: Vec<&str> = other_token.splitn(2, '.').collect();
    forged.push(inactive(format!("{header}.{}", rest[1]), "another key under our kid"));
    // Algorithm confusion: none, HS256 keyed with our public key, ES256 and PS256 headers.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims_for_client(|_| {})).unwrap());
    let with = |alg: &str, signature: &[u8]| {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    };
    forged.push(inactive(with("none", b""), "alg none"));
    let der = kms.get_public_key().key_id(&key).send().await.unwrap().public_key().unwrap().as_ref().to_vec();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.clone());
    for secret in [der.clone(), serde_json::to_vec(&public[0].jwk()).unwrap()] {
        let token = jsonwebtoken::encode(
            &hs_header,
            &claims_for_client(|_| {}),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        forged.push(inactive(token, "HS256 keyed with the public key"));
    }
    forged.push(inactive(with("ES256", &[7u8; 64]), "ES256"));
    let pss_input = {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "PS256", "typ": "at+jwt", "kid": kid}).to_string());
        format!("{header}.{payload}")
    };
    let pss = kms
        .sign()
        .key_id(&key)
        .message(aws_sdk_kms::primitives::Blob::new(pss_input.as_bytes()))
        .message_type(aws_sdk_kms::types::MessageType::Raw)
        .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .map(|o| o.signature().unwrap().as_ref().to_vec())
        .unwrap_or_else(|_| vec![1u8; 256]);
    forged.push(inactive(format!("{pss_input}.{}", URL_SAFE_NO_PAD.encode(pss)), "PS256 by our own key"));
    for (token, what) in &forged {
        let answer = oauth.introspect(&api1, token).await;
        assert_eq!((answer.status, &answer.body), (200, &json!({"active": false})), "{what}");
    }
    // The control: a token signed the same way, unchanged, is active.
    let control = sign(claims_for_client(|_| {})).await;
    assert_eq!(oauth.introspect(&api1, &control).await.body["active"], true, "the control token");
    // A client made INACTIVE after issue: its tokens die at once.
    set_app_attribute(&apps.store, &key_of("proj-1", "client-1"), "state", Some(AttributeValue::S("INACTIVE".into())))
        .await;
    assert_eq!(oauth.introspect(&api1, &issued).await.body, json!({"active": false}), "deactivated client");
    let tokens: Vec<&str> = forged.iter().map(|(t, _)| t.as_str()).chain([issued.as_str(), own.as_str()]).collect();
    assert_clean_log(&oauth.log(), &[apps.client.expose(), apps.api1.expose(), apps.api2.expose()], &tokens);
}

#[tokio::test]
async fn kms_or_dynamodb_down_is_503_temporarily_unavailable_and_no_token() {
    let apps = apps().await;
    let key = create_signing_key(&kms().await).await.unwrap();
    let client = basic("client-1", apps.client.expose());
    let cc = "grant_type=client_credentials";
    // KMS unreachable: the keys cannot be read, nothing can be signed.
    let mut env = oauth_env(apps.store.table(), &key, ISSUER);
    env.iter_mut().find(|(n, _)| *n == "AWS_ENDPOINT_URL_KMS").unwrap().1 = "http://127.0.0.1:1".into();
    let mut oauth = Oauth::start(&env).await;
    let answer = oauth.token(&client, cc).await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.body.get("access_token").is_none());
    let keys = oauth.call("GET", "/oauth/v2/keys", &[], "").await;
    assert_eq!((keys.status, keys.body["error"].as_str()), (503, Some("temporarily_unavailable")));
    // DynamoDB unreachable: never invalid_client.
    let mut env = oauth_env(apps.store.table(), &key, ISSUER);
    env.iter_mut().find(|(n, _)| *n == "AWS_ENDPOINT_URL_DYNAMODB").unwrap().1 = "http://127.0.0.1:1".into();
    let mut oauth = Oauth::start(&env).await;
    oauth.token(&client, cc).await.assert_error(503, "temporarily_unavailable");
    oauth.introspect(&basic("api-1", apps.api1.expose()), "x.y.z").await.assert_error(503, "temporarily_unavailable");
}
