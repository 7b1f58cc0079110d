//! The OAuth function: discovery, keys, client credentials, introspection -> `oauth::OAuth`.

use oidc_client_secret::config::{Config, OAuthConfig};
use oidc_client_secret::kms::{KmsSigner, client_from_env as kms_client};
use oidc_client_secret::oauth::{OAuth, run};
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let oauth = OAuthConfig::from_env_or_exit();
    let store = DynamoStore::new(client_from_env().await, &config.table_name);
    warm::step("DynamoDB connection", store.warm_up()).await;
    let signer = KmsSigner::new(kms_client().await, oauth.signing_keys.clone());
    // The public keys, read once: here, where init has the CPU, unless KMS is slow.
    warm::step("KMS public keys", warm::keys(&signer)).await;
    run(OAuth::new(store, signer, config.secret.hash_cost, oauth)).await
}
