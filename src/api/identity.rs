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

/// A claim's value as text: strings as they are, and numbers (Lambda authorizers may
/// return numbers in their context) only when they are integers that fit 64 bits, signed
/// or unsigned, in decimal. Any other number (`1.5`, `1e21`, a 30-digit integer, which JSON
/// parsing turns into an approximate float) does not count: two callers whose ids differ
/// must never read as the same one.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(unsigned), _) => Some(unsigned.to_string()),
            (None, Some(signed)) => Some(signed.to_string()),
            (None, None) => None,
        },
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

/// The OAuth scopes of the caller's token: API Gateway's list for a JWT authorizer, else
/// the `scope` claim (space-separated, RFC 8693) of the claims or the Lambda authorizer's
/// context.
pub fn scopes(context: Option<&RequestContext>) -> Vec<String> {
    let split = |text: &str| text.split_ascii_whitespace().map(str::to_owned).collect();
    match context {
        Some(RequestContext::ApiGatewayV2(ctx)) => match &ctx.authorizer {
            Some(auth) => match &auth.jwt {
                Some(jwt) => match &jwt.scopes {
                    Some(scopes) => scopes.clone(),
                    None => jwt.claims.get("scope").map(|s| split(s)).unwrap_or_default(),
                },
                None => from_fields(&auth.fields, "scope").map(|s| split(&s)).unwrap_or_default(),
            },
            None => Vec::new(),
        },
        Some(RequestContext::ApiGatewayV1(ctx)) => {
            let fields = &ctx.authorizer.fields;
            let scope = match fields.get("claims") {
                Some(Value::Object(claims)) => claims.get("scope").and_then(text),
                _ => from_fields(fields, "scope"),
            };
            scope.map(|s| split(&s)).unwrap_or_default()
        }
        _ => Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn number(json: &str) -> Option<String> {
        text(&serde_json::from_str::<Value>(json).unwrap())
    }

    #[test]
    fn numeric_claims_are_exact_64_bit_integers_or_nothing() {
        assert_eq!(number("18446744073709551615").as_deref(), Some("18446744073709551615"));
        assert_eq!(number("-9223372036854775808").as_deref(), Some("-9223372036854775808"));
        assert_eq!(number("42").as_deref(), Some("42"));
        for not_an_id in
            ["18446744073709551616", "123456789012345678901234567890", "1.5", "1e21", "2.0", "-9223372036854775809"]
        {
            assert_eq!(number(not_an_id), None, "{not_an_id}");
        }
        // Two 30-digit ids that a float would make one.
        assert_eq!(number("123456789012345678901234567890"), number("123456789012345678901234567891"));
        assert_eq!(number("123456789012345678901234567890"), None);
    }
}
