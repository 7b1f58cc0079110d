//! What the `admin` tool writes so that there is something to regenerate: the table, apps,
//! memberships and the rotation secret an app trusts. Never on the request path.
//!
//! Every write follows SPEC section 6a as the request path does: each is harmless to
//! repeat (a transaction under one token, an `ADD`, a `SET` of the same values), is sent
//! again until its answer is definite, and what is still unknown after
//! [`ADMIN_WRITE_BUDGET`] is [`Error::OutcomeUnknown`]: "it may have happened, run it again".

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem, Update,
};
use time::OffsetDateTime;

use super::dynamodb::{
    Answer, DynamoStore, Event, Failure, PREVIOUS_REVOKED_EVENT_TYPE, app_key, build_error, key, n, request_token, s,
    sdk_error, until_definite,
};
use super::keys::{client_lookup_key, org_member_sk, org_pk, project_lookup_key, project_member_sk};
use crate::app::{self, AppKey, format_timestamp};
use crate::deadline::{ATTEMPT_TIMEOUT, Deadline};
use crate::error::Error;
use crate::ids::{AppId, ClientId, OrgId, ProjectId, UserId};
use crate::regenerate::APP_WRITE_PERMISSION;

/// What `admin index` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// App items seen.
    pub apps: usize,
    /// Lookups written or found already right.
    pub written: usize,
    /// Lookups refused: the client id names another app, or another org owns the project.
    pub conflicts: Vec<String>,
    /// App items whose key or client id does not parse.
    pub unreadable: usize,
}

/// An app item's key and client id, if they parse.
fn app_of_item(item: &std::collections::HashMap<String, AttributeValue>) -> Option<(AppKey, ClientId)> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    };
    let org = text("pk")?.strip_prefix("ORG#")?;
    let (project, app) = text("sk")?.strip_prefix("APP#")?.split_once('#')?;
    let key = AppKey {
        org: OrgId::parse(org, "orgId").ok()?,
        project: ProjectId::parse(project).ok()?,
        app: AppId::parse(app).ok()?,
    };
    Some((key, ClientId::parse(text("clientId")?, "clientId").ok()?))
}

fn app_name(app: &AppKey) -> String {
    format!("{}/{}/{}", app.org, app.project, app.app)
}

/// How long one write of `admin` may take to be definite, its resends included.
pub const ADMIN_WRITE_BUDGET: Duration = Duration::from_secs(30);

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

impl DynamoStore {
    /// Creates the table (pk/sk, on demand) unless it exists; true when it was created.
    pub async fn create_table(&self) -> Result<bool, Error> {
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let schema = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let result = self
            .client()
            .create_table()
            .table_name(self.table())
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
        self.client()
            .wait_until_table_exists()
            .table_name(self.table())
            .wait(Duration::from_secs(60))
            .await
            .map_err(|e| Error::Internal(format!("waiting for table: {}", DisplayErrorContext(&e))))?;
        Ok(true)
    }

    /// Creates an app unless one with that key exists; true when it was created. The
    /// client lookup and the project lookup (SPEC section 5) are written in the same
    /// transaction, each conditioned so that a client id names one app and a project id
    /// one org in the whole table: an app whose client id is taken, or whose project id
    /// another org owns, is refused and nothing is written.
    pub async fn put_app(&self, new: &NewApp) -> Result<bool, Error> {
        let client = ClientId::parse(&new.client_id, "--client-id")?;
        let now = format_timestamp(OffsetDateTime::now_utc());
        let mut item = app_key(&new.key);
        item.insert("appType".into(), s(&new.app_type));
        item.insert("state".into(), s(&new.state));
        item.insert("authMethod".into(), s(&new.auth_method));
        item.insert("clientId".into(), s(client.as_str()));
        item.insert("sequence".into(), n(0));
        item.insert("creationDate".into(), s(&now));
        item.insert("changeDate".into(), s(now));
        if let Some(arn) = &new.rotation_secret_arn {
            item.insert("rotationSecretArn".into(), s(arn));
        }
        let app = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(app).build(),
            TransactWriteItem::builder().put(self.client_lookup_put(&client, &new.key)?).build(),
            TransactWriteItem::builder().put(self.project_lookup_put(&new.key)?).build(),
        ];
        // A transaction under one token: a resend of one that applied answers success.
        let token = request_token();
        let answer = self
            .transact_until_definite(&items, &token, admin_deadline(), Duration::ZERO)
            .await
            .map_err(Failure::into_write_error)?;
        let e = match answer {
            Answer { result: Ok(_), .. } => return Ok(true),
            Answer { result: Err(e), after_unknown } => match e.as_service_error() {
                // A failed condition is definite even after an unknown send: that send
                // requires the same, and a same-token resend of one applied succeeds.
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let failed = |i: usize| {
                        cancel.cancellation_reasons().get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(false);
                    }
                    if failed(1) {
                        return Err(Error::invalid(format!("client id {client} already names another app")));
                    }
                    if failed(2) {
                        return Err(Error::invalid(format!(
                            "project {} belongs to another organization",
                            new.key.project
                        )));
                    }
                    if after_unknown {
                        return Err(Error::OutcomeUnknown(format!(
                            "TransactWriteItems: a resend was cancelled after an unknown outcome: {}",
                            DisplayErrorContext(&e)
                        )));
                    }
                    e
                }
                _ => e,
            },
        };
        Err(sdk_error("TransactWriteItems", e))
    }

    /// The client lookup of an app: written unless the client id names another app.
    fn client_lookup_put(&self, client: &ClientId, app: &AppKey) -> Result<Put, Error> {
        let (pk, sk) = client_lookup_key(client);
        let mut item = key(pk, sk);
        item.insert("orgId".into(), s(app.org.as_str()));
        item.insert("projectId".into(), s(app.project.as_str()));
        item.insert("appId".into(), s(app.app.as_str()));
        Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (orgId = :org AND projectId = :project AND appId = :app)",
            )
            .expression_attribute_values(":org", s(app.org.as_str()))
            .expression_attribute_values(":project", s(app.project.as_str()))
            .expression_attribute_values(":app", s(app.app.as_str()))
            .build()
            .map_err(build_error)
    }

    /// The project lookup of an app's project: written unless another org owns the project.
    fn project_lookup_put(&self, app: &AppKey) -> Result<Put, Error> {
        let (pk, sk) = project_lookup_key(&app.project);
        let mut item = key(pk, sk);
        item.insert("orgId".into(), s(app.org.as_str()));
        Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR orgId = :org")
            .expression_attribute_values(":org", s(app.org.as_str()))
            .build()
            .map_err(build_error)
    }

    /// Writes the lookups missing for apps created before them (`admin index`): every app
    /// item of the table, read consistently, gets its client and project lookup unless
    /// another app holds its client id or another org its project id, which is reported.
    pub async fn index_lookups(&self) -> Result<IndexReport, Error> {
        let mut report = IndexReport::default();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .consistent_read(true)
                .filter_expression("begins_with(sk, :app)")
                .expression_attribute_values(":app", s("APP#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            for item in page.items() {
                let Some((app, client)) = app_of_item(item) else {
                    report.unreadable += 1;
                    continue;
                };
                for (put, what) in [
                    (self.client_lookup_put(&client, &app)?, format!("client id {client} of {}", app_name(&app))),
                    (self.project_lookup_put(&app)?, format!("project {} of {}", app.project, app_name(&app))),
                ] {
                    if self.put_idempotently(put).await? {
                        report.written += 1;
                    } else {
                        report.conflicts.push(what);
                    }
                }
                report.apps += 1;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(report),
            }
        }
    }

    /// One conditional put whose repeats are harmless; false when its condition failed.
    async fn put_idempotently(&self, put: Put) -> Result<bool, Error> {
        let answer = until_definite(admin_deadline(), ATTEMPT_TIMEOUT, Duration::ZERO, "PutItem", |attempt| {
            self.client()
                .put_item()
                .table_name(put.table_name())
                .set_item(Some(put.item().clone()))
                .set_condition_expression(put.condition_expression().map(str::to_owned))
                .set_expression_attribute_values(put.expression_attribute_values().cloned())
                .customize()
                .config_override(attempt)
                .send()
        })
        .await
        .map_err(Failure::into_write_error)?;
        match answer.result {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    /// Ends the previous secret's grace period at once (`admin revoke-previous`, SPEC
    /// section 11): removes `previousSecretHash` and `previousSecretExpiresAt`, conditioned
    /// on the sequence read, bumps the sequence and writes a `previous.revoked` event, in one
    /// transaction. Lost races are read again, at most 3 times. `Ok(None)` when the app
    /// holds no previous secret (nothing written); `Ok(Some(sequence))` when revoked.
    pub async fn revoke_previous(&self, key: &AppKey, actor: &str) -> Result<Option<u64>, Error> {
        for _ in 0..crate::regenerate::MAX_ATTEMPTS {
            let app = self.app(key).await?.ok_or(Error::AppNotFound)?;
            if app.previous_secret_hash.is_none() && app.previous_secret_expires_at.is_none() {
                return Ok(None);
            }
            let next = app.sequence.checked_add(1).ok_or_else(|| Error::Internal("sequence at its maximum".into()))?;
            let now = OffsetDateTime::now_utc();
            let token = request_token();
            let seen = if app.sequence == 0 { "(attribute_not_exists(#seq) OR #seq = :seen)" } else { "#seq = :seen" };
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(app_key(key)))
                .update_expression(
                    "SET #seq = :next, changeDate = :now REMOVE previousSecretHash, previousSecretExpiresAt",
                )
                .condition_expression(format!("attribute_exists(pk) AND {seen}"))
                .expression_attribute_names("#seq", "sequence")
                .expression_attribute_values(":next", n(next))
                .expression_attribute_values(":seen", n(app.sequence))
                .expression_attribute_values(":now", s(format_timestamp(now)))
                .build()
                .map_err(build_error)?;
            let event = Event {
                key,
                sequence: next,
                kind: PREVIOUS_REVOKED_EVENT_TYPE,
                at: now,
                actor,
                source: "admin",
                request_id: &token,
            };
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().put(event.put(self.table(), None)?).build(),
            ];
            let answer = self
                .transact_until_definite(&items, &token, admin_deadline(), Duration::ZERO)
                .await
                .map_err(Failure::into_write_error)?;
            match answer {
                Answer { result: Ok(_), .. } => return Ok(Some(next)),
                // A resend refused after an unknown send: admin can't tell, and says so.
                Answer { result: Err(e), after_unknown: true } => {
                    return Err(Error::OutcomeUnknown(format!(
                        "TransactWriteItems: a resend was refused after an unknown outcome: {}",
                        DisplayErrorContext(&e)
                    )));
                }
                // The app moved on since the read: read again.
                Answer { result: Err(e), after_unknown: false }
                    if matches!(
                        e.as_service_error(),
                        Some(TransactWriteItemsError::TransactionCanceledException(_))
                    ) => {}
                Answer { result: Err(e), .. } => return Err(sdk_error("TransactWriteItems", e)),
            }
        }
        Err(Error::Conflict)
    }

    /// Names the Secrets Manager secret that may rotate an existing app.
    pub async fn set_rotation_secret(&self, key: &AppKey, arn: &str) -> Result<bool, Error> {
        let answer = until_definite(admin_deadline(), ATTEMPT_TIMEOUT, Duration::ZERO, "UpdateItem", |attempt| {
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(app_key(key)))
                .update_expression("SET rotationSecretArn = :arn")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":arn", s(arn))
                .customize()
                .config_override(attempt)
                .send()
        })
        .await
        .map_err(Failure::into_write_error)?;
        match answer.result {
            Ok(_) => Ok(true),
            // No app: and none of the sends could apply, each requiring one.
            Err(e) if matches!(e.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Ok(false)
            }
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
        let answer = until_definite(admin_deadline(), ATTEMPT_TIMEOUT, Duration::ZERO, "UpdateItem", |attempt| {
            self.client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key(org_pk(org), sk.clone())))
                .update_expression("ADD #perms :perms")
                .expression_attribute_names("#perms", "permissions")
                .expression_attribute_values(":perms", AttributeValue::Ss(permissions.to_vec()))
                .customize()
                .config_override(attempt)
                .send()
        })
        .await
        .map_err(Failure::into_write_error)?;
        answer.result.map(drop).map_err(|e| sdk_error("UpdateItem", e))
    }

    /// The table and the demo org, project, app and member that `make run` and the
    /// sample events use; what exists already is left as it is.
    pub async fn seed_demo(&self) -> Result<(), Error> {
        self.create_table().await?;
        let key = demo_key();
        self.put_app(&NewApp::oidc(key.clone(), "demo-app@demo-project")).await?;
        let user = UserId::parse(DEMO_USER, "user")?;
        self.grant(&key.org, None, &user, &[APP_WRITE_PERMISSION.to_owned()]).await
    }
}

fn admin_deadline() -> Deadline {
    Deadline::after(ADMIN_WRITE_BUDGET)
}

pub const DEMO_USER: &str = "demo-user";

/// demo-org / demo-project / demo-app.
pub fn demo_key() -> AppKey {
    AppKey {
        org: OrgId::parse("demo-org", "org").expect("a valid id"),
        project: ProjectId::parse("demo-project").expect("a valid id"),
        app: AppId::parse("demo-app").expect("a valid id"),
    }
}
