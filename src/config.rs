//! Configuration, read from the environment once at start-up into a typed struct.
//! A bad value is refused there with one line that names the variable, so a
//! misconfigured function never serves a request.

use std::time::Duration;

use crate::secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub secret: SecretSettings,
    pub claims: ClaimNames,
}

/// How secrets are made and how long an old one keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSettings {
    pub length: usize,
    pub hash_cost: u32,
    pub grace: Duration,
}

impl Default for SecretSettings {
    fn default() -> Self {
        Self { length: secret::DEFAULT_LENGTH, hash_cost: secret::DEFAULT_COST, grace: Duration::ZERO }
    }
}

/// Which claims of the authorizer hold the user id and the user's home org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub user: String,
    pub org: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self { user: "sub".into(), org: "urn:zitadel:iam:user:resourceowner:id".into() }
    }
}

/// The longest grace period accepted: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// For a binary's start-up: the configuration, or one line on stderr and exit 1.
    pub fn from_env_or_exit() -> Self {
        Self::from_env().unwrap_or_else(|error| {
            eprintln!("{error}");
            std::process::exit(1)
        })
    }

    /// Reads the variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup("TABLE_NAME").ok_or_else(|| ConfigError("TABLE_NAME is required".into()))?;
        let table_ok = (3..=255).contains(&table_name.len())
            && table_name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !table_ok {
            return Err(ConfigError(format!(
                "TABLE_NAME must be 3 to 255 characters from A-Z a-z 0-9 _ - ., got {table_name:?}"
            )));
        }
        let defaults = SecretSettings::default();
        let secret = SecretSettings {
            length: number(&lookup, "SECRET_LENGTH", defaults.length, secret::MIN_LENGTH, secret::MAX_LENGTH)?,
            hash_cost: number(&lookup, "SECRET_HASH_COST", defaults.hash_cost, secret::MIN_COST, secret::MAX_COST)?,
            grace: Duration::from_secs(number(&lookup, "SECRET_GRACE_SECONDS", 0, 0, MAX_GRACE_SECONDS)?),
        };
        let default_claims = ClaimNames::default();
        let claims = ClaimNames {
            user: claim(&lookup, "USER_CLAIM", default_claims.user)?,
            org: claim(&lookup, "ORG_CLAIM", default_claims.org)?,
        };
        Ok(Self { table_name, secret, claims })
    }
}

fn number<T>(lookup: &impl Fn(&str) -> Option<String>, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = lookup(name) else { return Ok(default) };
    match raw.trim().parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(ConfigError(format!("{name} must be a whole number from {min} to {max}, got {raw:?}"))),
    }
}

fn claim(lookup: &impl Fn(&str) -> Option<String>, name: &str, default: String) -> Result<String, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(value) if !value.trim().is_empty() => Ok(value),
        Some(_) => Err(ConfigError(format!("{name} must not be empty"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[("TABLE_NAME", "oidc")]).unwrap();
        assert_eq!(c.secret, SecretSettings { length: 64, hash_cost: 4, grace: Duration::ZERO });
        assert_eq!(c.claims.user, "sub");
        assert_eq!(c.claims.org, "urn:zitadel:iam:user:resourceowner:id");
    }

    #[test]
    fn values_are_read_and_bounded() {
        let c = config(&[
            ("TABLE_NAME", "oidc"),
            ("SECRET_LENGTH", "72"),
            ("SECRET_HASH_COST", "10"),
            ("SECRET_GRACE_SECONDS", "300"),
            ("USER_CLAIM", "uid"),
        ])
        .unwrap();
        assert_eq!(c.secret, SecretSettings { length: 72, hash_cost: 10, grace: Duration::from_secs(300) });
        assert_eq!(c.claims.user, "uid");
        for (name, bad) in [
            ("SECRET_LENGTH", "31"),
            ("SECRET_LENGTH", "73"),
            ("SECRET_HASH_COST", "3"),
            ("SECRET_HASH_COST", "17"),
            ("SECRET_GRACE_SECONDS", "-1"),
            ("SECRET_GRACE_SECONDS", "ten"),
            ("ORG_CLAIM", " "),
        ] {
            let err = config(&[("TABLE_NAME", "oidc"), (name, bad)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn table_name_is_required_and_checked() {
        assert!(config(&[]).unwrap_err().to_string().contains("TABLE_NAME is required"));
        assert!(config(&[("TABLE_NAME", "ab")]).is_err());
        assert!(config(&[("TABLE_NAME", "a#b")]).is_err());
    }
}
