//! The client secret: generated from the OS CSPRNG, stored only as a bcrypt hash,
//! verified against the current hash or, during a grace period, the previous one.
//! Pure: no I/O besides the OS random source.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use time::OffsetDateTime;

use crate::app::App;
use crate::error::Error;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub const DEFAULT_LENGTH: usize = 64;
pub const MIN_LENGTH: usize = 32;
/// bcrypt reads at most 72 bytes: a longer secret would not be fully verified.
pub const MAX_LENGTH: usize = 72;
pub const DEFAULT_COST: u32 = 4;
pub const MIN_COST: u32 = 4;
pub const MAX_COST: u32 = 16;

/// A plaintext secret. It has no `Display`, and its `Debug` hides the value, so it
/// cannot reach a log or an error by accident: the only way out is [`ClientSecret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Draws `length` characters from `A-Z a-z 0-9` straight from the OS CSPRNG.
    ///
    /// Each OS byte gives six bits, 0 to 63; 62 and 63 are rejected, so every character is
    /// equally likely (no modulo bias). This is `rand`'s `Alphanumeric` rule, applied to
    /// one buffered OS read instead of one `getrandom` call per character.
    pub fn generate(length: usize) -> Self {
        let mut value = String::with_capacity(length);
        let mut bytes = [0u8; 96];
        while value.len() < length {
            SysRng.try_fill_bytes(&mut bytes).expect("the OS random source is available");
            let wanted = length - value.len();
            let drawn = bytes.iter().map(|b| b >> 2).filter(|&i| i < 62).take(wanted);
            value.extend(drawn.map(|i| char::from(ALPHABET[usize::from(i)])));
        }
        Self(value)
    }

    /// A secret that already exists (one read back from Secrets Manager), only if it is a
    /// secret by the rules this function generates by: [`MIN_LENGTH`] to [`MAX_LENGTH`]
    /// characters from `A-Z a-z 0-9`. Anything else (empty, short, past what bcrypt reads,
    /// other characters) is refused; the error never holds the value.
    pub fn parse(value: String) -> Result<Self, Error> {
        let fits = (MIN_LENGTH..=MAX_LENGTH).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
        if fits {
            Ok(Self(value))
        } else {
            Err(Error::invalid(format!(
                "invalid clientSecret: must be {MIN_LENGTH} to {MAX_LENGTH} characters from A-Z a-z 0-9"
            )))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The bcrypt hash in modular-crypt form (`$2b$<cost>$...`) that ZITADEL can verify.
    pub fn hash(&self, cost: u32) -> Result<String, Error> {
        bcrypt::hash(&self.0, cost).map_err(|e| Error::Internal(format!("bcrypt: {e}")))
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Whether `candidate` is the secret behind one bcrypt `hash`.
pub fn matches_hash(candidate: &str, hash: &str) -> bool {
    bcrypt::verify(candidate, hash).unwrap_or(false)
}

/// Whether `candidate` is the app's secret at `now`: the current hash, or the previous
/// hash while its grace period (`previousSecretExpiresAt`) has not run out.
pub fn verify_client_secret(app: &App, candidate: &str, now: OffsetDateTime) -> bool {
    if app.secret_hash.as_deref().is_some_and(|h| matches_hash(candidate, h)) {
        return true;
    }
    match (&app.previous_secret_hash, app.previous_secret_expires_at) {
        (Some(hash), Some(expires)) if now < expires => matches_hash(candidate, hash),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AppKey, parse_timestamp};
    use crate::ids::{AppId, OrgId, ProjectId};

    fn app(secret_hash: Option<String>) -> App {
        App {
            key: AppKey {
                org: OrgId::parse("org", "org").unwrap(),
                project: ProjectId::parse("p").unwrap(),
                app: AppId::parse("a").unwrap(),
            },
            app_type: "OIDC".into(),
            state: "ACTIVE".into(),
            auth_method: "BASIC".into(),
            client_id: "c".into(),
            secret_hash,
            sequence: 1,
            creation_date: parse_timestamp("2026-01-01T00:00:00Z").unwrap(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            rotation_secret_arn: None,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            audiences: Vec::new(),
        }
    }

    #[test]
    fn generated_secrets_are_alphanumeric_of_the_asked_length() {
        let a = ClientSecret::generate(64);
        let b = ClientSecret::generate(72);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(b.expose().len(), 72);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), &b.expose()[..64]);
    }

    #[test]
    fn every_alphanumeric_character_is_drawn() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            seen.extend(ClientSecret::generate(64).expose().chars());
        }
        assert_eq!(seen.len(), 62, "4096 draws should cover all 62 characters");
    }

    #[test]
    fn characters_are_equally_likely() {
        let mut counts = std::collections::HashMap::new();
        for _ in 0..1000 {
            for c in ClientSecret::generate(64).expose().chars() {
                *counts.entry(c).or_insert(0u32) += 1;
            }
        }
        // 64,000 draws: about 1,032 per character, with a standard deviation near 32. A
        // modulo bias would give some characters a quarter more.
        let expected = 64_000.0 / 62.0;
        for (c, n) in counts {
            assert!((f64::from(n) - expected).abs() < 0.15 * expected, "{c}: {n}");
        }
    }

    #[test]
    fn only_secrets_by_the_generation_rules_parse() {
        for length in [MIN_LENGTH, DEFAULT_LENGTH, MAX_LENGTH] {
            let secret = ClientSecret::generate(length);
            assert_eq!(ClientSecret::parse(secret.expose().to_owned()).unwrap(), secret);
        }
        let refused = [
            String::new(),
            "a".into(),
            "a".repeat(MIN_LENGTH - 1),
            "a".repeat(MAX_LENGTH + 1),
            "a".repeat(80),
            format!("{}é", "a".repeat(40)),
            format!("{}-_", "a".repeat(40)),
            format!("{} ", "a".repeat(40)),
        ];
        for value in refused {
            let error = ClientSecret::parse(value.clone()).unwrap_err();
            assert_eq!(error.grpc_code(), crate::error::code::INVALID_ARGUMENT);
            assert!(value.len() < 8 || !error.to_string().contains(&value), "the error holds the value");
        }
    }

    #[test]
    fn debug_hides_the_value() {
        let s = ClientSecret::generate(64);
        assert!(!format!("{s:?}").contains(s.expose()));
    }

    #[test]
    fn hash_is_modular_crypt_bcrypt_at_the_cost_asked() {
        let s = ClientSecret::generate(64);
        let hash = s.hash(4).unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(matches_hash(s.expose(), &hash));
        assert!(!matches_hash("wrong", &hash));
    }

    #[test]
    fn previous_secret_verifies_only_before_its_expiry() {
        let old = ClientSecret::generate(64);
        let new = ClientSecret::generate(64);
        let mut app = app(Some(new.hash(4).unwrap()));
        app.previous_secret_hash = Some(old.hash(4).unwrap());
        let expiry = parse_timestamp("2026-01-01T00:05:00Z").unwrap();
        app.previous_secret_expires_at = Some(expiry);
        let before = expiry - time::Duration::seconds(1);
        assert!(verify_client_secret(&app, new.expose(), before));
        assert!(verify_client_secret(&app, old.expose(), before));
        assert!(!verify_client_secret(&app, old.expose(), expiry));
        assert!(verify_client_secret(&app, new.expose(), expiry));
        assert!(!verify_client_secret(&app, "nope", before));
    }

    #[test]
    fn app_without_hash_verifies_nothing() {
        assert!(!verify_client_secret(&app(None), "", OffsetDateTime::now_utc()));
    }
}
