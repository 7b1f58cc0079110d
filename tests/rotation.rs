//! Rotation through Secrets Manager: the four steps against DynamoDB Local and moto's
//! Secrets Manager, as `aws secretsmanager rotate-secret` would drive them.

mod support;

use std::time::Duration;

use oidc_client_secret::api::Service;
use oidc_client_secret::app::App;
use oidc_client_secret::config::SecretSettings;
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::rotation::{Rotation, RotationError, RotationEvent};
use oidc_client_secret::secret::verify_client_secret;
use oidc_client_secret::secrets::SecretsManager;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use serde_json::Value;
use support::*;
use time::OffsetDateTime;

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

struct Fixture {
    store: DynamoStore,
    secrets: aws_sdk_secretsmanager::Client,
    arn: String,
    rotation: Rotation<DynamoStore, SecretsManager>,
}

/// A table with one OIDC app whose `rotationSecretArn` is a fresh secret in moto.
async fn fixture(grace: Duration) -> Fixture {
    let store = empty_table().await;
    let secrets = secrets_client().await;
    let arn = create_app_secret(&secrets, ORG, PROJECT, APP).await;
    seed_app(&store, NewApp::oidc(key(ORG, PROJECT, APP), "client-1")).await;
    assert!(store.set_rotation_secret(&key(ORG, PROJECT, APP), &arn).await.unwrap());
    assert!(!store.set_rotation_secret(&key(ORG, PROJECT, "missing"), &arn).await.unwrap(), "no app is created");
    let settings = SecretSettings { grace, ..SecretSettings::default() };
    let rotation = Rotation::new(SecretsManager::new(secrets.clone()), store.clone(), settings);
    Fixture { store, secrets, arn, rotation }
}

impl Fixture {
    async fn step(&self, step: &str, token: &str) -> Result<(), RotationError> {
        self.step_on(&self.arn, step, token).await
    }

    async fn step_on(&self, arn: &str, step: &str, token: &str) -> Result<(), RotationError> {
        let event = RotationEvent { step: step.into(), secret_id: arn.into(), token: token.into() };
        self.rotation.handle(&event, &format!("lambda-{step}"), Deadline::for_request()).await
    }

    /// A whole rotation; returns the new client secret.
    async fn rotate(&self) -> String {
        let token = start_rotation(&self.secrets, &self.arn).await;
        for step in STEPS {
            self.step(step, &token).await.unwrap_or_else(|e| panic!("{step}: {e}"));
        }
        complete_rotation(&self.secrets, &self.arn, &token).await;
        self.current_secret().await
    }

    async fn current_secret(&self) -> String {
        let current = stage_value(&self.secrets, &self.arn, "AWSCURRENT").await.expect("AWSCURRENT value");
        current["clientSecret"].as_str().unwrap().to_owned()
    }

    async fn app(&self) -> App {
        app(&self.store, ORG, PROJECT, APP).await
    }
}

#[tokio::test]
async fn a_full_rotation_makes_the_new_secret_current_and_keeps_the_old_as_previous() {
    let f = fixture(Duration::ZERO).await;
    let first = f.rotate().await;
    let second = f.rotate().await;
    assert_ne!(first, second);
    assert_eq!(second.len(), 64);

    let current = stage_value(&f.secrets, &f.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["orgId"], ORG);
    assert_eq!(current["projectId"], PROJECT);
    assert_eq!(current["appId"], APP);
    assert_eq!(current["clientId"], "client-1");
    let previous = stage_value(&f.secrets, &f.arn, "AWSPREVIOUS").await.unwrap();
    assert_eq!(previous["clientSecret"], Value::from(first.clone()));

    let app = f.app().await;
    let now = OffsetDateTime::now_utc();
    assert!(verify_client_secret(&app, &second, now));
    assert!(!verify_client_secret(&app, &first, now), "without a grace period the old secret dies at once");
    assert_eq!(app.sequence, 2);

    let events = events(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(text(event, "source"), "rotation");
        assert_eq!(text(event, "actor"), f.arn);
    }
    let everything = format!("{:?}", scan(&f.store).await);
    assert!(!everything.contains(&first) && !everything.contains(&second), "a plaintext secret is in the table");
}

#[tokio::test]
async fn every_step_run_twice_gives_the_same_end_state_and_one_event() {
    let f = fixture(Duration::ZERO).await;
    let token = start_rotation(&f.secrets, &f.arn).await;
    for step in STEPS {
        f.step(step, &token).await.unwrap_or_else(|e| panic!("{step}: {e}"));
        f.step(step, &token).await.unwrap_or_else(|e| panic!("{step} again: {e}"));
    }
    let secret = f.current_secret().await;
    let app = f.app().await;
    assert_eq!(app.sequence, 1);
    assert!(verify_client_secret(&app, &secret, OffsetDateTime::now_utc()));
    assert_eq!(events(&f.store, ORG, PROJECT, APP).await.len(), 1);
    let described = f.secrets.describe_secret().secret_id(&f.arn).send().await.unwrap();
    let stages = described.version_ids_to_stages.unwrap();
    assert!(stages[&token].contains(&"AWSCURRENT".to_owned()), "{stages:?}");
    let previous: Vec<_> = stages.values().filter(|s| s.contains(&"AWSPREVIOUS".to_owned())).collect();
    assert_eq!(previous.len(), 1, "{stages:?}");
}

#[tokio::test]
async fn a_secret_that_is_not_the_apps_rotation_secret_is_refused_without_a_write() {
    let f = fixture(Duration::ZERO).await;
    let intruder = create_app_secret(&f.secrets, ORG, PROJECT, APP).await;
    let token = start_rotation(&f.secrets, &intruder).await;
    let before = scan(&f.store).await;

    let refused = f.step_on(&intruder, "createSecret", &token).await.unwrap_err();
    assert_eq!(refused, RotationError::NotTheAppsSecret(intruder.clone()));
    let pending = f.secrets.get_secret_value().secret_id(&intruder).version_id(&token).send().await;
    assert!(pending.map(|o| o.secret_string.is_none()).unwrap_or(true), "no pending value was written");

    // Even with a pending value put there by hand, setSecret refuses.
    let forged = r#"{"orgId":"org-a","projectId":"proj-1","appId":"app-1","clientId":"client-1","clientSecret":"forgedforgedforgedforgedforgedforged"}"#;
    f.secrets
        .put_secret_value()
        .secret_id(&intruder)
        .client_request_token(&token)
        .secret_string(forged)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    for step in ["setSecret", "testSecret"] {
        assert_eq!(
            f.step_on(&intruder, step, &token).await.unwrap_err(),
            RotationError::NotTheAppsSecret(intruder.clone())
        );
    }
    assert_eq!(scan(&f.store).await, before, "the table is unchanged");
}

#[tokio::test]
async fn with_a_grace_period_the_old_secret_verifies_until_expiry_and_not_after() {
    let f = fixture(Duration::from_secs(600)).await;
    let first = f.rotate().await;
    let second = f.rotate().await;
    let app = f.app().await;
    let expiry = app.previous_secret_expires_at.expect("expiry");
    let now = OffsetDateTime::now_utc();
    assert!(expiry > now + time::Duration::seconds(590));
    assert!(verify_client_secret(&app, &second, now));
    assert!(verify_client_secret(&app, &first, now));
    assert!(verify_client_secret(&app, &first, expiry - time::Duration::milliseconds(1)));
    assert!(!verify_client_secret(&app, &first, expiry));
    assert!(verify_client_secret(&app, &second, expiry));
}

impl Fixture {
    /// Puts `value` into the pending version by hand, as anyone with `PutSecretValue` could.
    async fn put_pending_by_hand(&self, arn: &str, token: &str, value: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(token)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .unwrap();
    }

    fn secret_document(secret: Option<&str>) -> String {
        let mut value = serde_json::json!({"orgId": ORG, "projectId": PROJECT, "appId": APP, "clientId": "client-1"});
        if let Some(secret) = secret {
            value["clientSecret"] = Value::from(secret);
        }
        value.to_string()
    }
}

#[tokio::test]
async fn set_secret_refuses_a_weak_pending_value_without_a_write() {
    let f = fixture(Duration::ZERO).await;
    let before = scan(&f.store).await;
    let weak =
        [Some(String::new()), Some("x".into()), Some("a".repeat(80)), Some(format!("{}é", "a".repeat(40))), None];
    for value in weak {
        let token = start_rotation(&f.secrets, &f.arn).await;
        f.put_pending_by_hand(&f.arn, &token, &Fixture::secret_document(value.as_deref())).await;
        let refused = f.step("setSecret", &token).await.unwrap_err();
        assert!(matches!(refused, RotationError::BadValue(_)), "{value:?}: {refused}");
    }
    assert_eq!(scan(&f.store).await, before, "the table is unchanged");
}

#[tokio::test]
async fn test_secret_refuses_a_pending_secret_that_is_only_the_previous_one() {
    let f = fixture(Duration::from_secs(600)).await;
    seed_member(&f.store, ORG, None, USER, &[oidc_client_secret::regenerate::APP_WRITE_PERMISSION]).await;
    let token = start_rotation(&f.secrets, &f.arn).await;
    f.step("createSecret", &token).await.unwrap();
    f.step("setSecret", &token).await.unwrap();
    // A regenerate through the HTTP path between setSecret and testSecret.
    let service = Service::new(f.store.clone(), &config(f.store.table(), SecretSettings::default()));
    let answer = send(&service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(f.step("testSecret", &token).await.unwrap_err(), RotationError::TestFailed);
    assert_eq!(f.step("finishSecret", &token).await.unwrap_err(), RotationError::NotInstalled);
    let current = stage_value(&f.secrets, &f.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["clientSecret"], "", "AWSCURRENT did not move to the pending secret");
}

#[tokio::test]
async fn finish_secret_moves_nothing_unless_the_table_holds_the_pending_secret() {
    let f = fixture(Duration::ZERO).await;
    let token = start_rotation(&f.secrets, &f.arn).await;
    f.step("createSecret", &token).await.unwrap();
    assert_eq!(f.step("finishSecret", &token).await.unwrap_err(), RotationError::NotInstalled);
    let current = stage_value(&f.secrets, &f.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["clientSecret"], "", "AWSCURRENT is still the first version");

    // A secret whose createSecret was refused, with a pending value put by hand.
    let intruder = create_app_secret(&f.secrets, ORG, PROJECT, APP).await;
    let token = start_rotation(&f.secrets, &intruder).await;
    assert_eq!(
        f.step_on(&intruder, "createSecret", &token).await.unwrap_err(),
        RotationError::NotTheAppsSecret(intruder.clone())
    );
    f.put_pending_by_hand(&intruder, &token, &Fixture::secret_document(Some(&"a".repeat(64)))).await;
    assert_eq!(
        f.step_on(&intruder, "finishSecret", &token).await.unwrap_err(),
        RotationError::NotTheAppsSecret(intruder.clone())
    );
    let current = stage_value(&f.secrets, &intruder, "AWSCURRENT").await.unwrap();
    assert_eq!(current["clientSecret"], "", "AWSCURRENT of the intruder did not move");
}

#[tokio::test]
async fn test_secret_fails_when_the_table_does_not_hold_the_pending_hash() {
    let f = fixture(Duration::ZERO).await;
    let token = start_rotation(&f.secrets, &f.arn).await;
    f.step("createSecret", &token).await.unwrap();
    assert_eq!(f.step("testSecret", &token).await.unwrap_err(), RotationError::TestFailed);
    assert_eq!(f.app().await.sequence, 0);
}

#[tokio::test]
async fn steps_check_rotation_state_and_token_first() {
    let f = fixture(Duration::ZERO).await;
    let err = f.step("createSecret", "not-a-version").await.unwrap_err();
    assert_eq!(err, RotationError::NotEnabled(f.arn.clone()), "rotation is not enabled before rotate-secret");
    let token = start_rotation(&f.secrets, &f.arn).await;
    let err = f.step("createSecret", "not-a-version").await.unwrap_err();
    assert_eq!(err, RotationError::UnknownToken("not-a-version".into()));
    assert!(matches!(f.step("rotateEverything", &token).await, Err(RotationError::UnknownStep(_))));
}

/// What a client saw while it kept calling through the authorizer.
#[derive(Debug, Default)]
struct Calls {
    allowed: u32,
    denied: u32,
    reads: u32,
}

/// The zero-downtime proof: a client reads its credentials from Secrets Manager
/// (AWSCURRENT, again at most every `reread`, as AWS's caching clients do) and keeps
/// authenticating through the authorizer's handler against the table, while `rotations`
/// whole rotations run one after another.
async fn authenticate_across_rotations(grace: Duration, reread: Duration, rotations: usize) -> Calls {
    use oidc_client_secret::authorizer::Authorizer;
    let f = fixture(grace).await;
    f.rotate().await; // the client's first secret
    let authorizer = Authorizer::new(f.store.clone(), 4);
    let done = std::sync::atomic::AtomicBool::new(false);
    let client = async {
        let mut calls = Calls::default();
        let mut secret = f.current_secret().await;
        let mut read_at = std::time::Instant::now();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            if read_at.elapsed() >= reread {
                secret = f.current_secret().await;
                read_at = std::time::Instant::now();
                calls.reads += 1;
            }
            use base64::Engine;
            let header =
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("client-1:{secret}")));
            let event = oidc_client_secret::authorizer::simple_request_event(&header, "GET", "/orders");
            match authorizer.handle(event, "zero-downtime", Deadline::for_request()).await {
                Ok(answer) if answer["isAuthorized"] == serde_json::json!(true) => calls.allowed += 1,
                _ => calls.denied += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        calls
    };
    let rotate = async {
        for _ in 0..rotations {
            tokio::time::sleep(reread * 2).await;
            f.rotate().await;
        }
        tokio::time::sleep(reread * 2).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (calls, ()) = tokio::join!(client, rotate);
    assert!(f.app().await.sequence as usize == rotations + 1, "every rotation wrote");
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_zero_failed_authentications_across_rotations_with_a_grace_period() {
    let reread = Duration::from_secs(1);
    // With a grace period well beyond the client's re-read interval (and the rotation's own
    // time, slower on a loaded machine): not one denial.
    let (with_grace, without) = tokio::join!(
        authenticate_across_rotations(Duration::from_secs(10), reread, 3),
        // The same client with a grace of 0: the old secret dies at setSecret, while the
        // client still holds it until its next read after finishSecret. The test sees it.
        authenticate_across_rotations(Duration::ZERO, reread, 3),
    );
    println!("grace 10 s, re-read every 1 s, 3 rotations: {with_grace:?}");
    println!("grace 0, re-read every 1 s, 3 rotations: {without:?}");
    assert!(with_grace.allowed >= 30, "the client kept calling: {with_grace:?}");
    assert_eq!(with_grace.denied, 0, "zero failed authentications: {with_grace:?}");
    assert!(without.denied > 0, "with no grace period the same run must see denials: {without:?}");
}

#[tokio::test]
async fn an_api_app_rotates_as_an_oidc_app_does() {
    let store = empty_table().await;
    let secrets = secrets_client().await;
    let arn = create_app_secret(&secrets, ORG, PROJECT, APP).await;
    let api_app = NewApp {
        app_type: "API".into(),
        rotation_secret_arn: Some(arn.clone()),
        ..NewApp::oidc(key(ORG, PROJECT, APP), "client-1")
    };
    seed_app(&store, api_app).await;
    let rotation = Rotation::new(SecretsManager::new(secrets.clone()), store.clone(), SecretSettings::default());
    let f = Fixture { store, secrets, arn, rotation };
    let secret = f.rotate().await;
    let app = f.app().await;
    assert!(verify_client_secret(&app, &secret, OffsetDateTime::now_utc()));
    assert_eq!(app.sequence, 1);
    let events = events(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(text(&events[0], "type"), "project.application.config.api.secret.changed");
}
