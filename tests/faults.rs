//! DynamoDB misbehaving, made to happen by a proxy in front of DynamoDB Local. Whatever
//! happens: nothing is half written, no secret is returned unless its hash is stored, and
//! no error answer has a write behind it (SPEC section 6a): every class of unknown outcome
//! below ends in a 200 whose secret is stored, a 503 after which nothing lands even when
//! the lost transaction reaches DynamoDB later, or a 504 inside the deadline.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::RequestExt;

use oidc_client_secret::api::Service;
use oidc_client_secret::config::SecretSettings;
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::rotation::{Rotation, RotationEvent};
use oidc_client_secret::secret::verify_client_secret;
use oidc_client_secret::secrets::SecretsManager;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use proxy::{Fault, Proxy, Tx};
use support::*;
use time::OffsetDateTime;

struct Setup {
    f: Fixture,
    proxy: Proxy,
    service: Service<DynamoStore>,
}

/// The standard fixture, and a service that reaches its table through the proxy.
async fn setup() -> Setup {
    let f = fixture().await;
    let proxy = Proxy::start().await;
    let config = f.store.client().config().to_builder().endpoint_url(proxy.endpoint()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), f.store.table());
    let service = Service::new(store, &support::config(f.store.table(), SecretSettings::default()));
    Setup { f, proxy, service }
}

impl Setup {
    async fn call(&self) -> Answer {
        send(&self.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await
    }

    /// A call as Lambda invokes it, with its deadline `budget` from now; and how long it took.
    async fn invoke(&self, budget: Duration) -> (Answer, Duration) {
        let mut context = lambda_runtime::Context::default();
        context.request_id = format!("invocation-{:08x}", rand::random::<u32>());
        context.deadline = (SystemTime::now() + budget).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let request = http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG))).with_lambda_context(context);
        let started = Instant::now();
        let answer = send(&self.service, request).await;
        (answer, started.elapsed())
    }

    /// A 200 whose secret is the stored one, written once.
    async fn assert_written_once(&self, answer: &Answer) {
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(answer.sequence(), 1);
        let stored = app(&self.f.store, ORG, PROJECT, APP).await;
        assert!(
            verify_client_secret(&stored, answer.secret(), OffsetDateTime::now_utc()),
            "the secret is the stored one"
        );
        assert_eq!(events(&self.f.store, ORG, PROJECT, APP).await.len(), 1, "applied once");
    }

    /// Nothing of the failed request is in the table.
    async fn assert_untouched(&self) {
        let stored = app(&self.f.store, ORG, PROJECT, APP).await;
        assert_eq!((stored.sequence, stored.secret_hash), (0, None));
        assert!(events(&self.f.store, ORG, PROJECT, APP).await.is_empty());
    }
}

#[tokio::test]
async fn refused_connections_are_unavailable_within_seconds() {
    let s = setup().await;
    s.proxy.set(Fault::Refuse);
    let started = Instant::now();
    s.call().await.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    s.assert_untouched().await;
}

#[tokio::test]
async fn a_hanging_dynamodb_times_out_well_under_the_function_timeout() {
    let s = setup().await;
    s.proxy.set(Fault::Hang);
    let started = Instant::now();
    s.call().await.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(7),
        "took {took:?}; the function timeout is 10 s"
    );
    s.assert_untouched().await;
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_unavailable() {
    let s = setup().await;
    s.proxy.set(Fault::Throttle);
    s.call().await.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert_eq!(s.proxy.operations(), vec!["BatchGetItem"; 3], "the SDK's three attempts, then no write");
    s.assert_untouched().await;
}

#[tokio::test]
async fn transaction_conflicts_are_retried_then_aborted() {
    let s = setup().await;
    s.proxy.set(Fault::ConflictTransactions);
    s.call().await.assert_error(409, 10, "STORE-conflict", "Application was changed concurrently, try again");
    let transactions = s.proxy.operations().iter().filter(|o| *o == "TransactWriteItems").count();
    assert_eq!(transactions, 3, "three attempts: {:?}", s.proxy.operations());
    s.assert_untouched().await;
    s.proxy.set(Fault::None);
    assert_eq!(s.call().await.sequence(), 1, "served again once DynamoDB behaves");
}

#[tokio::test]
async fn a_lost_transaction_response_is_retried_idempotently() {
    let s = setup().await;
    s.proxy.set(Fault::Transactions(&[Tx::LoseAnswer]));
    let answer = s.call().await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.sequence(), 1, "the retry did not write a second time");
    let stored = app(&s.f.store, ORG, PROJECT, APP).await;
    assert!(
        verify_client_secret(&stored, answer.secret(), OffsetDateTime::now_utc()),
        "the returned secret's hash is stored"
    );
    assert_eq!(events(&s.f.store, ORG, PROJECT, APP).await.len(), 1);
    let transactions = s.proxy.operations().iter().filter(|o| *o == "TransactWriteItems").count();
    assert_eq!(transactions, 2, "sent again with the same token: {:?}", s.proxy.operations());
}

#[tokio::test]
async fn a_transaction_answer_delayed_past_every_timeout_is_resolved_not_a_503() {
    let s = setup().await;
    // Longer than an attempt's timeout (2 s): DynamoDB applies the transaction, the SDK
    // never sees the answer, and neither does the send with the same token.
    s.proxy.set(Fault::DelayTransactResponses(Duration::from_millis(2500)));
    let answer = s.call().await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.sequence(), 1);
    let stored = app(&s.f.store, ORG, PROJECT, APP).await;
    assert!(
        verify_client_secret(&stored, answer.secret(), OffsetDateTime::now_utc()),
        "the secret returned is the one stored"
    );
    assert_eq!(events(&s.f.store, ORG, PROJECT, APP).await.len(), 1, "applied once");
    assert_eq!(s.proxy.operations().last().map(String::as_str), Some("GetItem"), "{:?}", s.proxy.operations());
}

#[tokio::test]
async fn a_transaction_that_never_arrives_is_a_503_and_nothing_is_written() {
    let s = setup().await;
    s.proxy.set(Fault::HangTransactions);
    let started = Instant::now();
    s.call().await.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert!(started.elapsed() < Duration::from_secs(10), "within the function timeout: {:?}", started.elapsed());
    s.assert_untouched().await;
}

#[tokio::test]
async fn the_rotation_write_is_resolved_the_same_way() {
    let s = setup().await;
    let secrets = secrets_client().await;
    let arn = create_app_secret(&secrets, ORG, PROJECT, APP).await;
    assert!(s.f.store.set_rotation_secret(&key(ORG, PROJECT, APP), &arn).await.unwrap());
    let through_proxy = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            s.f.store.client().config().to_builder().endpoint_url(s.proxy.endpoint()).build(),
        ),
        s.f.store.table(),
    );
    let rotation = Rotation::new(SecretsManager::new(secrets.clone()), through_proxy, SecretSettings::default());
    let token = start_rotation(&secrets, &arn).await;
    let step = |step: &str| RotationEvent { step: step.into(), secret_id: arn.clone(), token: token.clone() };
    rotation.handle(&step("createSecret"), "create", Deadline::for_request()).await.unwrap();
    s.proxy.set(Fault::DelayTransactResponses(Duration::from_millis(2500)));
    rotation
        .handle(&step("setSecret"), "set", Deadline::for_request())
        .await
        .expect("setSecret resolves the unknown outcome");
    s.proxy.set(Fault::None);
    rotation.handle(&step("testSecret"), "test", Deadline::for_request()).await.unwrap();
    assert_eq!(app(&s.f.store, ORG, PROJECT, APP).await.sequence, 1);
}

#[tokio::test]
async fn an_answer_lost_then_a_throttle_on_every_resend_is_still_resolved_to_the_write() {
    let s = setup().await;
    // The first send applies and its answer is lost; every resend is throttled, which
    // tells nothing of the first: the write is unknown until the fence and the event say.
    s.proxy.set(Fault::Transactions(&[Tx::LoseAnswer, Tx::Throttle, Tx::Throttle, Tx::Throttle, Tx::Throttle]));
    let answer = s.call().await;
    s.assert_written_once(&answer).await;
    let ops = s.proxy.operations();
    assert_eq!(ops.iter().filter(|o| *o == "TransactWriteItems").count(), 4, "{ops:?}");
    assert_eq!(&ops[ops.len() - 2..], ["UpdateItem", "GetItem"], "the fence, then the event: {ops:?}");
}

#[tokio::test]
async fn an_answer_lost_then_dynamodbs_500_on_every_resend_is_still_resolved_to_the_write() {
    let s = setup().await;
    let script = &[
        Tx::LoseAnswer,
        Tx::Error500("InternalFailure"),
        Tx::Error500("InternalServerError"),
        Tx::Error500("InternalFailure"),
    ];
    s.proxy.set(Fault::Transactions(script));
    let answer = s.call().await;
    s.assert_written_once(&answer).await;
}

#[tokio::test]
async fn dynamodbs_500_on_the_first_send_is_an_unknown_outcome_not_an_internal_error() {
    let s = setup().await;
    // Applied, then answered 500 InternalFailure: the resend with the same token is told
    // success, and applies nothing more.
    s.proxy.set(Fault::Transactions(&[Tx::ApplyThen500("InternalFailure")]));
    let answer = s.call().await;
    s.assert_written_once(&answer).await;
    assert_eq!(s.proxy.operations().iter().filter(|o| *o == "TransactWriteItems").count(), 2);
    // Not applied, and answered 500: the resend applies it.
    let s = setup().await;
    s.proxy.set(Fault::Transactions(&[Tx::Error500("InternalServerError")]));
    let answer = s.call().await;
    s.assert_written_once(&answer).await;
}

#[tokio::test]
async fn a_transaction_delivered_late_never_lands_behind_a_503() {
    let s = setup().await;
    // Every send is held past the attempt's timeout and reaches DynamoDB after the
    // function has answered; no answer ever comes back.
    const LATE: Duration = Duration::from_secs(5);
    s.proxy.set(Fault::Transactions(&[Tx::DeliverLate(LATE); 4]));
    // 6 s: the read, two sends (2 s and 1.4 s), then the fence, at about 3.6 s; the first
    // send reaches DynamoDB at 5 s, the second at 7 s.
    let (answer, took) = s.invoke(Duration::from_secs(6)).await;
    assert!(took < Duration::from_millis(5500), "inside the invocation's deadline: {took:?}");
    answer.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    let sent = s.proxy.operations().iter().filter(|o| *o == "TransactWriteItems").count();
    assert!(sent >= 2, "{:?}", s.proxy.operations());
    assert!(s.proxy.delivered_late().is_empty(), "the answer came before any send reached DynamoDB");
    // Every late send reaches DynamoDB and is refused there: the fence holds them all off.
    let waited = Instant::now();
    while s.proxy.delivered_late().len() < sent && waited.elapsed() < LATE * 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = s.proxy.delivered_late();
    assert_eq!(delivered.len(), sent, "every send was delivered, late");
    assert!(delivered.iter().all(|status| *status == 400), "each cancelled by the fence: {delivered:?}");
    s.assert_untouched().await;
}

#[tokio::test]
async fn a_transaction_delivered_late_but_before_the_fence_is_a_200() {
    let s = setup().await;
    const LATE: Duration = Duration::from_millis(2500);
    s.proxy.set(Fault::Transactions(&[Tx::DeliverLate(LATE); 4]));
    let (answer, took) = s.invoke(Duration::from_secs(10)).await;
    assert!(took < Duration::from_millis(9500), "{took:?}");
    s.assert_written_once(&answer).await;
}

#[tokio::test]
async fn a_stalled_read_before_the_commit_is_answered_inside_the_deadline() {
    let s = setup().await;
    // The first read hangs; the SDK's retry of it, inside the read's bound, gets through.
    s.proxy.set(Fault::HangFirstRead);
    let (answer, took) = s.invoke(Duration::from_secs(10)).await;
    assert!(took < Duration::from_millis(9500), "{took:?}");
    s.assert_written_once(&answer).await;
    // Every read hangs: the read's bound leaves the rest of the deadline, and no write.
    let s = setup().await;
    s.proxy.set(Fault::HangReads);
    let (answer, took) = s.invoke(Duration::from_secs(8)).await;
    assert!(took < Duration::from_millis(7500), "{took:?}");
    answer.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert!(!s.proxy.operations().iter().any(|o| o == "TransactWriteItems"));
    s.assert_untouched().await;
}

/// With every store call hanging, then with every call after the read hanging: a 503, then
/// a 504 `STORE-unknown`, each before the invocation's deadline.
async fn hanging_calls_are_answered_before(budget: Duration) {
    let s = setup().await;
    s.proxy.set(Fault::Hang);
    let (answer, took) = s.invoke(budget).await;
    assert!(took < budget - Duration::from_millis(400), "{budget:?}: {took:?}");
    answer.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    s.assert_untouched().await;
    // The read works, then every write, fence and read-back hangs: the outcome can't be
    // known, and the answer says so in time.
    let s = setup().await;
    s.proxy.set(Fault::HangAfterReads);
    let (answer, took) = s.invoke(budget).await;
    assert!(took < budget - Duration::from_millis(400), "{budget:?}: {took:?}");
    answer.assert_error(504, 4, "STORE-unknown", "The outcome is unknown: read the app before trying again");
    let ops = s.proxy.operations();
    assert!(ops.iter().any(|o| o == "TransactWriteItems") && ops.iter().any(|o| o == "UpdateItem"), "{ops:?}");
}

#[tokio::test]
async fn with_every_store_call_hanging_the_answer_comes_before_a_6_s_deadline() {
    hanging_calls_are_answered_before(Duration::from_secs(6)).await;
}

#[tokio::test]
async fn with_every_store_call_hanging_the_answer_comes_before_the_functions_10_s_deadline() {
    hanging_calls_are_answered_before(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn with_too_little_time_for_a_write_and_its_resolution_none_is_sent() {
    let s = setup().await;
    s.proxy.set(Fault::HangAfterReads);
    let (answer, took) = s.invoke(Duration::from_secs(3)).await;
    assert!(took < Duration::from_millis(2600), "{took:?}");
    answer.assert_error(503, 14, "STORE-unavailable", "Service temporarily unavailable, try again");
    assert!(!s.proxy.operations().iter().any(|o| o == "TransactWriteItems"));
}

#[tokio::test]
async fn an_event_not_yet_visible_after_the_fence_is_waited_for_not_taken_as_anothers_write() {
    // The fence sees the app moved on (our lost write), but the first read of the event
    // finds nothing, as DynamoDB may order it: the answer is the 200, written once.
    let s = setup().await;
    s.proxy.set(Fault::Transactions(&[Tx::LoseAnswer, Tx::Throttle, Tx::Throttle, Tx::Throttle]));
    s.proxy.blank_gets(1);
    let answer = s.call().await;
    s.assert_written_once(&answer).await;
    // And when the event never shows within the deadline: a 504, never a 503 or a second write.
    let s = setup().await;
    s.proxy.set(Fault::Transactions(&[Tx::LoseAnswer, Tx::Throttle, Tx::Throttle, Tx::Throttle]));
    s.proxy.blank_gets(1000);
    let (answer, took) = s.invoke(Duration::from_secs(6)).await;
    assert!(took < Duration::from_millis(5500), "{took:?}");
    answer.assert_error(504, 4, "STORE-unknown", "The outcome is unknown: read the app before trying again");
    assert_eq!(events(&s.f.store, ORG, PROJECT, APP).await.len(), 1, "written once, by the lost send");
}

#[tokio::test]
async fn admins_writes_resolve_a_lost_answer_too() {
    let s = setup().await;
    let through_proxy = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            s.f.store.client().config().to_builder().endpoint_url(s.proxy.endpoint()).build(),
        ),
        s.f.store.table(),
    );
    // Created, its answer lost, then throttled: the resend under the same token says
    // created, not "exists".
    s.proxy.set(Fault::Transactions(&[Tx::LoseAnswer, Tx::Throttle]));
    let new = NewApp::oidc(key(ORG, PROJECT, "app-2"), "client-2");
    assert!(through_proxy.put_app(&new).await.unwrap(), "created");
    assert_eq!(app(&s.f.store, ORG, PROJECT, "app-2").await.client_id, "client-2");
    s.proxy.set(Fault::None);
    assert!(!through_proxy.put_app(&new).await.unwrap(), "then it exists");
    // Every send hangs: unknown, and said so.
    s.proxy.set(Fault::HangTransactions);
    let error = through_proxy.put_app(&NewApp::oidc(key(ORG, PROJECT, "app-3"), "client-3")).await.unwrap_err();
    assert!(matches!(error, oidc_client_secret::error::Error::OutcomeUnknown(_)), "{error:?}");
}

#[tokio::test]
async fn a_v2_stranger_costs_the_same_reads_for_a_project_that_exists_elsewhere_and_one_that_does_not() {
    let s = setup().await;
    seed_app(&s.f.store, NewApp::oidc(key(OTHER_ORG, "proj-b", APP), "c-foreign")).await;
    let mut reads = Vec::new();
    for project in ["proj-b", "no-such-project"] {
        let mut call = Call::post(PROJECT, APP);
        call.path = "/zitadel.application.v2.ApplicationService/GenerateClientSecret".into();
        call.path_parameters = None;
        call.headers = vec![("content-type".into(), "application/json".into())];
        call.body = Some(serde_json::json!({"applicationId": APP, "projectId": project}).to_string());
        s.proxy.set(Fault::None);
        let answer = send(&s.service, http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
        assert_eq!(
            (answer.status, answer.json["message"].as_str()),
            (404, Some("Application doesn't exist (COMMAND-Kd92s)"))
        );
        reads.push(s.proxy.operations());
    }
    assert_eq!(reads[0], ["GetItem", "BatchGetItem"], "the lookup, then the app and memberships");
    assert_eq!(reads[0], reads[1], "the same reads whether or not the project exists");
}

#[tokio::test]
async fn a_v2_stranger_gets_the_same_answer_from_a_failing_store_whether_the_project_exists() {
    let s = setup().await;
    // org-b owns proj-b; user-1 has permission in org-a only. The lookup answers, then
    // every read of the app and memberships hangs: the answer can't tell the two apart.
    seed_app(&s.f.store, NewApp::oidc(key(OTHER_ORG, "proj-b", APP), "c-foreign")).await;
    s.proxy.set(Fault::HangReads);
    let mut answers = Vec::new();
    for project in ["proj-b", "no-such-project"] {
        let mut call = Call::raw("POST", "/zitadel.application.v2.ApplicationService/GenerateClientSecret")
            .body(&format!(r#"{{"applicationId":"{APP}","projectId":"{project}"}}"#));
        call.base64 = false;
        let mut context = lambda_runtime::Context::default();
        context.deadline =
            (SystemTime::now() + Duration::from_secs(10)).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let request = http_v2_jwt(&call, Some(claims(USER, ORG))).with_lambda_context(context);
        let answer = send(&s.service, request).await;
        answers.push((answer.status, answer.json.clone()));
    }
    assert_eq!(answers[0], answers[1], "{answers:?}");
    assert_eq!(answers[0].0, 503, "a read that failed is unavailable, not \"doesn't exist\": {answers:?}");
    let ops = s.proxy.operations();
    assert_eq!(ops.iter().filter(|o| *o == "GetItem").count(), 2, "one lookup each: {ops:?}");
}
