//! Regenerates the client secret of an OIDC application: ZITADEL's Management API
//! `RegenerateOIDCClientSecret`, rebuilt as AWS Lambda functions on DynamoDB.
//!
//! Data flows one way: event -> [`http`] or [`rotation`] -> [`regenerate`] -> [`store`].
//! Nothing below `http` and `rotation` knows about Lambda; nothing but [`store`] knows
//! about DynamoDB, and nothing but [`secrets`] knows the Secrets Manager SDK.

pub mod app;
pub mod aws;
pub mod config;
pub mod error;
pub mod http;
pub mod identity;
pub mod ids;
pub mod logging;
pub mod regenerate;
pub mod rotation;
pub mod secret;
pub mod secrets;
pub mod store;
