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
