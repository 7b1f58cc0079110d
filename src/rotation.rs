//! Scheduled rotation through AWS Secrets Manager: the four steps of its rotation
//! protocol and their rules, on top of the same use case as the HTTP path. Secrets
//! Manager is reached through the [`Secrets`] trait (the SDK is in `crate::secrets`).
//!
//! The secret's value is `{"orgId","projectId","appId","clientId","clientSecret"}`: the
//! client reads its current secret from Secrets Manager. As in AWS's rotation template,
//! every step first checks that rotation is enabled and the token is a version of the
//! secret, does nothing when that version is already AWSCURRENT, and is idempotent when
//! Secrets Manager retries it. Each step reads the table once:
//!
//! - `createSecret`: a new secret as AWSPENDING, unless that version has a value already.
//! - `setSecret`: the pending value must be a secret by the generation rules (32 to 72
//!   characters from `A-Z a-z 0-9`); its hash goes into the table through the use case
//!   (`source` rotation, `actor` the secret's ARN), unless the table's current hash is it.
//! - `testSecret`: the pending value must verify against the app's current hash, never
//!   the previous one kept for a grace period.
//! - `finishSecret`: the same check, and only then AWSCURRENT moves to the pending version.
//!
//! Only the secret named in the app's `rotationSecretArn` may rotate that app: every step
//! checks it before writing anything, and the table write re-checks it in its condition.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

use crate::app::{AppKey, AppKind};
use crate::config::SecretSettings;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::{AppId, OrgId, ProjectId};
use crate::regenerate::{Attempted, Authority, Installed, Regenerator, Request, Store};
use crate::secret::ClientSecret;
use crate::{logging, metrics};
use serde_json::{Map, Value};

pub const CURRENT: &str = "AWSCURRENT";
pub const PENDING: &str = "AWSPENDING";

/// A secret as `DescribeSecret` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub arn: String,
    pub rotation_enabled: bool,
    /// Version id -> its staging labels.
    pub versions: HashMap<String, Vec<String>>,
}

/// A Secrets Manager call that failed; the text is for the log and the runtime's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretsError(pub String);

/// Secrets Manager, as the rotation protocol needs it (see [`crate::secrets`]).
pub trait Secrets: Send + Sync {
    fn describe(&self, secret_id: &str) -> impl Future<Output = Result<Described, SecretsError>> + Send;
    /// The string value of the version staged `stage` (and with id `version`, when given);
    /// `None` when there is no such version or it has no value yet.
    fn value(
        &self,
        arn: &str,
        version: Option<&str>,
        stage: &str,
    ) -> impl Future<Output = Result<Option<String>, SecretsError>> + Send;
    /// Puts `value` into version `token`, staged AWSPENDING.
    fn put_pending(
        &self,
        arn: &str,
        token: &str,
        value: String,
    ) -> impl Future<Output = Result<(), SecretsError>> + Send;
    /// Moves AWSCURRENT to version `token`, from version `current`.
    fn make_current(
        &self,
        arn: &str,
        token: &str,
        current: Option<&str>,
    ) -> impl Future<Output = Result<(), SecretsError>> + Send;
}

/// The event Secrets Manager sends the rotation function.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RotationEvent {
    #[serde(rename = "Step")]
    pub step: String,
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
}

/// The secret's JSON value. No `Debug`: it holds the plaintext.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretDocument {
    org_id: String,
    project_id: String,
    app_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl SecretDocument {
    fn parse(text: &str) -> Result<Self, RotationError> {
        // The parser's message could quote the value: only the position is kept.
        serde_json::from_str(text).map_err(|e| {
            RotationError::BadValue(format!(
                "not JSON of the expected shape at line {}, column {}",
                e.line(),
                e.column()
            ))
        })
    }

    fn key(&self) -> Result<AppKey, RotationError> {
        let invalid = |e: Error| RotationError::BadValue(e.to_string());
        Ok(AppKey {
            org: OrgId::parse(&self.org_id, "orgId").map_err(invalid)?,
            project: ProjectId::parse(&self.project_id).map_err(invalid)?,
            app: AppId::parse(&self.app_id).map_err(invalid)?,
        })
    }

    /// The client secret, if it is one by the rules secrets are generated by.
    fn secret(&self) -> Result<ClientSecret, RotationError> {
        let value =
            self.client_secret.clone().ok_or_else(|| RotationError::BadValue("clientSecret is missing".into()))?;
        ClientSecret::parse(value).map_err(|e| RotationError::BadValue(e.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    #[error("rotation is not enabled for secret {0}")]
    NotEnabled(String),
    #[error("ClientRequestToken {0} is not a version of the secret")]
    UnknownToken(String),
    #[error("secret version {0} is not staged AWSPENDING")]
    NotPending(String),
    #[error("unknown rotation step {0:?}")]
    UnknownStep(String),
    #[error("the secret value is not the JSON {{orgId, projectId, appId, clientId, clientSecret}}: {0}")]
    BadValue(String),
    #[error("secret {0} is not the rotationSecretArn of the app it names")]
    NotTheAppsSecret(String),
    #[error("the pending secret does not verify against the table")]
    TestFailed,
    #[error("the pending secret is not the app's current secret: setSecret has not run, or a newer secret replaced it")]
    NotInstalled,
    /// A refusal or failure of the use case (app missing, not OIDC, conflict, storage).
    #[error("{0}")]
    App(Error),
    #[error("Secrets Manager {0}")]
    SecretsManager(String),
}

impl From<SecretsError> for RotationError {
    fn from(error: SecretsError) -> Self {
        RotationError::SecretsManager(error.0)
    }
}

impl From<RotationError> for Diagnostic {
    fn from(error: RotationError) -> Self {
        Diagnostic { error_type: error.kind().into(), error_message: error.to_string() }
    }
}

impl RotationError {
    /// The error type the Lambda runtime reports, and the metrics' outcome of a failed step.
    pub fn kind(&self) -> &'static str {
        match self {
            RotationError::NotEnabled(_) => "RotationNotEnabled",
            RotationError::UnknownToken(_) | RotationError::NotPending(_) => "InvalidToken",
            RotationError::UnknownStep(_) => "UnknownStep",
            RotationError::BadValue(_) => "InvalidSecretValue",
            RotationError::NotTheAppsSecret(_) => "NotTheAppsSecret",
            RotationError::TestFailed => "TestFailed",
            RotationError::NotInstalled => "NotInstalled",
            RotationError::App(_) => "AppRefused",
            RotationError::SecretsManager(_) => "SecretsManagerError",
        }
    }
}

/// The step as a metrics dimension: one of the four, or `unknown`.
fn step_name(step: &str) -> &'static str {
    match step {
        "createSecret" => "createSecret",
        "setSecret" => "setSecret",
        "testSecret" => "testSecret",
        "finishSecret" => "finishSecret",
        _ => "unknown",
    }
}

/// A use-case error as a rotation error: a permission refusal means the secret is not
/// the app's `rotationSecretArn`.
fn refusal(arn: &str, error: RotationError) -> RotationError {
    match error {
        RotationError::App(Error::PermissionDenied) => RotationError::NotTheAppsSecret(arn.to_owned()),
        error => error,
    }
}

/// Serves rotation events through the Lambda Runtime API until the runtime stops.
pub async fn run<S: Store, M: Secrets>(rotation: Rotation<S, M>) -> Result<(), lambda_runtime::Error> {
    let rotation = &rotation;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RotationEvent>| async move {
        let deadline = Deadline::from_lambda(event.context.deadline);
        rotation.handle(&event.payload, &event.context.request_id, deadline).await
    }))
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Set,
    Test,
    Finish,
}

/// The apps a rotation may change: both types with client secrets.
const ROTATED: AppKind = AppKind::WithSecret;

/// The app a step works on, what may change it (the secret being rotated), and by when.
struct Target {
    key: AppKey,
    authority: Authority,
    deadline: Deadline,
}

/// What one step did, for the log line: the app its secret names, once read, and the outcome.
struct Report {
    app: Option<AppKey>,
    result: Result<&'static str, RotationError>,
}

impl Report {
    fn early(result: Result<&'static str, RotationError>) -> Self {
        Self { app: None, result }
    }
}

/// The rotation function's state, built once at start-up.
pub struct Rotation<S, M> {
    secrets: M,
    regenerator: Regenerator<S>,
    length: usize,
    /// The metrics' `Function` dimension.
    function: String,
}

impl<S: Store, M: Secrets> Rotation<S, M> {
    pub fn new(secrets: M, store: S, settings: SecretSettings) -> Self {
        Self {
            secrets,
            regenerator: Regenerator::new(store, settings),
            length: settings.length,
            function: crate::metrics::function_name(),
        }
    }

    /// Runs one step before `deadline` and leaves one log line, whatever the outcome.
    pub async fn handle(
        &self,
        event: &RotationEvent,
        request_id: &str,
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let started = Instant::now();
        let Report { app, result } = self.step(event, deadline).await;
        let field = |f: fn(&AppKey) -> &str| Value::from(app.as_ref().map(f).unwrap_or(""));
        let outcome = match &result {
            Ok(outcome) => *outcome,
            Err(error) => error.kind(),
        };
        let duration_ms = started.elapsed().as_micros() as f64 / 1000.0;
        let fields = Map::from_iter([
            ("request_id".to_owned(), Value::from(request_id)),
            ("step".to_owned(), Value::from(event.step.as_str())),
            ("secret".to_owned(), Value::from(event.secret_id.as_str())),
            ("version".to_owned(), Value::from(event.token.as_str())),
            ("org".to_owned(), field(|k| k.org.as_str())),
            ("project".to_owned(), field(|k| k.project.as_str())),
            ("app".to_owned(), field(|k| k.app.as_str())),
            ("outcome".to_owned(), Value::from(outcome)),
            ("duration_ms".to_owned(), Value::from(duration_ms)),
            ("Function".to_owned(), Value::from(self.function.as_str())),
            ("Step".to_owned(), Value::from(step_name(&event.step))),
            ("Outcome".to_owned(), Value::from(outcome)),
        ]);
        logging::request_line("rotate client secret", fields, |line| {
            metrics::document(
                metrics::now_ms(),
                vec![vec!["Function", "Step", "Outcome"]],
                &[("RotationSteps", "Count", 1.0), ("RotationDuration", "Milliseconds", duration_ms)],
                line,
            )
        });
        if let Err(error) = &result {
            let detail = match error {
                RotationError::App(inner) => inner.log_detail().unwrap_or_default(),
                _ => "",
            };
            tracing::error!(request_id, %error, detail, "rotation step failed");
        }
        result.map(drop)
    }

    async fn step(&self, event: &RotationEvent, deadline: Deadline) -> Report {
        let token = event.token.as_str();
        let described = match self.pending_version(event).await {
            Ok(Some(described)) => described,
            Ok(None) => return Report::early(Ok("already current")),
            Err(error) => return Report::early(Err(error)),
        };
        let step = match event.step.as_str() {
            "createSecret" => Step::Create,
            "setSecret" => Step::Set,
            "testSecret" => Step::Test,
            "finishSecret" => Step::Finish,
            other => return Report::early(Err(RotationError::UnknownStep(other.to_owned()))),
        };
        let arn = described.arn.as_str();
        // createSecret starts from the current value; every later step from the pending one.
        let document = match step {
            Step::Create => self.document(arn, None, CURRENT, "the AWSCURRENT version has no value").await,
            _ => {
                self.document(arn, Some(token), PENDING, "the pending version has no value; createSecret has not run")
                    .await
            }
        };
        let (document, key) = match document.and_then(|d| d.key().map(|key| (d, key))) {
            Ok(found) => found,
            Err(error) => return Report::early(Err(error)),
        };
        let target = Target { key, authority: Authority::RotationSecret(arn.to_owned()), deadline };
        let result = match step {
            Step::Create => self.create(arn, token, &target, document).await,
            Step::Set => self.set(token, &target, &document).await,
            Step::Test => self.test(&target, &document).await,
            Step::Finish => self.finish(arn, token, &described.versions, &target, &document).await,
        };
        Report { app: Some(target.key), result: result.map_err(|error| refusal(arn, error)) }
    }

    /// AWS's template checks, before anything else: rotation enabled, the token a version
    /// of the secret; `None` when that version is already AWSCURRENT (nothing to do).
    async fn pending_version(&self, event: &RotationEvent) -> Result<Option<Described>, RotationError> {
        let described = self.secrets.describe(&event.secret_id).await?;
        if !described.rotation_enabled {
            return Err(RotationError::NotEnabled(described.arn));
        }
        let stages =
            described.versions.get(&event.token).ok_or_else(|| RotationError::UnknownToken(event.token.clone()))?;
        if stages.iter().any(|s| s == CURRENT) {
            return Ok(None);
        }
        if !stages.iter().any(|s| s == PENDING) {
            return Err(RotationError::NotPending(event.token.clone()));
        }
        Ok(Some(described))
    }

    async fn document(
        &self,
        arn: &str,
        version: Option<&str>,
        stage: &str,
        missing: &str,
    ) -> Result<SecretDocument, RotationError> {
        let text = self.secrets.value(arn, version, stage).await?;
        SecretDocument::parse(&text.ok_or_else(|| RotationError::BadValue(missing.to_owned()))?)
    }

    /// A new secret as AWSPENDING, unless that version has a value already.
    async fn create(
        &self,
        arn: &str,
        token: &str,
        target: &Target,
        current: SecretDocument,
    ) -> Result<&'static str, RotationError> {
        let app = self
            .regenerator
            .writable_app(&target.key, ROTATED, &target.authority, target.deadline)
            .await
            .map_err(RotationError::App)?;
        if self.secrets.value(arn, Some(token), PENDING).await?.is_some() {
            return Ok("already created");
        }
        let secret = ClientSecret::generate(self.length);
        let document =
            SecretDocument { client_id: app.client_id, client_secret: Some(secret.expose().to_owned()), ..current };
        let text = serde_json::to_string(&document).map_err(|e| RotationError::BadValue(e.to_string()))?;
        self.secrets.put_pending(arn, token, text).await?;
        Ok("created")
    }

    /// The pending secret's hash into the table, unless the app's current hash is already it.
    async fn set(&self, token: &str, target: &Target, pending: &SecretDocument) -> Result<&'static str, RotationError> {
        let secret = pending.secret()?;
        let request = Request {
            key: target.key.clone(),
            kind: ROTATED,
            authority: target.authority.clone(),
            request_id: token.to_owned(),
            deadline: target.deadline,
        };
        let Attempted { result, .. } = self.regenerator.install(&request, &secret).await;
        match result.map_err(RotationError::App)? {
            Installed::Written(_) => Ok("set"),
            Installed::AlreadyCurrent => Ok("already set"),
        }
    }

    /// Whether the pending value is a secret and the app's current one (never the previous
    /// one kept for a grace period): one read of the table.
    async fn is_current(&self, target: &Target, pending: &SecretDocument) -> Result<bool, RotationError> {
        let secret = pending.secret()?;
        self.regenerator
            .is_current(&target.key, ROTATED, &target.authority, &secret, target.deadline)
            .await
            .map_err(RotationError::App)
    }

    /// The pending secret must be the app's current secret (not the previous one kept for
    /// a grace period).
    async fn test(&self, target: &Target, pending: &SecretDocument) -> Result<&'static str, RotationError> {
        match self.is_current(target, pending).await? {
            true => Ok("tested"),
            false => Err(RotationError::TestFailed),
        }
    }

    /// AWSCURRENT moves to the pending version, only if the table holds it as current.
    async fn finish(
        &self,
        arn: &str,
        token: &str,
        versions: &HashMap<String, Vec<String>>,
        target: &Target,
        pending: &SecretDocument,
    ) -> Result<&'static str, RotationError> {
        if !self.is_current(target, pending).await? {
            return Err(RotationError::NotInstalled);
        }
        let current =
            versions.iter().find(|(_, stages)| stages.iter().any(|s| s == CURRENT)).map(|(id, _)| id.as_str());
        self.secrets.make_current(arn, token, current).await?;
        Ok("finished")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use time::OffsetDateTime;

    use super::*;
    use crate::secret::verify_client_secret;
    use crate::secrets::memory::{MemorySecrets, PREVIOUS};
    use crate::store::memory::{MemoryStore, key, oidc_app};

    const ARN: &str = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:app-1-AbCdEf";
    const INTRUDER: &str = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:intruder-XyZxYz";
    const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

    fn document(secret: Option<&str>) -> String {
        let mut value = json!({"orgId": "org-a", "projectId": "proj-1", "appId": "app-1", "clientId": "client-1"});
        if let Some(secret) = secret {
            value["clientSecret"] = Value::from(secret);
        }
        value.to_string()
    }

    /// The app names ARN as its rotation secret; both ARN and INTRUDER exist.
    fn fixture(grace: Duration) -> Rotation<MemoryStore, MemorySecrets> {
        let store = MemoryStore::default();
        let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
        app.rotation_secret_arn = Some(ARN.into());
        store.put_app(app);
        let secrets = MemorySecrets::default();
        for arn in [ARN, INTRUDER] {
            secrets.create(arn, "v0", &document(None));
        }
        Rotation::new(secrets, store, SecretSettings { grace, ..SecretSettings::default() })
    }

    async fn step(
        r: &Rotation<MemoryStore, MemorySecrets>,
        arn: &str,
        step: &str,
        token: &str,
    ) -> Result<(), RotationError> {
        let event = RotationEvent { step: step.into(), secret_id: arn.into(), token: token.into() };
        r.handle(&event, "req", Deadline::for_request()).await
    }

    fn stored(r: &Rotation<MemoryStore, MemorySecrets>) -> crate::app::App {
        r.regenerator.store().app(&key("org-a", "proj-1", "app-1")).unwrap()
    }

    fn client_secret(text: &str) -> String {
        serde_json::from_str::<Value>(text).unwrap()["clientSecret"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn four_steps_make_a_new_secret_current_in_the_table_and_in_secrets_manager() {
        let r = fixture(Duration::ZERO);
        r.secrets.start_rotation(ARN, "v1");
        for name in STEPS {
            step(&r, ARN, name, "v1").await.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let current = r.secrets.stage_value(ARN, CURRENT).unwrap();
        let secret = client_secret(&current);
        assert_eq!(secret.len(), 64);
        let app = stored(&r);
        assert!(verify_client_secret(&app, &secret, OffsetDateTime::now_utc()));
        assert_eq!(app.sequence, 1);
        assert_eq!(r.secrets.stages(ARN, "v0"), vec![PREVIOUS.to_owned()]);
        let events = r.regenerator.store().events();
        assert_eq!((events.len(), events[0].actor.as_str(), events[0].request_id.as_str()), (1, ARN, "v1"));
    }

    #[tokio::test]
    async fn every_step_twice_is_the_same_as_once() {
        let r = fixture(Duration::ZERO);
        r.secrets.start_rotation(ARN, "v1");
        for name in STEPS {
            step(&r, ARN, name, "v1").await.unwrap();
            step(&r, ARN, name, "v1").await.unwrap_or_else(|e| panic!("{name} again: {e}"));
        }
        assert_eq!(stored(&r).sequence, 1);
        assert_eq!(r.secrets.writes(), 2, "one PutSecretValue, one stage move");
    }

    #[tokio::test]
    async fn set_secret_takes_only_a_secret_by_the_generation_rules() {
        let r = fixture(Duration::ZERO);
        r.secrets.start_rotation(ARN, "v1");
        let weak = [
            Some(String::new()),
            Some("a".into()),
            Some("a".repeat(80)),
            Some(format!("{}é", "a".repeat(40))),
            Some(format!("{}!", "a".repeat(40))),
            None,
        ];
        for value in weak {
            r.secrets.put_by_hand(ARN, "v1", &document(value.as_deref()));
            let error = step(&r, ARN, "setSecret", "v1").await.unwrap_err();
            assert!(matches!(error, RotationError::BadValue(_)), "{value:?}: {error}");
            if let Some(value) = value.filter(|v| v.len() > 8) {
                assert!(!error.to_string().contains(&value), "the error holds the value");
            }
        }
        r.secrets.put_by_hand(ARN, "v1", "not json");
        assert!(matches!(step(&r, ARN, "setSecret", "v1").await, Err(RotationError::BadValue(_))));
        assert_eq!(r.regenerator.store().calls(), (0, 0), "nothing reached the table");
        let fine = ClientSecret::generate(32);
        r.secrets.put_by_hand(ARN, "v1", &document(Some(fine.expose())));
        step(&r, ARN, "setSecret", "v1").await.unwrap();
        assert!(verify_client_secret(&stored(&r), fine.expose(), OffsetDateTime::now_utc()));
    }

    #[tokio::test]
    async fn test_and_finish_refuse_a_pending_secret_that_is_only_the_previous_one() {
        let r = fixture(Duration::from_secs(600));
        r.secrets.start_rotation(ARN, "v1");
        step(&r, ARN, "createSecret", "v1").await.unwrap();
        step(&r, ARN, "setSecret", "v1").await.unwrap();
        // A regenerate through the HTTP path: the pending secret is now the previous one.
        let member = crate::ids::UserId::parse("user-1", "user").unwrap();
        let org = crate::ids::OrgId::parse("org-a", "org").unwrap();
        r.regenerator.store().grant(&org, &member, None, &[crate::regenerate::APP_WRITE_PERMISSION]);
        let request = Request {
            key: key("org-a", "proj-1", "app-1"),
            kind: AppKind::Oidc,
            authority: Authority::Member(member),
            request_id: "http".into(),
            deadline: Deadline::for_request(),
        };
        r.regenerator.regenerate(&request).await.result.unwrap();
        let pending = client_secret(&r.secrets.stage_value(ARN, PENDING).unwrap());
        assert!(verify_client_secret(&stored(&r), &pending, OffsetDateTime::now_utc()), "still valid as previous");
        assert_eq!(step(&r, ARN, "testSecret", "v1").await.unwrap_err(), RotationError::TestFailed);
        let writes = r.secrets.writes();
        assert_eq!(step(&r, ARN, "finishSecret", "v1").await.unwrap_err(), RotationError::NotInstalled);
        assert_eq!(r.secrets.writes(), writes, "AWSCURRENT did not move");
        assert_eq!(r.secrets.stages(ARN, "v0"), vec![CURRENT.to_owned()]);
    }

    #[tokio::test]
    async fn finish_secret_without_set_secret_moves_nothing() {
        let r = fixture(Duration::ZERO);
        r.secrets.start_rotation(ARN, "v1");
        step(&r, ARN, "createSecret", "v1").await.unwrap();
        let writes = r.secrets.writes();
        assert_eq!(step(&r, ARN, "finishSecret", "v1").await.unwrap_err(), RotationError::NotInstalled);
        assert_eq!(r.secrets.writes(), writes);
        assert_eq!(r.secrets.stages(ARN, "v0"), vec![CURRENT.to_owned()]);
    }

    #[tokio::test]
    async fn a_secret_that_is_not_the_apps_is_refused_at_every_step_without_a_write() {
        let r = fixture(Duration::ZERO);
        r.secrets.start_rotation(INTRUDER, "v1");
        let refused = RotationError::NotTheAppsSecret(INTRUDER.into());
        assert_eq!(step(&r, INTRUDER, "createSecret", "v1").await.unwrap_err(), refused);
        assert_eq!(r.secrets.writes(), 0);
        r.secrets.put_by_hand(INTRUDER, "v1", &document(Some(ClientSecret::generate(64).expose())));
        for name in ["setSecret", "testSecret", "finishSecret"] {
            assert_eq!(step(&r, INTRUDER, name, "v1").await.unwrap_err(), refused, "{name}");
        }
        assert_eq!(r.secrets.writes(), 0);
        assert_eq!(r.secrets.stages(INTRUDER, "v0"), vec![CURRENT.to_owned()]);
        assert_eq!(r.regenerator.store().calls().1, 0, "no write was tried");
    }

    #[tokio::test]
    async fn steps_check_rotation_state_token_and_step_first() {
        let r = fixture(Duration::ZERO);
        assert_eq!(step(&r, ARN, "createSecret", "v1").await.unwrap_err(), RotationError::NotEnabled(ARN.into()));
        r.secrets.start_rotation(ARN, "v1");
        assert_eq!(step(&r, ARN, "createSecret", "v9").await.unwrap_err(), RotationError::UnknownToken("v9".into()));
        assert!(step(&r, ARN, "createSecret", "v0").await.is_ok(), "already AWSCURRENT: nothing to do");
        assert_eq!(
            step(&r, ARN, "rotateEverything", "v1").await.unwrap_err(),
            RotationError::UnknownStep("rotateEverything".into())
        );
        assert_eq!(r.secrets.writes(), 0);
        assert_eq!(r.regenerator.store().calls(), (0, 0));
    }
}
