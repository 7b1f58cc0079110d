//! An in-memory Secrets Manager for the rotation protocol's unit tests: secrets with
//! versions, staging labels and values, as the four steps see them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::rotation::{CURRENT, Described, PENDING, Secrets, SecretsError};

pub const PREVIOUS: &str = "AWSPREVIOUS";

#[derive(Default)]
struct Version {
    value: Option<String>,
    stages: Vec<String>,
}

#[derive(Default)]
struct Secret {
    rotation_enabled: bool,
    versions: HashMap<String, Version>,
}

#[derive(Default)]
pub struct MemorySecrets {
    secrets: Mutex<HashMap<String, Secret>>,
    writes: Mutex<u32>,
}

impl MemorySecrets {
    /// A secret whose AWSCURRENT version `current` holds `value`; rotation not enabled.
    pub fn create(&self, arn: &str, current: &str, value: &str) {
        let version = Version { value: Some(value.to_owned()), stages: vec![CURRENT.to_owned()] };
        let secret = Secret { rotation_enabled: false, versions: HashMap::from([(current.to_owned(), version)]) };
        self.secrets.lock().unwrap().insert(arn.to_owned(), secret);
    }

    /// What `rotate-secret` does before it calls the function: rotation enabled, and a new
    /// version staged AWSPENDING with no value yet.
    pub fn start_rotation(&self, arn: &str, token: &str) {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets.get_mut(arn).expect("a secret made by create");
        secret.rotation_enabled = true;
        move_stage(secret, PENDING, token);
    }

    /// Writes `value` into the pending version by hand, as anyone with `PutSecretValue` could.
    pub fn put_by_hand(&self, arn: &str, token: &str, value: &str) {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets.get_mut(arn).expect("a secret made by create");
        secret.versions.entry(token.to_owned()).or_default().value = Some(value.to_owned());
    }

    pub fn stage_value(&self, arn: &str, stage: &str) -> Option<String> {
        let secrets = self.secrets.lock().unwrap();
        let secret = secrets.get(arn)?;
        secret.versions.values().find(|v| v.stages.iter().any(|s| s == stage)).and_then(|v| v.value.clone())
    }

    pub fn stages(&self, arn: &str, token: &str) -> Vec<String> {
        let secrets = self.secrets.lock().unwrap();
        secrets.get(arn).and_then(|s| s.versions.get(token)).map(|v| v.stages.clone()).unwrap_or_default()
    }

    /// How many values were put and stages moved.
    pub fn writes(&self) -> u32 {
        *self.writes.lock().unwrap()
    }
}

/// Puts `stage` on `token` alone, creating the version if needed.
fn move_stage(secret: &mut Secret, stage: &str, token: &str) {
    for version in secret.versions.values_mut() {
        version.stages.retain(|s| s != stage);
    }
    secret.versions.entry(token.to_owned()).or_default().stages.push(stage.to_owned());
}

fn not_found(arn: &str) -> SecretsError {
    SecretsError(format!("ResourceNotFoundException: {arn}"))
}

impl Secrets for MemorySecrets {
    async fn describe(&self, secret_id: &str) -> Result<Described, SecretsError> {
        let secrets = self.secrets.lock().unwrap();
        let secret = secrets.get(secret_id).ok_or_else(|| not_found(secret_id))?;
        Ok(Described {
            arn: secret_id.to_owned(),
            rotation_enabled: secret.rotation_enabled,
            versions: secret.versions.iter().map(|(id, v)| (id.clone(), v.stages.clone())).collect(),
        })
    }

    async fn value(&self, arn: &str, version: Option<&str>, stage: &str) -> Result<Option<String>, SecretsError> {
        let secrets = self.secrets.lock().unwrap();
        let secret = secrets.get(arn).ok_or_else(|| not_found(arn))?;
        let found = secret
            .versions
            .iter()
            .find(|(id, v)| version.is_none_or(|wanted| wanted == id.as_str()) && v.stages.iter().any(|s| s == stage));
        Ok(found.and_then(|(_, v)| v.value.clone()))
    }

    async fn put_pending(&self, arn: &str, token: &str, value: String) -> Result<(), SecretsError> {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets.get_mut(arn).ok_or_else(|| not_found(arn))?;
        move_stage(secret, PENDING, token);
        secret.versions.get_mut(token).expect("just staged").value = Some(value);
        *self.writes.lock().unwrap() += 1;
        Ok(())
    }

    async fn make_current(&self, arn: &str, token: &str, current: Option<&str>) -> Result<(), SecretsError> {
        let mut secrets = self.secrets.lock().unwrap();
        let secret = secrets.get_mut(arn).ok_or_else(|| not_found(arn))?;
        if let Some(old) = current {
            move_stage(secret, PREVIOUS, old);
        }
        move_stage(secret, CURRENT, token);
        // Secrets Manager takes AWSPENDING off once the rotation it belongs to is done.
        secret.versions.get_mut(token).expect("just staged").stages.retain(|s| s != PENDING);
        *self.writes.lock().unwrap() += 1;
        Ok(())
    }
}
