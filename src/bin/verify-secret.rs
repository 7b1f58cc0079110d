//! The authorizer function: API Gateway Lambda authorizer events -> `authorizer::Authorizer`.

use oidc_client_secret::authorizer::{Authorizer, run};
use oidc_client_secret::config::Config;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let store = DynamoStore::new(client_from_env().await, &config.table_name);
    warm::step("DynamoDB connection", store.warm_up()).await;
    run(Authorizer::new(store, config.secret.hash_cost)).await
}
