//! The use case: give an app a new client secret without ever losing an update.
//!
//! One consistent read of the app and the memberships that could grant the call, the
//! checks in ZITADEL's order, then one conditional transaction that writes the new hash,
//! bumps the sequence from the value read and appends one event. If another writer got
//! there first, the read and the checks run again (at most [`MAX_ATTEMPTS`] in all).
//! The store is a trait so this file knows nothing of DynamoDB.

use std::future::Future;
use std::time::Duration;

use rand::RngExt;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::app::{App, AppKey, AppKind};
use crate::config::SecretSettings;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::{OrgId, ProjectId, UserId};
use crate::secret::{ClientSecret, matches_hash};
use crate::xray;

/// Reads and transaction attempts per request before answering 409.
pub const MAX_ATTEMPTS: u32 = 3;

/// The permission a membership must hold to change an app's secret.
pub const APP_WRITE_PERMISSION: &str = "project.app.write";

/// What allows a request to change the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// A user, through a membership of the app's org or project.
    Member(UserId),
    /// A Secrets Manager secret, by its ARN, which must be the app's `rotationSecretArn`.
    RotationSecret(String),
}

impl Authority {
    /// Who the event item names as the actor.
    pub fn actor(&self) -> &str {
        match self {
            Authority::Member(user) => user.as_str(),
            Authority::RotationSecret(arn) => arn,
        }
    }

    /// The user whose memberships could grant the call.
    fn member(&self) -> Option<&UserId> {
        match self {
            Authority::Member(user) => Some(user),
            Authority::RotationSecret(_) => None,
        }
    }

    /// The event item's `source`.
    pub fn source(&self) -> &'static str {
        match self {
            Authority::Member(_) => "api",
            Authority::RotationSecret(_) => "rotation",
        }
    }
}

/// Which membership item granted a member's call; it is re-checked in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Org,
    Project,
}

/// What one consistent read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The app item, parsed. A stored item that does not parse is an error here, and the
    /// checks report it only after the permission check, so that a caller without
    /// permission learns nothing about it.
    pub app: Option<Result<App, Error>>,
    /// For a member: the membership that holds [`APP_WRITE_PERMISSION`], org first.
    pub grant: Option<Grant>,
}

/// The condition, beside the app's own, that the transaction re-checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard<'a> {
    Membership { user: &'a UserId, grant: Grant },
    RotationSecret { arn: &'a str },
}

/// One attempt's write: everything the transaction needs.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub key: &'a AppKey,
    pub guard: Guard<'a>,
    pub seen_sequence: u64,
    /// The app's type as read: the write requires it unchanged, and names its event by it.
    pub app_type: &'a str,
    /// `seen_sequence + 1`, checked before the commit so it can't overflow.
    pub next_sequence: u64,
    pub secret_hash: &'a str,
    pub change_date: OffsetDateTime,
    /// The hash that stays valid, and until when; `None` ends the old secret now.
    pub previous: Option<(&'a str, OffsetDateTime)>,
    pub actor: &'a str,
    pub source: &'static str,
    pub request_id: &'a str,
    /// Every call of the write, its resolution included, ends before it.
    pub deadline: Deadline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The app moved on since the read (or a transaction conflicted): read again.
    Conflict,
    /// The guard's condition failed: the membership lost the permission.
    GuardFailed,
    /// Unavailable or internal, and nothing was written; or [`Error::OutcomeUnknown`]:
    /// the deadline came before the outcome was known.
    Store(Error),
}

/// Storage, as the use case needs it.
pub trait Store: Send + Sync {
    /// One consistent read of the app and, for a member, the memberships that could grant,
    /// leaving time before `deadline` for a write.
    fn load(
        &self,
        key: &AppKey,
        member: Option<&UserId>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send;
    /// One all-or-nothing write, before the commit's deadline. `Ok` means it was written;
    /// an error means it was not and never will be, but for [`Error::OutcomeUnknown`]: an
    /// adapter that loses track of the outcome resolves it before answering, and says so
    /// when the deadline leaves no time to.
    fn commit(&self, commit: &Commit<'_>) -> impl Future<Output = Result<(), CommitError>> + Send;
    /// The org that owns a project (the project lookup, SPEC section 5), read consistently.
    fn project_org(
        &self,
        project: &ProjectId,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Option<OrgId>, Error>> + Send;
}

#[derive(Debug, Clone)]
pub struct Request {
    pub key: AppKey,
    /// Which app types the door serves.
    pub kind: AppKind,
    pub authority: Authority,
    pub request_id: String,
    pub deadline: Deadline,
}

/// A secret that was written: the plaintext, only for the response.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub secret: ClientSecret,
    pub sequence: u64,
    pub creation_date: OffsetDateTime,
    pub change_date: OffsetDateTime,
    pub resource_owner: OrgId,
}

/// What [`Regenerator::install`] did with a given secret.
#[derive(Debug, Clone)]
pub enum Installed {
    /// Its hash is now the app's current one.
    Written(Outcome),
    /// Its hash already was: nothing written (a retried rotation step).
    AlreadyCurrent,
}

/// A result and how many read-check-write rounds it took, for the log line.
#[derive(Debug)]
pub struct Attempted<T> {
    pub attempts: u32,
    pub result: Result<T, Error>,
}

pub struct Regenerator<S> {
    store: S,
    settings: SecretSettings,
}

impl<S: Store> Regenerator<S> {
    pub fn new(store: S, settings: SecretSettings) -> Self {
        Self { store, settings }
    }

    #[cfg(test)]
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// The org that owns `project`, for a door that names no org.
    pub async fn project_org(&self, project: &ProjectId, deadline: Deadline) -> Result<Option<OrgId>, Error> {
        self.store.project_org(project, deadline).await
    }

    /// The app, if `authority` may give it a new secret now: the checks of a write, with
    /// one consistent read and no write.
    pub async fn writable_app(
        &self,
        key: &AppKey,
        kind: AppKind,
        authority: &Authority,
        deadline: Deadline,
    ) -> Result<App, Error> {
        let snapshot = self.store.load(key, authority.member(), deadline).await?;
        check(kind, authority, &snapshot).map(|(app, _)| app.clone())
    }

    /// Whether `secret` is the app's current secret (never the previous one kept for a
    /// grace period), if `authority` may change the app: one consistent read, no write.
    pub async fn is_current(
        &self,
        key: &AppKey,
        kind: AppKind,
        authority: &Authority,
        secret: &ClientSecret,
        deadline: Deadline,
    ) -> Result<bool, Error> {
        let app = self.writable_app(key, kind, authority, deadline).await?;
        Ok(is_current_hash(&app, secret))
    }

    /// Generates a new secret and writes its hash.
    pub async fn regenerate(&self, request: &Request) -> Attempted<Outcome> {
        let secret = ClientSecret::generate(self.settings.length);
        let Attempted { attempts, result } = self.write(request, &secret, false).await;
        let result = result.and_then(|installed| match installed {
            Installed::Written(outcome) => Ok(outcome),
            Installed::AlreadyCurrent => Err(Error::Internal("a fresh secret was already the app's".into())),
        });
        Attempted { attempts, result }
    }

    /// Writes the hash of `secret` as the app's new secret, unless the app's current hash
    /// is already that secret's, which the same read tells.
    pub async fn install(&self, request: &Request, secret: &ClientSecret) -> Attempted<Installed> {
        self.write(request, secret, true).await
    }

    async fn write(&self, request: &Request, secret: &ClientSecret, unless_current: bool) -> Attempted<Installed> {
        let mut hash = None;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match self.attempt(request, secret, unless_current, &mut hash).await {
                Err(CommitError::Conflict) if attempts < MAX_ATTEMPTS => backoff(attempts).await,
                Err(CommitError::Conflict) => break Err(Error::Conflict),
                Err(CommitError::GuardFailed) => break Err(Error::PermissionDenied),
                Err(CommitError::Store(error)) => break Err(error),
                Ok(installed) => break Ok(installed),
            }
        };
        Attempted { attempts, result }
    }

    async fn attempt(
        &self,
        request: &Request,
        secret: &ClientSecret,
        unless_current: bool,
        hash: &mut Option<String>,
    ) -> Result<Installed, CommitError> {
        let snapshot = self
            .store
            .load(&request.key, request.authority.member(), request.deadline)
            .instrument(tracing::info_span!(xray::READ))
            .await
            .map_err(CommitError::Store)?;
        let (app, guard) = check(request.kind, &request.authority, &snapshot).map_err(CommitError::Store)?;
        if unless_current && is_current_hash(app, secret) {
            return Ok(Installed::AlreadyCurrent);
        }
        // Hash only once the checks pass, and once per request: retries reuse it.
        let hash: &str = match hash {
            Some(hash) => hash,
            None => {
                let _span = tracing::info_span!(xray::HASH).entered();
                hash.insert(secret.hash(self.settings.hash_cost).map_err(CommitError::Store)?)
            }
        };
        let now = OffsetDateTime::now_utc();
        let previous = match (self.settings.grace.is_zero(), app.secret_hash.as_deref()) {
            (false, Some(old)) => Some((old, now + self.settings.grace)),
            _ => None,
        };
        // Everything the answer needs is known before the write, and nothing after it can fail.
        let next_sequence = app
            .sequence
            .checked_add(1)
            .ok_or(CommitError::Store(Error::Internal("the app's sequence is at its maximum and would wrap".into())))?;
        let outcome = Outcome {
            secret: secret.clone(),
            sequence: next_sequence,
            creation_date: app.creation_date,
            change_date: now,
            resource_owner: app.key.org.clone(),
        };
        self.store
            .commit(&Commit {
                key: &request.key,
                guard,
                seen_sequence: app.sequence,
                app_type: &app.app_type,
                next_sequence,
                secret_hash: hash,
                change_date: now,
                previous,
                actor: request.authority.actor(),
                source: request.authority.source(),
                request_id: &request.request_id,
                deadline: request.deadline,
            })
            .instrument(tracing::info_span!(xray::TRANSACTION))
            .await?;
        Ok(Installed::Written(outcome))
    }
}

/// Whether `secret` is behind the app's current hash.
fn is_current_hash(app: &App, secret: &ClientSecret) -> bool {
    app.secret_hash.as_deref().is_some_and(|hash| matches_hash(secret.expose(), hash))
}

/// The checks of SPEC section 2, in its order: permission (before existence, so a caller
/// cannot learn whether another org's app exists, nor anything of its item), existence,
/// type, auth method. An item that does not parse is an error only after the permission.
fn check<'a>(kind: AppKind, authority: &'a Authority, snapshot: &'a Snapshot) -> Result<(&'a App, Guard<'a>), Error> {
    let guard = match authority {
        Authority::Member(user) => match snapshot.grant {
            Some(grant) => Guard::Membership { user, grant },
            None => return Err(Error::PermissionDenied),
        },
        Authority::RotationSecret(arn) => Guard::RotationSecret { arn },
    };
    let app = match &snapshot.app {
        Some(Ok(app)) if !app.is_removed() => app,
        Some(Err(unreadable)) => return Err(unreadable.clone()),
        _ => return Err(Error::AppNotFound),
    };
    if let Guard::RotationSecret { arn } = guard
        && app.rotation_secret_arn.as_deref() != Some(arn)
    {
        return Err(Error::PermissionDenied);
    }
    if !kind.admits(app) {
        return Err(match kind {
            AppKind::Oidc => Error::NotOidc,
            AppKind::Api => Error::NotApi,
            AppKind::WithSecret => Error::AppNotFound,
        });
    }
    if !app.uses_secret() {
        return Err(Error::NoSecretRequired);
    }
    Ok((app, guard))
}

/// Waits a little, with jitter, so writers that collided do not collide again.
async fn backoff(attempt: u32) {
    let millis = rand::rng().random_range(5..=25) * u64::from(attempt);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::verify_client_secret;
    use crate::store::memory::{MemoryStore, key, oidc_app};

    const ARN: &str = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:app-1-AbCdEf";

    fn user(name: &str) -> UserId {
        UserId::parse(name, "user").unwrap()
    }

    fn app_key() -> AppKey {
        key("org-a", "proj-1", "app-1")
    }

    /// The standard app, and user-1 holding the write permission in org-a.
    fn fixture(settings: SecretSettings) -> Regenerator<MemoryStore> {
        let store = MemoryStore::default();
        store.put_app(oidc_app(app_key()));
        store.grant(&app_key().org, &user("user-1"), None, &[APP_WRITE_PERMISSION]);
        Regenerator::new(store, settings)
    }

    fn request(authority: Authority) -> Request {
        Request {
            key: app_key(),
            kind: AppKind::Oidc,
            authority,
            request_id: "req-1".into(),
            deadline: Deadline::for_request(),
        }
    }

    fn member(name: &str) -> Request {
        request(Authority::Member(user(name)))
    }

    async fn refused(r: &Regenerator<MemoryStore>, request: &Request) -> Error {
        let Attempted { result, .. } = r.regenerate(request).await;
        result.expect_err("refused")
    }

    #[tokio::test]
    async fn a_member_gets_a_new_secret_whose_hash_is_stored_with_one_event() {
        let r = fixture(SecretSettings::default());
        let Attempted { attempts, result } = r.regenerate(&member("user-1")).await;
        let outcome = result.unwrap();
        assert_eq!((attempts, outcome.sequence, outcome.secret.expose().len()), (1, 1, 64));
        assert_eq!(outcome.resource_owner.as_str(), "org-a");
        assert_eq!(outcome.creation_date, oidc_app(app_key()).creation_date);
        let stored = r.store.app(&app_key()).unwrap();
        assert_eq!(stored.sequence, 1);
        assert!(verify_client_secret(&stored, outcome.secret.expose(), OffsetDateTime::now_utc()));
        assert!(stored.secret_hash.as_deref().unwrap().starts_with("$2b$04$"));
        let events = r.store.events();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].sequence, events[0].actor.as_str(), events[0].source), (1, "user-1", "api"));
        assert_eq!(events[0].request_id, "req-1");
    }

    #[tokio::test]
    async fn permission_comes_before_existence_and_before_the_item_is_read() {
        let r = fixture(SecretSettings::default());
        let other = key("org-a", "proj-1", "other");
        r.store.put_unreadable_app(other.clone(), Error::Internal("app item sequence is not a number".into()));
        for app in ["app-1", "missing", "other"] {
            let request = Request { key: key("org-a", "proj-1", app), ..member("stranger") };
            assert_eq!(refused(&r, &request).await, Error::PermissionDenied, "{app}");
        }
        let request = Request { key: other, ..member("user-1") };
        assert_eq!(refused(&r, &request).await, Error::Internal("app item sequence is not a number".into()));
        let request = Request { key: key("org-a", "proj-1", "missing"), ..member("user-1") };
        assert_eq!(refused(&r, &request).await, Error::AppNotFound);
        assert_eq!(r.store.calls().1, 0, "no refusal reached the write");
    }

    #[tokio::test]
    async fn then_existence_type_and_auth_method_in_that_order() {
        let r = fixture(SecretSettings::default());
        let mut app = oidc_app(app_key());
        app.state = "REMOVED".into();
        app.app_type = "API".into();
        r.store.put_app(app.clone());
        assert_eq!(refused(&r, &member("user-1")).await, Error::AppNotFound);
        app.state = "INACTIVE".into();
        app.auth_method = "NONE".into();
        r.store.put_app(app.clone());
        assert_eq!(refused(&r, &member("user-1")).await, Error::NotOidc);
        app.app_type = "OIDC".into();
        r.store.put_app(app.clone());
        assert_eq!(refused(&r, &member("user-1")).await, Error::NoSecretRequired);
        app.auth_method = "PRIVATE_KEY_JWT".into();
        r.store.put_app(app.clone());
        assert_eq!(refused(&r, &member("user-1")).await, Error::NoSecretRequired);
        app.auth_method = "POST".into();
        r.store.put_app(app);
        assert!(r.regenerate(&member("user-1")).await.result.is_ok(), "INACTIVE apps still get a secret");
    }

    #[tokio::test]
    async fn a_project_membership_grants_its_project_only_and_home_org_grants_nothing() {
        let r = fixture(SecretSettings::default());
        let proj = ProjectId::parse("proj-1").unwrap();
        r.store.grant(&app_key().org, &user("dev"), Some(&proj), &[APP_WRITE_PERMISSION]);
        r.store.grant(&app_key().org, &user("reader"), None, &["project.app.read"]);
        r.store.grant(&OrgId::parse("org-b", "org").unwrap(), &user("outsider"), None, &[APP_WRITE_PERMISSION]);
        assert!(r.regenerate(&member("dev")).await.result.is_ok());
        let elsewhere = Request { key: key("org-a", "proj-2", "app-1"), ..member("dev") };
        assert_eq!(refused(&r, &elsewhere).await, Error::PermissionDenied);
        assert_eq!(refused(&r, &member("reader")).await, Error::PermissionDenied);
        assert_eq!(refused(&r, &member("outsider")).await, Error::PermissionDenied);
    }

    #[tokio::test]
    async fn a_lost_race_is_read_again_and_wins_on_the_next_attempt() {
        let r = fixture(SecretSettings::default());
        r.store.after_next_load(|apps| {
            if let Some(Ok(app)) = apps.get_mut(&app_key()) {
                app.sequence = 5;
            }
        });
        let Attempted { attempts, result } = r.regenerate(&member("user-1")).await;
        assert_eq!((attempts, result.unwrap().sequence), (2, 6));
        assert_eq!(r.store.calls(), (2, 2));
    }

    #[tokio::test]
    async fn three_lost_races_are_a_conflict_and_a_store_failure_is_not_retried() {
        let r = fixture(SecretSettings::default());
        for _ in 0..MAX_ATTEMPTS {
            r.store.fail_next_commit(CommitError::Conflict);
        }
        let Attempted { attempts, result } = r.regenerate(&member("user-1")).await;
        assert_eq!((attempts, result.unwrap_err()), (MAX_ATTEMPTS, Error::Conflict));
        r.store.fail_next_commit(CommitError::Store(Error::Unavailable("throttled".into())));
        let Attempted { attempts, result } = r.regenerate(&member("user-1")).await;
        assert_eq!((attempts, result.unwrap_err()), (1, Error::Unavailable("throttled".into())));
        assert_eq!(r.store.app(&app_key()).unwrap().sequence, 0, "nothing was written");
        assert!(r.store.events().is_empty());
    }

    #[tokio::test]
    async fn the_membership_is_rechecked_by_the_write() {
        let r = fixture(SecretSettings::default());
        r.store.fail_next_commit(CommitError::GuardFailed);
        let Attempted { attempts, result } = r.regenerate(&member("user-1")).await;
        assert_eq!((attempts, result.unwrap_err()), (1, Error::PermissionDenied));
    }

    #[tokio::test]
    async fn with_a_grace_period_the_previous_hash_is_kept_until_its_expiry() {
        let grace = Duration::from_secs(300);
        let r = fixture(SecretSettings { grace, ..SecretSettings::default() });
        let first = r.regenerate(&member("user-1")).await.result.unwrap();
        let second = r.regenerate(&member("user-1")).await.result.unwrap();
        let stored = r.store.app(&app_key()).unwrap();
        let expires = stored.previous_secret_expires_at.unwrap();
        assert_eq!(expires, second.change_date + grace);
        assert!(verify_client_secret(&stored, first.secret.expose(), second.change_date));
        assert!(!verify_client_secret(&stored, first.secret.expose(), expires));
        let without = fixture(SecretSettings::default());
        without.regenerate(&member("user-1")).await.result.unwrap();
        without.regenerate(&member("user-1")).await.result.unwrap();
        assert_eq!(without.store.app(&app_key()).unwrap().previous_secret_hash, None);
    }

    #[tokio::test]
    async fn the_sequence_counts_up_to_the_last_u64_and_never_wraps() {
        let r = fixture(SecretSettings::default());
        let mut app = oidc_app(app_key());
        app.sequence = u64::MAX - 1;
        r.store.put_app(app);
        assert_eq!(r.regenerate(&member("user-1")).await.result.unwrap().sequence, u64::MAX);
        let commits = r.store.calls().1;
        assert!(matches!(refused(&r, &member("user-1")).await, Error::Internal(_)));
        assert_eq!(r.store.calls().1, commits, "no write was tried");
        assert_eq!(r.store.app(&app_key()).unwrap().sequence, u64::MAX);
        assert_eq!(r.store.events().len(), 1);
    }

    #[tokio::test]
    async fn install_writes_a_given_secret_once_and_is_current_ignores_the_previous_hash() {
        let r = fixture(SecretSettings { grace: Duration::from_secs(300), ..SecretSettings::default() });
        let mut app = oidc_app(app_key());
        app.rotation_secret_arn = Some(ARN.into());
        r.store.put_app(app);
        let rotation = request(Authority::RotationSecret(ARN.into()));
        let secret = ClientSecret::generate(64);
        assert!(matches!(r.install(&rotation, &secret).await.result.unwrap(), Installed::Written(_)));
        assert!(matches!(r.install(&rotation, &secret).await.result.unwrap(), Installed::AlreadyCurrent));
        assert_eq!(r.store.events().len(), 1);
        assert_eq!((r.store.events()[0].actor.as_str(), r.store.events()[0].source), (ARN, "rotation"));
        assert!(
            r.is_current(&app_key(), AppKind::WithSecret, &rotation.authority, &secret, Deadline::for_request())
                .await
                .unwrap()
        );
        r.regenerate(&member("user-1")).await.result.unwrap();
        assert!(
            !r.is_current(&app_key(), AppKind::WithSecret, &rotation.authority, &secret, Deadline::for_request())
                .await
                .unwrap(),
            "previous is not current"
        );
        let intruder = Authority::RotationSecret(format!("{ARN}-other"));
        assert_eq!(
            r.is_current(&app_key(), AppKind::WithSecret, &intruder, &secret, Deadline::for_request())
                .await
                .unwrap_err(),
            Error::PermissionDenied
        );
    }
}
