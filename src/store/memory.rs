//! An in-memory [`Store`] for the use case's unit tests: the same conditions as the
//! DynamoDB transaction (sequence seen, still an OIDC app with a secret, membership still
//! granting, the rotation secret still the app's, one event per sequence), so the use case
//! can be tested in milliseconds. The DynamoDB adapter is proven against DynamoDB Local in
//! `tests/`; nothing here stands in for it there.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::app::{App, AppKey};
use crate::authenticate::Directory;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::{AppId, ClientId, OrgId, ProjectId, UserId};
use crate::regenerate::{APP_WRITE_PERMISSION, Commit, CommitError, Grant, Guard, Snapshot, Store};

/// One event item as the transaction writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: AppKey,
    pub sequence: u64,
    pub actor: String,
    pub source: &'static str,
    pub request_id: String,
    pub created_at: OffsetDateTime,
}

type Member = (OrgId, UserId, Option<ProjectId>);
type Apps = HashMap<AppKey, Result<App, Error>>;
/// A change another writer makes between a read and a write.
type Interleaved = Box<dyn FnOnce(&mut Apps) + Send>;

#[derive(Default)]
struct Tables {
    apps: Apps,
    /// (org, user, project or none for the org itself) -> permissions.
    members: HashMap<Member, HashSet<String>>,
    events: Vec<Event>,
    /// Answers the next commits give instead of writing, first in first out.
    faults: VecDeque<CommitError>,
    /// Run once after the next load, as another writer would between read and write.
    after_load: Option<Interleaved>,
    loads: u32,
    commits: u32,
    /// Client lookups: client id -> the app it names.
    clients: HashMap<ClientId, AppKey>,
    /// Project lookups: project id -> the org that owns it.
    projects: HashMap<ProjectId, OrgId>,
    directory_reads: u32,
    directory_faults: VecDeque<Error>,
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn put_app(&self, app: App) {
        self.tables.lock().unwrap().apps.insert(app.key.clone(), Ok(app));
    }

    /// An app item that does not parse, as the DynamoDB adapter would report it.
    pub fn put_unreadable_app(&self, key: AppKey, error: Error) {
        self.tables.lock().unwrap().apps.insert(key, Err(error));
    }

    pub fn grant(&self, org: &OrgId, user: &UserId, project: Option<&ProjectId>, permissions: &[&str]) {
        let mut tables = self.tables.lock().unwrap();
        let held = tables.members.entry((org.clone(), user.clone(), project.cloned())).or_default();
        held.extend(permissions.iter().map(|p| p.to_string()));
    }

    pub fn app(&self, key: &AppKey) -> Option<App> {
        self.tables.lock().unwrap().apps.get(key).and_then(|app| app.clone().ok())
    }

    pub fn events(&self) -> Vec<Event> {
        self.tables.lock().unwrap().events.clone()
    }

    /// The next commit answers `fault` and writes nothing.
    pub fn fail_next_commit(&self, fault: CommitError) {
        self.tables.lock().unwrap().faults.push_back(fault);
    }

    /// Changes the apps once, right after the next load.
    pub fn after_next_load(&self, change: impl FnOnce(&mut Apps) + Send + 'static) {
        self.tables.lock().unwrap().after_load = Some(Box::new(change));
    }

    /// The client lookup of `client`, naming `app`.
    pub fn index_client(&self, client: &ClientId, app: &AppKey) {
        self.tables.lock().unwrap().clients.insert(client.clone(), app.clone());
    }

    /// The project lookup of `project`, naming `org`.
    pub fn index_project(&self, project: &ProjectId, org: &OrgId) {
        self.tables.lock().unwrap().projects.insert(project.clone(), org.clone());
    }

    /// The next directory read fails with `error`.
    pub fn fail_next_directory_read(&self, error: Error) {
        self.tables.lock().unwrap().directory_faults.push_back(error);
    }

    /// How many reads of [`Directory`] reached the store.
    pub fn directory_reads(&self) -> u32 {
        self.tables.lock().unwrap().directory_reads
    }

    /// How many loads and commits reached the store.
    pub fn calls(&self) -> (u32, u32) {
        let tables = self.tables.lock().unwrap();
        (tables.loads, tables.commits)
    }
}

fn grants(tables: &Tables, org: &OrgId, user: &UserId, project: Option<&ProjectId>) -> bool {
    tables.members.get(&(org.clone(), user.clone(), project.cloned())).is_some_and(|p| p.contains(APP_WRITE_PERMISSION))
}

impl Store for MemoryStore {
    async fn load(&self, key: &AppKey, member: Option<&UserId>, _deadline: Deadline) -> Result<Snapshot, Error> {
        let mut tables = self.tables.lock().unwrap();
        tables.loads += 1;
        let grant = member.and_then(|user| {
            if grants(&tables, &key.org, user, None) {
                Some(Grant::Org)
            } else if grants(&tables, &key.org, user, Some(&key.project)) {
                Some(Grant::Project)
            } else {
                None
            }
        });
        let snapshot = Snapshot { app: tables.apps.get(key).cloned(), grant };
        if let Some(change) = tables.after_load.take() {
            change(&mut tables.apps);
        }
        Ok(snapshot)
    }

    async fn commit(&self, c: &Commit<'_>) -> Result<(), CommitError> {
        let mut tables = self.tables.lock().unwrap();
        tables.commits += 1;
        if let Some(fault) = tables.faults.pop_front() {
            return Err(fault);
        }
        if let Guard::Membership { user, grant } = c.guard {
            let project = matches!(grant, Grant::Project).then_some(&c.key.project);
            if !grants(&tables, &c.key.org, user, project) {
                return Err(CommitError::GuardFailed);
            }
        }
        if tables.events.iter().any(|e| e.key == *c.key && e.sequence == c.next_sequence) {
            return Err(CommitError::Conflict);
        }
        let Some(Ok(app)) = tables.apps.get_mut(c.key) else { return Err(CommitError::Conflict) };
        let rotation_ok = match c.guard {
            Guard::RotationSecret { arn } => app.rotation_secret_arn.as_deref() == Some(arn),
            Guard::Membership { .. } => true,
        };
        if app.sequence != c.seen_sequence
            || app.app_type != c.app_type
            || app.is_removed()
            || !app.uses_secret()
            || !rotation_ok
        {
            return Err(CommitError::Conflict);
        }
        app.secret_hash = Some(c.secret_hash.to_owned());
        app.sequence = c.next_sequence;
        app.previous_secret_hash = c.previous.map(|(hash, _)| hash.to_owned());
        app.previous_secret_expires_at = c.previous.map(|(_, expires)| expires);
        tables.events.push(Event {
            key: c.key.clone(),
            sequence: c.next_sequence,
            actor: c.actor.to_owned(),
            source: c.source,
            request_id: c.request_id.to_owned(),
            created_at: c.change_date,
        });
        Ok(())
    }

    async fn project_org(&self, project: &ProjectId, _deadline: Deadline) -> Result<Option<OrgId>, Error> {
        Ok(self.tables.lock().unwrap().projects.get(project).cloned())
    }
}

/// An active OIDC app with BASIC auth and no secret yet, created at a fixed date.
pub fn oidc_app(key: AppKey) -> App {
    App {
        key,
        app_type: crate::app::TYPE_OIDC.into(),
        state: "ACTIVE".into(),
        auth_method: "BASIC".into(),
        client_id: "client-1".into(),
        secret_hash: None,
        sequence: 0,
        creation_date: crate::app::parse_timestamp("2026-01-02T03:04:05.123456Z").expect("a valid date"),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        rotation_secret_arn: None,
        grant_types: Vec::new(),
        scopes: Vec::new(),
        audiences: Vec::new(),
    }
}

pub fn key(org: &str, project: &str, app: &str) -> AppKey {
    AppKey {
        org: OrgId::parse(org, "org").unwrap(),
        project: ProjectId::parse(project).unwrap(),
        app: AppId::parse(app).unwrap(),
    }
}

impl Directory for MemoryStore {
    async fn client_app(&self, client: Option<&ClientId>, _deadline: Deadline) -> Result<Option<AppKey>, Error> {
        let mut tables = self.tables.lock().unwrap();
        tables.directory_reads += 1;
        if let Some(error) = tables.directory_faults.pop_front() {
            return Err(error);
        }
        Ok(client.and_then(|c| tables.clients.get(c).cloned()))
    }

    async fn app_item(&self, key: Option<&AppKey>, _deadline: Deadline) -> Result<Option<Result<App, Error>>, Error> {
        let mut tables = self.tables.lock().unwrap();
        tables.directory_reads += 1;
        if let Some(error) = tables.directory_faults.pop_front() {
            return Err(error);
        }
        Ok(key.and_then(|k| tables.apps.get(k).cloned()))
    }
}
