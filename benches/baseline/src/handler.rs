//! The request the baseline and the tuned floor both serve: one `UpdateItem` on the bench
//! table, then 200 with JSON. One file, so the two differ only in how they are built.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Response};

pub async fn one_update(client: &Client, table: &str) -> Result<Response<Body>, Error> {
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("BASELINE".into()))
        .key("sk", AttributeValue::S("COUNTER".into()))
        .update_expression("ADD hits :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await?;
    Ok(Response::builder().status(200).header("content-type", "application/json").body(Body::from(r#"{"ok":true}"#))?)
}
