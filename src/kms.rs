//! The token signer in production: AWS KMS, the one place that knows its SDK.
//!
//! The keys are asymmetric `RSA_2048` `SIGN_VERIFY` keys (`TOKEN_SIGNING_KEYS`: ids or ARNs;
//! the first signs, all are published). The private keys never leave KMS: a token's
//! signing input goes to `Sign` (`RSASSA_PKCS1_V1_5_SHA_256`, message type `RAW`: KMS hashes
//! it) and the signature comes back. The public keys are read once per process with
//! `GetPublicKey`: the function's start reads them in a task of its own, and a request
//! that needs them before then waits for that read (if it failed, the request reads them
//! itself: a failure then is that request's 503, and the next request tries again), never
//! per request.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use tokio::sync::OnceCell;

use crate::deadline::{Deadline, OPERATION_TIMEOUT};
use crate::error::Error;
use crate::jwt::{PublicKey, Signature, Signer};

/// A client configured from the environment (`AWS_ENDPOINT_URL_KMS` for a local endpoint).
pub async fn client_from_env() -> Client {
    Client::new(&crate::aws::sdk_config().await)
}

/// Clones share the public keys once read (and whichever clone is reading them).
#[derive(Clone)]
pub struct KmsSigner {
    client: Client,
    key_ids: Arc<[String]>,
    keys: Arc<OnceCell<Arc<[PublicKey]>>>,
}

impl KmsSigner {
    /// `key_ids` must not be empty (the configuration refuses that).
    pub fn new(client: Client, key_ids: Vec<String>) -> Self {
        Self { client, key_ids: Arc::from(key_ids), keys: Arc::new(OnceCell::new()) }
    }

    async fn public_key(&self, key_id: &str, deadline: Deadline) -> Result<PublicKey, Error> {
        let call = self.client.get_public_key().key_id(key_id).send();
        let output = bounded(deadline, "GetPublicKey", call).await?;
        if output.key_usage() != Some(&KeyUsageType::SignVerify)
            || !output.signing_algorithms().contains(&SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
        {
            return Err(Error::Internal(format!("KMS key {key_id} is not an RSA SIGN_VERIFY key that signs RS256")));
        }
        let der = output.public_key().ok_or_else(|| Error::Internal(format!("KMS key {key_id}: no public key")))?;
        let key =
            PublicKey::from_spki_der(der.as_ref()).map_err(|e| Error::Internal(format!("KMS key {key_id}: {e}")))?;
        let named =
            output.key_id().ok_or_else(|| Error::Internal(format!("KMS key {key_id}: GetPublicKey named no key")))?;
        Ok(key.signed_by(key_uuid(named)))
    }
}

/// A new `RSA_2048` `SIGN_VERIFY` key, for the local server against moto's KMS (`make run`):
/// its id. Never used on AWS, where the template creates the key.
pub async fn create_signing_key(client: &Client) -> Result<String, Error> {
    let output = client
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .description("oidc-client-secret local token signing key")
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("KMS CreateKey: {}", DisplayErrorContext(&e))))?;
    output
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| Error::Internal("KMS CreateKey: no key id".into()))
}

impl Signer for KmsSigner {
    async fn keys(&self, deadline: Deadline) -> Result<Arc<[PublicKey]>, Error> {
        let keys = self
            .keys
            .get_or_try_init(|| async {
                let mut keys = Vec::with_capacity(self.key_ids.len());
                for id in self.key_ids.iter() {
                    keys.push(self.public_key(id, deadline).await?);
                }
                Ok::<_, Error>(Arc::from(keys))
            })
            .await?;
        Ok(keys.clone())
    }

    async fn sign(&self, message: &[u8], deadline: Deadline) -> Result<Signature, Error> {
        let key_id = self.key_ids.first().ok_or_else(|| Error::Internal("no signing key".into()))?;
        let call = self
            .client
            .sign()
            .key_id(key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send();
        let output = bounded(deadline, "Sign", call).await?;
        let signature = output.signature().ok_or_else(|| Error::Unavailable("Sign: no signature".into()))?;
        let signer_key = output.key_id().ok_or_else(|| Error::Unavailable("Sign: no key named".into()))?;
        Ok(Signature { bytes: signature.as_ref().to_vec(), signer_key: key_uuid(signer_key).to_owned() })
    }
}

/// A KMS key's own id, from its ARN (`arn:aws:kms:<region>:<account>:key/<id>`, what AWS's
/// `Sign` and `GetPublicKey` answer) or its id (what moto's `GetPublicKey` answers), so
/// that the two answers compare.
fn key_uuid(key: &str) -> &str {
    key.rsplit_once(":key/").map_or(key, |(_, id)| id)
}

/// One KMS call within what the deadline leaves (at most the SDK's own operation timeout):
/// throttling, timeouts, KMS's 5xx and an unreachable endpoint are `Unavailable` (503); a
/// refusal (a key that does not exist, access denied, a disabled key) is `Internal`, a
/// misconfiguration for the log. Nothing a KMS call does needs an outcome resolved: a
/// signature that is lost is never used.
async fn bounded<O, E>(
    deadline: Deadline,
    operation: &str,
    call: impl Future<Output = Result<O, SdkError<E, aws_sdk_kms::config::http::HttpResponse>>>,
) -> Result<O, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let budget = deadline
        .budget(OPERATION_TIMEOUT, Duration::ZERO)
        .ok_or_else(|| Error::Unavailable(format!("{operation}: no time left before the deadline")))?;
    match tokio::time::timeout(budget, call).await {
        Err(_) => Err(Error::Unavailable(format!("{operation}: timed out"))),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(err)) => {
            let detail = format!("KMS {operation}: {}", DisplayErrorContext(&err));
            let refused = match &err {
                SdkError::ServiceError(e) => {
                    !e.raw().status().is_server_error()
                        && !matches!(
                            e.err().code(),
                            Some("ThrottlingException" | "KMSInternalException" | "DependencyTimeoutException")
                        )
                }
                SdkError::ConstructionFailure(_) => true,
                _ => false,
            };
            Err(if refused { Error::Internal(detail) } else { Error::Unavailable(detail) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key_uuid;

    /// What AWS's and moto's answers name reduce to the key's own id, and nothing else does
    /// (an alias is never what `Sign` or `GetPublicKey` names: it stays whole, equal to no
    /// key's id, and the name check refuses it).
    #[test]
    fn key_uuid_reduces_key_arns_only() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(key_uuid(id), id);
        assert_eq!(key_uuid(&format!("arn:aws:kms:eu-central-1:111122223333:key/{id}")), id);
        assert_eq!(key_uuid(&format!("arn:aws-cn:kms:cn-north-1:111122223333:key/{id}")), id);
        let mrk = "mrk-1234abcd12ab34cd56ef1234567890ab";
        assert_eq!(key_uuid(&format!("arn:aws:kms:us-east-1:111122223333:key/{mrk}")), mrk);
        let alias = "arn:aws:kms:eu-central-1:111122223333:alias/oauth";
        assert_eq!(key_uuid(alias), alias);
        assert_eq!(key_uuid("alias/oauth"), "alias/oauth");
        // An ARN with nothing after `:key/` names no key: "" (which `jwt::issue` refuses).
        assert_eq!(key_uuid("arn:aws:kms:eu-central-1:111122223333:key/"), "");
    }
}
