//! The `admin` binary as an operator runs it: it says where it writes before it writes,
//! and a loopback endpoint left in the shell from the local steps is refused unless asked for.

mod support;

use std::process::Command;

use support::*;

fn admin(table: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_admin")).arg("--table").arg(table).args(args).output().expect("run admin")
}

#[tokio::test]
async fn admin_refuses_a_loopback_endpoint_unless_asked_and_names_where_it_writes() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make test`");
    let table = unique_table();
    let refused = admin(&table, &["create-table"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&endpoint) && stderr.contains("--local"), "{stderr}");
    let store = dynamodb_store(&table).await;
    let tables = store.client().list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&table), "nothing was created");

    let created = admin(&table, &["--local", "create-table"]);
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert_eq!(created.status.code(), Some(0), "{stderr}");
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    assert!(stderr.contains(&format!("admin: table {table}, region {region}, endpoint {endpoint}")), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&created.stdout).trim(), format!("table {table}: created"));

    let missing = admin(
        &table,
        &["--local", "rotation", "--org", ORG, "--project", PROJECT, "--app", APP, "--secret-arn", "arn:x"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("Application doesn't exist"));
}

use aws_sdk_dynamodb::types::AttributeValue;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::{ClientId, ProjectId};
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::keys::{client_lookup_key, project_lookup_key};
use oidc_client_secret::store::seed::NewApp;

async fn item(store: &DynamoStore, (pk, sk): (String, String)) -> Option<Item> {
    let key = Item::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk))]);
    store
        .client()
        .get_item()
        .table_name(store.table())
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn client(id: &str) -> ClientId {
    ClientId::parse(id, "client").unwrap()
}

#[tokio::test]
async fn an_app_is_written_with_its_client_and_project_lookups() {
    let f = fixture().await;
    let lookup = item(&f.store, client_lookup_key(&client("client-1"))).await.expect("client lookup");
    assert_eq!((text(&lookup, "orgId"), text(&lookup, "projectId"), text(&lookup, "appId")), (ORG, PROJECT, APP));
    let project =
        item(&f.store, project_lookup_key(&ProjectId::parse(PROJECT).unwrap())).await.expect("project lookup");
    assert_eq!(text(&project, "orgId"), ORG);
    let mut names: Vec<&String> = lookup.keys().chain(project.keys()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["appId", "orgId", "pk", "projectId", "sk"], "a lookup never holds a secret or a hash");
    // A second app of the same project and org shares the project lookup.
    assert!(f.store.put_app(&NewApp::oidc(key(ORG, PROJECT, "app-2"), "client-2")).await.unwrap());
}

#[tokio::test]
async fn a_taken_client_id_or_a_project_of_another_org_is_refused_and_nothing_is_written() {
    let f = fixture().await;
    let before = scan(&f.store).await;
    let taken = f.store.put_app(&NewApp::oidc(key(OTHER_ORG, "proj-9", "app-9"), "client-1")).await.unwrap_err();
    assert!(
        matches!(&taken, Error::InvalidArgument(m) if m.contains("client id client-1 already names another app")),
        "{taken:?}"
    );
    let owned = f.store.put_app(&NewApp::oidc(key(OTHER_ORG, PROJECT, "app-9"), "client-9")).await.unwrap_err();
    assert!(
        matches!(&owned, Error::InvalidArgument(m) if m.contains("project proj-1 belongs to another organization")),
        "{owned:?}"
    );
    assert_eq!(scan(&f.store).await, before, "nothing was written");
    // The same app again: it exists, and nothing changes.
    assert!(!f.store.put_app(&NewApp::oidc(key(ORG, PROJECT, APP), "client-1")).await.unwrap());
    assert_eq!(scan(&f.store).await, before);
}

/// An app item as an admin from before the lookups wrote it: no client or project lookup.
async fn older_app(store: &DynamoStore, org: &str, project: &str, app: &str, client_id: &str) {
    let mut raw = Item::from([
        ("pk".to_owned(), AttributeValue::S(format!("ORG#{org}"))),
        ("sk".to_owned(), AttributeValue::S(format!("APP#{project}#{app}"))),
    ]);
    for (name, value) in [("appType", "OIDC"), ("state", "ACTIVE"), ("authMethod", "BASIC"), ("clientId", client_id)] {
        raw.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
    }
    store.client().put_item().table_name(store.table()).set_item(Some(raw)).send().await.unwrap();
}

fn out(output: &std::process::Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_index_writes_the_lookups_missing_for_older_apps_and_reports_conflicts() {
    let f = fixture().await;
    // Two apps as an older admin wrote them: no lookups; the second reuses client-1.
    older_app(&f.store, OTHER_ORG, "proj-old", "old-1", "client-old").await;
    older_app(&f.store, OTHER_ORG, "proj-old", "old-2", "client-1").await;
    let report = f.store.index_lookups().await.unwrap();
    // client-old, proj-old written; proj-1 already right; client-1 claimed by two apps.
    assert_eq!((report.apps, report.written, report.unreadable), (3, 3, 0), "{report:?}");
    assert_eq!(
        report.conflicts,
        [
            "client id client-1: claimed by org-a/proj-1/app-1 and org-b/proj-old/old-2 (its lookup names org-a/proj-1/app-1)"
        ]
    );
    let lookup = item(&f.store, client_lookup_key(&client("client-old"))).await.expect("indexed");
    assert_eq!(text(&lookup, "appId"), "old-1");
    let kept = item(&f.store, client_lookup_key(&client("client-1"))).await.unwrap();
    assert_eq!(text(&kept, "appId"), APP, "the lookup never answers with another client's app");
    // Run again: nothing new, the same conflict.
    let again = f.store.index_lookups().await.unwrap();
    assert_eq!((again.written, again.conflicts), (3, report.conflicts));
}

#[tokio::test]
async fn admin_app_refuses_while_an_older_app_lacks_its_lookups_and_writes_nothing() {
    let f = fixture().await;
    older_app(&f.store, OTHER_ORG, "proj-old", "old-1", "client-old").await;
    let before = scan(&f.store).await;
    // Without the check, this app would take client-old and proj-old from org-b's app.
    let app = ["--local", "app", "--org", "org-c", "--project", "proj-old", "--app", "new", "--client-id"];
    let (code, stdout, stderr) = out(&admin(f.store.table(), &[&app[..], &["client-old"]].concat()));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("nothing written: 1 app(s) of the table lack their client or project lookup"), "{stderr}");
    assert!(stderr.contains("(first: org-b/proj-old/old-1)") && stderr.contains("run `admin index`"), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(scan(&f.store).await, before, "nothing was written");
    // An app whose project lookup is missing counts too; once indexed, admin app writes again.
    let (code, _, stderr) = out(&admin(f.store.table(), &["--local", "index"]));
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = out(&admin(f.store.table(), &[&app[..], &["client-old"]].concat()));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("client id client-old already names another app"), "{stderr}");
    let fresh = ["--local", "app", "--org", "org-c", "--project", "proj-new", "--app", "new", "--client-id", "c-new"];
    let (code, stdout, stderr) = out(&admin(f.store.table(), &fresh));
    assert_eq!((code, stdout.as_str()), (Some(0), "app org-c/proj-new/new: created\n"), "{stderr}");
}

#[tokio::test]
async fn admin_index_leaves_a_client_id_or_project_two_older_apps_claim_unwritten_and_names_both() {
    let store = empty_table().await;
    older_app(&store, ORG, "proj-x", "x-1", "shared").await;
    older_app(&store, OTHER_ORG, "proj-y", "y-1", "shared").await;
    older_app(&store, ORG, "proj-x", "x-2", "own").await;
    older_app(&store, "org-c", "proj-x", "z-1", "c-z").await;
    let (code, stdout, stderr) = out(&admin(store.table(), &["--local", "index"]));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("4 apps, 3 lookups written or already right"), "{stdout}");
    for conflict in [
        "admin: not indexed: client id shared: claimed by org-a/proj-x/x-1 and org-b/proj-y/y-1\n",
        "admin: not indexed: project proj-x: claimed by org-a/proj-x/x-1 and org-c/proj-x/z-1\n",
    ] {
        assert!(stderr.contains(conflict), "{conflict}: {stderr}");
    }
    assert!(item(&store, client_lookup_key(&client("shared"))).await.is_none(), "the scan order decides nothing");
    assert!(item(&store, project_lookup_key(&ProjectId::parse("proj-x").unwrap())).await.is_none());
    let own = item(&store, client_lookup_key(&client("own"))).await.expect("an uncontested client id");
    assert_eq!(text(&own, "appId"), "x-2");
    assert!(item(&store, client_lookup_key(&client("c-z"))).await.is_some());
    let y = item(&store, project_lookup_key(&ProjectId::parse("proj-y").unwrap())).await.expect("proj-y");
    assert_eq!(text(&y, "orgId"), OTHER_ORG);
    // Until someone settles them, admin app stays refused.
    let new = ["--local", "app", "--org", ORG, "--project", "proj-n", "--app", "n", "--client-id", "c-n"];
    assert_eq!(admin(store.table(), &new).status.code(), Some(1));
}
