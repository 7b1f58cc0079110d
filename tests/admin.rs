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
use oidc_client_secret::store::keys::{client_lookup_key, project_lookup_key};
use oidc_client_secret::store::seed::NewApp;

async fn item(store: &oidc_client_secret::store::dynamodb::DynamoStore, (pk, sk): (String, String)) -> Option<Item> {
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

#[tokio::test]
async fn admin_index_writes_the_lookups_missing_for_older_apps_and_reports_conflicts() {
    let f = fixture().await;
    // Two apps as an older admin wrote them: no lookups; the second reuses client-1.
    for (app, client_id) in [("old-1", "client-old"), ("old-2", "client-1")] {
        let mut raw = Item::from([
            ("pk".to_owned(), AttributeValue::S(format!("ORG#{OTHER_ORG}"))),
            ("sk".to_owned(), AttributeValue::S(format!("APP#proj-old#{app}"))),
        ]);
        for (name, value) in
            [("appType", "OIDC"), ("state", "ACTIVE"), ("authMethod", "BASIC"), ("clientId", client_id)]
        {
            raw.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
        }
        f.store.client().put_item().table_name(f.store.table()).set_item(Some(raw)).send().await.unwrap();
    }
    let report = f.store.index_lookups().await.unwrap();
    assert_eq!((report.apps, report.written, report.unreadable), (3, 5, 0), "{report:?}");
    assert_eq!(report.conflicts, ["client id client-1 of org-b/proj-old/old-2"]);
    let lookup = item(&f.store, client_lookup_key(&client("client-old"))).await.expect("indexed");
    assert_eq!(text(&lookup, "appId"), "old-1");
    let kept = item(&f.store, client_lookup_key(&client("client-1"))).await.unwrap();
    assert_eq!(text(&kept, "appId"), APP, "the lookup never answers with another client's app");
    // Run again: nothing new, the same conflict.
    let again = f.store.index_lookups().await.unwrap();
    assert_eq!((again.written, again.conflicts.len()), (5, 1));
}
