//! Introspection (RFC 7662), where ZITADEL uses an API app's secret: a resource server
//! asks whether a token is active. The caller authenticates as a client of an API app (any
//! other caller: `invalid_client`), and sees only tokens meant for it: `aud` must hold its
//! project. The answer starts as `{"active": false}` and becomes true only when every rule
//! holds, the last being a consistent read of the token's client: a client made INACTIVE
//! or REMOVED after issue has its tokens die here at once (the edge cannot know).

use lambda_http::Request;
use serde_json::{Map, Value, json};

use super::error::OAuthError;
use super::{OAuth, Served};
use crate::app::TYPE_API;
use crate::authenticate::{Directory, STATE_ACTIVE};
use crate::deadline::Deadline;
use crate::ids::ClientId;
use crate::jwt::{self, Claims, Signer};

pub(super) async fn serve<D: Directory, S: Signer>(
    oauth: &OAuth<D, S>,
    request: &Request,
    issuer: &str,
    deadline: Deadline,
) -> Served {
    let required = |form: &super::form::Form| match form.get("token") {
        Some(token) => Ok(token.to_owned()),
        None => Err(OAuthError::InvalidRequest("token is missing")),
    };
    let (token, auth, client) = match oauth.authenticate(request, deadline, required).await {
        Ok(authenticated) => authenticated,
        Err(served) => return served,
    };
    let caller = auth.app.as_ref().expect("an allowed authentication carries its app");
    if caller.app_type != TYPE_API {
        return Served::refused(OAuthError::InvalidClient, "introspection by a client that is not an API app")
            .by(client, Some(&auth));
    }
    let keys = match oauth.signer.keys(deadline).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::error!(detail = error.log_detail().unwrap_or_default(), "reading the public keys failed");
            return Served::refused(error.into(), "public keys unavailable").by(client, Some(&auth));
        }
    };
    let inactive = |reason: &'static str| {
        let mut served = Served::answered(json!({"active": false}), "inactive", false).by(client.clone(), Some(&auth));
        served.reason = reason;
        served
    };
    let claims = match jwt::verify(&token, &keys, issuer, caller.key.project.as_str(), jwt::unix_now()) {
        Ok(claims) => claims,
        Err(rejection) => return inactive(rejection.reason()),
    };
    match still_active(oauth.authenticator.directory(), &claims, deadline).await {
        Ok(true) => {}
        Ok(false) => return inactive("token: its client is no longer an active app"),
        Err(error) => {
            tracing::error!(detail = error.log_detail().unwrap_or_default(), "reading the token's client failed");
            return Served::refused(error.into(), "store unavailable").by(client, Some(&auth));
        }
    }
    let mut served = Served::answered(active(&claims), "active", false).by(client, Some(&auth));
    served.jti = claims.jti;
    served
}

/// Whether the client the token names is still the ACTIVE app that it was issued to: its
/// lookup names an app of the token's org and project whose client id it is.
async fn still_active<D: Directory>(
    directory: &D,
    claims: &Claims,
    deadline: Deadline,
) -> Result<bool, crate::error::Error> {
    let Ok(client) = ClientId::parse(&claims.client_id, "client_id") else { return Ok(false) };
    let Some(key) = directory.client_app(Some(&client), deadline).await? else { return Ok(false) };
    let app = match directory.app_item(Some(&key), deadline).await? {
        Some(Ok(app)) => app,
        _ => return Ok(false),
    };
    Ok(app.client_id == claims.client_id
        && app.state == STATE_ACTIVE
        && app.key.org.as_str() == claims.org
        && claims.aud.first().is_some_and(|project| project == app.key.project.as_str()))
}

/// RFC 7662 section 2.2's members for an active token.
fn active(claims: &Claims) -> Value {
    let mut body = Map::from_iter([
        ("active".to_owned(), Value::from(true)),
        ("client_id".to_owned(), Value::from(claims.client_id.as_str())),
        ("sub".to_owned(), Value::from(claims.sub.as_str())),
        ("aud".to_owned(), Value::from(claims.aud.clone())),
        ("iss".to_owned(), Value::from(claims.iss.as_str())),
        ("exp".to_owned(), Value::from(claims.exp)),
        ("iat".to_owned(), Value::from(claims.iat)),
        ("jti".to_owned(), Value::from(claims.jti.as_str())),
        ("token_type".to_owned(), Value::from("Bearer")),
    ]);
    if let Some(scope) = &claims.scope {
        body.insert("scope".into(), Value::from(scope.as_str()));
    }
    Value::Object(body)
}
