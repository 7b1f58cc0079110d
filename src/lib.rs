//! Regenerates the client secret of an OIDC application: ZITADEL's Management API
//! `RegenerateOIDCClientSecret`, rebuilt as AWS Lambda functions on DynamoDB.
//!
//! Data flows one way: event -> [`http`] -> [`rotate`] -> [`store`]. Nothing below
//! `http` knows about Lambda; nothing but `store` knows about DynamoDB.

pub mod app;
pub mod aws;
pub mod config;
pub mod error;
pub mod http;
pub mod identity;
pub mod ids;
pub mod logging;
pub mod rotate;
pub mod rotation;
pub mod secret;
pub mod store;
