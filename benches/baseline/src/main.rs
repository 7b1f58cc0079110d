//! The floor `make bench` compares against: a minimal `lambda_http` function that does one
//! `UpdateItem` on the same table and answers 200 with JSON, written as the examples of
//! `lambda_http` and the AWS SDK write one: default features, `aws_config::load_defaults`,
//! `#[tokio::main]`. Nothing in it is tuned, so what `regenerate-secret` gains by its own
//! choices (TLS backend, features, runtime flavour) shows against it.

mod handler;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let table = std::env::var("TABLE_NAME")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = &aws_sdk_dynamodb::Client::new(&config);
    let table = table.as_str();
    run(service_fn(move |_request: Request| handler::one_update(client, table))).await
}
