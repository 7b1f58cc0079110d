//! Creates the table, apps and memberships in any table, local or on AWS: this function
//! only changes secrets, so something else must create what it changes.
//! Region, credentials and endpoint come from the usual AWS environment; before it writes,
//! it says which table, region and endpoint, and it writes to a loopback endpoint (DynamoDB
//! Local, `AWS_ENDPOINT_URL_DYNAMODB` left over from `make run`) only with `--local`.
//!
//! Exit codes: 0 done; 1 refused or failed, nothing written; 2 bad arguments; 3 the
//! outcome is unknown (it may have been written): every command is safe to run again.
//! (`import`: 1 when any line was not imported, the other lines having been.)
//!
//! Its log (RUST_LOG, on stderr) holds no secret or hash at any level: see `logging`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Parser, Subcommand};
use oidc_client_secret::app::AppKey;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::{AppId, OrgId, ProjectId, UserId};
use oidc_client_secret::import::{self, Rule};
use oidc_client_secret::regenerate::APP_WRITE_PERMISSION;
use oidc_client_secret::secret;
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use oidc_client_secret::store::seed::{Grants, NewApp};
use time::OffsetDateTime;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(about = "Create the table, OIDC apps and memberships that regenerate-secret works on")]
struct Args {
    /// The DynamoDB table.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// Allow a loopback endpoint (DynamoDB Local) in AWS_ENDPOINT_URL_DYNAMODB.
    #[arg(long)]
    local: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which app.
#[derive(ClapArgs)]
struct AppRef {
    #[arg(long)]
    org: String,
    #[arg(long)]
    project: String,
    #[arg(long)]
    app: String,
}

impl AppRef {
    fn key(&self) -> AppKey {
        app_key(&self.org, &self.project, &self.app)
    }
}

/// An app's OAuth grants (SPEC section 13).
#[derive(ClapArgs)]
struct GrantArgs {
    /// A grant type the app's client may use: only client_credentials (repeatable).
    #[arg(long = "grant", value_name = "GRANT_TYPE")]
    grant_types: Vec<String>,
    /// A scope its token requests may be granted (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A project id besides its own that its tokens may name as audience (repeatable).
    #[arg(long = "audience", value_name = "PROJECT_ID")]
    audiences: Vec<String>,
}

impl GrantArgs {
    fn grants_for(self, app: &AppKey) -> Grants {
        let grants = parsed(Grants::new(self.grant_types, self.scopes, self.audiences));
        parsed(grants.check_for(app));
        grants
    }
}

impl std::fmt::Display for AppRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.project, self.app)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (pk/sk, on demand) unless it exists.
    CreateTable,
    /// Create an app unless it exists (an existing app is left as it is), with its client
    /// and project lookups and its OAuth grants; refused when the client id names another
    /// app or another org owns the project, and while any app lacks its lookups (run
    /// `admin index` first).
    App {
        #[command(flatten)]
        app: AppRef,
        #[arg(long)]
        client_id: String,
        #[arg(long = "type", default_value = "OIDC", value_parser = ["OIDC", "API", "SAML"])]
        app_type: String,
        #[arg(long, default_value = "BASIC", value_parser = ["BASIC", "POST", "NONE", "PRIVATE_KEY_JWT"])]
        auth_method: String,
        #[arg(long, default_value = "ACTIVE", value_parser = ["ACTIVE", "INACTIVE", "REMOVED"])]
        state: String,
        /// The Secrets Manager secret allowed to rotate this app.
        #[arg(long)]
        rotation_secret_arn: Option<String>,
        #[command(flatten)]
        grants: GrantArgs,
    },
    /// Replace an app's OAuth grants, scopes and audiences with the ones given (none given:
    /// none left), with an event.
    Grants {
        #[command(flatten)]
        app: AppRef,
        #[command(flatten)]
        grants: GrantArgs,
    },
    /// Bring in the secrets clients already hold, from a JSON-lines file (docs/import.md).
    Import {
        /// One app a line: org, project, app, secretHash or secret, optionally
        /// previousSecretHash or previousSecret with previousSecretExpiresAt.
        #[arg(long)]
        file: PathBuf,
        /// Check every line and its app; write nothing.
        #[arg(long)]
        check: bool,
        /// Replace the secret of an app that has one.
        #[arg(long)]
        replace: bool,
        /// The bcrypt cost for plaintext secrets, and the one other hashes are compared with.
        #[arg(long, env = "SECRET_HASH_COST", default_value_t = secret::DEFAULT_COST,
              value_parser = clap::value_parser!(u32).range(i64::from(secret::MIN_COST)..=i64::from(secret::MAX_COST)))]
        hash_cost: u32,
    },
    /// Name the Secrets Manager secret that may rotate an app (its rotationSecretArn).
    Rotation {
        #[command(flatten)]
        app: AppRef,
        #[arg(long)]
        secret_arn: String,
    },
    /// Give a user permissions in an org, or in one project of it.
    Member {
        #[arg(long)]
        org: String,
        /// Limit the membership to this project.
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        user: String,
        #[arg(long = "permission", default_values_t = [APP_WRITE_PERMISSION.to_owned()])]
        permissions: Vec<String>,
    },
    /// Create the table and the demo org, project, app and member that `make run` uses.
    Demo,
    /// Write the client and project lookups missing for apps created before them.
    Index,
    /// End the previous secret's grace period now: the old secret stops authenticating.
    RevokePrevious {
        #[command(flatten)]
        app: AppRef,
    },
}

fn parsed<T>(result: Result<T, Error>) -> T {
    result.unwrap_or_else(|error| {
        eprintln!("{error}");
        std::process::exit(2)
    })
}

fn app_key(org: &str, project: &str, app: &str) -> AppKey {
    AppKey {
        org: parsed(OrgId::parse(org, "--org")),
        project: parsed(ProjectId::parse(project)),
        app: parsed(AppId::parse(app)),
    }
}

/// Whether an endpoint is this machine: DynamoDB Local, not AWS.
fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// The log on stderr (stdout is the commands' answer), at RUST_LOG's level for this crate
/// and at most INFO for every dependency, as for the functions.
fn init_log() {
    let level = std::env::var("RUST_LOG").ok();
    tracing_subscriber::registry()
        .with(oidc_client_secret::logging::filter(level.as_deref()))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .init();
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    init_log();
    let client = client_from_env().await;
    let region = client.config().region().map_or("(no region)".to_owned(), ToString::to_string);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).ok();
    if let Some(endpoint) = endpoint.as_deref().filter(|e| is_loopback(e))
        && !args.local
    {
        eprintln!(
            "admin: the endpoint {endpoint} (AWS_ENDPOINT_URL_DYNAMODB) is this machine, not DynamoDB in {region}: \
             pass --local to write to DynamoDB Local, or unset it to write to AWS"
        );
        std::process::exit(2);
    }
    eprintln!(
        "admin: table {}, region {region}, endpoint {}",
        args.table,
        endpoint.as_deref().unwrap_or("DynamoDB's own for the region")
    );
    let store = DynamoStore::new(client, args.table);
    if let Err(error) = run(&store, args.command).await {
        eprintln!("admin: {error}{}", error.log_detail().map(|d| format!(": {d}")).unwrap_or_default());
        if matches!(error, Error::OutcomeUnknown(_)) {
            eprintln!("admin: it may have been written; every admin command is safe to run again");
            std::process::exit(3);
        }
        std::process::exit(1);
    }
}

async fn run(store: &DynamoStore, command: Command) -> Result<(), Error> {
    match command {
        Command::CreateTable => {
            let created = store.create_table().await?;
            println!("table {}: {}", store.table(), if created { "created" } else { "exists" });
        }
        Command::App { app, client_id, app_type, auth_method, state, rotation_secret_arn, grants } => {
            let grants = grants.grants_for(&app.key());
            let new = NewApp { key: app.key(), client_id, app_type, state, auth_method, rotation_secret_arn, grants };
            let created = store.create_app(&new).await?;
            println!("app {app}: {}", if created { "created" } else { "exists" });
        }
        Command::Grants { app, grants } => {
            let grants = grants.grants_for(&app.key());
            match store.set_grants(&app.key(), &grants, "admin").await? {
                Some(sequence) => println!("app {app}: {grants} (sequence {sequence})"),
                None => println!("app {app}: {grants} already"),
            }
        }
        Command::Import { file, check, replace, hash_cost } => import(store, &file, check, replace, hash_cost).await?,
        Command::Rotation { app, secret_arn } => {
            if !store.set_rotation_secret(&app.key(), &secret_arn).await? {
                return Err(Error::AppNotFound);
            }
            println!("app {app}: rotated by {secret_arn}");
        }
        Command::Member { org, project, user, permissions } => {
            let org = parsed(OrgId::parse(&org, "--org"));
            let project = project.map(|p| parsed(ProjectId::parse(&p)));
            let user = parsed(UserId::parse(&user, "--user"));
            store.grant(&org, project.as_ref(), &user, &permissions).await?;
            println!(
                "member {user} of {org}{}: {}",
                project.map(|p| format!("/{p}")).unwrap_or_default(),
                permissions.join(",")
            );
        }
        Command::RevokePrevious { app } => match store.revoke_previous(&app.key(), "admin").await? {
            Some(sequence) => println!("app {app}: previous secret revoked (sequence {sequence})"),
            None => println!("app {app}: no previous secret to revoke"),
        },
        Command::Index => {
            let report = store.index_lookups().await?;
            println!(
                "index of {}: {} apps, {} lookups written or already right, {} unreadable app items",
                store.table(),
                report.apps,
                report.written,
                report.unreadable
            );
            if !report.conflicts.is_empty() {
                for conflict in &report.conflicts {
                    eprintln!("admin: not indexed: {conflict}");
                }
                return Err(Error::invalid(format!(
                    "{} client ids or projects claimed twice, left unindexed: change or remove all but one of \
                     their apps, then run `admin index` again",
                    report.conflicts.len()
                )));
            }
        }
        Command::Demo => {
            store.seed_demo().await?;
            println!(
                "demo data in {}: org demo-org, project demo-project, app demo-app, member demo-user",
                store.table()
            );
        }
    }
    Ok(())
}

/// `admin import` (SPEC section 14): every line checked, then written in a transaction of
/// its own; a refusal names the line and the rule, never a value, and the other lines go
/// on. A store failure other than a lost race stops the import there (what follows was
/// not tried). Nothing of the file is printed but the ids of the apps imported.
async fn import(store: &DynamoStore, file: &Path, check: bool, replace: bool, cost: u32) -> Result<(), Error> {
    let content = std::fs::read(file).map_err(|e| Error::invalid(format!("{}: {e}", file.display())))?;
    let now = OffsetDateTime::now_utc();
    let mut first_line: HashMap<AppKey, usize> = HashMap::new();
    let (mut lines, mut imported, mut refused, mut failed) = (0, 0, 0, 0);
    let mut other_costs = Vec::new();
    let mut stopped = None;
    for (number, line) in content.split(|b| *b == b'\n').enumerate().map(|(i, line)| (i + 1, line)) {
        let Some(entry) = import::parse_line(line, now) else { continue };
        lines += 1;
        let entry = entry.and_then(|entry| match first_line.get(&entry.key) {
            Some(first) => Err(Rule::Repeated(*first)),
            None => {
                first_line.insert(entry.key.clone(), number);
                Ok(entry)
            }
        });
        let outcome = match entry {
            Err(rule) => Ok(Err(rule)),
            Ok(entry) if check => {
                store.app(&entry.key).await.map(|app| import::judge(app.as_ref(), replace).map(|()| entry))
            }
            Ok(entry) => import_line(store, &entry, replace, cost).await.map(|done| done.map(|()| entry)),
        };
        let name = |key: &AppKey| format!("{}/{}/{}", key.org, key.project, key.app);
        match outcome {
            Ok(Ok(entry)) => {
                imported += 1;
                let costs = entry.other_costs(cost);
                if !costs.is_empty() {
                    other_costs.push((name(&entry.key), costs));
                }
                if !check {
                    println!("line {number}: {} imported", name(&entry.key));
                }
            }
            Ok(Err(rule)) => {
                refused += 1;
                eprintln!("line {number}: refused: {rule}");
            }
            Err(Error::Conflict) => {
                failed += 1;
                eprintln!("line {number}: not imported: {}", Error::Conflict);
            }
            Err(error) => {
                eprintln!("line {number}: stopped: {error}");
                stopped = Some((number, error));
                break;
            }
        }
    }
    let verb = if check { "would be imported" } else { "imported" };
    let mut summary = format!("{}: {imported} {verb}, {refused} refused", file.display());
    if failed > 0 {
        summary.push_str(&format!(", {failed} not imported (the app changed meanwhile)"));
    }
    if let Some((number, _)) = &stopped {
        summary.push_str(&format!(", stopped at line {number}: the lines after it were not tried"));
    }
    if check {
        summary.push_str("; --check: nothing written");
    }
    println!("{summary}");
    if !other_costs.is_empty() {
        println!(
            "apps whose hash cost is not SECRET_HASH_COST {cost} (their clients' denials take another time than the \
             others' until their next rotation):"
        );
        for (app, costs) in &other_costs {
            let costs: Vec<String> = costs.iter().map(u32::to_string).collect();
            println!("  {app}: cost {}", costs.join(", "));
        }
    }
    if content.split(|b| *b == b'\n').any(import::names_plaintext) {
        eprintln!(
            "admin: {} holds plaintext secrets: delete it, and every copy, once they are imported (the table keeps \
             only their hashes)",
            file.display()
        );
    }
    match stopped {
        Some((_, error)) => Err(error),
        None if imported < lines => {
            let not = if check { "would not be imported" } else { "not imported" };
            Err(Error::invalid(format!("{} of {lines} lines {not}", lines - imported)))
        }
        None => Ok(()),
    }
}

/// One checked line written: its hashes (a plaintext hashed at `cost`), one transaction.
async fn import_line(
    store: &DynamoStore,
    entry: &import::Entry,
    replace: bool,
    cost: u32,
) -> Result<Result<(), Rule>, Error> {
    let hash = entry.secret.hash(cost)?;
    let previous = match &entry.previous {
        Some((given, expires)) => Some((given.hash(cost)?, *expires)),
        None => None,
    };
    let previous = previous.as_ref().map(|(hash, expires)| (hash.as_str(), *expires));
    Ok(store.import_secret(&entry.key, &hash, previous, replace).await?.map(drop))
}
