//! Every key, expression and condition of the single DynamoDB table, in one file.
//!
//! | item               | pk           | sk                                          |
//! |--------------------|--------------|---------------------------------------------|
//! | app                | `ORG#<org>`  | `APP#<project>#<app>`                       |
//! | org membership     | `ORG#<org>`  | `MEMBER#<user>`                             |
//! | project membership | `ORG#<org>`  | `PROJECT#<project>#MEMBER#<user>`           |
//! | event              | `ORG#<org>`  | `EVENT#<project>#<app>#<sequence, 20 digits>` |
//!
//! Ids cannot contain `#` (see `ids`), so no id can forge another item's key.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ScalarAttributeType, TransactWriteItem, Update,
};
use rand::RngExt;
use time::OffsetDateTime;

use crate::app::{self, App, AppKey, format_timestamp, parse_timestamp};
use crate::error::Error;
use crate::ids::{AppId, OrgId, ProjectId, UserId};
use crate::rotate::{APP_WRITE_PERMISSION, Commit, CommitError, Grant, Guard, Snapshot, Store};

/// The event type ZITADEL records for this change.
pub const EVENT_TYPE: &str = "project.application.config.oidc.secret.changed";

/// How often a BatchGetItem's unprocessed keys are asked for again before giving up.
const MAX_UNPROCESSED_ROUNDS: u32 = 3;

/// A client configured from the environment (see [`crate::aws::sdk_config`]).
pub async fn client_from_env() -> Client {
    Client::new(&crate::aws::sdk_config().await)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

fn app_sk(project: &ProjectId, app: &AppId) -> String {
    format!("APP#{project}#{app}")
}

fn org_member_sk(user: &UserId) -> String {
    format!("MEMBER#{user}")
}

fn project_member_sk(project: &ProjectId, user: &UserId) -> String {
    format!("PROJECT#{project}#MEMBER#{user}")
}

/// The event's sort key: the sequence in 20 digits, so events sort in order.
pub fn event_sk(project: &ProjectId, app: &AppId, sequence: u64) -> String {
    format!("EVENT#{project}#{app}#{sequence:020}")
}

type Key = HashMap<String, AttributeValue>;

fn key(pk: String, sk: String) -> Key {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn app_key(k: &AppKey) -> Key {
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
fn sdk_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
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

fn build_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("building a DynamoDB request: {e}"))
}

/// A new app, as the admin tool and the tests create it.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub key: AppKey,
    pub client_id: String,
    pub app_type: String,
    pub state: String,
    pub auth_method: String,
    pub rotation_secret_arn: Option<String>,
}

impl NewApp {
    /// An active OIDC app with BASIC auth, the common case.
    pub fn oidc(key: AppKey, client_id: impl Into<String>) -> Self {
        Self {
            key,
            client_id: client_id.into(),
            app_type: app::TYPE_OIDC.into(),
            state: "ACTIVE".into(),
            auth_method: "BASIC".into(),
            rotation_secret_arn: None,
        }
    }
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

    /// Creates the table (pk/sk, on demand) unless it exists; true when it was created.
    pub async fn create_table(&self) -> Result<bool, Error> {
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let schema = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr("pk").map_err(build_error)?)
            .attribute_definitions(attr("sk").map_err(build_error)?)
            .key_schema(schema("pk", KeyType::Hash).map_err(build_error)?)
            .key_schema(schema("sk", KeyType::Range).map_err(build_error)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(sdk_error("CreateTable", e)),
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(Duration::from_secs(60))
            .await
            .map_err(|e| Error::Internal(format!("waiting for table: {}", DisplayErrorContext(&e))))?;
        Ok(true)
    }

    /// Creates an app unless one with that key exists; true when it was created.
    pub async fn put_app(&self, new: &NewApp) -> Result<bool, Error> {
        let now = format_timestamp(OffsetDateTime::now_utc());
        let mut item = app_key(&new.key);
        item.insert("appType".into(), s(&new.app_type));
        item.insert("state".into(), s(&new.state));
        item.insert("authMethod".into(), s(&new.auth_method));
        item.insert("clientId".into(), s(&new.client_id));
        item.insert("sequence".into(), n(0));
        item.insert("creationDate".into(), s(&now));
        item.insert("changeDate".into(), s(now));
        if let Some(arn) = &new.rotation_secret_arn {
            item.insert("rotationSecretArn".into(), s(arn));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    /// Names the Secrets Manager secret that may rotate an existing app.
    pub async fn set_rotation_secret(&self, key: &AppKey, arn: &str) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(app_key(key)))
            .update_expression("SET rotationSecretArn = :arn")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":arn", s(arn))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    /// Adds permissions to a user's membership of an org, or of one project in it.
    pub async fn grant(
        &self,
        org: &OrgId,
        project: Option<&ProjectId>,
        user: &UserId,
        permissions: &[String],
    ) -> Result<(), Error> {
        let sk = match project {
            Some(project) => project_member_sk(project, user),
            None => org_member_sk(user),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org), sk)))
            .update_expression("ADD #perms :perms")
            .expression_attribute_names("#perms", "permissions")
            .expression_attribute_values(":perms", AttributeValue::Ss(permissions.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", e))?;
        Ok(())
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
                snapshot.app = Some(app_from_item(k, item)?);
            } else if sk.starts_with("MEMBER#") {
                org_grants = grants_write(item);
            } else if sk.starts_with("PROJECT#") {
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

    async fn commit(&self, c: &Commit<'_>) -> Result<(), CommitError> {
        let mut items = Vec::with_capacity(3);
        if let Guard::Membership { user, grant } = c.guard {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(membership_key(c.key, user, grant)))
                .condition_expression("contains(#perms, :perm)")
                .expression_attribute_names("#perms", "permissions")
                .expression_attribute_values(":perm", s(APP_WRITE_PERMISSION))
                .build()
                .map_err(|e| CommitError::Store(build_error(e)))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        items
            .push(TransactWriteItem::builder().update(app_update(&self.table, c).map_err(CommitError::Store)?).build());
        items.push(TransactWriteItem::builder().put(event_put(&self.table, c).map_err(CommitError::Store)?).build());
        let membership_checked = matches!(c.guard, Guard::Membership { .. });
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // Makes the SDK's own retries of this call idempotent: a retry after a lost
            // response succeeds instead of failing its sequence condition.
            .client_request_token(request_token())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancel) = e.err() else { unreachable!() };
                let codes: Vec<&str> =
                    cancel.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
                Err(cancellation(&codes, membership_checked))
            }
            Err(e) => Err(CommitError::Store(sdk_error("TransactWriteItems", e))),
        }
    }
}

/// Why a transaction was cancelled, from its per-item reasons (membership check first
/// when there is one, then the app update, then the event put).
fn cancellation(codes: &[&str], membership_checked: bool) -> CommitError {
    if membership_checked && codes.first() == Some(&"ConditionalCheckFailed") {
        return CommitError::GuardFailed;
    }
    if codes.iter().any(|c| matches!(*c, "ConditionalCheckFailed" | "TransactionConflict")) {
        return CommitError::Conflict;
    }
    if codes.iter().any(|c| matches!(*c, "ThrottlingError" | "ProvisionedThroughputExceeded")) {
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
        (":next".to_owned(), n(c.seen_sequence + 1)),
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
    let sequence = c.seen_sequence + 1;
    let item = HashMap::from([
        ("pk".to_owned(), s(org_pk(&c.key.org))),
        ("sk".to_owned(), s(event_sk(&c.key.project, &c.key.app, sequence))),
        ("type".to_owned(), s(EVENT_TYPE)),
        ("sequence".to_owned(), n(sequence)),
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
