//! The client credentials grant (RFC 6749 section 4.4), SPEC section 13's steps in order:
//! the request's own rules first ([`check_request`]: no store read before them), then the
//! client authentication (the face's, shared with introspection), then the grant
//! ([`grant`]: the app's `grantTypes`, `scopes` and `audiences`) and the claims.

use super::error::OAuthError;
use super::form::Form;
use crate::app::{App, CLIENT_CREDENTIALS, is_scope_token};
use crate::ids::ProjectId;
use crate::jwt::{Claims, new_jti};

/// ZITADEL's audience scope: `urn:zitadel:iam:org:project:id:<projectId>:aud`.
const AUDIENCE_SCOPE_PREFIX: &str = "urn:zitadel:iam:org:project:id:";
const AUDIENCE_SCOPE_SUFFIX: &str = ":aud";
/// Asked for by OpenID clients; no ID token is issued, so never granted.
const OPENID: &str = "openid";

/// Steps 1 to 3: `grant_type` present and `client_credentials`, `scope` well-formed. The
/// requested scopes, in the order asked.
pub fn check_request(form: &Form) -> Result<Vec<String>, OAuthError> {
    let grant_type = form.get("grant_type").ok_or(OAuthError::InvalidRequest("grant_type is missing"))?;
    if grant_type != CLIENT_CREDENTIALS {
        return Err(OAuthError::UnsupportedGrantType);
    }
    match form.get("scope") {
        None => Ok(Vec::new()),
        Some(scope) => {
            let tokens: Vec<&str> = scope.split(' ').collect();
            if tokens.iter().all(|t| is_scope_token(t)) {
                Ok(tokens.into_iter().map(str::to_owned).collect())
            } else {
                Err(OAuthError::InvalidScope)
            }
        }
    }
}

/// What a token grants: its scopes (in the order asked) and audiences beyond the app's
/// own project.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Granted {
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
}

/// Steps 5 and 6: the app may use this grant; of the scopes asked, the ones the app holds
/// (others dropped, not refused: RFC 6749 section 3.3), `openid` never; ZITADEL's audience
/// scope adds its project when the app's `audiences` holds it, and is granted as a scope
/// too, as ZITADEL does.
pub fn grant(app: &App, requested: &[String]) -> Result<Granted, OAuthError> {
    if !app.grant_types.iter().any(|g| g == CLIENT_CREDENTIALS) {
        return Err(OAuthError::UnauthorizedClient);
    }
    let mut granted = Granted::default();
    for scope in requested {
        if scope == OPENID || granted.scopes.contains(scope) {
            continue;
        }
        if let Some(project) = audience_scope(scope) {
            let own = project == app.key.project.as_str();
            if own || app.audiences.iter().any(|a| a == project) {
                if !own && !granted.audiences.iter().any(|a| a == project) {
                    granted.audiences.push(project.to_owned());
                }
                granted.scopes.push(scope.clone());
            }
        } else if app.scopes.contains(scope) {
            granted.scopes.push(scope.clone());
        }
    }
    Ok(granted)
}

/// The project id of ZITADEL's audience scope, when it names a valid one.
fn audience_scope(scope: &str) -> Option<&str> {
    let project = scope.strip_prefix(AUDIENCE_SCOPE_PREFIX)?.strip_suffix(AUDIENCE_SCOPE_SUFFIX)?;
    ProjectId::parse(project).ok().map(|_| project)
}

/// The access token's claims (RFC 9068): the client is the subject; the audience its
/// project, then the granted ones; the org claim the app's org.
pub fn claims(app: &App, granted: &Granted, issuer: &str, now: i64, lifetime: u64) -> Claims {
    let mut aud = vec![app.key.project.as_str().to_owned()];
    aud.extend(granted.audiences.iter().cloned());
    Claims {
        iss: issuer.to_owned(),
        sub: app.client_id.clone(),
        client_id: app.client_id.clone(),
        aud,
        iat: now,
        exp: now.saturating_add(lifetime as i64),
        jti: new_jti(),
        scope: (!granted.scopes.is_empty()).then(|| granted.scopes.join(" ")),
        org: app.key.org.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::form;
    use crate::store::memory::{key, oidc_app};

    fn request(body: &str) -> Result<Vec<String>, OAuthError> {
        let mut headers = lambda_http::http::HeaderMap::new();
        headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        check_request(&form::parse(&headers, Some(body.as_bytes())).unwrap())
    }

    #[test]
    fn the_request_rules_come_in_the_rfc_order() {
        assert_eq!(request("scope=a"), Err(OAuthError::InvalidRequest("grant_type is missing")));
        assert_eq!(request("grant_type=password&scope=%22"), Err(OAuthError::UnsupportedGrantType));
        assert_eq!(request("grant_type=client_credentials&scope=a%20%20b"), Err(OAuthError::InvalidScope));
        assert_eq!(request("grant_type=client_credentials&scope=a%5Cb"), Err(OAuthError::InvalidScope));
        assert_eq!(request("grant_type=client_credentials&scope=%C3%A9"), Err(OAuthError::InvalidScope));
        assert_eq!(request("grant_type=client_credentials&scope=read+write").unwrap(), ["read", "write"]);
        assert_eq!(request("grant_type=client_credentials").unwrap(), Vec::<String>::new());
    }

    fn app() -> App {
        let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
        app.grant_types = vec![CLIENT_CREDENTIALS.into()];
        app.scopes = vec!["openid".into(), "read".into(), "write".into()];
        app.audiences = vec!["proj-2".into()];
        app
    }

    fn asked(scopes: &str) -> Vec<String> {
        scopes.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_client_without_the_grant_is_unauthorized() {
        let mut app = app();
        app.grant_types.clear();
        assert_eq!(grant(&app, &[]), Err(OAuthError::UnauthorizedClient));
    }

    #[test]
    fn scopes_are_the_asked_ones_the_app_holds_in_order_without_openid() {
        let granted = grant(&app(), &asked("write openid admin read write")).unwrap();
        assert_eq!(granted, Granted { scopes: asked("write read"), audiences: vec![] });
    }

    #[test]
    fn the_zitadel_audience_scope_adds_an_audience_the_app_holds() {
        let other = "urn:zitadel:iam:org:project:id:proj-2:aud";
        let own = "urn:zitadel:iam:org:project:id:proj-1:aud";
        let stranger = "urn:zitadel:iam:org:project:id:proj-9:aud";
        let sdk_default = "urn:zitadel:iam:org:project:id:zitadel:aud";
        let granted = grant(&app(), &asked(&format!("openid {sdk_default} {other} {stranger} {own} read"))).unwrap();
        assert_eq!(granted.scopes, asked(&format!("{other} {own} read")));
        assert_eq!(granted.audiences, ["proj-2"]);
        let claims = claims(&app(), &granted, "https://issuer", 100, 3600);
        assert_eq!(claims.aud, ["proj-1", "proj-2"]);
        assert_eq!((claims.iat, claims.exp), (100, 3700));
        assert_eq!(claims.scope.as_deref(), Some(asked(&format!("{other} {own} read")).join(" ").as_str()));
        assert_eq!((claims.sub.as_str(), claims.org.as_str()), ("client-1", "org-a"));
    }

    #[test]
    fn no_scope_granted_is_no_scope_claim() {
        let claims = claims(&app(), &grant(&app(), &asked("openid")).unwrap(), "https://issuer", 0, 60);
        assert_eq!(claims.scope, None);
        assert_eq!(claims.jti.len(), 22, "128 bits, base64url");
    }
}
