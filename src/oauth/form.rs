//! The request rules both endpoints share: an `application/x-www-form-urlencoded` body of
//! at most 16 KiB whose parameters are each given once, and the client's credentials from
//! exactly one mechanism (RFC 6749 sections 2.3.1 and 3.2): `client_secret_basic`, read as
//! the authorizer reads it, or `client_secret_post`.

use std::collections::HashMap;

use lambda_http::http::HeaderMap;
use lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE};

use super::error::OAuthError;
use crate::authenticate::Credentials;
use crate::authorizer::basic_credentials;

/// The largest body read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// A form's parameters, each given once; a parameter sent without a value is as if
/// omitted (RFC 6749 section 3.1).
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// The form of a request: its content type, size, encoding and no repeated parameter.
pub fn parse(headers: &HeaderMap, body: Option<&[u8]>) -> Result<Form, OAuthError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let (Some(content_type), None) = (types.next(), types.next()) else {
        return Err(OAuthError::InvalidRequest("the content type must be application/x-www-form-urlencoded"));
    };
    if !is_form(content_type.as_bytes()) {
        return Err(OAuthError::InvalidRequest("the content type must be application/x-www-form-urlencoded"));
    }
    let body = body.ok_or(OAuthError::InvalidRequest("the body is not a form"))?;
    if body.len() > MAX_FORM_BYTES {
        return Err(OAuthError::InvalidRequest("the body is over 16 KiB"));
    }
    let text = std::str::from_utf8(body).map_err(|_| OAuthError::InvalidRequest("the body is not UTF-8"))?;
    let mut form = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(name), Some(value)) = (decode(name), decode(value)) else {
            return Err(OAuthError::InvalidRequest("the body is not a form"));
        };
        if form.insert(name, value).is_some() {
            return Err(OAuthError::InvalidRequest("a parameter is given twice"));
        }
    }
    Ok(Form(form))
}

/// `application/x-www-form-urlencoded`, optionally with a `charset` parameter (UTF-8).
fn is_form(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else { return false };
    let mut parts = value.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        && parts.all(|p| {
            p.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("charset")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

/// One form-urlencoded name or value: `+` a space, `%XX` a byte; `None` unless UTF-8.
fn decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

/// The client's credentials: from the one `Authorization` header (Basic), or from the
/// form's `client_id` and `client_secret`. Credentials by both mechanisms, or two headers,
/// are `invalid_request`; credentials that do not parse are presented as none, and fail
/// authentication after the same work as a wrong secret.
pub fn credentials(headers: &HeaderMap, form: &Form) -> Result<Credentials, OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let header = values.next();
    // API Gateway's HTTP API hands repeated headers over joined by commas; a Basic
    // credential's base64 has none.
    if values.next().is_some() || header.is_some_and(|h| h.as_bytes().contains(&b',')) {
        return Err(OAuthError::InvalidRequest("more than one Authorization header"));
    }
    let posted = (form.get("client_id"), form.get("client_secret"));
    let Some(header) = header else {
        return Ok(Credentials { client_id: posted.0.map(str::to_owned), secret: posted.1.map(str::to_owned) });
    };
    if posted.1.is_some() {
        return Err(OAuthError::InvalidRequest("the client authenticates by more than one mechanism"));
    }
    match basic_credentials(header.as_bytes()) {
        Some((client, secret)) => {
            // A `client_id` in the form beside Basic must name the same client.
            if posted.0.is_some_and(|posted| posted != client) {
                return Err(OAuthError::InvalidRequest("client_id differs from the Authorization header's"));
            }
            Ok(Credentials { client_id: Some(client), secret: Some(secret) })
        }
        None => Ok(Credentials::default()),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use lambda_http::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

    #[test]
    fn a_form_is_its_parameters_each_once() {
        let form = parse(&headers(&[FORM]), Some(b"grant_type=client_credentials&scope=a+b%20c&empty=")).unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), Some("a b c"));
        assert_eq!(form.get("empty"), None, "a parameter without a value is omitted");
        let charset = [("content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")];
        assert!(parse(&headers(&charset), Some(b"a=1")).is_ok());
    }

    #[test]
    fn a_body_that_is_not_one_form_is_invalid_request() {
        let refused = |h: &[(&str, &str)], body: Option<&[u8]>| {
            assert!(matches!(parse(&headers(h), body), Err(OAuthError::InvalidRequest(_))), "{h:?} {body:?}");
        };
        refused(&[FORM], Some(b"a=1&a=2"));
        refused(&[FORM], Some(b"a=%ff"));
        refused(&[FORM], Some(&[0xff, b'=', b'1']));
        refused(&[FORM], None);
        refused(&[FORM], Some(&vec![b'a'; MAX_FORM_BYTES + 1]));
        refused(&[("content-type", "application/json")], Some(b"{}"));
        refused(&[("content-type", "application/x-www-form-urlencoded; boundary=x")], Some(b"a=1"));
        refused(&[], Some(b"a=1"));
        refused(&[FORM, FORM], Some(b"a=1"));
    }

    fn basic(client: &str, secret: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}")))
    }

    fn form(body: &str) -> Form {
        parse(&headers(&[FORM]), Some(body.as_bytes())).unwrap()
    }

    #[test]
    fn credentials_come_from_one_mechanism() {
        let auth = basic("c", "s");
        let by_basic = credentials(&headers(&[("authorization", &auth)]), &form("")).unwrap();
        assert_eq!((by_basic.client_id.as_deref(), by_basic.secret.as_deref()), (Some("c"), Some("s")));
        let by_post = credentials(&headers(&[]), &form("client_id=c&client_secret=s")).unwrap();
        assert_eq!((by_post.client_id.as_deref(), by_post.secret.as_deref()), (Some("c"), Some("s")));
        let same_id = credentials(&headers(&[("authorization", &auth)]), &form("client_id=c")).unwrap();
        assert_eq!(same_id.client_id.as_deref(), Some("c"));
        for (h, body) in [
            (vec![("authorization", auth.as_str())], "client_secret=s"),
            (vec![("authorization", auth.as_str())], "client_id=other"),
            (vec![("authorization", auth.as_str()), ("authorization", auth.as_str())], ""),
            (vec![("authorization", format!("{auth},{auth}").leak())], ""),
        ] {
            assert!(matches!(credentials(&headers(&h), &form(body)), Err(OAuthError::InvalidRequest(_))), "{body}");
        }
        let bearer = credentials(&headers(&[("authorization", "Bearer x")]), &form("")).unwrap();
        assert!(bearer.client_id.is_none() && bearer.secret.is_none(), "presented as none: fails authentication");
    }
}
