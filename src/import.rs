//! `admin import` (SPEC section 14): a JSON-lines file of apps and the secrets their
//! clients already hold, from ZITADEL (bcrypt hashes) or from a provider that hands out
//! the plaintext (Cognito, Okta), checked line by line into what the table stores. Pure: no
//! I/O; the write is the store's ([`crate::store::seed`]).
//!
//! A refusal is a [`Rule`], whose text names the field and the rule, never a value: the
//! file holds secrets, and none of it is ever printed, logged or put in an error (a JSON
//! parser's message may quote the line, so it is dropped for "malformed JSON").

use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::app::{App, AppKey, SECRET_AUTH_METHODS, TYPE_API, TYPE_OIDC, parse_timestamp};
use crate::error::Error;
use crate::ids::{AppId, OrgId, ProjectId};
use crate::secret::{MAX_COST, MIN_COST};

/// The fields a line may have.
const FIELDS: [&str; 8] = [
    "org",
    "project",
    "app",
    "secretHash",
    "secret",
    "previousSecretHash",
    "previousSecret",
    "previousSecretExpiresAt",
];

/// A plaintext secret is 16 to 72 bytes (bcrypt reads 72).
pub const MIN_SECRET_BYTES: usize = 16;
pub const MAX_SECRET_BYTES: usize = 72;

/// The furthest a previous secret's expiry may be: 30 days ahead, the longest grace period.
pub const MAX_PREVIOUS_DAYS: i64 = 30;

/// Why a line is refused: the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    MalformedJson,
    NotAnObject,
    UnknownField,
    NotAString(&'static str),
    BadId(&'static str),
    NoSecret,
    TwoOf(&'static str, &'static str),
    HashPrefix(&'static str),
    HashCost(&'static str),
    HashMalformed(&'static str),
    SecretLength(&'static str),
    SecretByte(&'static str),
    ExpiryMissing,
    ExpiryWithoutPrevious,
    ExpiryMalformed,
    ExpiryPast,
    ExpiryTooFar,
    /// The same app as an earlier line (its number).
    Repeated(usize),
    UnknownApp,
    Removed,
    /// The app's type (from the table, not the file).
    AppType(String),
    /// The app's auth method (from the table, not the file).
    AuthMethod(String),
    HasSecret,
    SequenceAtMaximum,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::MalformedJson => f.write_str("malformed JSON"),
            Rule::NotAnObject => f.write_str("not a JSON object"),
            Rule::UnknownField => write!(f, "a field other than {}", FIELDS.join(", ")),
            Rule::NotAString(field) => write!(f, "{field} is not a string"),
            Rule::BadId(field) => {
                write!(f, "{field} is missing or not 1 to 200 characters from A-Z a-z 0-9 _ - . @")
            }
            Rule::NoSecret => f.write_str("neither secretHash nor secret"),
            Rule::TwoOf(a, b) => write!(f, "both {a} and {b}: one of them"),
            Rule::HashPrefix(field) => write!(f, "{field} is no bcrypt hash: it starts with $2a$, $2b$ or $2y$"),
            Rule::HashCost(field) => write!(f, "{field}'s bcrypt cost is not {MIN_COST} to {MAX_COST}"),
            Rule::HashMalformed(field) => {
                write!(f, "{field} is no bcrypt hash: 60 characters, the cost, a salt and a hash in bcrypt's base64")
            }
            Rule::SecretLength(field) => {
                write!(f, "{field} is not {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
            }
            Rule::SecretByte(field) => write!(f, "{field} has a byte outside printable ASCII (0x20 to 0x7E)"),
            Rule::ExpiryMissing => f.write_str("a previous secret without previousSecretExpiresAt"),
            Rule::ExpiryWithoutPrevious => f.write_str("previousSecretExpiresAt without a previous secret"),
            Rule::ExpiryMalformed => f.write_str("previousSecretExpiresAt is not an RFC 3339 date"),
            Rule::ExpiryPast => f.write_str("previousSecretExpiresAt is not in the future"),
            Rule::ExpiryTooFar => write!(f, "previousSecretExpiresAt is more than {MAX_PREVIOUS_DAYS} days ahead"),
            Rule::Repeated(line) => write!(f, "the same app as line {line}"),
            Rule::UnknownApp => f.write_str("no such app"),
            Rule::Removed => f.write_str("the app is REMOVED"),
            Rule::AppType(kind) => write!(f, "the app is of type {kind}: only OIDC and API apps have secrets"),
            Rule::AuthMethod(method) => write!(f, "the app's auth method {method} uses no secret"),
            Rule::HasSecret => f.write_str("the app has a secret already (--replace replaces it)"),
            Rule::SequenceAtMaximum => f.write_str("the app's sequence is at its maximum"),
        }
    }
}

/// A secret as a line gives it: a bcrypt hash as it is, or a plaintext to hash. Its
/// `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub enum Given {
    Hash(String),
    Plaintext(String),
}

impl fmt::Debug for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Given::Hash(_) => "Hash(<redacted>)",
            Given::Plaintext(_) => "Plaintext(<redacted>)",
        })
    }
}

impl Given {
    /// The hash to store: the given one, or the plaintext's at `cost`.
    pub fn hash(&self, cost: u32) -> Result<String, Error> {
        match self {
            Given::Hash(hash) => Ok(hash.clone()),
            Given::Plaintext(secret) => {
                bcrypt::hash(secret, cost).map_err(|_| Error::Internal("bcrypt could not hash a secret".into()))
            }
        }
    }

    /// The bcrypt cost of a given hash (a plaintext gets the configured one).
    pub fn cost(&self) -> Option<u32> {
        match self {
            Given::Hash(hash) => hash.get(4..6).and_then(|c| c.parse().ok()),
            Given::Plaintext(_) => None,
        }
    }
}

/// One line that passed every rule of its own: which app, its secret, and optionally the
/// previous secret with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: AppKey,
    pub secret: Given,
    pub previous: Option<(Given, OffsetDateTime)>,
}

impl Entry {
    /// Whether the line held a plaintext secret (the file is then to be deleted).
    pub fn has_plaintext(&self) -> bool {
        let plain = |given: &Given| matches!(given, Given::Plaintext(_));
        plain(&self.secret) || self.previous.as_ref().is_some_and(|(given, _)| plain(given))
    }

    /// The costs of its given hashes that are not `cost`.
    pub fn other_costs(&self, cost: u32) -> Vec<u32> {
        let mut costs: Vec<u32> = std::iter::once(&self.secret)
            .chain(self.previous.as_ref().map(|(given, _)| given))
            .filter_map(Given::cost)
            .filter(|c| *c != cost)
            .collect();
        costs.dedup();
        costs
    }
}

/// Reads one line of the file, at `now`; `None` for a blank line.
pub fn parse_line(line: &[u8], now: OffsetDateTime) -> Option<Result<Entry, Rule>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(entry(line, now))
}

/// Whether a line is a JSON object with a plaintext secret, valid or not: a file with one
/// is to be deleted once imported.
pub fn names_plaintext(line: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(fields)) => fields.contains_key("secret") || fields.contains_key("previousSecret"),
        _ => false,
    }
}

fn entry(line: &[u8], now: OffsetDateTime) -> Result<Entry, Rule> {
    // The parser's error may quote the line: it is dropped.
    let value: Value = serde_json::from_slice(line).map_err(|_| Rule::MalformedJson)?;
    let Value::Object(fields) = value else { return Err(Rule::NotAnObject) };
    if fields.keys().any(|name| !FIELDS.contains(&name.as_str())) {
        return Err(Rule::UnknownField);
    }
    let text = |name: &'static str| -> Result<Option<&str>, Rule> {
        match fields.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(Rule::NotAString(name)),
        }
    };
    let id = |name: &'static str| text(name)?.ok_or(Rule::BadId(name));
    let key = AppKey {
        org: OrgId::parse(id("org")?, "org").map_err(|_| Rule::BadId("org"))?,
        project: ProjectId::parse(id("project")?).map_err(|_| Rule::BadId("project"))?,
        app: AppId::parse(id("app")?).map_err(|_| Rule::BadId("app"))?,
    };
    let secret = given(&fields, "secretHash", "secret")?.ok_or(Rule::NoSecret)?;
    let previous = given(&fields, "previousSecretHash", "previousSecret")?;
    let expiry = text("previousSecretExpiresAt")?;
    let previous = match (previous, expiry) {
        (None, None) => None,
        (None, Some(_)) => return Err(Rule::ExpiryWithoutPrevious),
        (Some(_), None) => return Err(Rule::ExpiryMissing),
        (Some(previous), Some(expiry)) => {
            let at = parse_timestamp(expiry).ok_or(Rule::ExpiryMalformed)?;
            if at <= now {
                return Err(Rule::ExpiryPast);
            }
            if at > now + time::Duration::days(MAX_PREVIOUS_DAYS) {
                return Err(Rule::ExpiryTooFar);
            }
            Some((previous, at))
        }
    };
    Ok(Entry { key, secret, previous })
}

/// The secret of a hash field or a plaintext field (at most one of them), checked.
fn given(fields: &Map<String, Value>, hash: &'static str, plain: &'static str) -> Result<Option<Given>, Rule> {
    let text = |name: &'static str| match fields.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(Rule::NotAString(name)),
    };
    match (text(hash)?, text(plain)?) {
        (Some(_), Some(_)) => Err(Rule::TwoOf(hash, plain)),
        (Some(value), None) => check_hash(value, hash).map(|()| Some(Given::Hash(value.to_owned()))),
        (None, Some(value)) => check_plaintext(value, plain).map(|()| Some(Given::Plaintext(value.to_owned()))),
        (None, None) => Ok(None),
    }
}

/// A bcrypt hash as ZITADEL stores them: `$2a$`, `$2b$` or `$2y$`, a two-digit cost of 4
/// to 16, and what `bcrypt` reads as a salt and a hash.
fn check_hash(hash: &str, field: &'static str) -> Result<(), Rule> {
    if !["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix)) {
        return Err(Rule::HashPrefix(field));
    }
    let cost = hash.get(4..6).filter(|c| c.bytes().all(|b| b.is_ascii_digit())).and_then(|c| c.parse::<u32>().ok());
    match cost {
        Some(cost) if (MIN_COST..=MAX_COST).contains(&cost) => {}
        Some(_) => return Err(Rule::HashCost(field)),
        None => return Err(Rule::HashMalformed(field)),
    }
    hash.parse::<bcrypt::HashParts>().map(drop).map_err(|_| Rule::HashMalformed(field))
}

/// A plaintext secret: printable ASCII (RFC 6749's VSCHAR, 0x20 to 0x7E), 16 to 72 bytes.
fn check_plaintext(secret: &str, field: &'static str) -> Result<(), Rule> {
    if !secret.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(Rule::SecretByte(field));
    }
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
        return Err(Rule::SecretLength(field));
    }
    Ok(())
}

/// Whether an app may take an imported secret: it exists, is OIDC or API, is not REMOVED,
/// uses a secret (BASIC or POST), and has none yet unless `replace`.
pub fn judge(app: Option<&App>, replace: bool) -> Result<(), Rule> {
    let app = app.ok_or(Rule::UnknownApp)?;
    if app.is_removed() {
        return Err(Rule::Removed);
    }
    if app.app_type != TYPE_OIDC && app.app_type != TYPE_API {
        return Err(Rule::AppType(app.app_type.clone()));
    }
    if !SECRET_AUTH_METHODS.contains(&app.auth_method.as_str()) {
        return Err(Rule::AuthMethod(app.auth_method.clone()));
    }
    if app.secret_hash.is_some() && !replace {
        return Err(Rule::HasSecret);
    }
    if app.sequence == u64::MAX {
        return Err(Rule::SequenceAtMaximum);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn now() -> OffsetDateTime {
        parse_timestamp("2026-12-01T12:00:00Z").unwrap()
    }

    fn line(fields: &str) -> Result<Entry, Rule> {
        parse_line(format!(r#"{{"org":"o","project":"p","app":"a",{fields}}}"#).as_bytes(), now()).unwrap()
    }

    #[test]
    fn every_rule_of_a_line_is_named_without_its_value() {
        let hash = bcrypt::hash("a fine secret of some length", 4).unwrap();
        let cases = [
            (r#""secret":"#.to_owned(), Rule::MalformedJson),
            (format!(r#""secretHash":"$2x$04{}""#, &hash[6..]), Rule::HashPrefix("secretHash")),
            (format!(r#""secretHash":"$2a$17{}""#, &hash[6..]), Rule::HashCost("secretHash")),
            (format!(r#""secretHash":"$2a$03{}""#, &hash[6..]), Rule::HashCost("secretHash")),
            (format!(r#""secretHash":"$2a$+4{}""#, &hash[6..]), Rule::HashMalformed("secretHash")),
            (format!(r#""secretHash":"{}""#, &hash[..59]), Rule::HashMalformed("secretHash")),
            (format!(r#""secret":"{}""#, "s".repeat(73)), Rule::SecretLength("secret")),
            (format!(r#""secret":"{}""#, "s".repeat(15)), Rule::SecretLength("secret")),
            (r#""secret":"sixteen bytes ok\u0007""#.to_owned(), Rule::SecretByte("secret")),
            (r#""secret":"sixteen bytes okés""#.to_owned(), Rule::SecretByte("secret")),
            (r#""secret":12345678901234567"#.to_owned(), Rule::NotAString("secret")),
            (format!(r#""secret":"{}","secretHash":"{hash}""#, "s".repeat(20)), Rule::TwoOf("secretHash", "secret")),
            (r#""other":"x""#.to_owned(), Rule::UnknownField),
            (
                format!(r#""secretHash":"{hash}","previousSecretExpiresAt":"2026-12-02T00:00:00Z""#),
                Rule::ExpiryWithoutPrevious,
            ),
            (format!(r#""secretHash":"{hash}","previousSecretHash":"{hash}""#), Rule::ExpiryMissing),
            (
                format!(r#""secretHash":"{hash}","previousSecretHash":"{hash}","previousSecretExpiresAt":"tomorrow""#),
                Rule::ExpiryMalformed,
            ),
            (
                format!(
                    r#""secretHash":"{hash}","previousSecretHash":"{hash}","previousSecretExpiresAt":"2026-12-01T12:00:00Z""#
                ),
                Rule::ExpiryPast,
            ),
            (
                format!(
                    r#""secretHash":"{hash}","previousSecretHash":"{hash}","previousSecretExpiresAt":"2026-12-31T12:00:01Z""#
                ),
                Rule::ExpiryTooFar,
            ),
        ];
        for (fields, rule) in cases {
            assert_eq!(line(&fields), Err(rule.clone()), "{fields}");
            let text = rule.to_string();
            assert!(!text.contains(&hash[7..]) && !text.contains("sss"), "{text}");
        }
    }

    #[test]
    fn ids_and_the_secret_are_required() {
        let parse = |text: &str| parse_line(text.as_bytes(), now()).unwrap();
        assert_eq!(parse("[1]"), Err(Rule::NotAnObject));
        assert_eq!(parse(r#"{"project":"p","app":"a","secret":"0123456789abcdef"}"#), Err(Rule::BadId("org")));
        assert_eq!(parse(r#"{"org":"o","project":"","app":"a"}"#), Err(Rule::BadId("project")));
        assert_eq!(parse(r#"{"org":"o","project":"p","app":"a#b"}"#), Err(Rule::BadId("app")));
        assert_eq!(parse(r#"{"org":"o","project":"p","app":"a"}"#), Err(Rule::NoSecret));
        assert_eq!(parse_line(b"  \r", now()), None, "a blank line is no line");
    }

    #[test]
    fn a_zitadel_hash_and_a_plaintext_with_a_previous_one_pass() {
        let hash = bcrypt::hash("a fine secret of some length", 10).unwrap().replacen("$2b$", "$2a$", 1);
        let entry = line(&format!(r#""secretHash":"{hash}""#)).unwrap();
        assert_eq!(entry.secret, Given::Hash(hash));
        assert!(!entry.has_plaintext());
        assert_eq!(entry.other_costs(4), [10]);
        let entry =
            line(r#""secret":"plain secret, 22 b","previousSecret":"older secret, 22 b","previousSecretExpiresAt":"2026-12-31T12:00:00Z""#)
                .unwrap();
        assert!(entry.has_plaintext());
        assert_eq!(entry.other_costs(4), Vec::<u32>::new());
        assert!(!format!("{entry:?}").contains("plain secret"), "Debug hides secrets");
        let stored = entry.secret.hash(4).unwrap();
        assert!(stored.starts_with("$2b$04$") && bcrypt::verify("plain secret, 22 b", &stored).unwrap());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&bytes, now());
        }

        #[test]
        fn a_refusal_never_holds_the_value(value in "[ -~\u{0}-\u{1f}\u{7f}-\u{ff}]{8,90}", field in 0usize..4) {
            let name = ["secret", "secretHash", "previousSecret", "previousSecretHash"][field];
            let text = serde_json::json!({"org": "o", "project": "p", "app": "a", name: value.clone()}).to_string();
            if let Some(Err(rule)) = parse_line(text.as_bytes(), now()) {
                prop_assert!(!rule.to_string().contains(value.as_str()), "{}", rule);
            }
        }
    }
}
