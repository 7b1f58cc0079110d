//! Storage adapters. DynamoDB is the only one; everything that knows its keys and
//! expressions lives in [`dynamodb`].

pub mod dynamodb;
