//! Hostile input, panics and log hygiene, through the real handler on DynamoDB Local.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oidc_client_secret::api::{MAX_HEADER_BYTES, MAX_HEADERS, Service};
use oidc_client_secret::app::AppKey;
use oidc_client_secret::config::SecretSettings;
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::UserId;
use oidc_client_secret::regenerate::{APP_WRITE_PERMISSION, Commit, CommitError, Snapshot, Store};
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

/// The real store, counting the calls made to it.
struct CountingStore {
    inner: DynamoStore,
    calls: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    async fn load(&self, key: &AppKey, member: Option<&UserId>, deadline: Deadline) -> Result<Snapshot, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key, member, deadline).await
    }

    async fn project_org(
        &self,
        project: &oidc_client_secret::ids::ProjectId,
        deadline: Deadline,
    ) -> Result<Option<oidc_client_secret::ids::OrgId>, Error> {
        self.inner.project_org(project, deadline).await
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), CommitError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(commit).await
    }
}

/// Ids the property tests draw from: mostly valid, sometimes hostile.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(PROJECT.to_owned()),
        4 => Just(APP.to_owned()),
        2 => "[A-Za-z0-9_.@-]{1,12}",
        1 => Just(String::new()),
        1 => "[A-Za-z0-9#/ %?&é\u{0}-\u{1f}]{1,16}",
        1 => "[a-z]{199,203}",
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => id().prop_map(|v| ("x-zitadel-orgid".to_owned(), v)),
        1 => Just(("X-ZITADEL-ORGID".to_owned(), ORG.to_owned())),
        1 => ("[a-z][a-z0-9-]{0,20}", "[ -~]{0,40}"),
        1 => Just(("authorization".to_owned(), "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned())),
    ]
}

fn body() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some("{}".to_owned())),
        1 => Just(Some(r#"{"projectId":"x","appId":"y","clientSecret":"z"}"#.to_owned())),
        2 => proptest::option::of("[ -~\n]{0,64}"),
        1 => Just(Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(16 * 1024)))),
    ]
}

fn claims_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(claims(USER, ORG)),
        1 => (id(), id()).prop_map(|(u, o)| claims(&u, &o)),
        1 => Just(json!({})),
        1 => Just(json!({"sub": USER})),
    ]
}

#[derive(Debug, Clone)]
enum Kind {
    HttpJwt(Option<Value>),
    HttpLambda(Value),
    Rest(Value),
    Alb,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => proptest::option::of(claims_value()).prop_map(Kind::HttpJwt),
        1 => claims_value().prop_map(Kind::HttpLambda),
        1 => claims_value().prop_map(|c| Kind::Rest(json!({ "claims": c }))),
        1 => Just(Kind::Alb),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let method = prop_oneof![6 => Just("POST"), 1 => Just("GET"), 1 => Just("PUT"), 1 => Just("OPTIONS")];
    let path = prop_oneof![
        6 => (id(), id()).prop_map(|(p, a)| (Some((p.clone(), a.clone())), route(&p, &a))),
        2 => (id(), id()).prop_map(|(p, a)| (None, route(&p, &a))),
        1 => "/[ -~]{0,60}".prop_map(|p| (None, p)),
    ];
    (method, path, proptest::collection::vec(header(), 0..4), body(), any::<bool>()).prop_map(
        |(method, (parameters, path), headers, body, base64)| {
            let mut call = Call::raw(method, &path);
            call.path_parameters = parameters;
            call.headers.extend(headers);
            call.base64 = base64 && body.is_some();
            call.body = body;
            call
        },
    )
}

/// The errors decided before storage: none of them may touch it.
fn refused_before_storage(body: &Value) -> bool {
    let id = body["details"][0]["id"].as_str();
    matches!(id, Some("REQ-invalid" | "COMMAND-99i83" | "AUTH-7fs1e")) || body["details"] == json!([])
}

#[test]
fn arbitrary_requests_always_get_an_envelope_and_refusals_never_touch_storage() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = runtime.block_on(async {
        let store = empty_table().await;
        seed_app(&store, NewApp::oidc(key(ORG, PROJECT, APP), "client-1")).await;
        seed_member(&store, ORG, None, USER, &[APP_WRITE_PERMISSION]).await;
        Service::new(
            CountingStore { inner: store.clone(), calls: calls.clone() },
            &config(store.table(), SecretSettings::default()),
        )
    });
    let config = ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(call in call(), kind in kind())| {
        let event = match &kind {
            Kind::HttpJwt(claims) => http_v2_event_with(&call, claims.as_ref().map(|c| json!({"jwt": {"claims": c}}))),
            Kind::HttpLambda(context) => http_v2_event_with(&call, Some(json!({"lambda": context}))),
            Kind::Rest(authorizer) => rest_v1_event(&call, authorizer.clone()),
            Kind::Alb => alb_event(&call),
        };
        // Inputs API Gateway itself could not send (say, a header value it would reject)
        // never reach the function; the property is about the ones that can.
        let Ok(event) = serde_json::from_value(event) else { return Ok(()) };
        let request = oidc_client_secret::api::request_from_event(event);
        let before = calls.load(Ordering::SeqCst);
        let answer = runtime.block_on(send(&service, request));
        let touched = calls.load(Ordering::SeqCst) != before;
        answer.assert_common_headers();
        prop_assert_ne!(answer.status, 500, "no input may reach an internal error: {}", answer.json);
        if answer.status == 200 {
            prop_assert_eq!(answer.json["clientSecret"].as_str().map(str::len), Some(64));
            prop_assert!(touched);
        } else {
            let body = answer.json.as_object().expect("an envelope object");
            prop_assert_eq!(body.len(), 3, "code, message, details: {}", answer.json);
            prop_assert!(body["code"].is_u64() && body["message"].is_string() && body["details"].is_array());
            prop_assert!(!answer.json.to_string().contains("clientSecret"));
            if refused_before_storage(&answer.json) {
                prop_assert!(!touched, "a refused input reached storage: {}", answer.json);
            }
        }
    });
}

#[tokio::test]
async fn header_count_and_length_limits_are_invalid_argument() {
    let f = fixture().await;
    let mut many = Call::post(PROJECT, APP);
    for i in 0..MAX_HEADERS {
        many = many.header(&format!("x-filler-{i}"), "1");
    }
    send(&f.service, http_v2_jwt(&many, Some(claims(USER, ORG)))).await.assert_invalid("headers");
    let long = Call::post(PROJECT, APP).header("x-long", &"a".repeat(MAX_HEADER_BYTES));
    send(&f.service, http_v2_jwt(&long, Some(claims(USER, ORG)))).await.assert_invalid("headers");
    let body = Call::post(PROJECT, APP).body(&format!("{{\"pad\":\"{}\"}}", "x".repeat(16 * 1024)));
    send(&f.service, http_v2_jwt(&body, Some(claims(USER, ORG)))).await.assert_invalid("body");
    let ok = Call::post(PROJECT, APP).header("x-long", &"a".repeat(MAX_HEADER_BYTES - 16));
    assert_eq!(send(&f.service, http_v2_jwt(&ok, Some(claims(USER, ORG)))).await.status, 200);
}

/// The real store, except that its first read panics.
struct PanicOnceStore {
    inner: DynamoStore,
    panicked: AtomicBool,
}

impl Store for PanicOnceStore {
    async fn load(&self, key: &AppKey, member: Option<&UserId>, deadline: Deadline) -> Result<Snapshot, Error> {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            panic!("storage adapter bug");
        }
        self.inner.load(key, member, deadline).await
    }

    async fn project_org(
        &self,
        project: &oidc_client_secret::ids::ProjectId,
        deadline: Deadline,
    ) -> Result<Option<oidc_client_secret::ids::OrgId>, Error> {
        self.inner.project_org(project, deadline).await
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), CommitError> {
        self.inner.commit(commit).await
    }
}

#[tokio::test]
async fn a_panic_in_the_handler_is_a_500_for_that_request_and_the_next_is_served() {
    let f = fixture().await;
    let store = PanicOnceStore { inner: f.store.clone(), panicked: AtomicBool::new(false) };
    let service = Service::new(store, &config(f.store.table(), SecretSettings::default()));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(500, 13, "INTERNAL", "Internal error");
    assert!(!answer.json.to_string().contains("storage adapter bug"));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
}

/// A store that answers every call "unavailable", counting the calls.
struct Unavailable(Arc<AtomicUsize>);

impl Store for Unavailable {
    async fn load(&self, _: &AppKey, _: Option<&UserId>, _: Deadline) -> Result<Snapshot, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::Unavailable("the property test's store".into()))
    }

    async fn commit(&self, _: &Commit<'_>) -> Result<(), CommitError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CommitError::Store(Error::Unavailable("the property test's store".into())))
    }

    async fn project_org(
        &self,
        _: &oidc_client_secret::ids::ProjectId,
        _: Deadline,
    ) -> Result<Option<oidc_client_secret::ids::OrgId>, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::Unavailable("the property test's store".into()))
    }
}

/// Whether `body` is a well-formed request whose ids pass the id rule: only such a body
/// may reach storage.
fn well_formed(body: &[u8], content_type: &str) -> bool {
    use oidc_client_secret::api::proto::RegenerateOidcClientSecretRequest;
    use oidc_client_secret::ids::{AppId, ProjectId};
    use prost::Message;
    let message = match content_type {
        "application/json" => return false, // random bytes are not a JSON object with ids
        "application/proto" => body,
        _ if body.len() >= 5
            && body[0] == 0
            && u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize == body.len() - 5 =>
        {
            &body[5..]
        }
        _ => return false,
    };
    RegenerateOidcClientSecretRequest::decode(message)
        .is_ok_and(|m| ProjectId::parse(&m.project_id).is_ok() && AppId::parse(&m.app_id).is_ok())
}

#[test]
fn arbitrary_bytes_at_the_grpc_path_never_panic_and_only_well_formed_requests_reach_storage() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    const PATH: &str = "/zitadel.management.v1.ManagementService/RegenerateOIDCClientSecret";
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = Service::new(Unavailable(calls.clone()), &config("unavailable", SecretSettings::default()));
    const CONTENT_TYPES: [&str; 4] =
        ["application/grpc-web+proto", "application/grpc-web-text+proto", "application/proto", "application/json"];
    // Half the bodies carry a frame prefix that announces their length, so that the
    // message decoder is reached, not only the frame decoder.
    let body = (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(framed, bytes)| {
        if framed {
            let mut out = vec![0];
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend(bytes);
            out
        } else {
            bytes
        }
    });
    let config = ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(body in body, content_type in proptest::sample::select(&CONTENT_TYPES[..]))| {
        let text = content_type.contains("text");
        let call = Call {
            method: "POST".into(),
            path: PATH.into(),
            path_parameters: None,
            headers: vec![("content-type".into(), content_type.into())],
            body: Some(STANDARD.encode(&body)),
            // The text form's body is base64 itself; binary bodies come base64-encoded by API Gateway.
            base64: !text,
        };
        let before = calls.load(Ordering::SeqCst);
        let response = runtime.block_on(service.handle(http_v2_jwt(&call, Some(claims(USER, ORG)))));
        let touched = calls.load(Ordering::SeqCst) != before;
        prop_assert_ne!(response.status(), 500, "a panic or an internal error");
        prop_assert_eq!(response.headers()["cache-control"].to_str().unwrap(), "no-store");
        prop_assert!(!touched || well_formed(&body, content_type), "a malformed body reached storage");
    });
}
