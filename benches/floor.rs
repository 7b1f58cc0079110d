//! The tuned floor `make bench` also reports: the baseline's function (one `UpdateItem`,
//! 200 with JSON) built with this crate's own choices: its SDK settings (`aws::sdk_config`:
//! rustls on ring, timeouts, no stalled-stream protection) and a current-thread runtime.
//! What `regenerate-secret` costs beyond it is its own work, not the SDK's defaults.

use std::convert::Infallible;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME");
    let client = &oidc_client_secret::store::dynamodb::client_from_env().await;
    let table = table.as_str();
    run(service_fn(move |_request: Request| async move {
        let result = client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S("BASELINE".into()))
            .key("sk", AttributeValue::S("COUNTER".into()))
            .update_expression("ADD hits :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        let (status, body) = match result {
            Ok(_) => (200, r#"{"ok":true}"#),
            Err(_) => (503, r#"{"ok":false}"#),
        };
        let response =
            Response::builder().status(status).header("content-type", "application/json").body(Body::from(body));
        Ok::<_, Infallible>(response.expect("a valid response"))
    }))
    .await
}
