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

use crate::app::{App, AppKey};
use crate::config::SecretSettings;
use crate::error::Error;
use crate::ids::{OrgId, UserId};
use crate::secret::ClientSecret;

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
    pub app: Option<App>,
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
    pub secret_hash: &'a str,
    pub change_date: OffsetDateTime,
    /// The hash that stays valid, and until when; `None` ends the old secret now.
    pub previous: Option<(&'a str, OffsetDateTime)>,
    pub actor: &'a str,
    pub source: &'static str,
    pub request_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The app moved on since the read (or a transaction conflicted): read again.
    Conflict,
    /// The guard's condition failed: the membership lost the permission.
    GuardFailed,
    /// Unavailable or internal.
    Store(Error),
}

/// Storage, as the use case needs it.
pub trait Store: Send + Sync {
    /// One consistent read of the app and, for a member, the memberships that could grant.
    fn load(&self, key: &AppKey, member: Option<&UserId>) -> impl Future<Output = Result<Snapshot, Error>> + Send;
    /// One all-or-nothing write.
    fn commit(&self, commit: &Commit<'_>) -> impl Future<Output = Result<(), CommitError>> + Send;
}

#[derive(Debug, Clone)]
pub struct Request {
    pub key: AppKey,
    pub authority: Authority,
    pub request_id: String,
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

/// A result and how many read-check-write rounds it took, for the log line.
#[derive(Debug)]
pub struct Attempted<T> {
    pub attempts: u32,
    pub result: Result<T, Error>,
}

pub struct Rotator<S> {
    store: S,
    settings: SecretSettings,
}

impl<S: Store> Rotator<S> {
    pub fn new(store: S, settings: SecretSettings) -> Self {
        Self { store, settings }
    }

    /// The app, if `authority` may give it a new secret now: the checks of a write, with
    /// one consistent read and no write.
    pub async fn writable_app(&self, key: &AppKey, authority: &Authority) -> Result<App, Error> {
        let snapshot = self.store.load(key, authority.member()).await?;
        check(authority, &snapshot).map(|(app, _)| app.clone())
    }

    /// Generates a new secret and writes its hash.
    pub async fn regenerate(&self, request: &Request) -> Attempted<Outcome> {
        self.write(request, ClientSecret::generate(self.settings.length)).await
    }

    /// Writes the hash of `secret` as the app's new secret.
    pub async fn write(&self, request: &Request, secret: ClientSecret) -> Attempted<Outcome> {
        let mut hash = None;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match self.attempt(request, &secret, &mut hash).await {
                Err(CommitError::Conflict) if attempts < MAX_ATTEMPTS => backoff(attempts).await,
                Err(CommitError::Conflict) => break Err(Error::Conflict),
                Err(CommitError::GuardFailed) => break Err(Error::PermissionDenied),
                Err(CommitError::Store(error)) => break Err(error),
                Ok(outcome) => break Ok(outcome),
            }
        };
        Attempted { attempts, result }
    }

    async fn attempt(
        &self,
        request: &Request,
        secret: &ClientSecret,
        hash: &mut Option<String>,
    ) -> Result<Outcome, CommitError> {
        let snapshot = self.store.load(&request.key, request.authority.member()).await.map_err(CommitError::Store)?;
        let (app, guard) = check(&request.authority, &snapshot).map_err(CommitError::Store)?;
        // Hash only once the checks pass, and once per request: retries reuse it.
        let hash: &str = match hash {
            Some(hash) => hash,
            None => hash.insert(secret.hash(self.settings.hash_cost).map_err(CommitError::Store)?),
        };
        let now = OffsetDateTime::now_utc();
        let previous = match (self.settings.grace.is_zero(), app.secret_hash.as_deref()) {
            (false, Some(old)) => Some((old, now + self.settings.grace)),
            _ => None,
        };
        let sequence = app.sequence + 1;
        self.store
            .commit(&Commit {
                key: &request.key,
                guard,
                seen_sequence: app.sequence,
                secret_hash: hash,
                change_date: now,
                previous,
                actor: request.authority.actor(),
                source: request.authority.source(),
                request_id: &request.request_id,
            })
            .await?;
        Ok(Outcome {
            secret: secret.clone(),
            sequence,
            creation_date: app.creation_date,
            change_date: now,
            resource_owner: app.key.org.clone(),
        })
    }
}

/// The checks of SPEC section 2, in its order: permission (before existence, so a caller
/// cannot learn whether another org's app exists), existence, type, auth method.
fn check<'a>(authority: &'a Authority, snapshot: &'a Snapshot) -> Result<(&'a App, Guard<'a>), Error> {
    let guard = match authority {
        Authority::Member(user) => match snapshot.grant {
            Some(grant) => Guard::Membership { user, grant },
            None => return Err(Error::PermissionDenied),
        },
        Authority::RotationSecret(arn) => Guard::RotationSecret { arn },
    };
    let app = match &snapshot.app {
        Some(app) if !app.is_removed() => app,
        _ => return Err(Error::AppNotFound),
    };
    if let Guard::RotationSecret { arn } = guard
        && app.rotation_secret_arn.as_deref() != Some(arn)
    {
        return Err(Error::PermissionDenied);
    }
    if !app.is_oidc() {
        return Err(Error::NotOidc);
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
