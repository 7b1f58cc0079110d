//! Every expression and condition of the single DynamoDB table, in one file; the key
//! formats are in [`super::keys`].

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update};
use rand::RngExt;
use time::OffsetDateTime;

use super::keys::{
    ORG_MEMBER_PREFIX, PROJECT_MEMBER_PREFIX, app_sk, client_lookup_key, event_sk, org_member_sk, org_pk,
    project_lookup_key, project_member_sk,
};
use crate::app::{self, App, AppKey, format_timestamp, parse_timestamp};
use crate::authenticate::Directory;
use crate::deadline::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, Deadline, OPERATION_TIMEOUT, RESOLVE_CALL_TIMEOUT, RESOLVE_RESERVE,
};
use crate::error::Error;
use crate::ids::{AppId, ClientId, OrgId, ProjectId, UserId};
use crate::regenerate::{APP_WRITE_PERMISSION, Commit, CommitError, Grant, Guard, Snapshot, Store};

/// The event type ZITADEL records for this change, by app type.
pub const EVENT_TYPE: &str = "project.application.config.oidc.secret.changed";
pub const API_EVENT_TYPE: &str = "project.application.config.api.secret.changed";

/// The event of a secret change of an app of `app_type` (OIDC or API).
pub fn event_type(app_type: &str) -> &'static str {
    if app_type == app::TYPE_API { API_EVENT_TYPE } else { EVENT_TYPE }
}
/// The event of `admin revoke-previous` (SPEC section 11).
pub const PREVIOUS_REVOKED_EVENT_TYPE: &str = "project.application.config.secret.previous.revoked";

/// How often a BatchGetItem's unprocessed keys are asked for again before giving up.
const MAX_UNPROCESSED_ROUNDS: u32 = 3;

/// A client configured from the environment (see [`crate::aws::sdk_config`]).
pub async fn client_from_env() -> Client {
    Client::new(&crate::aws::sdk_config().await)
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) type Key = HashMap<String, AttributeValue>;

pub(super) fn key(pk: String, sk: String) -> Key {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn app_key(k: &AppKey) -> Key {
    key(org_pk(&k.org), app_sk(&k.project, &k.app))
}

fn membership_key(k: &AppKey, user: &UserId, grant: Grant) -> Key {
    let sk = match grant {
        Grant::Org => org_member_sk(user),
        Grant::Project => project_member_sk(&k.project, user),
    };
    key(org_pk(&k.org), sk)
}

/// What a failed call tells of the write it carried (SPEC section 6a). The detail of each
/// is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// Not done, and a later attempt may be: throttled, or refused before anything was sent.
    Retry(String),
    /// Not done, and trying again will not change that (a 4xx DynamoDB answered).
    Refused(Error),
    /// It may have been done: sent without a definite answer (a timeout, a connection lost
    /// after sending, an unreadable answer, DynamoDB's own 500 or 503, a transaction still
    /// in progress).
    Unknown(String),
}

impl Failure {
    /// As a read's error, where there is no outcome to know: unavailable, or internal.
    pub(super) fn into_error(self) -> Error {
        match self {
            Failure::Retry(detail) | Failure::Unknown(detail) => Error::Unavailable(detail),
            Failure::Refused(error) => error,
        }
    }

    /// As a write's error: an unknown outcome stays one.
    pub(super) fn into_write_error(self) -> Error {
        match self {
            Failure::Unknown(detail) => Error::OutcomeUnknown(detail),
            failure => failure.into_error(),
        }
    }
}

/// Classifies an SDK failure; a service error's own code is the caller's to read first
/// where it means something (a cancellation, a failed condition).
pub(super) fn classify<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ConstructionFailure(_) => Failure::Refused(Error::Internal(detail)),
        SdkError::DispatchFailure(_) if refused_to_connect(&err) => Failure::Retry(detail),
        SdkError::ServiceError(e) => {
            let code = e.err().code();
            if matches!(
                code,
                Some(
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "TransactionConflictException"
                )
            ) {
                Failure::Retry(detail)
            } else if e.raw().status().is_server_error()
                || matches!(code, Some("InternalServerError" | "ServiceUnavailable" | "TransactionInProgressException"))
            {
                Failure::Unknown(detail)
            } else {
                Failure::Refused(Error::Internal(detail))
            }
        }
        _ => Failure::Unknown(detail),
    }
}

/// Whether the connection was refused, so that the request was never sent.
fn refused_to_connect(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(error) = source {
        if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        source = error.source();
    }
    false
}

/// Maps a read's SDK failure: throttling, timeouts, unreachable and 5xx are 503; the rest 500.
pub(super) fn sdk_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(operation, err).into_error()
}

/// Attempts of one write (a transaction, a fence, an admin write) before giving up on it.
const MAX_ROUNDS: u32 = 4;

/// The definite answer to a write: done (`Ok`), or a service error the caller reads (a
/// failed condition, a cancellation); and whether an earlier attempt's fate was unknown,
/// so that a refusal may only be the answer to a resend of a write already done or pending.
pub(super) struct Answer<O, E> {
    pub result: Result<O, SdkError<E, HttpResponse>>,
    pub after_unknown: bool,
}

/// Sends a write whose repeats are harmless (the same transaction token, an `ADD`, a `SET`
/// of the same values) until its answer is definite, at most [`MAX_ROUNDS`] times, each
/// bounded by `limit` and what the deadline leaves beyond `reserve`. Each round is one call
/// without the SDK's own retries, so that no attempt's fate is hidden behind a later
/// answer: once any attempt may have been done, the write stays unknown whatever the next
/// ones answer (a throttle, a 500), until one is definite. `Err` is
/// [`Failure::Unknown`] in that case, else why nothing was done.
pub(super) async fn until_definite<O, E, F, Fut>(
    deadline: Deadline,
    limit: Duration,
    reserve: Duration,
    operation: &str,
    mut send: F,
) -> Result<Answer<O, E>, Failure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut(aws_sdk_dynamodb::config::Builder) -> Fut,
    Fut: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
{
    let mut unknown: Option<String> = None;
    let mut last = format!("{operation}: no time left to send it");
    for round in 0..MAX_ROUNDS {
        let Some(budget) = pause_then_budget(deadline, round, limit, reserve).await else { break };
        let after_unknown = unknown.is_some();
        let err = match send(one_attempt(budget)).await {
            Ok(output) => return Ok(Answer { result: Ok(output), after_unknown }),
            Err(err) => err,
        };
        let definite = matches!(&err, SdkError::ServiceError(e)
            if !e.raw().status().is_server_error()
                && matches!(e.err().code(), Some("ConditionalCheckFailedException" | "TransactionCanceledException")));
        if definite {
            return Ok(Answer { result: Err(err), after_unknown });
        }
        match classify(operation, err) {
            Failure::Unknown(detail) => {
                tracing::warn!(detail = %detail, "{operation}: outcome unknown; sending it again");
                unknown.get_or_insert(detail.clone());
                last = detail;
            }
            Failure::Retry(detail) => last = detail,
            refused @ Failure::Refused(_) if unknown.is_none() => return Err(refused),
            Failure::Refused(error) => last = error.log_detail().unwrap_or_default().to_owned(),
        }
    }
    Err(match unknown {
        Some(first) => Failure::Unknown(format!("{first}; then: {last}")),
        None => Failure::Retry(last),
    })
}

/// A pause with jitter before another attempt, then the attempt's budget: at most `limit`,
/// keeping `reserve`, and at least a quarter of `limit` (less would only end unknown too).
/// `None`, without pausing, when that does not fit before the deadline.
async fn pause_then_budget(deadline: Deadline, round: u32, limit: Duration, reserve: Duration) -> Option<Duration> {
    let pause = Duration::from_millis(rand::rng().random_range(20..=60) * u64::from(round.min(5)));
    deadline.budget(limit, reserve + pause).filter(|b| *b >= limit / 4)?;
    // No timer for the first send: even a zero sleep waits for the timer's next tick.
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    deadline.budget(limit, reserve).filter(|b| *b >= limit / 4)
}

fn text_attr(item: &Key, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn required(item: &Key, name: &str) -> Result<String, Error> {
    text_attr(item, name).ok_or_else(|| Error::Internal(format!("app item without string attribute {name}")))
}

fn timestamp_attr(item: &Key, name: &str) -> Result<Option<OffsetDateTime>, Error> {
    match text_attr(item, name) {
        None => Ok(None),
        Some(text) => parse_timestamp(&text)
            .map(Some)
            .ok_or_else(|| Error::Internal(format!("app item attribute {name} is not RFC 3339"))),
    }
}

/// Reads an app item; a missing `sequence` counts as 0.
fn app_from_item(key: &AppKey, item: &Key) -> Result<App, Error> {
    let sequence = match item.get("sequence") {
        None => 0,
        Some(AttributeValue::N(v)) => {
            v.parse().map_err(|_| Error::Internal("app item sequence is not a uint64".into()))?
        }
        Some(_) => return Err(Error::Internal("app item sequence is not a number".into())),
    };
    Ok(App {
        key: key.clone(),
        app_type: required(item, "appType")?,
        state: required(item, "state")?,
        auth_method: required(item, "authMethod")?,
        client_id: required(item, "clientId")?,
        secret_hash: text_attr(item, "secretHash"),
        sequence,
        creation_date: timestamp_attr(item, "creationDate")?
            .ok_or_else(|| Error::Internal("app item without creationDate".into()))?,
        previous_secret_hash: text_attr(item, "previousSecretHash"),
        previous_secret_expires_at: timestamp_attr(item, "previousSecretExpiresAt")?,
        rotation_secret_arn: text_attr(item, "rotationSecretArn"),
        grant_types: set_attr(item, "grantTypes")?,
        scopes: set_attr(item, "scopes")?,
        audiences: set_attr(item, "audiences")?,
    })
}

/// A string set attribute, sorted (DynamoDB keeps no order); absent is empty.
fn set_attr(item: &Key, name: &str) -> Result<Vec<String>, Error> {
    match item.get(name) {
        None => Ok(Vec::new()),
        Some(AttributeValue::Ss(values)) => {
            let mut values = values.clone();
            values.sort();
            Ok(values)
        }
        Some(_) => Err(Error::Internal(format!("app item attribute {name} is not a string set"))),
    }
}

fn grants_write(item: &Key) -> bool {
    matches!(item.get("permissions"), Some(AttributeValue::Ss(p)) if p.iter().any(|p| p == APP_WRITE_PERMISSION))
}

pub(super) fn build_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("building a DynamoDB request: {e}"))
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Events get an `expiresAt` this long after their change, for the table's TTL.
    event_retention: Option<Duration>,
}

/// The event attribute the table's TTL reads (`template.yaml`, `TimeToLiveSpecification`).
pub const EVENT_TTL_ATTRIBUTE: &str = "expiresAt";

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), event_retention: None }
    }

    /// Events expire `retention` after their change (`EVENT_RETENTION_DAYS`); `None` keeps them.
    pub fn with_event_retention(self, retention: Option<Duration>) -> Self {
        Self { event_retention: retention, ..self }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One consistent BatchGetItem of the given keys, asking again for unprocessed ones,
    /// leaving `reserve` of the deadline for what comes after it.
    async fn batch_get(&self, keys: Vec<Key>, deadline: Deadline, reserve: Duration) -> Result<Vec<Key>, Error> {
        let mut pending =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(build_error)?;
        let mut items = Vec::new();
        for _ in 0..MAX_UNPROCESSED_ROUNDS {
            let budget = deadline
                .budget(OPERATION_TIMEOUT, reserve)
                .ok_or_else(|| Error::Unavailable("BatchGetItem: no time left before the deadline".into()))?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .customize()
                .config_override(bounded(budget))
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))?;
            if let Some(mut responses) = output.responses {
                items.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => pending = rest,
                _ => return Ok(items),
            }
            let pause = rand::rng().random_range(20..=80);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(Error::Unavailable("BatchGetItem: keys still unprocessed after retries".into()))
    }
}

fn sk_of(item: &Key) -> Option<&str> {
    match item.get("sk") {
        Some(AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

impl Store for DynamoStore {
    async fn load(&self, k: &AppKey, member: Option<&UserId>, deadline: Deadline) -> Result<Snapshot, Error> {
        let mut keys = vec![app_key(k)];
        if let Some(user) = member {
            keys.push(membership_key(k, user, Grant::Org));
            keys.push(membership_key(k, user, Grant::Project));
        }
        // What a transaction attempt and the resolution of its outcome need stays free.
        let items = self.batch_get(keys, deadline, ATTEMPT_TIMEOUT + RESOLVE_RESERVE).await?;
        let wanted_app_sk = app_sk(&k.project, &k.app);
        let mut snapshot = Snapshot { app: None, grant: None };
        let (mut org_grants, mut project_grants) = (false, false);
        for item in &items {
            let sk = sk_of(item).unwrap_or_default();
            if sk == wanted_app_sk {
                // Parsed here, judged by the use case only after the permission check.
                snapshot.app = Some(app_from_item(k, item));
            } else if sk.starts_with(ORG_MEMBER_PREFIX) {
                org_grants = grants_write(item);
            } else if sk.starts_with(PROJECT_MEMBER_PREFIX) {
                project_grants = grants_write(item);
            }
        }
        snapshot.grant = if org_grants {
            Some(Grant::Org)
        } else if project_grants {
            Some(Grant::Project)
        } else {
            None
        };
        Ok(snapshot)
    }

    async fn project_org(&self, project: &ProjectId, deadline: Deadline) -> Result<Option<OrgId>, Error> {
        let (pk, sk) = project_lookup_key(project);
        // What the read of the app, the write and its resolution need stays free.
        let reserve = ATTEMPT_TIMEOUT * 2 + RESOLVE_RESERVE;
        let Some(item) = self.consistent_get_keeping(key(pk, sk), deadline, reserve).await? else { return Ok(None) };
        let org = text_attr(&item, "orgId").unwrap_or_default();
        match OrgId::parse(&org, "orgId") {
            Ok(org) => Ok(Some(org)),
            // Judged before any permission: an unreadable lookup names no org, as for a
            // project no org owns, so that no stranger learns the project exists.
            Err(_) => {
                tracing::warn!(project = %project, "a project lookup item does not parse: it names no org");
                Ok(None)
            }
        }
    }

    /// One transaction, and its outcome for certain (SPEC section 6a). Every send carries
    /// the same `ClientRequestToken`, so DynamoDB applies it at most once and answers
    /// success to a resend of one it applied. Once any send may have reached DynamoDB
    /// without a definite answer, the transaction is unknown until a resend succeeds or
    /// `DynamoStore::resolve` settles it: an error is only ever answered once nothing
    /// was written and nothing can be.
    async fn commit(&self, c: &Commit<'_>) -> Result<(), CommitError> {
        let token = request_token();
        let items = self.transaction(c, &token).map_err(CommitError::Store)?;
        let membership_checked = matches!(c.guard, Guard::Membership { .. });
        let sent = self.transact_until_definite(&items, &token, c.deadline, RESOLVE_RESERVE).await;
        let why = match sent {
            Ok(Answer { result: Ok(_), .. }) => return Ok(()),
            Ok(Answer { result: Err(err), after_unknown }) => {
                let codes = cancellation_codes(&err);
                if !after_unknown {
                    return Err(match codes {
                        Some(codes) => cancellation(&codes, membership_checked),
                        None => CommitError::Store(sdk_error("TransactWriteItems", err)),
                    });
                }
                // A resend refused while an earlier send may still be pending (one that
                // conflicts with it, say): that earlier send is still to be settled.
                format!("a resend was cancelled ({codes:?}) after an unknown outcome")
            }
            Err(Failure::Unknown(detail)) => detail,
            Err(failure) => return Err(CommitError::Store(failure.into_error())),
        };
        self.resolve(c, &token, why).await
    }
}

impl DynamoStore {
    /// One transaction under one `ClientRequestToken`, sent until its answer is definite
    /// ([`until_definite`]): every write of this crate that spans items goes through here.
    pub(super) async fn transact_until_definite(
        &self,
        items: &[TransactWriteItem],
        token: &str,
        deadline: Deadline,
        reserve: Duration,
    ) -> Result<Answer<TransactWriteItemsOutput, TransactWriteItemsError>, Failure> {
        until_definite(deadline, ATTEMPT_TIMEOUT, reserve, "TransactWriteItems", |attempt| {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.to_vec()))
                .client_request_token(token)
                .customize()
                .config_override(attempt)
                .send()
        })
        .await
    }
}

/// The per-item reasons of a cancelled transaction.
fn cancellation_codes(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            Some(cancel.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

/// The app attribute that fences transactions out: the tokens of those that must never
/// apply. Every transaction requires its own token absent from it, and clears it when it
/// applies (a transaction that had not applied by then never can: it requires the
/// sequence it read, and the sequence only grows).
const FENCE_ATTRIBUTE: &str = "fencedTokens";

/// The most tokens the fenced set holds (32 characters each: about 3 KB of the item) when
/// no write succeeds to clear it, as in a long partial outage.
const MAX_FENCED: u64 = 100;

impl DynamoStore {
    /// Settles a transaction whose outcome is unknown: first a fence, a conditional write
    /// DynamoDB confirms, that makes the transaction's own condition false if it has not
    /// applied yet (a send held in the network and delivered late included); then, if the
    /// app has moved on, a consistent read of the event at the sequence the transaction
    /// would have written, which names the request that wrote it. All inside the deadline:
    /// what is still unknown there is [`Error::OutcomeUnknown`], the 504 that says "it may
    /// have happened".
    async fn resolve(&self, c: &Commit<'_>, token: &str, why: String) -> Result<(), CommitError> {
        tracing::warn!(detail = %why, "transaction outcome unknown; fencing it");
        let unknown = |detail: String| CommitError::Store(Error::OutcomeUnknown(format!("{why}; {detail}")));
        let fenced =
            until_definite(c.deadline, RESOLVE_CALL_TIMEOUT, Duration::ZERO, "UpdateItem (fence)", |attempt| {
                self.fence(c, token).customize().config_override(attempt).send()
            })
            .await;
        match fenced {
            // The app was still at the sequence the transaction read, and now holds its
            // token: the transaction had not applied, and never will.
            Ok(Answer { result: Ok(_), .. }) => {
                return Err(CommitError::Store(Error::Unavailable(format!(
                    "{why}; fenced before it applied: nothing was written and nothing can be"
                ))));
            }
            // The app is past that sequence: this transaction applied, or another one did
            // and this one never will; the event tells which. (Or the set is full: then
            // the app did not move, no event comes, and the deadline answers 504.)
            Ok(Answer { result: Err(err), .. })
                if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {}
            Ok(Answer { result: Err(err), .. }) => {
                return Err(unknown(format!("the fence failed: {}", DisplayErrorContext(&err))));
            }
            Err(failure) => {
                return Err(unknown(format!(
                    "the fence failed: {}",
                    failure.into_error().log_detail().unwrap_or_default()
                )));
            }
        }
        let mut last = String::from("no time left to read the event");
        let mut round = 0;
        loop {
            round += 1;
            let Some(budget) = pause_then_budget(c.deadline, round, RESOLVE_CALL_TIMEOUT, Duration::ZERO).await else {
                break;
            };
            match self.event_request_id(c.key, c.next_sequence, budget).await {
                Ok(Some(writer)) if writer == c.request_id => return Ok(()),
                // Another request's write took the sequence: this one can never apply.
                Ok(Some(_)) => return Err(CommitError::Conflict),
                // No event there yet: DynamoDB is serializable, not linearizable, so a read
                // sent after the fence may still be ordered before the write the fence saw.
                // Nothing is concluded from an absence; only the deadline ends the wait.
                Ok(None) => last = format!("no event at sequence {} yet", c.next_sequence),
                Err(error) => last = error.log_detail().unwrap_or_default().to_owned(),
            }
        }
        Err(unknown(format!("the fence found the app moved on; then: {last}")))
    }

    /// The fence: the transaction's token into the app's fenced set, only while the app is
    /// at the sequence the transaction read.
    fn fence(&self, c: &Commit<'_>, token: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(app_key(c.key)))
            .update_expression("ADD #fence :token")
            // The set stays small whatever happens: past MAX_FENCED tokens the fence fails,
            // and the outcome is read back from the event or ends as a 504.
            .condition_expression(format!(
                "attribute_exists(pk) AND {} AND (attribute_not_exists(#fence) OR size(#fence) < :most)",
                sequence_matches(c.seen_sequence)
            ))
            .expression_attribute_values(":most", n(MAX_FENCED))
            .expression_attribute_names("#fence", FENCE_ATTRIBUTE)
            .expression_attribute_names("#seq", "sequence")
            .expression_attribute_values(":token", AttributeValue::Ss(vec![token.to_owned()]))
            .expression_attribute_values(":seen", n(c.seen_sequence))
    }

    /// The `requestId` of the event at `sequence` of an app, read consistently.
    async fn event_request_id(&self, app: &AppKey, sequence: u64, limit: Duration) -> Result<Option<String>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(&app.org), event_sk(app, sequence))))
            .consistent_read(true)
            .projection_expression("requestId")
            .customize()
            .config_override(bounded(limit))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(output.item.as_ref().and_then(|item| text_attr(item, "requestId")))
    }
}

/// A key outside every format of [`super::keys`]: the read that a lookup with nothing to
/// look up costs (an authentication with a malformed header, an unknown client id). Random
/// for each read, so that many such reads never meet on one item (one hot item would
/// throttle, and tell unknown ids from known ones by it).
fn nothing() -> Key {
    key(format!("NOTHING#{:032x}", rand::random::<u128>()), "NOTHING".into())
}

impl Directory for DynamoStore {
    async fn client_app(&self, client: Option<&ClientId>, deadline: Deadline) -> Result<Option<AppKey>, Error> {
        let read = client.map_or_else(nothing, |client| {
            let (pk, sk) = client_lookup_key(client);
            key(pk, sk)
        });
        let Some(item) = self.consistent_get(read, deadline).await? else { return Ok(None) };
        let field = |name: &str| text_attr(&item, name).unwrap_or_default();
        let parsed = (|| {
            Some(AppKey {
                org: OrgId::parse(&field("orgId"), "orgId").ok()?,
                project: ProjectId::parse(&field("projectId")).ok()?,
                app: AppId::parse(&field("appId")).ok()?,
            })
        })();
        if parsed.is_none() {
            tracing::warn!("a client lookup item does not parse: it names no app");
        }
        Ok(parsed)
    }

    async fn app_item(&self, app: Option<&AppKey>, deadline: Deadline) -> Result<Option<Result<App, Error>>, Error> {
        let read = app.map_or_else(nothing, app_key);
        let item = self.consistent_get(read, deadline).await?;
        Ok(app.zip(item).map(|(app, item)| app_from_item(app, &item)))
    }
}

impl DynamoStore {
    /// One consistent GetItem, bounded by the deadline.
    async fn consistent_get(&self, key: Key, deadline: Deadline) -> Result<Option<Key>, Error> {
        self.consistent_get_keeping(key, deadline, Duration::ZERO).await
    }

    /// One consistent GetItem, bounded by the deadline less `reserve`.
    async fn consistent_get_keeping(
        &self,
        key: Key,
        deadline: Deadline,
        reserve: Duration,
    ) -> Result<Option<Key>, Error> {
        let budget = deadline
            .budget(OPERATION_TIMEOUT, reserve)
            .ok_or_else(|| Error::Unavailable("GetItem: no time left before the deadline".into()))?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .customize()
            .config_override(bounded(budget))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(output.item)
    }

    /// A read that no item answers (a key outside every format of `keys`), so that the
    /// connection, TLS included, is open before the first request: see `crate::warm`.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key("WARM-UP".into(), "WARM-UP".into())))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("GetItem", e))
    }

    /// Reads one app, consistently.
    pub async fn app(&self, key: &AppKey) -> Result<Option<App>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(app_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        output.item.map(|item| app_from_item(key, &item)).transpose()
    }

    /// The three items: the membership check (for a member), the app update, the event.
    fn transaction(&self, c: &Commit<'_>, token: &str) -> Result<Vec<TransactWriteItem>, Error> {
        let mut items = Vec::with_capacity(3);
        if let Guard::Membership { user, grant } = c.guard {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(membership_key(c.key, user, grant)))
                .condition_expression("contains(#perms, :perm)")
                .expression_attribute_names("#perms", "permissions")
                .expression_attribute_values(":perm", s(APP_WRITE_PERMISSION))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        items.push(TransactWriteItem::builder().update(app_update(&self.table, c, token)?).build());
        items.push(TransactWriteItem::builder().put(event_put(&self.table, c, self.event_retention)?).build());
        Ok(items)
    }
}

/// A read's per-call bounds: `limit` in all, the SDK's retries inside it.
fn bounded(limit: Duration) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().timeout_config(timeouts(limit))
}

/// One attempt of a write, `limit` at most, with no retry by the SDK: [`until_definite`]
/// sends it again itself, knowing what each attempt answered.
fn one_attempt(limit: Duration) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().timeout_config(timeouts(limit)).retry_config(RetryConfig::disabled())
}

fn timeouts(limit: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(limit))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(limit))
        .operation_timeout(limit)
        .build()
}

/// Why a transaction was cancelled, from its per-item reasons (membership check first
/// when there is one, then the app update, then the event put).
fn cancellation(codes: &[String], membership_checked: bool) -> CommitError {
    if membership_checked && codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
        return CommitError::GuardFailed;
    }
    if codes.iter().any(|c| matches!(c.as_str(), "ConditionalCheckFailed" | "TransactionConflict")) {
        return CommitError::Conflict;
    }
    if codes.iter().any(|c| matches!(c.as_str(), "ThrottlingError" | "ProvisionedThroughputExceeded")) {
        return CommitError::Store(Error::Unavailable(format!("TransactWriteItems throttled: {codes:?}")));
    }
    CommitError::Store(Error::Internal(format!("TransactWriteItems cancelled: {codes:?}")))
}

/// A fresh idempotency token for one transaction attempt (at most 36 characters).
pub(super) fn request_token() -> String {
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// The app update: new hash, `sequence = seen + 1`, `changeDate`, the previous hash kept
/// or dropped; only if the app is still the OIDC app with a secret that was read.
fn app_update(table: &str, c: &Commit<'_>, token: &str) -> Result<Update, Error> {
    let mut set = vec!["secretHash = :hash", "#seq = :next", "changeDate = :now"];
    let mut values = HashMap::from([
        (":hash".to_owned(), s(c.secret_hash)),
        (":next".to_owned(), n(c.next_sequence)),
        (":seen".to_owned(), n(c.seen_sequence)),
        (":now".to_owned(), s(format_timestamp(c.change_date))),
        (":type".to_owned(), s(c.app_type)),
        (":removed".to_owned(), s(app::STATE_REMOVED)),
        (":m1".to_owned(), s(app::SECRET_AUTH_METHODS[0])),
        (":m2".to_owned(), s(app::SECRET_AUTH_METHODS[1])),
        (":token".to_owned(), s(token)),
    ]);
    let remove = match c.previous {
        Some((hash, expires)) => {
            set.push("previousSecretHash = :prev");
            set.push("previousSecretExpiresAt = :prevExp");
            values.insert(":prev".into(), s(hash));
            values.insert(":prevExp".into(), s(format_timestamp(expires)));
            " REMOVE #fence"
        }
        None => " REMOVE previousSecretHash, previousSecretExpiresAt, #fence",
    };
    let mut condition = format!(
        "attribute_exists(pk) AND {} AND appType = :type AND #state <> :removed AND authMethod IN (:m1, :m2) AND NOT contains(#fence, :token)",
        sequence_matches(c.seen_sequence)
    );
    if let Guard::RotationSecret { arn } = c.guard {
        condition.push_str(" AND rotationSecretArn = :arn");
        values.insert(":arn".into(), s(arn));
    }
    Update::builder()
        .table_name(table)
        .set_key(Some(app_key(c.key)))
        .update_expression(format!("SET {}{remove}", set.join(", ")))
        .condition_expression(condition)
        .expression_attribute_names("#seq", "sequence")
        .expression_attribute_names("#state", "state")
        .expression_attribute_names("#fence", FENCE_ATTRIBUTE)
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(build_error)
}

/// The app is still at the sequence read (an absent one counts as 0).
fn sequence_matches(seen: u64) -> &'static str {
    if seen == 0 { "(attribute_not_exists(#seq) OR #seq = :seen)" } else { "#seq = :seen" }
}

/// The event item: who changed what, when, from where. Never a secret or a hash.
fn event_put(table: &str, c: &Commit<'_>, retention: Option<Duration>) -> Result<Put, Error> {
    let event = Event {
        key: c.key,
        sequence: c.next_sequence,
        kind: event_type(c.app_type),
        at: c.change_date,
        actor: c.actor,
        source: c.source,
        request_id: c.request_id,
    };
    event.put(table, retention)
}

/// One event item: what changed, who changed it, when, from where. Never a secret or a hash.
pub(super) struct Event<'a> {
    pub key: &'a AppKey,
    pub sequence: u64,
    pub kind: &'static str,
    pub at: OffsetDateTime,
    pub actor: &'a str,
    pub source: &'a str,
    pub request_id: &'a str,
}

impl Event<'_> {
    /// Its put, only where no event is: one event per sequence. With a retention, an
    /// `expiresAt` for the table's TTL.
    pub(super) fn put(&self, table: &str, retention: Option<Duration>) -> Result<Put, Error> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(org_pk(&self.key.org))),
            ("sk".to_owned(), s(event_sk(self.key, self.sequence))),
            ("type".to_owned(), s(self.kind)),
            ("sequence".to_owned(), n(self.sequence)),
            ("createdAt".to_owned(), s(format_timestamp(self.at))),
            ("actor".to_owned(), s(self.actor)),
            ("source".to_owned(), s(self.source)),
            ("requestId".to_owned(), s(self.request_id)),
        ]);
        if let Some(retention) = retention {
            // DynamoDB's TTL takes Unix epoch seconds.
            let expires = (self.at + retention).unix_timestamp().max(0) as u64;
            item.insert(EVENT_TTL_ATTRIBUTE.to_owned(), n(expires));
        }
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)
    }
}
