//! Discovery (RFC 8414 and OpenID Connect Discovery: one document at both well-known paths)
//! and the JWKS. Both are public and cacheable for five minutes.

use serde_json::{Value, json};

use super::{INTROSPECT_PATH, KEYS_PATH, TOKEN_PATH};
use crate::jwt::PublicKey;

/// The client authentication methods of both endpoints.
const AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// The metadata of this issuer. No `authorization_endpoint`: no grant here uses one (RFC
/// 8414 section 2). OpenID discovery requires `response_types_supported`,
/// `subject_types_supported` and `id_token_signing_alg_values_supported` though no ID token
/// is issued: they name what a client could expect.
pub fn document(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
        "jwks_uri": format!("{issuer}{KEYS_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// One JWK per signing key, the signing one first.
pub fn jwks(keys: &[PublicKey]) -> Value {
    json!({"keys": keys.iter().map(PublicKey::jwk).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoints_are_the_issuer_plus_zitadel_paths() {
        let doc = document("https://auth.example.com/prod");
        assert_eq!(doc["token_endpoint"], "https://auth.example.com/prod/oauth/v2/token");
        assert_eq!(doc["introspection_endpoint"], "https://auth.example.com/prod/oauth/v2/introspect");
        assert_eq!(doc["jwks_uri"], "https://auth.example.com/prod/oauth/v2/keys");
        assert!(doc.get("authorization_endpoint").is_none());
    }
}
