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

fn names(item: &Item) -> Vec<&str> {
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort();
    names
}

fn set(item: &Item, name: &str) -> Option<Vec<String>> {
    match item.get(name)? {
        AttributeValue::Ss(values) => {
            let mut values = values.clone();
            values.sort();
            Some(values)
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn admin_app_writes_the_grants_and_admin_grants_replaces_them_with_an_event() {
    let store = empty_table().await;
    let t = store.table();
    let which = ["--org", ORG, "--project", PROJECT, "--app", APP];
    let created = admin(
        t,
        &[
            &["--local", "app"][..],
            &which,
            &["--client-id", "c-1", "--grant", "client_credentials", "--scope", "read", "--scope", "write"],
            &["--scope", "read", "--audience", "proj-2", "--audience", "proj-3"],
        ]
        .concat(),
    );
    assert_eq!(out(&created).0, Some(0), "{:?}", out(&created));
    let app_key = key(ORG, PROJECT, APP);
    let written = store.app(&app_key).await.unwrap().unwrap();
    assert_eq!(
        (written.grant_types, written.scopes, written.audiences, written.sequence),
        (
            vec!["client_credentials".into()],
            vec!["read".into(), "write".into()],
            vec!["proj-2".into(), "proj-3".into()],
            0
        )
    );
    // Replaced: the scope given stays, the sets not given are removed (no empty sets).
    let (code, stdout, stderr) = out(&admin(t, &[&["--local", "grants"][..], &which, &["--scope", "read"]].concat()));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "app org-a/proj-1/app-1: grant types none; scopes read; audiences none (sequence 1)\n");
    let raw = item(&store, (format!("ORG#{ORG}"), format!("APP#{PROJECT}#{APP}"))).await.unwrap();
    assert_eq!(
        (set(&raw, "grantTypes"), set(&raw, "scopes"), set(&raw, "audiences")),
        (None, Some(vec!["read".into()]), None)
    );
    assert_eq!(text(&raw, "sequence"), "1");
    let written = events(&store, ORG, PROJECT, APP).await;
    assert_eq!(written.len(), 1);
    assert_eq!(names(&written[0]), ["actor", "createdAt", "pk", "requestId", "sequence", "sk", "source", "type"]);
    assert_eq!(
        (
            text(&written[0], "type"),
            text(&written[0], "sequence"),
            text(&written[0], "source"),
            text(&written[0], "actor")
        ),
        ("project.application.oauth.grants.changed", "1", "admin", "admin")
    );
    assert_eq!(text(&written[0], "createdAt"), text(&raw, "changeDate"));
    // The same grants again: nothing to write.
    let (code, stdout, _) = out(&admin(t, &[&["--local", "grants"][..], &which, &["--scope", "read"]].concat()));
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "app org-a/proj-1/app-1: grant types none; scopes read; audiences none already\n")
    );
    assert_eq!(store.app(&app_key).await.unwrap().unwrap().sequence, 1);
    // A missing app, a REMOVED one: refused, exit 1.
    let missing = ["--local", "grants", "--org", ORG, "--project", PROJECT, "--app", "nope", "--scope", "x"];
    let (code, _, stderr) = out(&admin(t, &missing));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("Application doesn't exist"), "{stderr}");
    set_app_attribute(&store, &app_key, "state", Some(AttributeValue::S("REMOVED".into()))).await;
    assert_eq!(admin(t, &[&["--local", "grants"][..], &which].concat()).status.code(), Some(1));
    assert_eq!(events(&store, ORG, PROJECT, APP).await.len(), 1, "nothing written");
}

#[tokio::test]
async fn grants_outside_their_rules_are_bad_arguments_and_write_nothing() {
    let f = fixture().await;
    let before = scan(&f.store).await;
    let which = ["--local", "grants", "--org", ORG, "--project", PROJECT, "--app", APP];
    for bad in [
        &["--grant", "password"][..],
        &["--grant", "client_credentials", "--scope", "read write"],
        &["--scope", "quote\"d"],
        &["--scope", "back\\slash"],
        &["--scope", ""],
        &["--scope", "caf\u{e9}"],
        &["--audience", "bad#project"],
        &["--audience", PROJECT],
    ] {
        let output = admin(f.store.table(), &[&which[..], bad].concat());
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {:?}", out(&output));
        let created = ["--local", "app", "--org", ORG, "--project", PROJECT, "--app", "app-9", "--client-id", "c-9"];
        assert_eq!(admin(f.store.table(), &[&created[..], bad].concat()).status.code(), Some(2), "{bad:?}");
    }
    let fine = ["--scope", "urn:zitadel:iam:org:project:id:zitadel:aud", "--scope", "!#[]~"];
    assert_eq!(admin(f.store.table(), &[&which[..], &fine].concat()).status.code(), Some(0));
    assert_ne!(scan(&f.store).await, before);
}

#[tokio::test]
async fn admin_demo_gives_the_demo_app_the_client_credentials_grant_even_on_an_older_table() {
    let store = empty_table().await;
    // A demo app from before grants.
    assert!(
        store
            .put_app(&NewApp::oidc(key("demo-org", "demo-project", "demo-app"), "demo-app@demo-project"))
            .await
            .unwrap()
    );
    for sequence in [1, 1] {
        let (code, _, stderr) = out(&admin(store.table(), &["--local", "demo"]));
        assert_eq!(code, Some(0), "{stderr}");
        let demo = app(&store, "demo-org", "demo-project", "demo-app").await;
        assert_eq!(
            (demo.grant_types, demo.scopes, demo.sequence),
            (vec!["client_credentials".to_owned()], vec!["read".to_owned(), "write".to_owned()], sequence),
            "written once, then left as it is"
        );
    }
    let fresh = dynamodb_store(&unique_table()).await;
    assert_eq!(out(&admin(fresh.table(), &["--local", "demo"])).0, Some(0));
    let demo = app(&fresh, "demo-org", "demo-project", "demo-app").await;
    assert_eq!((demo.grant_types.len(), demo.scopes.len(), demo.sequence), (1, 2, 0));
}

#[tokio::test]
async fn admin_revoke_previous_removes_the_previous_secret_with_an_event_once() {
    let f = fixture().await;
    let which = key(ORG, PROJECT, APP);
    set_app_attribute(&f.store, &which, "previousSecretHash", Some(AttributeValue::S("$2b$04$x".into()))).await;
    set_app_attribute(
        &f.store,
        &which,
        "previousSecretExpiresAt",
        Some(AttributeValue::S("2099-01-01T00:00:00Z".into())),
    )
    .await;
    set_app_attribute(&f.store, &which, "sequence", Some(AttributeValue::N("4".into()))).await;
    let revoke = ["--local", "revoke-previous", "--org", ORG, "--project", PROJECT, "--app", APP];
    let (code, stdout, stderr) = out(&admin(f.store.table(), &revoke));
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "app org-a/proj-1/app-1: previous secret revoked (sequence 5)\n"),
        "{stderr}"
    );
    let revoked = app(&f.store, ORG, PROJECT, APP).await;
    assert_eq!((revoked.previous_secret_hash, revoked.previous_secret_expires_at, revoked.sequence), (None, None, 5));
    let written = events(&f.store, ORG, PROJECT, APP).await;
    assert_eq!(written.len(), 1);
    assert_eq!(
        (text(&written[0], "type"), text(&written[0], "sequence"), text(&written[0], "source")),
        ("project.application.config.secret.previous.revoked", "5", "admin")
    );
    let (code, stdout, _) = out(&admin(f.store.table(), &revoke));
    assert_eq!((code, stdout.as_str()), (Some(0), "app org-a/proj-1/app-1: no previous secret to revoke\n"));
    assert_eq!(events(&f.store, ORG, PROJECT, APP).await.len(), 1);
}
