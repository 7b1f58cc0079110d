//! The rotation function: Secrets Manager rotation events -> `rotation::Rotation`.

use oidc_client_secret::config::Config;
use oidc_client_secret::rotation::{Rotation, run};
use oidc_client_secret::secrets::SecretsManager;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let sdk = oidc_client_secret::aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name)
        .with_event_retention(config.event_retention);
    warm::step("DynamoDB connection", store.warm_up()).await;
    warm::code_paths(&config.secret);
    let secrets = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&sdk));
    run(Rotation::new(secrets, store, config.secret)).await
}
