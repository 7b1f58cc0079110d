//! The Secrets Manager adapter behind [`crate::rotation::Secrets`]: the only file that
//! knows the Secrets Manager SDK. `memory` is an in-memory stand-in for the rotation
//! protocol's unit tests; moto's server proves this adapter in `tests/`.

#[cfg(test)]
pub mod memory;

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::rotation::{CURRENT, Described, Secrets, SecretsError};

pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn failed(operation: &str, err: impl std::error::Error + 'static) -> SecretsError {
    SecretsError(format!("{operation}: {}", DisplayErrorContext(&err)))
}

impl Secrets for SecretsManager {
    async fn describe(&self, secret_id: &str) -> Result<Described, SecretsError> {
        let described =
            self.client.describe_secret().secret_id(secret_id).send().await.map_err(|e| failed("DescribeSecret", e))?;
        Ok(Described {
            arn: described.arn().unwrap_or(secret_id).to_owned(),
            rotation_enabled: described.rotation_enabled() == Some(true),
            versions: described.version_ids_to_stages().cloned().unwrap_or_else(HashMap::new),
        })
    }

    async fn value(&self, arn: &str, version: Option<&str>, stage: &str) -> Result<Option<String>, SecretsError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.secret_string),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(failed("GetSecretValue", e)),
        }
    }

    async fn put_pending(&self, arn: &str, token: &str, value: String) -> Result<(), SecretsError> {
        self.client
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(crate::rotation::PENDING)
            .send()
            .await
            .map_err(|e| failed("PutSecretValue", e))?;
        Ok(())
    }

    async fn make_current(&self, arn: &str, token: &str, current: Option<&str>) -> Result<(), SecretsError> {
        self.client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage(CURRENT)
            .move_to_version_id(token)
            .set_remove_from_version_id(current.map(str::to_owned))
            .send()
            .await
            .map_err(|e| failed("UpdateSecretVersionStage", e))?;
        Ok(())
    }
}
