//! The `verify-secret` function's face: API Gateway's Lambda authorizer events in, their
//! answers out (SPEC section 11), as `rotation` is the rotation function's face.
//!
//! | event | allowed | denied |
//! |---|---|---|
//! | HTTP API, payload 2.0 (simple responses) | `{"isAuthorized": true, "context": {...}}` | `{"isAuthorized": false}` (403) |
//! | HTTP API, payload 1.0, and REST API `REQUEST` | an IAM policy: `principalId`, `Allow execute-api:Invoke` on the whole API's stage, `context` | the error `Unauthorized` (401) |
//!
//! A store failure (DynamoDB throttled, unreachable, timing out) is no answer at all, for
//! every event kind: the function error `StoreUnavailable`, which API Gateway answers with a
//! 500 and does not cache. A denial would be cached for the whole TTL and tell a client with
//! a valid secret that its credentials are wrong, long after DynamoDB recovered.
//!
//! The credentials are the `Authorization: Basic` header of RFC 6749 section 2.3.1, and
//! nothing else of the request. The answer's context names the client and its app and which
//! secret matched, never the secret, its hash or the header. One log line per call, an EMF
//! document with the `Authentications` metric by outcome; a denial's reason goes only there.
//! The function also answers the template's example routes: an HTTP API request whose
//! authorizer context it echoes, this authorizer's (`GET /client/whoami`) or the claims of
//! API Gateway's own JWT authorizer (`GET /client/token-whoami`, a token of `oauth`'s).

use std::time::Instant;

use base64::Engine;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Map, Value, json};

use crate::authenticate::{Authentication, Authenticator, Credentials, Denial, Directory};
use crate::deadline::Deadline;
use crate::{logging, metrics};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV1Request,
    ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest,
};
use lambda_http::aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};

/// The error API Gateway turns into a 401 for IAM-policy authorizers.
pub const UNAUTHORIZED: &str = "Unauthorized";
/// The error of a store failure, for every event kind: any error type but `Unauthorized`
/// is an authorizer failure to API Gateway, answered 500 and never cached.
pub const STORE_UNAVAILABLE: &str = "StoreUnavailable";
/// The longest client id the log line keeps.
const LOGGED_CLIENT_ID: usize = 200;

/// The credentials of an `Authorization` header value: `Basic` (any case), then the
/// base64 of `urlencode(client id) ":" urlencode(secret)`, each part form-urlencoded
/// (`+` a space, `%XX` a byte). `None` for anything else.
pub fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(token.trim_start()).ok()?;
    let decoded = std::str::from_utf8(&decoded).ok()?;
    let (client, secret) = decoded.split_once(':')?;
    Some((form_urldecode(client)?, form_urldecode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one value; `None` when it is not UTF-8.
fn form_urldecode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

/// The credentials of a request's headers: exactly one `Authorization` header, Basic.
fn credentials(headers: &lambda_http::http::HeaderMap) -> Credentials {
    let mut values = headers.get_all(lambda_http::http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return Credentials::default() };
    match basic_credentials(value.as_bytes()) {
        Some((client, secret)) => Credentials { client_id: Some(client), secret: Some(secret) },
        // The client id alone, for the log, when the rest is what failed.
        None => Credentials::default(),
    }
}

/// The resource an allowed IAM policy covers: every route of the API's stage, from the
/// event's ARN (`arn:aws:execute-api:region:account:api/stage/METHOD/path`), so that a
/// cached answer serves every route.
fn whole_api(method_arn: &str) -> Option<String> {
    // Six fields: the path, last, comes from the caller's URL and may hold `:` itself.
    let fields: Vec<&str> = method_arn.splitn(6, ':').collect();
    let [arn, partition, service, region, account, path] = fields[..] else { return None };
    let mut parts = path.split('/');
    let (api, stage) = (parts.next()?, parts.next()?);
    (arn == "arn" && !api.is_empty() && !stage.is_empty())
        .then(|| format!("{arn}:{partition}:{service}:{region}:{account}:{api}/{stage}/*"))
}

/// An event the function answers with an error rather than an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The denial of the IAM-policy kinds (and of an event that does not parse): 401.
    Unauthorized,
    /// The store failed: no verdict, for every kind (500, not cached).
    StoreUnavailable,
}

impl From<Refusal> for Diagnostic {
    fn from(refusal: Refusal) -> Self {
        // Neither message says more than the type: the log line has the detail.
        let kind = match refusal {
            Refusal::Unauthorized => UNAUTHORIZED,
            Refusal::StoreUnavailable => STORE_UNAVAILABLE,
        };
        Diagnostic { error_type: kind.into(), error_message: kind.into() }
    }
}

/// The function's state, built once at start-up.
pub struct Authorizer<D> {
    authenticator: Authenticator<D>,
    function: String,
}

/// Which authorizer answer an event wants.
enum Kind {
    /// HTTP API, payload 2.0: simple responses.
    Simple,
    /// HTTP API payload 1.0, or REST API `REQUEST`: an IAM policy, on this ARN.
    Policy(Option<String>),
    /// The example routes: an HTTP API request behind this authorizer or a JWT authorizer.
    WhoAmI(Value),
}

impl<D: Directory> Authorizer<D> {
    pub fn new(directory: D, hash_cost: u32) -> Self {
        Self { authenticator: Authenticator::new(directory, hash_cost), function: metrics::function_name() }
    }

    /// Answers one event; `Err(Unauthorized)` is the denial of the IAM-policy kinds,
    /// `Err(StoreUnavailable)` a store failure whatever the kind.
    pub async fn handle(&self, event: Value, request_id: &str, deadline: Deadline) -> Result<Value, Refusal> {
        let started = Instant::now();
        let (kind, presented) = match read_event(event) {
            Ok(read) => read,
            // The parser's message may quote a header value, the credentials included: only
            // the event kind goes to the log.
            Err(kind) => {
                tracing::warn!(request_id, kind, "an authorizer event that does not parse: denied");
                return Err(Refusal::Unauthorized);
            }
        };
        if let Kind::WhoAmI(context) = kind {
            return Ok(json!({
                "statusCode": 200,
                "headers": {"content-type": "application/json", "cache-control": "no-store"},
                "body": context.to_string(),
            }));
        }
        let auth = self.authenticator.authenticate(&presented, deadline).await;
        self.log(request_id, &presented, &auth, started);
        if let Err(Denial::Unavailable(_)) = &auth.result {
            return Err(Refusal::StoreUnavailable);
        }
        let context = auth.result.as_ref().ok().zip(auth.key.as_ref()).zip(auth.client.as_ref()).map(
            |((matched, key), client)| {
                json!({
                    "clientId": client.as_str(),
                    "orgId": key.org.as_str(),
                    "projectId": key.project.as_str(),
                    "appId": key.app.as_str(),
                    "secret": matched.as_str(),
                })
            },
        );
        match (kind, context) {
            (Kind::Simple, Some(context)) => {
                let mut answer = ApiGatewayV2CustomAuthorizerSimpleResponse::<Value>::default();
                answer.is_authorized = true;
                answer.context = context;
                Ok(serde_json::to_value(answer).expect("an answer serializes"))
            }
            (Kind::Simple, None) => Ok(json!({"isAuthorized": false})),
            (Kind::Policy(Some(resource)), Some(context)) => {
                let mut statement = IamPolicyStatement::default();
                statement.action = vec!["execute-api:Invoke".into()];
                statement.effect = IamPolicyEffect::Allow;
                statement.resource = vec![resource];
                let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
                policy.version = Some("2012-10-17".into());
                policy.statement = vec![statement];
                let mut answer = ApiGatewayCustomAuthorizerResponse::<Value>::default();
                answer.principal_id = context["clientId"].as_str().map(str::to_owned);
                answer.policy_document = policy;
                answer.context = context;
                let mut answer = serde_json::to_value(answer).expect("an answer serializes");
                // No usage plan key: the field is left out rather than sent as null.
                answer.as_object_mut().expect("an object").retain(|_, v| !v.is_null());
                Ok(answer)
            }
            _ => Err(Refusal::Unauthorized),
        }
    }

    /// One line per call: who, which app, the outcome and why, how long; never the secret.
    fn log(&self, request_id: &str, presented: &Credentials, auth: &Authentication, started: Instant) {
        let client: String =
            presented.client_id.as_deref().unwrap_or_default().chars().take(LOGGED_CLIENT_ID).collect();
        let app = auth.key.as_ref().map(|k| format!("{}/{}/{}", k.org, k.project, k.app)).unwrap_or_default();
        let (outcome, reason) = match &auth.result {
            Ok(matched) => (matched.as_str(), ""),
            Err(denial) => (denial.outcome(), denial.reason()),
        };
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        let fields = Map::from_iter([
            ("request_id".to_owned(), Value::from(request_id)),
            ("client_id".to_owned(), Value::from(client)),
            ("app".to_owned(), Value::from(app)),
            ("reason".to_owned(), Value::from(reason)),
            ("duration_ms".to_owned(), Value::from(duration_ms)),
            ("Function".to_owned(), Value::from(self.function.as_str())),
            ("Outcome".to_owned(), Value::from(outcome)),
        ]);
        logging::request_line("authenticate client", fields, |line| {
            metrics::document(
                metrics::now_ms(),
                vec![vec!["Function", "Outcome"], vec!["Function"]],
                &[("Authentications", "Count", 1.0), ("AuthenticationDuration", "Milliseconds", duration_ms)],
                line,
            )
        });
        if let Err(Denial::Unavailable(detail)) = &auth.result {
            tracing::error!(request_id, detail, "authentication failed: the store is unavailable");
        }
    }
}

/// Which kind of event, and the credentials it carries.
fn read_event(event: Value) -> Result<(Kind, Credentials), String> {
    let version = event.get("version").and_then(Value::as_str).map(str::to_owned);
    let kind = event.get("type").and_then(Value::as_str).map(str::to_owned);
    match (version.as_deref(), kind.as_deref()) {
        (Some("2.0"), Some("REQUEST")) => {
            let request: ApiGatewayV2CustomAuthorizerV2Request =
                serde_json::from_value(event).map_err(|_| "HTTP API payload 2.0".to_owned())?;
            Ok((Kind::Simple, credentials(&request.headers)))
        }
        (Some("1.0"), Some("REQUEST")) => {
            let request: ApiGatewayV2CustomAuthorizerV1Request =
                serde_json::from_value(event).map_err(|_| "HTTP API payload 1.0".to_owned())?;
            let arn = request.method_arn.as_deref().and_then(whole_api);
            Ok((Kind::Policy(arn), credentials(&request.headers)))
        }
        (None, Some("REQUEST")) => {
            let request: ApiGatewayCustomAuthorizerRequestTypeRequest =
                serde_json::from_value(event).map_err(|_| "REST API REQUEST".to_owned())?;
            let arn = request.method_arn.as_deref().and_then(whole_api);
            // A REST event also lists every value of a repeated header apart.
            let repeated =
                request.multi_value_headers.get_all(lambda_http::http::header::AUTHORIZATION).iter().count() > 1;
            let presented = if repeated { Credentials::default() } else { credentials(&request.headers) };
            Ok((Kind::Policy(arn), presented))
        }
        (Some("2.0"), None) => {
            let request: ApiGatewayV2httpRequest =
                serde_json::from_value(event).map_err(|_| "HTTP API request".to_owned())?;
            // This authorizer's context, or a JWT authorizer's claims (the token itself is
            // not in the event).
            let context = request
                .request_context
                .authorizer
                .and_then(|a| match a.jwt {
                    _ if !a.fields.is_empty() => Some(Value::Object(a.fields.into_iter().collect())),
                    Some(jwt) if !jwt.claims.is_empty() => Some(json!(jwt.claims)),
                    _ => None,
                })
                .ok_or("an HTTP API request without an authorizer's context")?;
            Ok((Kind::WhoAmI(context), Credentials::default()))
        }
        _ => Err(format!("version {version:?}, type {kind:?}")),
    }
}

/// The HTTP API payload 2.0 event API Gateway sends this authorizer for a `method` request
/// to `path` carrying `authorization`: what the local server plays API Gateway with.
pub fn simple_request_event(authorization: &str, method: &str, path: &str) -> Value {
    let route = format!("{method} {path}");
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": format!("arn:aws:execute-api:local:000000000000:local/$default/{method}{path}"),
        "identitySource": [authorization], "routeKey": route, "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": authorization},
        "requestContext": {"accountId": "000000000000", "apiId": "local", "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local"},
            "requestId": format!("{:032x}", rand::random::<u128>()), "routeKey": route, "stage": "$default",
            "time": "", "timeEpoch": 0u64},
    })
}

/// Serves authorizer events through the Lambda Runtime API until the runtime stops.
pub async fn run<D: Directory>(authorizer: Authorizer<D>) -> Result<(), lambda_runtime::Error> {
    let authorizer = &authorizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = Deadline::from_lambda(event.context.deadline);
        authorizer.handle(event.payload, &event.context.request_id, deadline).await.map_err(Diagnostic::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn basic(raw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_parts_in_base64() {
        assert_eq!(basic_credentials(basic("client-1:s3cret").as_bytes()), Some(("client-1".into(), "s3cret".into())));
        // `+` is a space, `%XX` a byte; the first unencoded `:` separates.
        assert_eq!(
            basic_credentials(basic("a%40b%25c:x%2By+z%3A").as_bytes()),
            Some(("a@b%c".into(), "x+y z:".into()))
        );
        assert_eq!(basic_credentials(basic("id@project:abc").as_bytes()), Some(("id@project".into(), "abc".into())));
        let lower = format!("bAsIc {}", base64::engine::general_purpose::STANDARD.encode("c:s"));
        assert_eq!(basic_credentials(lower.as_bytes()), Some(("c".into(), "s".into())));
        for bad in ["Bearer abc", "Basic", "Basic !!!", &basic("no-colon"), &basic("c:%ff"), "Basicabc"] {
            assert_eq!(basic_credentials(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn an_allowed_policy_covers_the_whole_api_stage() {
        assert_eq!(
            whole_api("arn:aws:execute-api:eu-central-1:123456789012:abcdef1234/prod/GET/orders/7").as_deref(),
            Some("arn:aws:execute-api:eu-central-1:123456789012:abcdef1234/prod/*")
        );
        assert_eq!(whole_api("arn:aws:execute-api:eu-central-1:123456789012:abcdef1234").as_deref(), None);
        // A `:` in the caller's path changes nothing.
        assert_eq!(
            whole_api("arn:aws:execute-api:eu-central-1:123456789012:abcdef1234/prod/GET/orders/a:b/c").as_deref(),
            Some("arn:aws:execute-api:eu-central-1:123456789012:abcdef1234/prod/*")
        );
    }

    #[tokio::test]
    async fn the_simple_request_event_is_one_this_authorizer_reads() {
        let authorizer = Authorizer::new(crate::store::memory::MemoryStore::default(), 4);
        let event = simple_request_event(&basic("nobody:nothing"), "GET", "/client/whoami");
        let answer = authorizer.handle(event, "test", Deadline::for_request()).await;
        assert_eq!(answer, Ok(json!({"isAuthorized": false})), "parsed as payload 2.0, and denied");
    }

    #[tokio::test]
    async fn the_token_whoami_route_answers_the_jwt_authorizers_claims() {
        let authorizer = Authorizer::new(crate::store::memory::MemoryStore::default(), 4);
        let mut event: Value = serde_json::from_str(include_str!("../events/authorizer-whoami.json")).unwrap();
        let claims = json!({"sub": "demo-app@demo-project", "client_id": "demo-app@demo-project",
            "urn:zitadel:iam:user:resourceowner:id": "demo-org", "scope": "orders.read"});
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": ["orders.read"]}});
        let answer = authorizer.handle(event.clone(), "test", Deadline::for_request()).await.unwrap();
        assert_eq!(answer["statusCode"], json!(200));
        assert_eq!(serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap(), claims);
        // No authorizer's context at all: not an example route's request.
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {}, "scopes": null}});
        assert_eq!(authorizer.handle(event, "test", Deadline::for_request()).await, Err(Refusal::Unauthorized));
    }

    /// Every authorizer event kind of `events/`, with how it denies.
    fn every_kind() -> [(&'static str, Value, Result<Value, Refusal>); 3] {
        let file = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        [
            (
                "HTTP API payload 2.0",
                file(include_str!("../events/authorizer-http-v2-wrong-secret.json")),
                Ok(json!({"isAuthorized": false})),
            ),
            (
                "HTTP API payload 1.0",
                file(include_str!("../events/authorizer-http-v1-allowed.json")),
                Err(Refusal::Unauthorized),
            ),
            (
                "REST API REQUEST",
                file(include_str!("../events/authorizer-rest-request-wrong-secret.json")),
                Err(Refusal::Unauthorized),
            ),
        ]
    }

    #[tokio::test]
    async fn a_store_failure_is_a_function_error_of_its_own_for_every_event_kind() {
        for (kind, event, denied) in every_kind() {
            let store = crate::store::memory::MemoryStore::default();
            store.fail_next_directory_read(crate::error::Error::Unavailable("throttled".into()));
            let authorizer = Authorizer::new(store, 4);
            let answer = authorizer.handle(event.clone(), "test", Deadline::for_request()).await;
            assert_eq!(answer, Err(Refusal::StoreUnavailable), "{kind}");
            // With the store up, the same kind's ordinary denial (no such client here).
            let authorizer = Authorizer::new(crate::store::memory::MemoryStore::default(), 4);
            assert_eq!(authorizer.handle(event, "test", Deadline::for_request()).await, denied, "{kind}");
        }
    }

    #[test]
    fn only_a_denial_is_the_error_api_gateway_answers_401() {
        let unavailable = Diagnostic::from(Refusal::StoreUnavailable);
        assert_eq!(unavailable.error_type, STORE_UNAVAILABLE);
        assert_ne!(unavailable.error_type, UNAUTHORIZED, "API Gateway would cache it as a denial");
        assert_eq!(Diagnostic::from(Refusal::Unauthorized).error_type, UNAUTHORIZED);
    }

    proptest! {
        #[test]
        fn arbitrary_header_bytes_never_panic_and_never_parse_without_the_scheme(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let parsed = basic_credentials(&bytes);
            if let Some((client, secret)) = parsed {
                let text = std::str::from_utf8(&bytes).unwrap().trim();
                prop_assert!(text[..5].eq_ignore_ascii_case("basic"));
                prop_assert!(client.len() + secret.len() <= bytes.len());
            }
        }

        #[test]
        fn any_encoded_pair_reads_back_as_itself(client in "[ -~]{1,40}", secret in "[ -~]{0,40}") {
            let encode = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
            let header = basic(&format!("{}:{}", encode(&client), encode(&secret)));
            prop_assert_eq!(basic_credentials(header.as_bytes()), Some((client, secret)));
        }
    }
}
