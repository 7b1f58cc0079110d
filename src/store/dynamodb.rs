//! Every expression and condition of the single DynamoDB table, in one file; the key
//! formats are in [`super::keys`].

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update};
use rand::RngExt;
use time::OffsetDateTime;

use super::keys::{
    ORG_MEMBER_PREFIX, PROJECT_MEMBER_PREFIX, app_sk, event_sk, org_member_sk, org_pk, project_member_sk,
};
use crate::app::{self, App, AppKey, format_timestamp, parse_timestamp};
use crate::error::Error;
use crate::ids::UserId;
use crate::regenerate::{APP_WRITE_PERMISSION, Commit, CommitError, Grant, Guard, Snapshot, Store};

/// The event type ZITADEL records for this change.
pub const EVENT_TYPE: &str = "project.application.config.oidc.secret.changed";

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

/// Maps an SDK failure: throttling, timeouts, unreachable and 5xx are 503; the rest 500.
/// The detail goes to the log only.
pub(super) fn sdk_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionInProgressException"
            )
        ),
        _ => false,
    };
    if transient { Error::Unavailable(detail) } else { Error::Internal(detail) }
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
    })
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
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One consistent BatchGetItem of the given keys, asking again for unprocessed ones.
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Key>, Error> {
        let mut pending =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(build_error)?;
        let mut items = Vec::new();
        for _ in 0..MAX_UNPROCESSED_ROUNDS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
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
    async fn load(&self, k: &AppKey, member: Option<&UserId>) -> Result<Snapshot, Error> {
        let mut keys = vec![app_key(k)];
        if let Some(user) = member {
            keys.push(membership_key(k, user, Grant::Org));
            keys.push(membership_key(k, user, Grant::Project));
        }
        let items = self.batch_get(keys).await?;
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

    /// One transaction, and its outcome for certain: when the answer is lost (a timeout,
    /// a dropped connection, a 5xx), the same transaction is sent again with the same
    /// `ClientRequestToken`, which DynamoDB answers with success if the first one was
    /// applied; when that answer is lost too, a consistent read of the app tells whether
    /// the hash sent is the one stored. Only then is an error "nothing was written".
    async fn commit(&self, c: &Commit<'_>) -> Result<(), CommitError> {
        let items = self.transaction(c).map_err(CommitError::Store)?;
        let membership_checked = matches!(c.guard, Guard::Membership { .. });
        let token = request_token();
        // The first send with the client's own bounds; a lost answer, once more, bounded.
        let mut unknown = String::new();
        for timeout in [None, Some(RESOLVE_TIMEOUT)] {
            if !unknown.is_empty() {
                tracing::warn!(detail = %unknown, "transaction outcome unknown; sending it again with the same token");
            }
            match self.transact(items.clone(), &token, timeout).await {
                Sent::Done(result) => return result.map_err(|codes| cancellation(&codes, membership_checked)),
                Sent::Refused(error) => return Err(CommitError::Store(error)),
                Sent::Unknown(detail) => unknown = detail,
            }
        }
        match self.app_within(c.key, Some(RESOLVE_TIMEOUT)).await {
            Ok(Some(stored)) if stored.secret_hash.as_deref() == Some(c.secret_hash) => Ok(()),
            Ok(_) => Err(CommitError::Store(Error::Unavailable(format!("{unknown}; the app does not hold the hash")))),
            Err(error) => Err(CommitError::Store(Error::Unavailable(format!(
                "{unknown}; and reading the outcome back failed: {}",
                error.log_detail().unwrap_or_default()
            )))),
        }
    }
}

/// How long each step that resolves an unknown outcome may take: the first attempt's
/// bounds (see `crate::aws`) plus two of these stay under the function's timeout.
const RESOLVE_TIMEOUT: Duration = Duration::from_millis(1500);

/// What one `TransactWriteItems` call tells.
enum Sent {
    /// Applied (`Ok`), or cancelled with these per-item reasons (`Err`): nothing written.
    Done(Result<(), Vec<String>>),
    /// Rejected before it could apply: nothing written.
    Refused(Error),
    /// The call may or may not have been applied.
    Unknown(String),
}

impl DynamoStore {
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
        self.app_within(key, None).await
    }

    async fn app_within(&self, key: &AppKey, timeout: Option<Duration>) -> Result<Option<App>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(app_key(key)))
            .consistent_read(true)
            .customize()
            .config_override(bounded(timeout))
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        output.item.map(|item| app_from_item(key, &item)).transpose()
    }

    /// The three items: the membership check (for a member), the app update, the event.
    fn transaction(&self, c: &Commit<'_>) -> Result<Vec<TransactWriteItem>, Error> {
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
        items.push(TransactWriteItem::builder().update(app_update(&self.table, c)?).build());
        items.push(TransactWriteItem::builder().put(event_put(&self.table, c)?).build());
        Ok(items)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>, token: &str, timeout: Option<Duration>) -> Sent {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // The same token on every send of this transaction, the SDK's retries included:
            // DynamoDB applies it once and answers success to the repeats.
            .client_request_token(token)
            .customize()
            .config_override(bounded(timeout))
            .send()
            .await;
        match result {
            Ok(_) => Sent::Done(Ok(())),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => Sent::Done(Err(cancel
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect())),
                // A 4xx other than these is a request DynamoDB did not run.
                _ => match sdk_error("TransactWriteItems", SdkError::ServiceError(e)) {
                    Error::Unavailable(detail) => Sent::Unknown(detail),
                    error => Sent::Refused(error),
                },
            },
            Err(SdkError::ConstructionFailure(e)) => Sent::Refused(Error::Internal(format!(
                "TransactWriteItems: {}",
                DisplayErrorContext(&SdkError::<TransactWriteItemsError>::ConstructionFailure(e))
            ))),
            Err(e) => Sent::Unknown(format!("TransactWriteItems: {}", DisplayErrorContext(&e))),
        }
    }
}

/// A per-call override of the operation timeout; none keeps the client's.
fn bounded(timeout: Option<Duration>) -> aws_sdk_dynamodb::config::Builder {
    let builder = aws_sdk_dynamodb::config::Builder::default();
    match timeout {
        Some(limit) => builder.timeout_config(TimeoutConfig::builder().operation_timeout(limit).build()),
        None => builder,
    }
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
fn request_token() -> String {
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// The app update: new hash, `sequence = seen + 1`, `changeDate`, the previous hash kept
/// or dropped; only if the app is still the OIDC app with a secret that was read.
fn app_update(table: &str, c: &Commit<'_>) -> Result<Update, Error> {
    let mut set = vec!["secretHash = :hash", "#seq = :next", "changeDate = :now"];
    let mut values = HashMap::from([
        (":hash".to_owned(), s(c.secret_hash)),
        (":next".to_owned(), n(c.next_sequence)),
        (":seen".to_owned(), n(c.seen_sequence)),
        (":now".to_owned(), s(format_timestamp(c.change_date))),
        (":oidc".to_owned(), s(app::TYPE_OIDC)),
        (":removed".to_owned(), s(app::STATE_REMOVED)),
        (":m1".to_owned(), s(app::SECRET_AUTH_METHODS[0])),
        (":m2".to_owned(), s(app::SECRET_AUTH_METHODS[1])),
    ]);
    let remove = match c.previous {
        Some((hash, expires)) => {
            set.push("previousSecretHash = :prev");
            set.push("previousSecretExpiresAt = :prevExp");
            values.insert(":prev".into(), s(hash));
            values.insert(":prevExp".into(), s(format_timestamp(expires)));
            ""
        }
        None => " REMOVE previousSecretHash, previousSecretExpiresAt",
    };
    let sequence_matches =
        if c.seen_sequence == 0 { "(attribute_not_exists(#seq) OR #seq = :seen)" } else { "#seq = :seen" };
    let mut condition = format!(
        "attribute_exists(pk) AND {sequence_matches} AND appType = :oidc AND #state <> :removed AND authMethod IN (:m1, :m2)"
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
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(build_error)
}

/// The event item: who changed what, when, from where. Never a secret or a hash.
fn event_put(table: &str, c: &Commit<'_>) -> Result<Put, Error> {
    let item = HashMap::from([
        ("pk".to_owned(), s(org_pk(&c.key.org))),
        ("sk".to_owned(), s(event_sk(c.key, c.next_sequence))),
        ("type".to_owned(), s(EVENT_TYPE)),
        ("sequence".to_owned(), n(c.next_sequence)),
        ("createdAt".to_owned(), s(format_timestamp(c.change_date))),
        ("actor".to_owned(), s(c.actor)),
        ("source".to_owned(), s(c.source)),
        ("requestId".to_owned(), s(c.request_id)),
    ]);
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(build_error)
}
