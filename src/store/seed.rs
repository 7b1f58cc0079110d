//! What the `admin` tool writes so that there is something to regenerate: the table, apps,
//! memberships and the rotation secret an app trusts. Never on the request path.
//!
//! Every write follows SPEC section 6a as the request path does: each is harmless to
//! repeat (a transaction under one token, an `ADD`, a `SET` of the same values), is sent
//! again until its answer is definite, and what is still unknown after
//! [`ADMIN_WRITE_BUDGET`] is [`Error::OutcomeUnknown`]: "it may have happened, run it again".

use std::collections::{BTreeMap, BTreeSet};
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
use crate::app::{self, AppKey, CLIENT_CREDENTIALS, TYPE_API, format_timestamp, is_scope_token};
use crate::deadline::{ATTEMPT_TIMEOUT, Deadline};
use crate::error::Error;
use crate::ids::{AppId, ClientId, OrgId, ProjectId, UserId};
use crate::import;
use crate::regenerate::APP_WRITE_PERMISSION;

/// What `admin index` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// App items seen (whose key parses).
    pub apps: usize,
    /// Lookups written or found already right.
    pub written: usize,
    /// Client ids and projects left unindexed: claimed by two apps (or two orgs), or
    /// named by a lookup for another app; each names every app involved.
    pub conflicts: Vec<String>,
    /// App items whose key or client id does not parse: no client lookup can name them.
    pub unreadable: usize,
}

/// An app item's key and client id, as far as they parse (a key that does not parse names
/// no app; a client id that does not parse can't be looked up, nor taken by a new app).
fn app_of_item(item: &Item) -> Option<(AppKey, Option<ClientId>)> {
    let org = text(item, "pk")?.strip_prefix("ORG#")?;
    let (project, app) = text(item, "sk")?.strip_prefix("APP#")?.split_once('#')?;
    let key = AppKey {
        org: OrgId::parse(org, "orgId").ok()?,
        project: ProjectId::parse(project).ok()?,
        app: AppId::parse(app).ok()?,
    };
    Some((key, text(item, "clientId").and_then(|c| ClientId::parse(c, "clientId").ok())))
}

type Item = std::collections::HashMap<String, AttributeValue>;

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

fn app_name(app: &AppKey) -> String {
    format!("{}/{}/{}", app.org, app.project, app.app)
}

/// Every app of the table and every lookup, from one consistent scan.
#[derive(Debug, Default)]
struct Census {
    apps: Vec<(AppKey, Option<ClientId>)>,
    unreadable: usize,
    /// Client id -> the app its lookup names (`org/project/app`).
    clients: BTreeMap<String, String>,
    /// Project id -> the org its lookup names.
    projects: BTreeMap<String, String>,
}

impl Census {
    /// The apps whose client lookup or project lookup is missing or names another app or org.
    fn without_lookups(&self) -> Vec<String> {
        let lacks = |(app, client): &(AppKey, Option<ClientId>)| {
            let project = self.projects.get(app.project.as_str()) != Some(&app.org.to_string());
            let client = client.as_ref().is_some_and(|c| self.clients.get(c.as_str()) != Some(&app_name(app)));
            project || client
        };
        self.apps.iter().filter(|a| lacks(a)).map(|(app, _)| app_name(app)).collect()
    }
}

/// `a and b`, `a, b and c`.
fn listed(names: &BTreeSet<String>) -> String {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// How long one write of `admin` may take to be definite, its resends included.
pub const ADMIN_WRITE_BUDGET: Duration = Duration::from_secs(30);

/// The event of `admin grants`.
pub const GRANTS_CHANGED_EVENT_TYPE: &str = "project.application.oauth.grants.changed";
/// The event of `admin import`.
pub const SECRET_IMPORTED_EVENT_TYPE: &str = "project.application.config.secret.imported";

/// One change `admin` makes to an existing app ([`DynamoStore::change_app`]): the event's
/// type, the attributes to set and to remove, and what must still hold beyond the sequence
/// read, as clauses over `names` and `values` (placeholders of the change's own).
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub kind: &'static str,
    pub set: Vec<(&'static str, AttributeValue)>,
    pub remove: Vec<&'static str>,
    pub condition: Vec<&'static str>,
    pub names: Vec<(&'static str, &'static str)>,
    pub values: Vec<(&'static str, AttributeValue)>,
}

/// A change's outcome as the admin commands answer it: `None` where there was nothing to
/// change, the error where it was refused.
fn unchanged_or(outcome: Result<u64, Option<Error>>) -> Result<Option<u64>, Error> {
    match outcome {
        Ok(sequence) => Ok(Some(sequence)),
        Err(None) => Ok(None),
        Err(Some(error)) => Err(error),
    }
}

/// An app's OAuth grants (SPEC section 13), checked: grant types `client_credentials` only;
/// scopes that are RFC 6749 scope-tokens; audiences that are project ids. Sets, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    grant_types: BTreeSet<String>,
    scopes: BTreeSet<String>,
    audiences: BTreeSet<String>,
}

impl Grants {
    pub fn new(grant_types: Vec<String>, scopes: Vec<String>, audiences: Vec<String>) -> Result<Self, Error> {
        if grant_types.iter().any(|g| g != CLIENT_CREDENTIALS) {
            return Err(Error::invalid(format!("invalid --grant: the one grant type is {CLIENT_CREDENTIALS}")));
        }
        if !scopes.iter().all(|s| is_scope_token(s)) {
            return Err(Error::invalid(
                "invalid --scope: a scope is 1 or more printable ASCII characters but space, \" and \\ (RFC 6749 section 3.3)",
            ));
        }
        for audience in &audiences {
            ProjectId::parse(audience).map_err(|_| {
                Error::invalid("invalid --audience: a project id, 1 to 200 characters from A-Z a-z 0-9 _ - . @")
            })?;
        }
        Ok(Self {
            grant_types: grant_types.into_iter().collect(),
            scopes: scopes.into_iter().collect(),
            audiences: audiences.into_iter().collect(),
        })
    }

    /// The grants an app holds.
    pub fn of(app: &crate::app::App) -> Self {
        let set = |values: &[String]| values.iter().cloned().collect();
        Self { grant_types: set(&app.grant_types), scopes: set(&app.scopes), audiences: set(&app.audiences) }
    }

    /// Refused for `app`: an audience that is its own project (every token of it names
    /// that project already).
    pub fn check_for(&self, app: &AppKey) -> Result<(), Error> {
        if self.audiences.contains(app.project.as_str()) {
            return Err(Error::invalid("invalid --audience: the app's own project is every token's audience already"));
        }
        Ok(())
    }

    /// Each attribute with its string set, or `None` where the set is empty.
    fn attributes(&self) -> [(&'static str, Option<AttributeValue>); 3] {
        let set = |values: &BTreeSet<String>| {
            (!values.is_empty()).then(|| AttributeValue::Ss(values.iter().cloned().collect()))
        };
        [("grantTypes", set(&self.grant_types)), ("scopes", set(&self.scopes)), ("audiences", set(&self.audiences))]
    }
}

impl std::fmt::Display for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |values: &BTreeSet<String>| {
            if values.is_empty() { "none".to_owned() } else { values.iter().cloned().collect::<Vec<_>>().join(" ") }
        };
        write!(
            f,
            "grant types {}; scopes {}; audiences {}",
            list(&self.grant_types),
            list(&self.scopes),
            list(&self.audiences)
        )
    }
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
    /// Its OAuth grants (none by default).
    pub grants: Grants,
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
            grants: Grants::default(),
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
    /// another org owns, is refused and nothing is written. Its grants go with it (an
    /// empty set is no attribute). Unlike [`Self::create_app`], it does not look for older
    /// apps without lookups: the tests' fixtures and the soak seed fresh tables with it.
    pub async fn put_app(&self, new: &NewApp) -> Result<bool, Error> {
        let client = ClientId::parse(&new.client_id, "--client-id")?;
        new.grants.check_for(&new.key)?;
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
        for (name, set) in new.grants.attributes() {
            item.extend(set.map(|set| (name.to_owned(), set)));
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

    /// Creates an app as `admin app` does: refused, with nothing written, while any app of
    /// the table lacks its lookups (one created before them, or one whose client id or
    /// project another app or org holds). Its lookups, written now, could otherwise take a
    /// client id or a project that such an older app holds without one: `admin index`
    /// settles those first. The check is a scan of the table (`census`); an app
    /// another operator creates between it and the write is not seen, as with any two
    /// admins at once.
    pub async fn create_app(&self, new: &NewApp) -> Result<bool, Error> {
        let missing = self.census().await?.without_lookups();
        if let Some(first) = missing.first() {
            return Err(Error::invalid(format!(
                "nothing written: {} app(s) of the table lack their client or project lookup (first: {first}); \
                 run `admin index`, which writes them and names the client ids and projects two apps claim",
                missing.len()
            )));
        }
        self.put_app(new).await
    }

    /// Every app and every lookup of the table, from one consistent scan (paged). A scan
    /// reads the whole table, events and memberships included (the filter drops them only
    /// after the read), so it costs a read unit per 4 KB of the table: fine for an
    /// operator's command, never for the request path.
    async fn census(&self) -> Result<Census, Error> {
        let mut census = Census::default();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .consistent_read(true)
                .filter_expression("begins_with(sk, :app) OR sk IN (:client, :project)")
                .projection_expression("pk, sk, clientId, orgId, projectId, appId")
                .expression_attribute_values(":app", s("APP#"))
                .expression_attribute_values(":client", s("CLIENT"))
                .expression_attribute_values(":project", s("PROJECT"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Scan", e))?;
            for item in page.items() {
                let pk = text(item, "pk").unwrap_or_default();
                let field = |name: &str| text(item, name).unwrap_or_default().to_owned();
                match (text(item, "sk"), pk.strip_prefix("CLIENT#"), pk.strip_prefix("PROJECT#")) {
                    (Some("CLIENT"), Some(client), _) => {
                        let named = format!("{}/{}/{}", field("orgId"), field("projectId"), field("appId"));
                        census.clients.insert(client.to_owned(), named);
                    }
                    (Some("PROJECT"), _, Some(project)) => {
                        census.projects.insert(project.to_owned(), field("orgId"));
                    }
                    _ => match app_of_item(item) {
                        Some(app) => {
                            census.unreadable += usize::from(app.1.is_none());
                            census.apps.push(app);
                        }
                        None => census.unreadable += 1,
                    },
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(census),
            }
        }
    }

    /// Writes the lookups missing for apps created before them (`admin index`). A client id
    /// that two apps claim (or one that a lookup gives another app), and a project that apps
    /// of two orgs claim (or whose lookup names another org), is left as it is and reported
    /// with every app involved: the scan's order must not decide which app a client id
    /// names. Each write is still conditioned as `admin app`'s, against a change meanwhile.
    pub async fn index_lookups(&self) -> Result<IndexReport, Error> {
        let census = self.census().await?;
        let mut report = IndexReport { apps: census.apps.len(), unreadable: census.unreadable, ..Default::default() };
        let mut clients: BTreeMap<&str, (&ClientId, Vec<&AppKey>)> = BTreeMap::new();
        let mut projects: BTreeMap<&str, BTreeMap<&str, Vec<&AppKey>>> = BTreeMap::new();
        for (app, client) in &census.apps {
            if let Some(client) = client {
                clients.entry(client.as_str()).or_insert((client, Vec::new())).1.push(app);
            }
            projects.entry(app.project.as_str()).or_default().entry(app.org.as_str()).or_default().push(app);
        }
        for (id, (client, apps)) in clients {
            let lookup = census.clients.get(id);
            let mut names: BTreeSet<String> = apps.iter().map(|a| app_name(a)).collect();
            names.extend(lookup.cloned());
            let (Some(app), 1) = (apps.first(), names.len()) else {
                let named = lookup.map(|n| format!(" (its lookup names {n})")).unwrap_or_default();
                report.conflicts.push(format!("client id {id}: claimed by {}{named}", listed(&names)));
                continue;
            };
            if lookup.is_some() || self.put_idempotently(self.client_lookup_put(client, app)?).await? {
                report.written += 1;
            } else {
                report.conflicts.push(format!("client id {id}: taken by another app than {} meanwhile", app_name(app)));
            }
        }
        for (project, orgs) in projects {
            let lookup = census.projects.get(project);
            // One app of each org names it; an org that only the lookup names is named so.
            let mut names: BTreeSet<String> =
                orgs.values().filter_map(|apps| apps.iter().map(|a| app_name(a)).min()).collect();
            let foreign = lookup.filter(|org| !orgs.contains_key(org.as_str()));
            names.extend(foreign.map(|org| format!("org {org} (its lookup)")));
            let (Some(app), 1) = (orgs.values().next().and_then(|apps| apps.first()), names.len()) else {
                report.conflicts.push(format!("project {project}: claimed by {}", listed(&names)));
                continue;
            };
            if lookup.is_some() || self.put_idempotently(self.project_lookup_put(app)?).await? {
                report.written += 1;
            } else {
                report.conflicts.push(format!("project {project}: taken by another org than {} meanwhile", app.org));
            }
        }
        Ok(report)
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
    /// section 11): removes `previousSecretHash` and `previousSecretExpiresAt` with a
    /// `previous.revoked` event (`change_app`). `Ok(None)` when the app holds no
    /// previous secret (nothing written); `Ok(Some(sequence))` when revoked.
    pub async fn revoke_previous(&self, key: &AppKey, actor: &str) -> Result<Option<u64>, Error> {
        let revoked = self
            .change_app(key, actor, |app| match app {
                None => Err(Some(Error::AppNotFound)),
                Some(app) if app.previous_secret_hash.is_none() && app.previous_secret_expires_at.is_none() => {
                    Err(None)
                }
                Some(_) => Ok(Change {
                    kind: PREVIOUS_REVOKED_EVENT_TYPE,
                    remove: vec!["previousSecretHash", "previousSecretExpiresAt"],
                    ..Change::default()
                }),
            })
            .await?;
        unchanged_or(revoked)
    }

    /// Replaces an app's OAuth grants (`admin grants`, SPEC section 13): an empty set removes
    /// its attribute (DynamoDB has no empty sets). Refused for a missing or REMOVED app.
    /// `Ok(None)` when the app has these grants already (nothing written); else the new
    /// sequence, with a `grants.changed` event (`change_app`).
    pub async fn set_grants(&self, key: &AppKey, grants: &Grants, actor: &str) -> Result<Option<u64>, Error> {
        grants.check_for(key)?;
        let changed = self
            .change_app(key, actor, |app| match app {
                None => Err(Some(Error::AppNotFound)),
                Some(app) if app.is_removed() => Err(Some(Error::AppNotFound)),
                Some(app) if Grants::of(app) == *grants => Err(None),
                Some(_) => {
                    let mut change = Change {
                        kind: GRANTS_CHANGED_EVENT_TYPE,
                        condition: vec!["#state <> :removed"],
                        names: vec![("#state", "state")],
                        values: vec![(":removed", s(app::STATE_REMOVED))],
                        ..Change::default()
                    };
                    for (name, values) in grants.attributes() {
                        match values {
                            Some(set) => change.set.push((name, set)),
                            None => change.remove.push(name),
                        }
                    }
                    Ok(change)
                }
            })
            .await?;
        unchanged_or(changed)
    }

    /// Brings one secret in (`admin import`, SPEC section 14): `hash` (and the previous
    /// one with its expiry, or none: a previous secret the app held is dropped) written
    /// with a `secret.imported` event (`change_app`), only while the app is OIDC or
    /// API, not REMOVED, with auth method BASIC or POST and, unless `replace`, no secret.
    /// `Ok(Err(rule))`: the app refused it, nothing written; `Ok(Ok(sequence))`: imported.
    pub async fn import_secret(
        &self,
        key: &AppKey,
        hash: &str,
        previous: Option<(&str, OffsetDateTime)>,
        replace: bool,
    ) -> Result<Result<u64, import::Rule>, Error> {
        self.change_app(key, "admin", |app| {
            import::judge(app, replace)?;
            let mut change = Change {
                kind: SECRET_IMPORTED_EVENT_TYPE,
                set: vec![("secretHash", s(hash))],
                condition: vec!["appType IN (:oidc, :api)", "#state <> :removed", "authMethod IN (:m1, :m2)"],
                names: vec![("#state", "state")],
                values: vec![
                    (":oidc", s(app::TYPE_OIDC)),
                    (":api", s(app::TYPE_API)),
                    (":removed", s(app::STATE_REMOVED)),
                    (":m1", s(app::SECRET_AUTH_METHODS[0])),
                    (":m2", s(app::SECRET_AUTH_METHODS[1])),
                ],
                ..Change::default()
            };
            match previous {
                Some((hash, expires)) => {
                    change.set.push(("previousSecretHash", s(hash)));
                    change.set.push(("previousSecretExpiresAt", s(format_timestamp(expires))));
                }
                None => change.remove.extend(["previousSecretHash", "previousSecretExpiresAt"]),
            }
            if !replace {
                change.condition.push("attribute_not_exists(secretHash)");
            }
            Ok(change)
        })
        .await
    }

    /// Makes one [`Change`] to an existing app, as SPEC section 5's write does: one
    /// consistent read; `decide` judges the app (`Err`: refused, nothing written); one
    /// transaction of the app's update, conditioned on the sequence read (absent counts as
    /// 0) and on what the change requires, setting `sequence` + 1 and `changeDate`, and its
    /// event (`source` `admin`), under one token sent until its answer is definite. An app
    /// that moved on since the read is read and judged again, at most
    /// [`crate::regenerate::MAX_ATTEMPTS`] times in all, then [`Error::Conflict`].
    pub(crate) async fn change_app<R>(
        &self,
        key: &AppKey,
        actor: &str,
        decide: impl Fn(Option<&crate::app::App>) -> Result<Change, R>,
    ) -> Result<Result<u64, R>, Error> {
        for _ in 0..crate::regenerate::MAX_ATTEMPTS {
            let app = self.app(key).await?;
            let change = match decide(app.as_ref()) {
                Ok(change) => change,
                Err(refused) => return Ok(Err(refused)),
            };
            let seen = app.map_or(0, |app| app.sequence);
            let next = seen.checked_add(1).ok_or_else(|| Error::Internal("sequence at its maximum".into()))?;
            let now = OffsetDateTime::now_utc();
            let token = request_token();
            let kind = change.kind;
            let event = Event { key, sequence: next, kind, at: now, actor, source: "admin", request_id: &token };
            let items = vec![
                TransactWriteItem::builder().update(self.change_update(key, seen, next, now, change)?).build(),
                TransactWriteItem::builder().put(event.put(self.table(), None)?).build(),
            ];
            let answer = self
                .transact_until_definite(&items, &token, admin_deadline(), Duration::ZERO)
                .await
                .map_err(Failure::into_write_error)?;
            match answer {
                Answer { result: Ok(_), .. } => {
                    tracing::debug!(app = %app_name(key), sequence = next, event = kind, "admin: app changed");
                    return Ok(Ok(next));
                }
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

    /// The app's update of a [`Change`]: its attributes, `sequence` and `changeDate`, only
    /// while the app exists at the sequence `seen` and the change's own condition holds.
    fn change_update(
        &self,
        key: &AppKey,
        seen: u64,
        next: u64,
        now: OffsetDateTime,
        change: Change,
    ) -> Result<Update, Error> {
        let mut set = vec!["#seq = :next".to_owned(), "changeDate = :now".to_owned()];
        let mut remove = Vec::new();
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(app_key(key)))
            .expression_attribute_names("#seq", "sequence")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":now", s(format_timestamp(now)));
        // Every attribute by a placeholder: some names are DynamoDB's reserved words.
        for (i, (name, value)) in change.set.into_iter().enumerate() {
            set.push(format!("#set{i} = :set{i}"));
            update = update
                .expression_attribute_names(format!("#set{i}"), name)
                .expression_attribute_values(format!(":set{i}"), value);
        }
        for (i, name) in change.remove.into_iter().enumerate() {
            remove.push(format!("#remove{i}"));
            update = update.expression_attribute_names(format!("#remove{i}"), name);
        }
        for (placeholder, name) in change.names {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in change.values {
            update = update.expression_attribute_values(placeholder, value);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let seen_clause = if seen == 0 { "(attribute_not_exists(#seq) OR #seq = :seen)" } else { "#seq = :seen" };
        let condition = ["attribute_exists(pk)", seen_clause].into_iter().chain(change.condition).collect::<Vec<_>>();
        update.update_expression(expression).condition_expression(condition.join(" AND ")).build().map_err(build_error)
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
    /// The demo app may use the client credentials grant with the scopes `read` and
    /// `write`; a demo app from before grants gets them.
    pub async fn seed_demo(&self) -> Result<(), Error> {
        self.create_table().await?;
        let key = demo_key();
        let grants = Grants::new(vec![CLIENT_CREDENTIALS.into()], vec!["read".into(), "write".into()], Vec::new())?;
        let app = NewApp { grants: grants.clone(), ..NewApp::oidc(key.clone(), "demo-app@demo-project") };
        if !self.create_app(&app).await? {
            self.set_grants(&key, &grants, "admin").await?;
        }
        // The resource server of the demo: an API app, whose secret introspects tokens.
        let api = AppKey { app: AppId::parse("demo-api")?, ..key.clone() };
        self.create_app(&NewApp { app_type: TYPE_API.into(), ..NewApp::oidc(api, "demo-api@demo-project") }).await?;
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
