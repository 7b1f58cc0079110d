//! DynamoDB misbehaving, made to happen by a proxy in front of DynamoDB Local. Whatever
//! happens: nothing is half written, and no secret is returned unless its hash is stored.

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::time::{Duration, Instant};

use oidc_client_secret::api::Service;
use oidc_client_secret::config::SecretSettings;
use oidc_client_secret::rotation::{Rotation, RotationEvent};
use oidc_client_secret::secret::verify_client_secret;
use oidc_client_secret::secrets::SecretsManager;
use oidc_client_secret::store::dynamodb::DynamoStore;
use proxy::{Fault, Proxy};
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
    s.proxy.set(Fault::LoseFirstTransactResponse);
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
    assert_eq!(transactions, 2, "the SDK retried with the same token: {:?}", s.proxy.operations());
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
    rotation.handle(&step("createSecret"), "create").await.unwrap();
    s.proxy.set(Fault::DelayTransactResponses(Duration::from_millis(2500)));
    rotation.handle(&step("setSecret"), "set").await.expect("setSecret resolves the unknown outcome");
    s.proxy.set(Fault::None);
    rotation.handle(&step("testSecret"), "test").await.unwrap();
    assert_eq!(app(&s.f.store, ORG, PROJECT, APP).await.sequence, 1);
}
