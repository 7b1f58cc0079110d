//! The application record as the use case sees it, independent of how it is stored.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::ids::{AppId, OrgId, ProjectId};

pub const TYPE_OIDC: &str = "OIDC";
pub const TYPE_API: &str = "API";
pub const STATE_REMOVED: &str = "REMOVED";
/// The auth methods that use a client secret; every other one (NONE, PRIVATE_KEY_JWT)
/// is refused with COMMAND-GDrg2, as ZITADEL does.
pub const SECRET_AUTH_METHODS: [&str; 2] = ["BASIC", "POST"];

/// The one OAuth grant an app may hold (SPEC section 13).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// An RFC 6749 scope-token (section 3.3): 1 or more of `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Which app types a door serves (SPEC section 12), and so what another type is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// OIDC apps only (v1 `RegenerateOIDCClientSecret`): another type is COMMAND-Ghrh3.
    Oidc,
    /// API apps only (v1 `RegenerateAPIClientSecret`): another type is COMMAND-aeH4.
    Api,
    /// Either type with client secrets (the v2 door, rotation): another type, SAML, is an
    /// app that does not exist here.
    WithSecret,
}

impl AppKind {
    pub fn admits(self, app: &App) -> bool {
        match self {
            AppKind::Oidc => app.app_type == TYPE_OIDC,
            AppKind::Api => app.app_type == TYPE_API,
            AppKind::WithSecret => app.app_type == TYPE_OIDC || app.app_type == TYPE_API,
        }
    }
}

/// Which app: the org that owns it, its project, its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppKey {
    pub org: OrgId,
    pub project: ProjectId,
    pub app: AppId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub key: AppKey,
    /// OIDC, API or SAML.
    pub app_type: String,
    /// ACTIVE, INACTIVE or REMOVED.
    pub state: String,
    /// BASIC, POST, NONE or PRIVATE_KEY_JWT.
    pub auth_method: String,
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub sequence: u64,
    pub creation_date: OffsetDateTime,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    pub rotation_secret_arn: Option<String>,
    /// The OAuth grants the app's client may use (SPEC section 13): `client_credentials`.
    pub grant_types: Vec<String>,
    /// The scopes a token request may be granted.
    pub scopes: Vec<String>,
    /// Project ids besides its own that its tokens may name as audience.
    pub audiences: Vec<String>,
}

impl App {
    pub fn is_removed(&self) -> bool {
        self.state == STATE_REMOVED
    }

    pub fn is_oidc(&self) -> bool {
        self.app_type == TYPE_OIDC
    }

    pub fn uses_secret(&self) -> bool {
        SECRET_AUTH_METHODS.contains(&self.auth_method.as_str())
    }
}

/// RFC 3339 in UTC with `Z` and six fractional digits, as ZITADEL writes timestamps.
/// Every date [`parse_timestamp`] returns, and every date of this century, formats.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at.to_offset(time::UtcOffset::UTC).format(&format).expect("a UTC date between years 0 and 9999 always formats")
}

/// Parses an RFC 3339 timestamp that is, in UTC, between the years 0 and 9999: one that
/// can be written back. `9999-12-31T23:59:59-01:00` is valid RFC 3339, yet in UTC it is
/// in the year 10000, which neither RFC 3339 nor a protobuf Timestamp can carry.
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    at.checked_to_offset(time::UtcOffset::UTC).filter(|utc| (0..=9999).contains(&utc.year()))?;
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_six_fraction_digits() {
        let at = parse_timestamp("2026-11-27T13:00:00.123+01:00").unwrap();
        assert_eq!(format_timestamp(at), "2026-11-27T12:00:00.123000Z");
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn timestamps_outside_the_utc_years_0_to_9999_do_not_parse() {
        assert_eq!(parse_timestamp("9999-12-31T23:59:59-01:00"), None);
        assert_eq!(parse_timestamp("0000-01-01T00:00:00+01:00"), None);
        let last = parse_timestamp("9999-12-31T23:59:59.999999+00:00").unwrap();
        assert_eq!(format_timestamp(last), "9999-12-31T23:59:59.999999Z");
    }
}
