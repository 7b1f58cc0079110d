//! Who is calling. Only what API Gateway's authorizer put in the request context counts:
//! no header, query or body field can supply or override an identity.
//!
//! | event                      | user id                                   | home org                  |
//! |----------------------------|-------------------------------------------|---------------------------|
//! | HTTP API, JWT authorizer   | `authorizer.jwt.claims[USER_CLAIM]`       | `...claims[ORG_CLAIM]`    |
//! | HTTP API, Lambda authorizer| `authorizer.lambda[USER_CLAIM]`           | `...lambda[ORG_CLAIM]`    |
//! | REST API, Cognito/JWT      | `authorizer.claims[USER_CLAIM]`           | `...claims[ORG_CLAIM]`    |
//! | REST API, Lambda authorizer| `authorizer[USER_CLAIM]`, else `principalId` | `authorizer[ORG_CLAIM]` |
//! | ALB, function URL          | none                                      |                           |

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use serde_json::Value;

use crate::config::ClaimNames;
use crate::error::Error;
use crate::ids::{OrgId, UserId};

/// An authenticated caller: a user, and the organization the user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub home_org: OrgId,
}

/// A claim's value as text: strings as they are, numbers in decimal (Lambda authorizers
/// may return numbers in their context); anything else does not count.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn from_fields(fields: &HashMap<String, Value>, name: &str) -> Option<String> {
    fields.get(name).and_then(text)
}

/// The raw (user, org) claims the authorizer set, before validation.
fn raw_claims(context: &RequestContext, names: &ClaimNames) -> (Option<String>, Option<String>) {
    match context {
        RequestContext::ApiGatewayV2(ctx) => match &ctx.authorizer {
            Some(auth) => match &auth.jwt {
                Some(jwt) => (jwt.claims.get(&names.user).cloned(), jwt.claims.get(&names.org).cloned()),
                None => (from_fields(&auth.fields, &names.user), from_fields(&auth.fields, &names.org)),
            },
            None => (None, None),
        },
        RequestContext::ApiGatewayV1(ctx) => {
            let fields = &ctx.authorizer.fields;
            match fields.get("claims") {
                Some(Value::Object(claims)) => {
                    (claims.get(&names.user).and_then(text), claims.get(&names.org).and_then(text))
                }
                _ => (
                    from_fields(fields, &names.user).or_else(|| from_fields(fields, "principalId")),
                    from_fields(fields, &names.org),
                ),
            }
        }
        _ => (None, None),
    }
}

/// The caller of a request: 401 without both claims, 400 when a claim is malformed.
pub fn caller(context: Option<&RequestContext>, names: &ClaimNames) -> Result<Caller, Error> {
    let Some(context) = context else { return Err(Error::Unauthenticated) };
    let (Some(user), Some(org)) = raw_claims(context, names) else {
        return Err(Error::Unauthenticated);
    };
    Ok(Caller {
        user: UserId::parse(&user, &format!("user id (claim {})", names.user))?,
        home_org: OrgId::parse(&org, &format!("organization id (claim {})", names.org))?,
    })
}
