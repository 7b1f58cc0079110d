//! The OAuth function: discovery, keys, client credentials, introspection -> `oauth::OAuth`.

use oidc_client_secret::config::{Config, OAuthConfig};
use oidc_client_secret::kms::KmsSigner;
use oidc_client_secret::oauth::{OAuth, run};
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let oauth = OAuthConfig::from_env_or_exit();
    // One SDK configuration for both clients: one HTTP client (its root certificates loaded
    // once) and one credentials cache.
    let sdk = oidc_client_secret::aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name);
    let signer = KmsSigner::new(aws_sdk_kms::Client::new(&sdk), oauth.signing_keys.clone());
    // The DynamoDB connection and the public keys (read once), side by side: init waits for
    // the slower of the two, not for both.
    tokio::join!(
        warm::step("DynamoDB connection", store.warm_up()),
        warm::step("KMS public keys", warm::keys(&signer)),
    );
    run(OAuth::new(store, signer, config.secret.hash_cost, oauth)).await
}
