//! The tuned floor `make bench` also reports: the baseline's function (one `UpdateItem`,
//! 200 with JSON) built with this crate's own choices: its SDK settings (`aws::sdk_config`:
//! rustls on ring, timeouts, no stalled-stream protection) and a current-thread runtime.
//! What `regenerate-secret` costs beyond it is its own work, not the SDK's defaults.

#[path = "baseline/src/handler.rs"]
mod handler;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let client = &oidc_client_secret::store::dynamodb::client_from_env().await;
    let table = table.as_str();
    run(service_fn(move |_request: Request| handler::one_update(client, table))).await
}
