//! Regenerates the client secret of an OIDC application: ZITADEL's Management API
//! `RegenerateOIDCClientSecret`, rebuilt as AWS Lambda functions on DynamoDB.
//!
//! Data flows one way: event -> [`api`] or [`rotation`] -> [`regenerate`] -> [`store`],
//! event -> [`authorizer`] -> [`authenticate`] -> [`store`], and event -> [`oauth`] ->
//! [`authenticate`] (-> [`store`]) and a [`jwt::Signer`] ([`kms`] in production).
//! Nothing below `api`, `rotation` and `authorizer` knows about Lambda or a wire format; nothing but
//! [`store`] knows about DynamoDB, and nothing but [`secrets`] knows the Secrets Manager SDK.
//!
//! This is the code's reference. The operator's and the caller's are the repository's
//! `README.md` (what it is, the two commands, deploying) and the `docs/` folder, one file
//! per subject: `docs/api.md` (the routes, messages and errors of every door),
//! `docs/identity.md`, `docs/data-model.md`, `docs/rotation.md`, `docs/verification.md`,
//! `docs/operations.md`, `docs/performance.md`, `docs/security.md` and
//! `docs/development.md` (the layout, the `make` targets, how the tests run).

pub mod api;
pub mod app;
pub mod authenticate;
pub mod authorizer;
pub mod aws;
pub mod config;
pub mod deadline;
pub mod error;
pub mod ids;
pub mod import;
pub mod jwt;
pub mod kms;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod regenerate;
pub mod rotation;
pub mod secret;
pub mod secrets;
pub mod store;
pub mod warm;
pub mod xray;
