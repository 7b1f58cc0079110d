//! The HTTP function: API Gateway (or an ALB, or a function URL) -> `api::Service`.

use oidc_client_secret::api::{Service, run};
use oidc_client_secret::config::Config;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use oidc_client_secret::warm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    oidc_client_secret::logging::init();
    let config = Config::from_env_or_exit();
    let store =
        DynamoStore::new(client_from_env().await, &config.table_name).with_event_retention(config.event_retention);
    warm::step("DynamoDB connection", store.warm_up()).await;
    warm::code_paths(&config.secret);
    run(Service::new(store, &config)).await
}
