//! The second use case: a client id and a candidate secret -> allowed (and which secret
//! matched) or denied, at the same cost either way (SPEC section 11).
//!
//! Every call does the same work whatever it finds: two consistent reads (the client
//! lookup, then the app it names), against keys that hold nothing where there is nothing to
//! read, and two bcrypt verifications unless the first one allows (against the app's
//! current and previous hashes, or a dummy hash of the configured cost where there is no
//! hash to check). So a denial for a client id that does not exist takes as long as a wrong
//! secret for one that does, and no answer tells which client ids exist. A store error
//! denies, and says `unavailable`, never allowed. The store is a trait, as for the first
//! use case.

use std::future::Future;

use rand::RngExt;
use time::OffsetDateTime;

use crate::app::{App, AppKey, SECRET_AUTH_METHODS};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::ClientId;
use crate::secret::matches_hash;

/// App types whose clients authenticate with a secret.
pub const SECRET_APP_TYPES: [&str; 2] = ["OIDC", "API"];
pub const STATE_ACTIVE: &str = "ACTIVE";

/// The reads of an authentication.
pub trait Directory: Send + Sync {
    /// The app the client id names (the client lookup), read consistently; with no client
    /// id (the header did not parse), a read of a key that holds nothing.
    fn client_app(
        &self,
        client: Option<&ClientId>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Option<AppKey>, Error>> + Send;
    /// The app item, read consistently, parsed (an item that does not parse is `Some(Err)`);
    /// with no key, a read of a key that holds nothing.
    fn app_item(
        &self,
        key: Option<&AppKey>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Option<Result<App, Error>>, Error>> + Send;
}

/// What a caller presents: a client id and a secret, as the header carried them. `None`
/// parts mean the header was missing or malformed.
#[derive(Clone, Default)]
pub struct Credentials {
    pub client_id: Option<String>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).field("secret", &"<redacted>").finish()
    }
}

/// Which of the app's secrets the candidate matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Current,
    Previous,
}

impl Matched {
    pub fn as_str(self) -> &'static str {
        match self {
            Matched::Current => "current",
            Matched::Previous => "previous",
        }
    }
}

/// Why a call was denied: for the log only, never for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Malformed,
    UnknownClient,
    /// The lookup named an app whose item is gone, or names another client id.
    NoSuchApp,
    Unreadable,
    NotActive,
    NotASecretApp,
    NoSecretMethod,
    NoSecret,
    WrongSecret,
    /// The store failed (throttled, timed out): denied, and counted apart.
    Unavailable(String),
}

impl Denial {
    /// The reason in the log line.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Malformed => "malformed credentials",
            Denial::UnknownClient => "unknown client id",
            Denial::NoSuchApp => "the lookup names no such app",
            Denial::Unreadable => "unreadable app item",
            Denial::NotActive => "app not active",
            Denial::NotASecretApp => "app type without secrets",
            Denial::NoSecretMethod => "auth method without a secret",
            Denial::NoSecret => "app has no secret",
            Denial::WrongSecret => "wrong secret",
            Denial::Unavailable(_) => "store unavailable",
        }
    }

    /// The outcome in the log line and the metric: `unavailable` apart from `denied`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Denial::Unavailable(_) => "unavailable",
            _ => "denied",
        }
    }
}

/// One authentication: who, which app, and the verdict.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub client: Option<ClientId>,
    /// The app, once the lookup named one.
    pub key: Option<AppKey>,
    /// The app item read, when allowed: what a grant needs to know of its client, without
    /// a read of its own.
    pub app: Option<App>,
    pub result: Result<Matched, Denial>,
}

pub struct Authenticator<D> {
    directory: D,
    /// Verified against where there is no hash: the work of a wrong secret, never a match.
    dummy_hash: String,
}

impl<D: Directory> Authenticator<D> {
    pub fn new(directory: D, hash_cost: u32) -> Self {
        Self { directory, dummy_hash: dummy_hash(hash_cost) }
    }

    /// The store it reads, for a use case that reads more after authenticating.
    pub fn directory(&self) -> &D {
        &self.directory
    }

    pub async fn authenticate(&self, credentials: &Credentials, deadline: Deadline) -> Authentication {
        let client = credentials.client_id.as_deref().and_then(|id| ClientId::parse(id, "client id").ok());
        let secret = credentials.secret.as_deref().filter(|s| !s.is_empty());
        let malformed = client.is_none() || secret.is_none();
        let unavailable = |client, key, error: Error| Authentication {
            client,
            key,
            app: None,
            result: Err(Denial::Unavailable(error.log_detail().unwrap_or_default().to_owned())),
        };
        // Both reads always happen: a malformed header reads nothing, as an unknown id does.
        let key = match self.directory.client_app(client.as_ref().filter(|_| !malformed), deadline).await {
            Ok(key) => key,
            Err(error) => return unavailable(client, None, error),
        };
        let item = match self.directory.app_item(key.as_ref(), deadline).await {
            Ok(item) => item,
            Err(error) => return unavailable(client, key, error),
        };
        let eligible = match (&client, &key, item) {
            _ if malformed => Err(Denial::Malformed),
            (_, None, _) => Err(Denial::UnknownClient),
            (_, Some(_), None) => Err(Denial::NoSuchApp),
            (_, Some(_), Some(Err(_))) => Err(Denial::Unreadable),
            (Some(client), Some(_), Some(Ok(app))) => eligible(app, client),
            (None, Some(_), Some(Ok(_))) => Err(Denial::Malformed),
        };
        let now = OffsetDateTime::now_utc();
        let (current, previous) = match &eligible {
            Ok(app) => (
                app.secret_hash.as_deref(),
                app.previous_secret_hash
                    .as_deref()
                    .filter(|_| app.previous_secret_expires_at.is_some_and(|at| now < at)),
            ),
            Err(_) => (None, None),
        };
        let candidate = secret.unwrap_or_default();
        // bcrypt reads 72 bytes and stops at NUL: a longer candidate, or one with a NUL,
        // would match on its prefix alone. It is no secret of ours; it still costs the work.
        let whole = candidate.len() <= MAX_SECRET_BYTES && !candidate.contains('\0');
        // Two verifications for every denial: against a hash, or the dummy of the same cost.
        let matched = if self.verifies(candidate, current) && whole {
            Some(Matched::Current)
        } else if self.verifies(candidate, previous) && whole {
            Some(Matched::Previous)
        } else {
            None
        };
        let (app, result) = match (matched, eligible) {
            (Some(matched), Ok(app)) => (Some(app), Ok(matched)),
            (_, Ok(app)) if app.secret_hash.is_none() => (None, Err(Denial::NoSecret)),
            (_, Ok(_)) => (None, Err(Denial::WrongSecret)),
            (_, Err(denial)) => (None, Err(denial)),
        };
        Authentication { client, key, app, result }
    }

    /// One bcrypt verification: against `hash`, or, where there is none or it is no
    /// well-formed bcrypt hash (which would fail at once, without the work), against the
    /// dummy, which never matches.
    fn verifies(&self, candidate: &str, hash: Option<&str>) -> bool {
        match hash.filter(|h| h.parse::<bcrypt::HashParts>().is_ok()) {
            Some(hash) => {
                if hash.get(4..6) != self.dummy_hash.get(4..6) {
                    // A hash of another cost takes another time than the dummy: the
                    // difference could tell a known client id from an unknown one.
                    tracing::warn!("an app's hash has another bcrypt cost than SECRET_HASH_COST: rotate it");
                }
                matches_hash(candidate, hash)
            }
            None => {
                matches_hash(candidate, &self.dummy_hash);
                false
            }
        }
    }
}

/// The most bytes of a secret bcrypt reads (secrets are 32 to 72 characters).
const MAX_SECRET_BYTES: usize = 72;

/// The app, if its client may authenticate with a secret: the lookup's app still names
/// this client id, is ACTIVE, of a type with secrets, with a secret auth method.
fn eligible(app: App, client: &ClientId) -> Result<App, Denial> {
    if app.client_id != client.as_str() {
        return Err(Denial::NoSuchApp);
    }
    if app.state != STATE_ACTIVE {
        return Err(Denial::NotActive);
    }
    if !SECRET_APP_TYPES.contains(&app.app_type.as_str()) {
        return Err(Denial::NotASecretApp);
    }
    if !SECRET_AUTH_METHODS.contains(&app.auth_method.as_str()) {
        return Err(Denial::NoSecretMethod);
    }
    Ok(app)
}

/// A well-formed bcrypt hash of the given cost whose salt and digest are random: verifying
/// against it costs what verifying against a real hash of that cost does, and matches no
/// secret (no one knows a preimage). Made without hashing, so it costs nothing at start-up.
fn dummy_hash(cost: u32) -> String {
    use base64::Engine;
    let bcrypt_base64 =
        base64::engine::GeneralPurpose::new(&base64::alphabet::BCRYPT, base64::engine::general_purpose::NO_PAD);
    let salt: [u8; 16] = rand::rng().random();
    let digest: [u8; 23] = rand::rng().random();
    format!("$2b${cost:02}${}{}", bcrypt_base64.encode(salt), bcrypt_base64.encode(digest))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::ClientSecret;
    use crate::store::memory::{MemoryStore, key, oidc_app};

    const CLIENT: &str = "client-1";

    fn credentials(client: &str, secret: &str) -> Credentials {
        Credentials { client_id: Some(client.into()), secret: Some(secret.into()) }
    }

    /// The standard app with a current secret, named by its client id's lookup.
    fn fixture() -> (Authenticator<MemoryStore>, ClientSecret, App) {
        let store = MemoryStore::default();
        let secret = ClientSecret::generate(64);
        let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
        app.client_id = CLIENT.into();
        app.secret_hash = Some(secret.hash(4).unwrap());
        store.put_app(app.clone());
        store.index_client(&ClientId::parse(CLIENT, "c").unwrap(), &app.key);
        (Authenticator::new(store, 4), secret, app)
    }

    async fn verdict(a: &Authenticator<MemoryStore>, c: &Credentials) -> Result<Matched, Denial> {
        a.authenticate(c, Deadline::for_request()).await.result
    }

    #[tokio::test]
    async fn the_current_secret_is_allowed_and_names_the_app() {
        let (a, secret, app) = fixture();
        let auth = a.authenticate(&credentials(CLIENT, secret.expose()), Deadline::for_request()).await;
        assert_eq!(auth.result, Ok(Matched::Current));
        assert_eq!(auth.key, Some(app.key));
        assert_eq!(a.directory.directory_reads(), 2);
    }

    #[tokio::test]
    async fn the_previous_secret_is_allowed_only_before_it_expires() {
        let (a, secret, mut app) = fixture();
        let old = ClientSecret::generate(64);
        app.previous_secret_hash = Some(old.hash(4).unwrap());
        app.previous_secret_expires_at = Some(OffsetDateTime::now_utc() + Duration::from_secs(60));
        a.directory.put_app(app.clone());
        assert_eq!(verdict(&a, &credentials(CLIENT, old.expose())).await, Ok(Matched::Previous));
        assert_eq!(verdict(&a, &credentials(CLIENT, secret.expose())).await, Ok(Matched::Current));
        app.previous_secret_expires_at = Some(OffsetDateTime::now_utc() - Duration::from_secs(1));
        a.directory.put_app(app);
        assert_eq!(verdict(&a, &credentials(CLIENT, old.expose())).await, Err(Denial::WrongSecret));
    }

    #[tokio::test]
    async fn every_other_case_is_denied_after_the_same_two_reads() {
        let (a, secret, app) = fixture();
        type Case = (Credentials, Denial, Box<dyn Fn(&mut App)>);
        let cases: Vec<Case> = vec![
            (credentials(CLIENT, "wrong"), Denial::WrongSecret, Box::new(|_| {})),
            (credentials("nobody", secret.expose()), Denial::UnknownClient, Box::new(|_| {})),
            (credentials("bad id", secret.expose()), Denial::Malformed, Box::new(|_| {})),
            (Credentials { client_id: Some(CLIENT.into()), secret: None }, Denial::Malformed, Box::new(|_| {})),
            (Credentials::default(), Denial::Malformed, Box::new(|_| {})),
            (credentials(CLIENT, secret.expose()), Denial::NotActive, Box::new(|app| app.state = "INACTIVE".into())),
            (credentials(CLIENT, secret.expose()), Denial::NotActive, Box::new(|app| app.state = "REMOVED".into())),
            (credentials(CLIENT, secret.expose()), Denial::NotASecretApp, Box::new(|app| app.app_type = "SAML".into())),
            (
                credentials(CLIENT, secret.expose()),
                Denial::NoSecretMethod,
                Box::new(|app| app.auth_method = "NONE".into()),
            ),
            (
                credentials(CLIENT, secret.expose()),
                Denial::NoSecretMethod,
                Box::new(|app| app.auth_method = "PRIVATE_KEY_JWT".into()),
            ),
            (credentials(CLIENT, secret.expose()), Denial::NoSecret, Box::new(|app| app.secret_hash = None)),
            (credentials(CLIENT, secret.expose()), Denial::NoSuchApp, Box::new(|app| app.client_id = "other".into())),
        ];
        for (presented, expected, change) in cases {
            let mut changed = app.clone();
            change(&mut changed);
            a.directory.put_app(changed);
            let reads = a.directory.directory_reads();
            assert_eq!(verdict(&a, &presented).await, Err(expected.clone()), "{presented:?}");
            assert_eq!(a.directory.directory_reads() - reads, 2, "{expected:?}: two reads");
        }
        a.directory.put_app(app.clone());
        let mut api = app;
        api.app_type = "API".into();
        a.directory.put_app(api);
        assert_eq!(verdict(&a, &credentials(CLIENT, secret.expose())).await, Ok(Matched::Current), "API apps too");
    }

    #[tokio::test]
    async fn a_store_failure_denies_as_unavailable_never_allows() {
        let (a, secret, _) = fixture();
        a.directory.fail_next_directory_read(Error::Unavailable("throttled".into()));
        let verdict = verdict(&a, &credentials(CLIENT, secret.expose())).await;
        assert_eq!(verdict, Err(Denial::Unavailable("throttled".into())));
        assert_eq!(Denial::Unavailable(String::new()).outcome(), "unavailable");
    }

    #[tokio::test]
    async fn a_candidate_past_what_bcrypt_reads_is_no_match_even_on_a_matching_prefix() {
        let store = MemoryStore::default();
        let secret = ClientSecret::parse("A".repeat(72)).unwrap();
        let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
        app.client_id = CLIENT.into();
        app.secret_hash = Some(secret.hash(4).unwrap());
        store.put_app(app.clone());
        store.index_client(&ClientId::parse(CLIENT, "c").unwrap(), &app.key);
        let a = Authenticator::new(store, 4);
        assert_eq!(verdict(&a, &credentials(CLIENT, secret.expose())).await, Ok(Matched::Current));
        let longer = format!("{}tail", secret.expose());
        assert_eq!(verdict(&a, &credentials(CLIENT, &longer)).await, Err(Denial::WrongSecret));
        let short = ClientSecret::parse("B".repeat(40)).unwrap();
        app.secret_hash = Some(short.hash(4).unwrap());
        a.directory.put_app(app.clone());
        assert_eq!(
            verdict(&a, &credentials(CLIENT, &format!("{}\0x", short.expose()))).await,
            Err(Denial::WrongSecret)
        );
        // A stored value that is no bcrypt hash is verified against the dummy: no match, same work.
        app.secret_hash = Some("not a hash".into());
        a.directory.put_app(app);
        assert_eq!(verdict(&a, &credentials(CLIENT, "not a hash")).await, Err(Denial::WrongSecret));
    }

    #[test]
    fn the_dummy_hash_has_the_configured_cost_and_matches_nothing() {
        for cost in [4, 10] {
            let dummy = dummy_hash(cost);
            assert_eq!(dummy.len(), 60);
            assert!(dummy.starts_with(&format!("$2b${cost:02}$")), "{dummy}");
            let parts = dummy.parse::<bcrypt::HashParts>();
            assert!(parts.is_ok_and(|p| p.get_cost() == cost), "{dummy}: a well-formed bcrypt hash");
        }
        assert!(!matches_hash("", &dummy_hash(4)));
        assert!(!matches_hash("anything", &dummy_hash(4)));
    }
}
