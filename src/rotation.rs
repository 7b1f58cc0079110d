//! Scheduled rotation through AWS Secrets Manager: the four steps of its rotation
//! protocol, on top of the same use case as the HTTP path.
//!
//! The secret's value is `{"orgId","projectId","appId","clientId","clientSecret"}`: the
//! client reads its current secret from Secrets Manager. As in AWS's rotation template,
//! every step first checks that rotation is enabled and the token is a version of the
//! secret, does nothing when that version is already AWSCURRENT, and is idempotent when
//! Secrets Manager retries it:
//!
//! - `createSecret`: a new secret as AWSPENDING, unless that version has a value already.
//! - `setSecret`: its hash into the table through the use case (`source` rotation, `actor`
//!   the secret's ARN), unless the table's hash already verifies it.
//! - `testSecret`: the pending value must verify against the table.
//! - `finishSecret`: AWSCURRENT moves to the pending version.
//!
//! Only the secret named in the app's `rotationSecretArn` may rotate that app: every step
//! checks it before writing anything, and the table write re-checks it in its condition.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::{App, AppKey};
use crate::config::SecretSettings;
use crate::error::Error;
use crate::ids::{AppId, OrgId, ProjectId};
use crate::rotate::{Attempted, Authority, Request, Rotator, Store};
use crate::secret::{ClientSecret, matches_hash, verify_client_secret};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

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
    #[serde(default)]
    client_secret: String,
}

impl SecretDocument {
    fn key(&self) -> Result<AppKey, RotationError> {
        let invalid = |e: Error| RotationError::BadValue(e.to_string());
        Ok(AppKey {
            org: OrgId::parse(&self.org_id, "orgId").map_err(invalid)?,
            project: ProjectId::parse(&self.project_id).map_err(invalid)?,
            app: AppId::parse(&self.app_id).map_err(invalid)?,
        })
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
    /// A refusal or failure of the use case (app missing, not OIDC, conflict, storage).
    #[error("{0}")]
    App(Error),
    #[error("Secrets Manager {0}")]
    SecretsManager(String),
}

impl From<RotationError> for Diagnostic {
    fn from(error: RotationError) -> Self {
        let kind = match &error {
            RotationError::NotEnabled(_) => "RotationNotEnabled",
            RotationError::UnknownToken(_) | RotationError::NotPending(_) => "InvalidToken",
            RotationError::UnknownStep(_) => "UnknownStep",
            RotationError::BadValue(_) => "InvalidSecretValue",
            RotationError::NotTheAppsSecret(_) => "NotTheAppsSecret",
            RotationError::TestFailed => "TestFailed",
            RotationError::App(_) => "AppRefused",
            RotationError::SecretsManager(_) => "SecretsManagerError",
        };
        Diagnostic { error_type: kind.into(), error_message: error.to_string() }
    }
}

/// A use-case error as a rotation error: a permission refusal means the secret is not
/// the app's `rotationSecretArn`.
fn refusal(arn: &str, error: Error) -> RotationError {
    match error {
        Error::PermissionDenied => RotationError::NotTheAppsSecret(arn.to_owned()),
        error => RotationError::App(error),
    }
}

fn sm_error(operation: &str, err: impl std::error::Error + 'static) -> RotationError {
    RotationError::SecretsManager(format!("{operation}: {}", DisplayErrorContext(&err)))
}

/// Serves rotation events through the Lambda Runtime API until the runtime stops.
pub async fn run<S: Store>(rotation: Rotation<S>) -> Result<(), lambda_runtime::Error> {
    let rotation = &rotation;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RotationEvent>| async move {
        rotation.handle(&event.payload, &event.context.request_id).await
    }))
    .await
}

/// The rotation function's state, built once at start-up.
pub struct Rotation<S> {
    secrets: Client,
    rotator: Rotator<S>,
    length: usize,
}

impl<S: Store> Rotation<S> {
    pub fn new(secrets: Client, store: S, settings: SecretSettings) -> Self {
        Self { secrets, rotator: Rotator::new(store, settings), length: settings.length }
    }

    /// Runs one step and leaves one log line, whatever the outcome.
    pub async fn handle(&self, event: &RotationEvent, request_id: &str) -> Result<(), RotationError> {
        let started = Instant::now();
        let mut app = None;
        let result = self.step(event, &mut app).await;
        let field = |f: fn(&AppKey) -> &str| app.as_ref().map(f).unwrap_or("");
        let outcome = match &result {
            Ok(outcome) => *outcome,
            Err(_) => "failed",
        };
        tracing::info!(
            request_id,
            step = event.step,
            secret = event.secret_id,
            version = event.token,
            org = field(|k| k.org.as_str()),
            project = field(|k| k.project.as_str()),
            app = field(|k| k.app.as_str()),
            outcome,
            duration_ms = started.elapsed().as_micros() as f64 / 1000.0,
            "rotate client secret"
        );
        if let Err(error) = &result {
            let detail = match error {
                RotationError::App(inner) => inner.log_detail().unwrap_or_default(),
                _ => "",
            };
            tracing::error!(request_id, %error, detail, "rotation step failed");
        }
        result.map(drop)
    }

    async fn step(&self, event: &RotationEvent, app: &mut Option<AppKey>) -> Result<&'static str, RotationError> {
        let described = self
            .secrets
            .describe_secret()
            .secret_id(&event.secret_id)
            .send()
            .await
            .map_err(|e| sm_error("DescribeSecret", e))?;
        let arn = described.arn().unwrap_or(&event.secret_id).to_owned();
        if described.rotation_enabled() != Some(true) {
            return Err(RotationError::NotEnabled(arn));
        }
        let versions: &HashMap<String, Vec<String>> =
            described.version_ids_to_stages().ok_or_else(|| RotationError::UnknownToken(event.token.clone()))?;
        let stages = versions.get(&event.token).ok_or_else(|| RotationError::UnknownToken(event.token.clone()))?;
        if stages.iter().any(|s| s == CURRENT) {
            return Ok("already current");
        }
        if !stages.iter().any(|s| s == PENDING) {
            return Err(RotationError::NotPending(event.token.clone()));
        }
        match event.step.as_str() {
            "createSecret" => self.create(&arn, &event.token, app).await,
            "setSecret" => self.set(&arn, &event.token, app).await,
            "testSecret" => self.test(&arn, &event.token, app).await,
            "finishSecret" => self.finish(&arn, &event.token, versions).await,
            other => Err(RotationError::UnknownStep(other.to_owned())),
        }
    }

    /// The value of one version, or `None` when that version has no value yet.
    async fn value(
        &self,
        arn: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Result<Option<SecretDocument>, RotationError> {
        let result = self
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(sm_error("GetSecretValue", e)),
        };
        let Some(text) = output.secret_string() else { return Ok(None) };
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| RotationError::BadValue(format!("line {}, column {}", e.line(), e.column())))
    }

    async fn pending(&self, arn: &str, token: &str) -> Result<SecretDocument, RotationError> {
        self.value(arn, Some(token), PENDING)
            .await?
            .ok_or_else(|| RotationError::BadValue(format!("version {token} has no value; createSecret has not run")))
    }

    /// The app the document names, if this secret may rotate it now.
    async fn app_for(
        &self,
        arn: &str,
        document: &SecretDocument,
        seen: &mut Option<AppKey>,
    ) -> Result<(AppKey, App), RotationError> {
        let key = document.key()?;
        *seen = Some(key.clone());
        let app = self.rotator.writable_app(&key, &Authority::RotationSecret(arn.to_owned())).await;
        app.map(|app| (key, app)).map_err(|error| refusal(arn, error))
    }

    async fn create(&self, arn: &str, token: &str, seen: &mut Option<AppKey>) -> Result<&'static str, RotationError> {
        let current = self
            .value(arn, None, CURRENT)
            .await?
            .ok_or_else(|| RotationError::BadValue("the AWSCURRENT version has no value".into()))?;
        let (_, app) = self.app_for(arn, &current, seen).await?;
        if self.value(arn, Some(token), PENDING).await?.is_some() {
            return Ok("already created");
        }
        let secret = ClientSecret::generate(self.length);
        let document = SecretDocument {
            org_id: current.org_id,
            project_id: current.project_id,
            app_id: current.app_id,
            client_id: app.client_id,
            client_secret: secret.expose().to_owned(),
        };
        let text = serde_json::to_string(&document).map_err(|e| RotationError::BadValue(e.to_string()))?;
        self.secrets
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(token)
            .secret_string(text)
            .version_stages(PENDING)
            .send()
            .await
            .map_err(|e| sm_error("PutSecretValue", e))?;
        Ok("created")
    }

    async fn set(&self, arn: &str, token: &str, seen: &mut Option<AppKey>) -> Result<&'static str, RotationError> {
        let pending = self.pending(arn, token).await?;
        let (key, app) = self.app_for(arn, &pending, seen).await?;
        if app.secret_hash.as_deref().is_some_and(|hash| matches_hash(&pending.client_secret, hash)) {
            return Ok("already set");
        }
        let request =
            Request { key, authority: Authority::RotationSecret(arn.to_owned()), request_id: token.to_owned() };
        let Attempted { result, .. } =
            self.rotator.write(&request, ClientSecret::from_existing(pending.client_secret)).await;
        result.map(|_| "set").map_err(|error| refusal(arn, error))
    }

    async fn test(&self, arn: &str, token: &str, seen: &mut Option<AppKey>) -> Result<&'static str, RotationError> {
        let pending = self.pending(arn, token).await?;
        let (_, app) = self.app_for(arn, &pending, seen).await?;
        if verify_client_secret(&app, &pending.client_secret, OffsetDateTime::now_utc()) {
            Ok("tested")
        } else {
            Err(RotationError::TestFailed)
        }
    }

    async fn finish(
        &self,
        arn: &str,
        token: &str,
        versions: &HashMap<String, Vec<String>>,
    ) -> Result<&'static str, RotationError> {
        let current = versions.iter().find(|(_, stages)| stages.iter().any(|s| s == CURRENT)).map(|(id, _)| id.clone());
        self.secrets
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage(CURRENT)
            .move_to_version_id(token)
            .set_remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| sm_error("UpdateSecretVersionStage", e))?;
        Ok("finished")
    }
}
