//! The HTTP operation end to end: JSON events through the real handler, against
//! DynamoDB Local. Each test gets its own table.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use oidc_client_secret::api::Service;
use oidc_client_secret::app::AppKey;
use oidc_client_secret::config::SecretSettings;
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::UserId;
use oidc_client_secret::regenerate::{APP_WRITE_PERMISSION, Commit, CommitError, Snapshot, Store};
use oidc_client_secret::secret::verify_client_secret;
use oidc_client_secret::store::dynamodb::{DynamoStore, EVENT_TYPE};
use oidc_client_secret::store::keys;
use oidc_client_secret::store::seed::NewApp;
use serde_json::json;
use support::*;
use time::OffsetDateTime;

fn is_rfc3339_micros_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 27
        && text.ends_with('Z')
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

/// Checks a 200 answer and the table behind it: sequence, hash, event, and no plaintext.
async fn assert_rotated(f: &Fixture, answer: &Answer, expected_sequence: u64) {
    answer.assert_common_headers();
    let secret = answer.secret();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    let details = &answer.json["details"];
    assert_eq!(details["sequence"], json!(expected_sequence.to_string()));
    assert_eq!(details["resourceOwner"], json!(ORG));
    assert!(is_rfc3339_micros_utc(details["creationDate"].as_str().unwrap()), "{details}");
    assert!(is_rfc3339_micros_utc(details["changeDate"].as_str().unwrap()), "{details}");
    assert_eq!(answer.json.as_object().unwrap().len(), 2, "only clientSecret and details");

    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(stored.sequence, expected_sequence);
    assert!(stored.secret_hash.as_deref().unwrap().starts_with("$2b$04$"));
    assert!(verify_client_secret(&stored, secret, OffsetDateTime::now_utc()), "stored hash verifies the secret");

    let everything = format!("{:?}", scan(&f.store).await);
    assert!(!everything.contains(secret), "the plaintext secret is stored somewhere");

    let events = events(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(events.len() as u64, expected_sequence, "one event per change");
    let last = events.last().unwrap();
    assert_eq!(text(last, "sk"), keys::event_sk(&key(ORG, PROJECT, APP), expected_sequence));
    assert_eq!(text(last, "type"), EVENT_TYPE);
    assert_eq!(text(last, "sequence"), expected_sequence.to_string());
    assert_eq!(text(last, "actor"), USER);
    assert_eq!(text(last, "source"), "api");
    assert!(text(last, "requestId").starts_with("req-"));
}

#[tokio::test]
async fn http_api_v2_with_jwt_claims_regenerates_the_secret() {
    let f = fixture().await;
    let first = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP).org(ORG), Some(claims(USER, ORG)))).await;
    assert_eq!(first.status, 200);
    assert_rotated(&f, &first, 1).await;

    let second = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_rotated(&f, &second, 2).await;
    assert_ne!(first.secret(), second.secret());
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert!(!verify_client_secret(&stored, first.secret(), OffsetDateTime::now_utc()), "no grace: old secret is dead");
    assert_eq!(first.json["details"]["creationDate"], second.json["details"]["creationDate"]);
}

#[tokio::test]
async fn rest_api_v1_with_authorizer_claims_regenerates_the_secret() {
    let f = fixture().await;
    let answer =
        send(&f.service, rest_v1(&Call::post(PROJECT, APP).org(ORG), json!({"claims": claims(USER, ORG)}))).await;
    assert_rotated(&f, &answer, 1).await;
}

#[tokio::test]
async fn lambda_authorizers_of_both_api_kinds_identify_the_caller() {
    let f = fixture().await;
    let context = json!({"sub": USER, ORG_CLAIM: ORG});
    let answer = send(&f.service, http_v2_lambda(&Call::post(PROJECT, APP), context)).await;
    assert_rotated(&f, &answer, 1).await;
    // REST Lambda authorizer: the user falls back to principalId.
    let context = json!({"principalId": USER, ORG_CLAIM: ORG, "integrationLatency": 12});
    let answer = send(&f.service, rest_v1(&Call::post(PROJECT, APP), context)).await;
    assert_rotated(&f, &answer, 2).await;
}

#[tokio::test]
async fn raw_path_routes_decode_percent_escapes_and_ignore_the_body_ids() {
    let f = fixture().await;
    seed_app(&f.store, NewApp::oidc(key(ORG, PROJECT, "app@x.y"), "client-2")).await;
    let call = Call::raw("POST", &route(PROJECT, "app@x.y").replace('@', "%40"))
        .header("X-Zitadel-OrgId", ORG)
        .body(r#"{"projectId":"other","appId":"other"}"#);
    let answer = send(&f.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(app(&f.store, ORG, PROJECT, "app@x.y").await.sequence, 1);
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}

#[tokio::test]
async fn a_named_stage_prefix_on_the_raw_path_is_not_part_of_the_route() {
    let f = fixture().await;
    let mut event =
        serde_json::to_value(http_v2_event(&Call::raw("POST", &format!("/prod{}", route(PROJECT, APP))))).unwrap();
    event["requestContext"]["stage"] = json!("prod");
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims(USER, ORG)}});
    let answer = send(&f.service, request(event)).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let answer = send(
        &f.service,
        http_v2_jwt(&Call::raw("POST", &format!("/prod{}", route(PROJECT, APP))), Some(claims(USER, ORG))),
    )
    .await;
    assert_eq!(answer.status, 404, "the $default stage has no prefix to strip");
}

#[tokio::test]
async fn base64_bodies_are_decoded_before_the_body_rules() {
    let f = fixture().await;
    let mut call = Call::post(PROJECT, APP).body("eyJhIjoxfQ=="); // {"a":1}
    call.base64 = true;
    assert_eq!(send(&f.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await.status, 200);
    let mut call = Call::post(PROJECT, APP).body("WzFd"); // [1]
    call.base64 = true;
    send(&f.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await.assert_invalid("body");
}

#[tokio::test]
async fn no_identity_is_unauthenticated_with_a_bearer_challenge() {
    let f = fixture().await;
    let call = Call::post(PROJECT, APP).org(ORG).header("authorization", "Bearer not-checked-here");
    for request in [
        http_v2_jwt(&call, None),
        http_v2_jwt(&call, Some(json!({"sub": USER}))),
        rest_v1(&call, json!({})),
        alb(&Call::raw("POST", &route(PROJECT, APP)).org(ORG)),
    ] {
        let answer = send(&f.service, request).await;
        answer.assert_error(401, 16, "AUTH-7fs1e", "Token is invalid");
        assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}

#[tokio::test]
async fn empty_ids_are_missing() {
    let f = fixture().await;
    for (project, app) in [("", APP), (PROJECT, "")] {
        let answer = send(&f.service, http_v2_jwt(&Call::post(project, app), Some(claims(USER, ORG)))).await;
        answer.assert_error(400, 3, "COMMAND-99i83", "ID missing");
    }
}

#[tokio::test]
async fn malformed_input_is_invalid_argument_naming_the_field() {
    let f = fixture().await;
    let ok = |call: Call| http_v2_jwt(&call, Some(claims(USER, ORG)));
    let cases = [
        (ok(Call::post("proj#1", APP)), "projectId"),
        (ok(Call::post(PROJECT, "a b")), "appId"),
        (ok(Call::post(PROJECT, APP).org("org/a")), "x-zitadel-orgid"),
        (ok(Call::post(PROJECT, APP).org("")), "x-zitadel-orgid"),
        (ok(Call::post(PROJECT, APP).body("{")), "body"),
        (ok(Call::post(PROJECT, APP).body("[]")), "body"),
        (ok(Call::post(PROJECT, APP).body(&format!("{{\"x\":\"{}\"}}", "a".repeat(16 * 1024)))), "body"),
        (http_v2_jwt(&Call::post(PROJECT, APP), Some(claims("user#1", ORG))), "user id"),
        (http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, "org a"))), "organization id"),
        (
            rest_v1(&Call::post(PROJECT, APP).org(ORG).org(OTHER_ORG), json!({"claims": claims(USER, ORG)})),
            "x-zitadel-orgid",
        ),
    ];
    for (request, field) in cases {
        send(&f.service, request).await.assert_invalid(field);
    }
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}

#[tokio::test]
async fn a_caller_without_membership_is_denied() {
    let f = fixture().await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims("stranger", ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    // A membership without the write permission does not grant either.
    seed_member(&f.store, ORG, None, "reader", &["project.app.read"]).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims("reader", ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}

#[tokio::test]
async fn missing_or_removed_apps_do_not_exist() {
    let f = fixture().await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, "nope"), Some(claims(USER, ORG)))).await;
    answer.assert_error(404, 5, "COMMAND-2g66f", "Application doesn't exist");
    seed_app(&f.store, NewApp { state: "REMOVED".into(), ..NewApp::oidc(key(ORG, PROJECT, "gone"), "c") }).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, "gone"), Some(claims(USER, ORG)))).await;
    answer.assert_error(404, 5, "COMMAND-2g66f", "Application doesn't exist");
    assert!(events(&f.store, ORG, PROJECT, "gone").await.is_empty());
}

#[tokio::test]
async fn inactive_apps_still_get_a_new_secret() {
    let f = fixture().await;
    seed_app(&f.store, NewApp { state: "INACTIVE".into(), ..NewApp::oidc(key(ORG, PROJECT, "idle"), "c") }).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, "idle"), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
}

#[tokio::test]
async fn non_oidc_apps_and_secretless_auth_methods_are_refused() {
    let f = fixture().await;
    seed_app(&f.store, NewApp { app_type: "API".into(), ..NewApp::oidc(key(ORG, PROJECT, "api"), "c-api") }).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, "api"), Some(claims(USER, ORG)))).await;
    answer.assert_error(400, 3, "COMMAND-Ghrh3", "Application is not type OIDC");
    for method in ["NONE", "PRIVATE_KEY_JWT"] {
        let id = method.to_lowercase().replace('_', "-");
        seed_app(
            &f.store,
            NewApp { auth_method: method.into(), ..NewApp::oidc(key(ORG, PROJECT, &id), format!("c-{id}")) },
        )
        .await;
        let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, &id), Some(claims(USER, ORG)))).await;
        answer.assert_error(400, 9, "COMMAND-GDrg2", "Chosen OIDC Auth Method does not require a secret");
    }
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "POST-less BASIC app works: {}", answer.json);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_with_empty_details() {
    let f = fixture().await;
    for path in ["/", "/management/v1/projects/p/apps/a", &format!("{}/x", route(PROJECT, APP))] {
        let answer = send(&f.service, http_v2_jwt(&Call::raw("POST", path), Some(claims(USER, ORG)))).await;
        assert_eq!(answer.status, 404);
        assert_eq!(answer.json, json!({"code": 5, "message": "Not Found", "details": []}));
        answer.assert_common_headers();
    }
    for method in ["GET", "PUT", "DELETE"] {
        let call = Call::raw(method, &route(PROJECT, APP));
        let answer = send(&f.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
        assert_eq!(answer.status, 405);
        assert_eq!(answer.json, json!({"code": 12, "message": "Method Not Allowed", "details": []}));
        let answer = send(&f.service, rest_v1(&Call::post(PROJECT, APP).method(method), json!({}))).await;
        assert_eq!(answer.status, 405);
    }
}

#[tokio::test]
async fn a_foreign_org_is_forbidden_whether_or_not_the_app_exists_there() {
    let f = fixture().await;
    // A project id belongs to one org (SPEC section 5): the other org's app is in its own.
    seed_app(&f.store, NewApp::oidc(key(OTHER_ORG, "proj-b", APP), "foreign")).await;
    seed_member(&f.store, OTHER_ORG, None, "their-admin", &[APP_WRITE_PERMISSION]).await;
    let before = scan(&f.store).await;
    for (project, app_id) in [("proj-b", APP), ("proj-b", "does-not-exist"), (PROJECT, APP)] {
        let call = Call::post(project, app_id).org(OTHER_ORG);
        let answer = send(&f.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
        answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    }
    // The home-org claim of another org does not help either: membership is per org.
    let answer = send(&f.service, http_v2_jwt(&Call::post("proj-b", APP), Some(claims(USER, OTHER_ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    assert_eq!(scan(&f.store).await, before, "nothing changed anywhere");
}

#[tokio::test]
async fn a_project_membership_grants_exactly_its_project() {
    let f = fixture().await;
    seed_app(&f.store, NewApp::oidc(key(ORG, "proj-2", APP), "c2")).await;
    seed_member(&f.store, ORG, Some(PROJECT), "project-admin", &[APP_WRITE_PERMISSION]).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims("project-admin", ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(text(&events(&f.store, ORG, PROJECT, APP).await[0], "actor"), "project-admin");
    let answer = send(&f.service, http_v2_jwt(&Call::post("proj-2", APP), Some(claims("project-admin", ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    assert_eq!(app(&f.store, ORG, "proj-2", APP).await.sequence, 0);
}

#[tokio::test]
async fn bad_ids_are_refused_before_any_storage_call() {
    // Any storage call on this service would fail with 503 after the SDK's retries.
    let store = unreachable_store().await;
    let service = Service::new(store, &config("unreachable", SecretSettings::default()));
    let long = "p".repeat(201);
    let cases = [
        (Call::post("a#b", APP), "projectId"),
        (Call::post(PROJECT, "APP#x"), "appId"),
        (Call::post(&long, APP), "projectId"),
        (Call::post(PROJECT, &"a".repeat(201)), "appId"),
        (Call::post(PROJECT, APP).org("ORG#x"), "x-zitadel-orgid"),
        (Call::post(PROJECT, APP).org(&"o".repeat(201)), "x-zitadel-orgid"),
    ];
    for (call, field) in cases {
        let started = Instant::now();
        send(&service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await.assert_invalid(field);
        assert!(started.elapsed() < Duration::from_millis(500), "no storage call was attempted");
    }
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(&"u".repeat(256), ORG)))).await;
    answer.assert_invalid("user id");
}

#[tokio::test]
async fn unreachable_dynamodb_is_unavailable_within_seconds() {
    let service = Service::new(unreachable_store().await, &config("unreachable", SecretSettings::default()));
    let started = Instant::now();
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_missing_table_is_an_internal_error_without_internals() {
    let store = dynamodb_store("no-such-table").await;
    let service = Service::new(store, &config("no-such-table", SecretSettings::default()));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(500, 13, "INTERNAL", "Internal error");
    assert!(!answer.json.to_string().contains("no-such-table"));
}

/// The real store, with a real competing writer: before each of the first `races`
/// commits, another writer bumps the app's sequence in DynamoDB.
struct RacedStore {
    inner: DynamoStore,
    races: AtomicU32,
}

impl Store for RacedStore {
    async fn load(&self, key: &AppKey, member: Option<&UserId>, deadline: Deadline) -> Result<Snapshot, Error> {
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
        if self.races.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            bump_sequence(&self.inner, commit.key).await;
        }
        self.inner.commit(commit).await
    }
}

async fn bump_sequence(store: &DynamoStore, key: &AppKey) {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(keys::org_pk(&key.org)))
        .key("sk", AttributeValue::S(keys::app_sk(&key.project, &key.app)))
        .update_expression("SET #seq = #seq + :one")
        .expression_attribute_names("#seq", "sequence")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("competing write");
}

#[tokio::test]
async fn a_lost_race_is_retried_and_then_aborted() {
    let f = fixture().await;
    let raced = |races| RacedStore { inner: f.store.clone(), races: AtomicU32::new(races) };
    let config = config(f.store.table(), SecretSettings::default());

    // Two lost races: the third attempt wins, on top of the two competing writes.
    let service = Service::new(raced(2), &config);
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.sequence(), 3);
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert!(verify_client_secret(&stored, answer.secret(), OffsetDateTime::now_utc()));

    // Three lost races: 409, and nothing of ours was written.
    let service = Service::new(raced(3), &config);
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(409, 10, "STORE-conflict", "Application was changed concurrently, try again");
    let after = app(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(after.sequence, 6, "three competing bumps, no write of ours");
    assert_eq!(after.secret_hash, stored.secret_hash);
    assert_eq!(events(&f.store, ORG, PROJECT, APP).await.len(), 1);
}

/// The real store, with the caller's org membership deleted between read and write.
struct RevokingStore {
    inner: DynamoStore,
}

impl Store for RevokingStore {
    async fn load(&self, key: &AppKey, member: Option<&UserId>, deadline: Deadline) -> Result<Snapshot, Error> {
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
        self.inner
            .client()
            .delete_item()
            .table_name(self.inner.table())
            .key("pk", AttributeValue::S(keys::org_pk(&commit.key.org)))
            .key("sk", AttributeValue::S(keys::org_member_sk(&UserId::parse(USER, "user").unwrap())))
            .send()
            .await
            .expect("revoke membership");
        self.inner.commit(commit).await
    }
}

#[tokio::test]
async fn a_membership_revoked_mid_request_stops_the_write() {
    let f = fixture().await;
    let service =
        Service::new(RevokingStore { inner: f.store.clone() }, &config(f.store.table(), SecretSettings::default()));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert_eq!((stored.sequence, stored.secret_hash), (0, None));
    assert!(events(&f.store, ORG, PROJECT, APP).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_rotations_never_lose_an_update() {
    let f = Arc::new(fixture().await);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            200 => won.push((answer.sequence(), answer.secret().to_owned())),
            409 => answer.assert_error(409, 10, "STORE-conflict", "Application was changed concurrently, try again"),
            other => panic!("unexpected status {other}: {}", answer.json),
        }
    }
    won.sort();
    let sequences: Vec<u64> = won.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (1..=won.len() as u64).collect::<Vec<_>>(), "distinct and contiguous");
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(stored.sequence, won.len() as u64);
    let (_, last_secret) = won.last().unwrap();
    assert!(verify_client_secret(&stored, last_secret, OffsetDateTime::now_utc()));
    assert_eq!(events(&f.store, ORG, PROJECT, APP).await.len(), won.len());
}

#[tokio::test]
async fn with_a_grace_period_the_previous_secret_keeps_working_until_expiry() {
    let settings = SecretSettings { grace: Duration::from_secs(300), ..SecretSettings::default() };
    let f = fixture_with(settings).await;
    let first = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    let second = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    let now = OffsetDateTime::now_utc();
    let expiry = stored.previous_secret_expires_at.expect("expiry set");
    assert!(expiry > now + time::Duration::seconds(290) && expiry <= now + time::Duration::seconds(300));
    assert!(verify_client_secret(&stored, second.secret(), now));
    assert!(verify_client_secret(&stored, first.secret(), now));
    assert!(!verify_client_secret(&stored, first.secret(), expiry));
}

#[tokio::test]
async fn an_app_at_the_last_sequence_is_refused_and_nothing_is_written() {
    let f = fixture().await;
    let app_key = key(ORG, PROJECT, APP);
    set_app_attribute(&f.store, &app_key, "sequence", Some(AttributeValue::N(u64::MAX.to_string()))).await;
    let before = scan(&f.store).await;
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    answer.assert_error(500, 13, "INTERNAL", "Internal error");
    assert_eq!(scan(&f.store).await, before, "nothing written, no event 0");
}

#[tokio::test]
async fn an_unreadable_app_item_is_forbidden_to_outsiders_and_a_500_only_to_members() {
    let broken: [(&str, Option<AttributeValue>); 5] = [
        ("sequence", Some(AttributeValue::S("7".into()))),
        ("appType", None),
        ("creationDate", None),
        ("previousSecretExpiresAt", Some(AttributeValue::S("soon".into()))),
        ("creationDate", Some(AttributeValue::S("9999-12-31T23:59:59-01:00".into()))),
    ];
    for (name, value) in broken {
        let f = fixture().await;
        seed_member(&f.store, OTHER_ORG, None, "outsider", &[APP_WRITE_PERMISSION]).await;
        set_app_attribute(&f.store, &key(ORG, PROJECT, APP), name, value.clone()).await;
        let before = scan(&f.store).await;
        let outsider =
            send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP).org(ORG), Some(claims("outsider", OTHER_ORG))));
        outsider.await.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
        let member = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
        assert_eq!((member.status, member.json["code"].as_u64()), (500, Some(13)), "{name} {value:?}: {}", member.json);
        assert_eq!(scan(&f.store).await, before, "{name} {value:?}: nothing written");
    }
}

#[tokio::test]
async fn a_route_that_only_supplies_the_path_parameters_is_not_this_operation() {
    let f = fixture().await;
    let before = scan(&f.store).await;
    let foreign = Call { path: format!("/admin/v1/projects/{PROJECT}/apps/{APP}"), ..Call::post(PROJECT, APP) };
    let answer = send(&f.service, http_v2_jwt(&foreign, Some(claims(USER, ORG)))).await;
    assert_eq!((answer.status, &answer.json), (404, &json!({"code": 5, "message": "Not Found", "details": []})));
    let mut event = rest_v1_event(&foreign, json!({"claims": claims(USER, ORG)}));
    event["resource"] = json!("/admin/v1/projects/{projectId}/apps/{appId}");
    event["requestContext"]["resourcePath"] = event["resource"].clone();
    assert_eq!(send(&f.service, request(event)).await.status, 404);
    assert_eq!(scan(&f.store).await, before);
    // A REST API behind a custom domain's base path: the resource is this operation's.
    let mapped = Call { path: format!("/identity{}", route(PROJECT, APP)), ..Call::post(PROJECT, APP) };
    let answer = send(&f.service, rest_v1(&mapped, json!({"claims": claims(USER, ORG)}))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
}

#[tokio::test]
async fn with_an_event_retention_events_carry_the_ttl_and_apps_never_do() {
    let f = fixture().await;
    let store = f.store.clone().with_event_retention(Some(std::time::Duration::from_secs(30 * 86_400)));
    let service = Service::new(store, &support::config(f.store.table(), SecretSettings::default()));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let event = &events(&f.store, ORG, PROJECT, APP).await[0];
    let created =
        time::OffsetDateTime::parse(text(event, "createdAt"), &time::format_description::well_known::Rfc3339).unwrap();
    let Some(aws_sdk_dynamodb::types::AttributeValue::N(expires)) = event.get("expiresAt") else { panic!("{event:?}") };
    assert_eq!(expires.parse::<i64>().unwrap(), created.unix_timestamp() + 30 * 86_400);
    let items = scan(&f.store).await;
    let apps: Vec<&Item> = items.iter().filter(|i| text(i, "sk").starts_with("APP#")).collect();
    assert!(apps.iter().all(|a| !a.contains_key("expiresAt")), "an app never expires");
    // Without a retention (the default), events are kept.
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200);
    assert!(!events(&f.store, ORG, PROJECT, APP).await[1].contains_key("expiresAt"));
}

#[tokio::test]
async fn with_required_scopes_a_token_without_them_is_refused_before_any_read() {
    let f = fixture().await;
    let mut config = support::config(f.store.table(), SecretSettings::default());
    config.required_scopes = vec!["secrets:write".into()];
    let guarded = Service::new(f.store.clone(), &config);
    // Against a store nobody can reach: a refusal here was made before any storage call.
    let unreachable = Service::new(unreachable_store().await, &config);
    let call = Call::post(PROJECT, APP);
    let with_scopes = |scopes: serde_json::Value| {
        request(http_v2_event_with(&call, Some(json!({"jwt": {"claims": claims(USER, ORG), "scopes": scopes}}))))
    };
    for scopes in [json!(null), json!([]), json!(["openid", "profile"])] {
        let answer = send(&unreachable, with_scopes(scopes.clone())).await;
        answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    }
    let answer = send(&guarded, with_scopes(json!(["openid", "secrets:write"]))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    // REST API claims carry the scope claim itself, space-separated.
    let mut rest_claims = claims(USER, ORG);
    rest_claims["scope"] = json!("openid secrets:write");
    let answer = send(&guarded, rest_v1(&call, json!({"claims": rest_claims}))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    rest_claims["scope"] = json!("openid secrets:writer");
    send(&unreachable, rest_v1(&call, json!({"claims": rest_claims}))).await.assert_error(
        403,
        7,
        "AUTH-5mWD2",
        "No matching permissions found",
    );
    // Without required scopes (the default), a token without any scope is served.
    assert_eq!(send(&f.service, with_scopes(json!(null))).await.status, 200);
    // The scopes are a permission: every input rule comes first (a repeated org header).
    let repeated = call.clone().org(ORG).org(ORG);
    let event = http_v2_event_with(&repeated, Some(json!({"jwt": {"claims": claims(USER, ORG), "scopes": []}})));
    let answer = send(&unreachable, request(event)).await;
    answer.assert_invalid("x-zitadel-orgid");
}

#[tokio::test]
async fn a_path_that_is_not_utf_8_is_an_input_error_in_the_inputs_turn() {
    let f = fixture().await;
    let bad = "/management/v1/projects/%FF/apps/a/oidc_config/_generate_client_secret";
    // Identity first, and the method before that: as for any other bad id.
    let answer = send(&f.service, http_v2_jwt(&Call::raw("POST", bad), None)).await;
    answer.assert_error(401, 16, "AUTH-7fs1e", "Token is invalid");
    let answer = send(&f.service, http_v2_jwt(&Call::raw("GET", bad), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 405, "{}", answer.json);
    let answer = send(&f.service, http_v2_jwt(&Call::raw("POST", bad), Some(claims(USER, ORG)))).await;
    answer.assert_invalid("projectId");
    let v2beta =
        Call::raw("POST", "/v2beta/applications/%C3/generate_client_secret").body(r#"{"projectId":"p","isOidc":true}"#);
    send(&f.service, http_v2_jwt(&v2beta, None)).await.assert_error(401, 16, "AUTH-7fs1e", "Token is invalid");
    send(&f.service, http_v2_jwt(&v2beta, Some(claims(USER, ORG)))).await.assert_invalid("applicationId");
}

#[tokio::test]
async fn the_v1_api_door_gives_an_api_app_a_secret_and_refuses_other_types() {
    let f = fixture().await;
    seed_app(&f.store, NewApp { app_type: "API".into(), ..NewApp::oidc(key(ORG, PROJECT, "api-1"), "c-api-1") }).await;
    let api_route =
        |app: &str| format!("/management/v1/projects/{PROJECT}/apps/{app}/api_config/_generate_client_secret");
    let answer = send(&f.service, http_v2_jwt(&Call::raw("POST", &api_route("api-1")), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.sequence(), 1);
    let stored = app(&f.store, ORG, PROJECT, "api-1").await;
    assert!(verify_client_secret(&stored, answer.secret(), OffsetDateTime::now_utc()));
    let events = events(&f.store, ORG, PROJECT, "api-1").await;
    assert_eq!(text(&events[0], "type"), "project.application.config.api.secret.changed");
    // The OIDC app through the API door, and the API app through the OIDC door.
    let answer = send(&f.service, http_v2_jwt(&Call::raw("POST", &api_route(APP)), Some(claims(USER, ORG)))).await;
    answer.assert_error(400, 3, "COMMAND-aeH4", "Application is not type API");
    let answer = send(&f.service, http_v2_jwt(&Call::post(PROJECT, "api-1"), Some(claims(USER, ORG)))).await;
    answer.assert_error(400, 3, "COMMAND-Ghrh3", "Application is not type OIDC");
    // Permission still comes first: an outsider learns nothing of the API app.
    let answer =
        send(&f.service, http_v2_jwt(&Call::raw("POST", &api_route("api-1")), Some(claims("stranger", ORG)))).await;
    answer.assert_error(403, 7, "AUTH-5mWD2", "No matching permissions found");
    assert_eq!(app(&f.store, ORG, PROJECT, "api-1").await.sequence, 1, "nothing else was written");
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}
