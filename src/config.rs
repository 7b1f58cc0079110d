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
    /// How long event items are kept (DynamoDB's TTL deletes them after); `None` keeps them.
    pub event_retention: Option<Duration>,
    /// OAuth scopes the caller's token must all carry (`REQUIRED_SCOPES`); empty: none.
    pub required_scopes: Vec<String>,
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

/// The longest event retention accepted, in days: 100 years (0 keeps events forever).
pub const MAX_EVENT_RETENTION_DAYS: u64 = 36_500;

/// bcrypt at cost 4 on one whole vCPU, in ms: the top of what `make bench` measured (0.9 to
/// 1.2 ms), so that the estimates below err on the slow side.
pub const COST_4_MS: f64 = 1.2;
/// The memory size at which Lambda gives a function one whole vCPU; below it, the share
/// is memory / 1769 (bcrypt uses one core, so more memory than this does not help).
pub const FULL_VCPU_MB: u32 = 1769;
/// What one hash may take on the request path: the read before it and the write after it
/// must still fit in the request's deadline (see `crate::deadline`: 9.5 s, of which the
/// write and its resolution keep 4 s).
pub const HASH_BUDGET_MS: f64 = 2000.0;

/// The estimated time of one bcrypt hash (or verification) at `cost` on a function of
/// `memory_mb`.
pub fn hash_ms(cost: u32, memory_mb: u32) -> f64 {
    let share = (f64::from(memory_mb.max(1)) / f64::from(FULL_VCPU_MB)).min(1.0);
    COST_4_MS * 2f64.powi(cost.saturating_sub(secret::MIN_COST) as i32) / share
}

/// The highest bcrypt cost a function of `memory_mb` can hash within [`HASH_BUDGET_MS`].
pub fn max_hash_cost(memory_mb: u32) -> u32 {
    (secret::MIN_COST..=secret::MAX_COST)
        .rev()
        .find(|&cost| hash_ms(cost, memory_mb) <= HASH_BUDGET_MS)
        .unwrap_or(secret::MIN_COST)
}

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
        // On Lambda, the memory size sets the CPU share: a cost the function can't hash in
        // time would time out every request, so it is refused here, with the figures.
        if let Some(memory) = lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.trim().parse::<u32>().ok()) {
            let max = max_hash_cost(memory);
            if secret.hash_cost > max {
                return Err(ConfigError(format!(
                    "SECRET_HASH_COST {} takes about {:.1} s per hash at {memory} MB, past the {:.0} s a request may spend on it: at most {max} at this memory size",
                    secret.hash_cost,
                    hash_ms(secret.hash_cost, memory) / 1000.0,
                    HASH_BUDGET_MS / 1000.0
                )));
            }
        }
        let retention_days = number(&lookup, "EVENT_RETENTION_DAYS", 0, 0, MAX_EVENT_RETENTION_DAYS)?;
        let event_retention = (retention_days > 0).then(|| Duration::from_secs(retention_days * 24 * 3600));
        let default_claims = ClaimNames::default();
        let claims = ClaimNames {
            user: claim(&lookup, "USER_CLAIM", default_claims.user)?,
            org: claim(&lookup, "ORG_CLAIM", default_claims.org)?,
        };
        let required_scopes = lookup("REQUIRED_SCOPES")
            .map(|list| list.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self { table_name, secret, claims, event_retention, required_scopes })
    }
}

/// The `oauth` function's own settings (SPEC section 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// KMS key ids or ARNs: the first signs, all are published.
    pub signing_keys: Vec<String>,
    /// Seconds an access token lives.
    pub token_lifetime: u64,
    /// The issuer, when set; else made from each request's domain name and stage.
    pub issuer: Option<String>,
}

pub const DEFAULT_TOKEN_LIFETIME: u64 = 3600;
pub const MIN_TOKEN_LIFETIME: u64 = 60;
pub const MAX_TOKEN_LIFETIME: u64 = 86_400;

impl OAuthConfig {
    /// For the binary's start-up: the settings, or one line on stderr and exit 1.
    pub fn from_env_or_exit() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok()).unwrap_or_else(|error| {
            eprintln!("{error}");
            std::process::exit(1)
        })
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let signing_keys: Vec<String> = lookup("TOKEN_SIGNING_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if signing_keys.is_empty() {
            return Err(ConfigError("TOKEN_SIGNING_KEYS is required: KMS key ids or ARNs, comma-separated".into()));
        }
        if let Some(bad) = signing_keys.iter().find(|k| k.len() > 2048 || k.bytes().any(|b| !b.is_ascii_graphic())) {
            return Err(ConfigError(format!("TOKEN_SIGNING_KEYS: {bad:?} is no KMS key id or ARN")));
        }
        let token_lifetime =
            number(&lookup, "TOKEN_LIFETIME_SECONDS", DEFAULT_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME)?;
        let issuer = match lookup("ISSUER").filter(|i| !i.trim().is_empty()) {
            None => None,
            Some(issuer) if valid_issuer(&issuer) => Some(issuer),
            Some(issuer) => {
                return Err(ConfigError(format!(
                    "ISSUER must be an https:// URL (http:// on a loopback host) without a trailing slash, query or fragment, got {issuer:?}"
                )));
            }
        };
        Ok(Self { signing_keys, token_lifetime, issuer })
    }
}

/// An `https://` URL, or `http://` on a loopback host; no trailing slash, query, fragment,
/// user info or whitespace.
fn valid_issuer(issuer: &str) -> bool {
    let (secure, rest) = match (issuer.strip_prefix("https://"), issuer.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return false,
    };
    let host = rest.split('/').next().unwrap_or_default();
    let hostname = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }),
    };
    let loopback = hostname == "localhost" || hostname.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !hostname.is_empty()
        && (secure || loopback)
        && !issuer.ends_with('/')
        && !issuer.bytes().any(|b| matches!(b, b'?' | b'#' | b'@') || !b.is_ascii_graphic())
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
    fn a_hash_cost_the_memory_size_cannot_serve_stops_the_function() {
        // 128 MB is 1/13.8 of a vCPU: cost 10 hashes in about 1.1 s, 11 in 2.1 s.
        assert_eq!([128, 256, 512, 1024, 1769, 10240].map(max_hash_cost), [10, 11, 12, 13, 14, 14]);
        let at = |memory: &str, cost: &str| {
            config(&[("TABLE_NAME", "oidc"), ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory), ("SECRET_HASH_COST", cost)])
        };
        assert_eq!(at("128", "10").unwrap().secret.hash_cost, 10);
        let err = at("128", "12").unwrap_err().to_string();
        assert!(err.contains("SECRET_HASH_COST 12") && err.contains("128 MB") && err.contains("at most 10"), "{err}");
        assert!(at("1024", "14").is_err());
        assert!(at("2048", "14").is_ok());
        // Outside Lambda (no memory size), only the range applies.
        assert_eq!(config(&[("TABLE_NAME", "oidc"), ("SECRET_HASH_COST", "16")]).unwrap().secret.hash_cost, 16);
    }

    #[test]
    fn event_retention_is_off_by_default_and_in_days() {
        assert_eq!(config(&[("TABLE_NAME", "oidc")]).unwrap().event_retention, None);
        let c = config(&[("TABLE_NAME", "oidc"), ("EVENT_RETENTION_DAYS", "365")]).unwrap();
        assert_eq!(c.event_retention, Some(Duration::from_secs(365 * 86_400)));
        assert!(config(&[("TABLE_NAME", "oidc"), ("EVENT_RETENTION_DAYS", "-1")]).is_err());
    }

    #[test]
    fn required_scopes_are_a_list_and_none_by_default() {
        assert!(config(&[("TABLE_NAME", "oidc")]).unwrap().required_scopes.is_empty());
        assert!(config(&[("TABLE_NAME", "oidc"), ("REQUIRED_SCOPES", "")]).unwrap().required_scopes.is_empty());
        let c = config(&[("TABLE_NAME", "oidc"), ("REQUIRED_SCOPES", "secrets:write, admin")]).unwrap();
        assert_eq!(c.required_scopes, ["secrets:write", "admin"]);
    }

    #[test]
    fn the_oauth_settings_are_read_and_bounded() {
        let vars = |pairs: &[(&str, &str)]| {
            let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            OAuthConfig::from_lookup(move |name| vars.get(name).cloned())
        };
        assert!(vars(&[]).unwrap_err().to_string().contains("TOKEN_SIGNING_KEYS"));
        let c = vars(&[("TOKEN_SIGNING_KEYS", "key-1, arn:aws:kms:eu-central-1:1:key/2")]).unwrap();
        assert_eq!(c.signing_keys, ["key-1", "arn:aws:kms:eu-central-1:1:key/2"]);
        assert_eq!((c.token_lifetime, c.issuer), (3600, None));
        let keys = ("TOKEN_SIGNING_KEYS", "k");
        assert_eq!(vars(&[keys, ("TOKEN_LIFETIME_SECONDS", "60")]).unwrap().token_lifetime, 60);
        for bad in ["59", "86401", "x"] {
            assert!(vars(&[keys, ("TOKEN_LIFETIME_SECONDS", bad)]).is_err(), "{bad}");
        }
        for good in [
            "https://auth.example.com",
            "https://a.example/prod",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:80",
        ] {
            assert_eq!(vars(&[keys, ("ISSUER", good)]).unwrap().issuer.as_deref(), Some(good));
        }
        for bad in [
            "http://auth.example.com",
            "https://auth.example.com/",
            "https://a.example?x=1",
            "ftp://a",
            "https://",
            "https://u@a.example",
            "http://127.0.0.1.example.com",
        ] {
            assert!(vars(&[keys, ("ISSUER", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn table_name_is_required_and_checked() {
        assert!(config(&[]).unwrap_err().to_string().contains("TABLE_NAME is required"));
        assert!(config(&[("TABLE_NAME", "ab")]).is_err());
        assert!(config(&[("TABLE_NAME", "a#b")]).is_err());
    }
}
