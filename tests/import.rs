//! `admin import` as an operator runs it (SPEC section 14), through the built binary against
//! DynamoDB Local: what it imports authenticates through the shipped `verify-secret` logic
//! (the library's `Authenticator` on the `DynamoStore`), what it refuses writes nothing and
//! is reported by line and rule, and nothing of the file reaches its output or its log.

#[path = "support/proxy.rs"]
#[allow(dead_code)] // one fault of the proxy is used here
mod proxy;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use oidc_client_secret::authenticate::{Authenticator, Credentials, Matched};
use oidc_client_secret::deadline::Deadline;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use serde_json::{Value, json};
use support::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A secret of the kind a provider hands out: 40 printable characters, punctuation included.
fn plaintext() -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/ !*";
    (0..40).map(|_| char::from(alphabet[rand::random_range(0..alphabet.len())])).collect()
}

/// A bcrypt hash as ZITADEL stores one: `$2a$`, at `cost`.
fn zitadel_hash(secret: &str, cost: u32) -> String {
    bcrypt::hash(secret, cost).unwrap().replacen("$2b$", "$2a$", 1)
}

fn at(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset).format(&Rfc3339).unwrap()
}

fn line(app: &str, fields: Value) -> String {
    let mut line = json!({"org": ORG, "project": PROJECT, "app": app});
    line.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    line.to_string()
}

fn write_file(store: &DynamoStore, lines: &[String]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-import.jsonl", store.table()));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn import(store: &DynamoStore, file: &PathBuf, flags: &[&str]) -> Output {
    admin_import(store.table(), file, flags).output().expect("run admin")
}

fn admin_import(table: &str, file: &PathBuf, flags: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin"));
    command
        .args(["--table", table, "--local", "import", "--file"])
        .arg(file)
        .args(flags)
        .env("RUST_LOG", "trace")
        .env_remove("SECRET_HASH_COST");
    command
}

fn seed(store: &DynamoStore, id: &str, app_type: &str, auth_method: &str) -> impl Future<Output = ()> {
    let new = NewApp {
        app_type: app_type.into(),
        auth_method: auth_method.into(),
        ..NewApp::oidc(key(ORG, PROJECT, id), format!("{id}-client"))
    };
    seed_app(store, new)
}

async fn verify(store: &DynamoStore, app: &str, secret: &str) -> Result<Matched, String> {
    let authenticator = Authenticator::new(store.clone(), 4);
    let credentials = Credentials { client_id: Some(format!("{app}-client")), secret: Some(secret.to_owned()) };
    let authentication = authenticator.authenticate(&credentials, Deadline::for_request()).await;
    authentication.result.map_err(|denial| denial.reason().to_owned())
}

/// The item of each app, to compare before and after.
async fn items_of(store: &DynamoStore, apps: &[&str]) -> Vec<Option<Item>> {
    let mut items = Vec::new();
    for app in apps {
        let key = key(ORG, PROJECT, app);
        let output = store
            .client()
            .get_item()
            .table_name(store.table())
            .key("pk", AttributeValue::S(format!("ORG#{}", key.org)))
            .key("sk", AttributeValue::S(format!("APP#{}#{}", key.project, key.app)))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        items.push(output.item);
    }
    items
}

/// Asserts that nothing of the file (no secret, no hash, no line) is in the output.
fn assert_nothing_echoed(output: &Output, secrets: &[String], lines: &[String]) {
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    for secret in secrets {
        assert!(!all.contains(secret.as_str()), "a secret or hash in the output:\n{all}");
        // A hash's salt and digest, however it would be cut.
        if secret.starts_with("$2") {
            assert!(!all.contains(&secret[7..29]) && !all.contains(&secret[29..]), "a hash's part in:\n{all}");
        }
    }
    for line in lines {
        assert!(!all.contains(line.as_str()), "a line of the file in:\n{all}");
        assert!(!all.contains(&line[..line.len().min(24)]), "the start of a line in:\n{all}");
    }
}

#[tokio::test]
async fn imported_secrets_authenticate_and_every_refused_line_writes_nothing() {
    let store = empty_table().await;
    for (id, app_type, method) in [
        ("zitadel", "OIDC", "BASIC"),
        ("okta", "API", "POST"),
        ("cognito", "OIDC", "BASIC"),
        ("other-cost", "OIDC", "POST"),
        ("spare", "OIDC", "BASIC"),
        ("saml", "SAML", "BASIC"),
        ("spa", "OIDC", "NONE"),
        ("has-secret", "OIDC", "BASIC"),
    ] {
        seed(&store, id, app_type, method).await;
    }
    let held = plaintext();
    let held_hash = bcrypt::hash(&held, 4).unwrap();
    set_app_attribute(
        &store,
        &key(ORG, PROJECT, "has-secret"),
        "secretHash",
        Some(AttributeValue::S(held_hash.clone())),
    )
    .await;

    let (zitadel, okta, cognito, cognito_old, other) =
        (plaintext(), plaintext(), plaintext(), plaintext(), plaintext());
    let zitadel_hashed = zitadel_hash(&zitadel, 4);
    assert!(zitadel_hashed.starts_with("$2a$04$"));
    let other_hash = bcrypt::hash(&other, 5).unwrap().replacen("$2b$", "$2y$", 1);
    let grace = time::Duration::seconds(10);
    let expires = OffsetDateTime::now_utc() + grace;
    let (too_long, unprintable) = ("x".repeat(73), format!("{}\u{7f}", "y".repeat(20)));
    let refused_hash = zitadel_hash(&plaintext(), 4);
    let lines = vec![
        line("zitadel", json!({"secretHash": zitadel_hashed})),
        line("okta", json!({"secret": okta})),
        line(
            "cognito",
            json!({"secret": cognito, "previousSecret": cognito_old, "previousSecretExpiresAt": expires.format(&Rfc3339).unwrap()}),
        ),
        line("other-cost", json!({"secretHash": other_hash})),
        line("spare", json!({"secretHash": refused_hash.replacen("$2a$", "$2x$", 1)})),
        line("spare", json!({"secretHash": refused_hash.replacen("$2a$04$", "$2a$17$", 1)})),
        line("spare", json!({"secret": too_long})),
        line("spare", json!({"secret": unprintable})),
        line("nowhere", json!({"secret": plaintext()})),
        line("saml", json!({"secret": plaintext()})),
        line("spa", json!({"secret": plaintext()})),
        line("has-secret", json!({"secret": plaintext()})),
        line(
            "spare",
            json!({"secret": plaintext(), "previousSecret": plaintext(), "previousSecretExpiresAt": at(-grace)}),
        ),
        line(
            "spare",
            json!({"secret": plaintext(), "previousSecret": plaintext(), "previousSecretExpiresAt": at(time::Duration::days(31))}),
        ),
        format!(r#"{{"org":"{ORG}","project":"{PROJECT}","app":"spare","secret":"{}"#, plaintext()),
    ];
    let refused_apps = ["spare", "saml", "spa", "has-secret"];
    let before = items_of(&store, &refused_apps).await;
    let file = write_file(&store, &lines);
    let output = import(&store, &file, &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");

    let rules = [
        (5, "secretHash is no bcrypt hash: it starts with $2a$, $2b$ or $2y$"),
        (6, "secretHash's bcrypt cost is not 4 to 16"),
        (7, "secret is not 16 to 72 bytes"),
        (8, "secret has a byte outside printable ASCII (0x20 to 0x7E)"),
        (9, "no such app"),
        (10, "the app is of type SAML: only OIDC and API apps have secrets"),
        (11, "the app's auth method NONE uses no secret"),
        (12, "the app has a secret already (--replace replaces it)"),
        (13, "previousSecretExpiresAt is not in the future"),
        (14, "previousSecretExpiresAt is more than 30 days ahead"),
        (15, "malformed JSON"),
    ];
    let reported: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = rules.iter().map(|(n, rule)| format!("line {n}: refused: {rule}")).collect();
    assert_eq!(reported, expected, "{stderr}");
    let name = |app: &str| format!("{ORG}/{PROJECT}/{app}");
    assert_eq!(
        stdout,
        format!(
            "line 1: {} imported\nline 2: {} imported\nline 3: {} imported\nline 4: {} imported\n\
             {}: 4 imported, 11 refused\n\
             apps whose hash cost is not SECRET_HASH_COST 4 (their clients' denials take another time than the \
             others' until their next rotation):\n  {}: cost 5\n",
            name("zitadel"),
            name("okta"),
            name("cognito"),
            name("other-cost"),
            file.display(),
            name("other-cost"),
        )
    );
    assert!(stderr.contains("holds plaintext secrets: delete it"), "{stderr}");
    // The log (RUST_LOG=trace, on stderr) says what changed, and nothing of the file.
    assert!(stderr.contains("admin: app changed") && stderr.contains("app=org-a/proj-1/okta"), "{stderr}");
    assert!(stderr.contains("admin: 11 of 15 lines not imported"), "{stderr}");
    let mut secrets = vec![zitadel.clone(), okta.clone(), cognito.clone(), cognito_old.clone(), other.clone()];
    secrets.extend([zitadel_hashed.clone(), other_hash.clone(), refused_hash.clone(), too_long.clone(), unprintable]);
    assert_nothing_echoed(&output, &secrets, &lines);

    // Refused lines wrote nothing; the others are as section 5 says: sequence 1, one event.
    assert_eq!(items_of(&store, &refused_apps).await, before, "nothing written for a refused line");
    for app in refused_apps {
        assert!(events(&store, ORG, PROJECT, app).await.is_empty(), "{app}");
    }
    for id in ["zitadel", "okta", "cognito", "other-cost"] {
        let imported = app(&store, ORG, PROJECT, id).await;
        assert_eq!(imported.sequence, 1, "{id}");
        let events = events(&store, ORG, PROJECT, id).await;
        assert_eq!(events.len(), 1, "{id}");
        let mut names: Vec<&str> = events[0].keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["actor", "createdAt", "pk", "requestId", "sequence", "sk", "source", "type"]);
        assert_eq!(
            (text(&events[0], "type"), text(&events[0], "sequence"), text(&events[0], "source")),
            ("project.application.config.secret.imported", "1", "admin")
        );
    }
    let stored = app(&store, ORG, PROJECT, "zitadel").await;
    assert_eq!(stored.secret_hash.as_deref(), Some(zitadel_hashed.as_str()), "a hash is kept as it is");
    let stored = app(&store, ORG, PROJECT, "okta").await;
    assert!(stored.secret_hash.as_deref().is_some_and(|h| h.starts_with("$2b$04$")), "hashed at SECRET_HASH_COST");
    assert_eq!(
        app(&store, ORG, PROJECT, "cognito").await.previous_secret_expires_at.map(|e| e.unix_timestamp()),
        Some(expires.unix_timestamp())
    );

    // The shipped verification: each imported secret, the previous one until its expiry.
    assert_eq!(verify(&store, "zitadel", &zitadel).await, Ok(Matched::Current));
    assert_eq!(verify(&store, "okta", &okta).await, Ok(Matched::Current));
    assert_eq!(verify(&store, "other-cost", &other).await, Ok(Matched::Current));
    assert_eq!(verify(&store, "cognito", &cognito).await, Ok(Matched::Current));
    assert_eq!(verify(&store, "cognito", &cognito_old).await, Ok(Matched::Previous));
    assert_eq!(verify(&store, "zitadel", &okta).await, Err("wrong secret".into()));
    assert_eq!(verify(&store, "has-secret", &held).await, Ok(Matched::Current), "not replaced");
    let left = expires - OffsetDateTime::now_utc();
    assert!(left > time::Duration::ZERO, "the test took too long to see the grace window");
    tokio::time::sleep(Duration::try_from(left).unwrap() + Duration::from_millis(200)).await;
    assert_eq!(verify(&store, "cognito", &cognito_old).await, Err("wrong secret".into()), "past its expiry");
    assert_eq!(verify(&store, "cognito", &cognito).await, Ok(Matched::Current));
}

#[tokio::test]
async fn replace_takes_the_place_of_a_secret_and_of_its_previous_one() {
    let store = empty_table().await;
    seed(&store, "has-secret", "OIDC", "BASIC").await;
    let which = key(ORG, PROJECT, "has-secret");
    let (held, held_old, new) = (plaintext(), plaintext(), plaintext());
    set_app_attribute(&store, &which, "secretHash", Some(AttributeValue::S(bcrypt::hash(&held, 4).unwrap()))).await;
    set_app_attribute(
        &store,
        &which,
        "previousSecretHash",
        Some(AttributeValue::S(bcrypt::hash(&held_old, 4).unwrap())),
    )
    .await;
    set_app_attribute(&store, &which, "previousSecretExpiresAt", Some(AttributeValue::S(at(time::Duration::hours(1)))))
        .await;
    set_app_attribute(&store, &which, "sequence", Some(AttributeValue::N("7".into()))).await;
    assert_eq!(verify(&store, "has-secret", &held_old).await, Ok(Matched::Previous));
    let lines = vec![line("has-secret", json!({"secret": new}))];
    let file = write_file(&store, &lines);
    let output = import(&store, &file, &["--replace"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_nothing_echoed(&output, &[held.clone(), new.clone()], &lines);
    let replaced = app(&store, ORG, PROJECT, "has-secret").await;
    assert_eq!(
        (replaced.sequence, replaced.previous_secret_hash, replaced.previous_secret_expires_at),
        (8, None, None)
    );
    assert_eq!(verify(&store, "has-secret", &new).await, Ok(Matched::Current));
    assert_eq!(verify(&store, "has-secret", &held).await, Err("wrong secret".into()));
    assert_eq!(verify(&store, "has-secret", &held_old).await, Err("wrong secret".into()));
    let events = events(&store, ORG, PROJECT, "has-secret").await;
    assert_eq!(events.len(), 1);
    assert_eq!(text(&events[0], "sequence"), "8");
}

#[tokio::test]
async fn check_validates_every_line_and_its_app_and_writes_nothing() {
    let store = empty_table().await;
    seed(&store, "a", "OIDC", "BASIC").await;
    seed(&store, "b", "API", "POST").await;
    let (a, b) = (plaintext(), zitadel_hash(&plaintext(), 6));
    let good = vec![line("a", json!({"secret": a})), line("b", json!({"secretHash": b}))];
    let before = scan(&store).await;
    let file = write_file(&store, &good);
    let output = import(&store, &file, &["--check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stdout.starts_with(&format!("{}: 2 would be imported, 0 refused; --check: nothing written\n", file.display())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("  {ORG}/{PROJECT}/b: cost 6")), "{stdout}");
    assert_nothing_echoed(&output, &[a.clone(), b.clone()], &good);
    // A line for a missing app, and one repeating an app: refused, still nothing written.
    let mut lines = good.clone();
    lines.push(line("c", json!({"secret": plaintext()})));
    lines.push(line("a", json!({"secret": plaintext()})));
    let file = write_file(&store, &lines);
    let output = import(&store, &file, &["--check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3: refused: no such app\nline 4: refused: the same app as line 1\n"), "{stderr}");
    assert_eq!(scan(&store).await, before, "--check writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_outcome_stays_unknown_stops_the_import_with_exit_code_3() {
    let store = empty_table().await;
    seed(&store, "a", "OIDC", "BASIC").await;
    seed(&store, "b", "OIDC", "BASIC").await;
    let lines = vec![line("a", json!({"secret": plaintext()})), line("b", json!({"secret": plaintext()}))];
    let file = write_file(&store, &lines);
    // Every transaction is sent and never answered: admin can't know whether it landed.
    let proxy = proxy::Proxy::start().await;
    proxy.set(proxy::Fault::HangTransactions);
    let mut command = admin_import(store.table(), &file, &[]);
    command.env("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run admin")).await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("line 1: stopped: The outcome is unknown: read the app before trying again\n"), "{stderr}");
    assert!(stderr.contains("it may have been written"), "{stderr}");
    assert_eq!(
        stdout,
        format!("{}: 0 imported, 0 refused, stopped at line 1: the lines after it were not tried\n", file.display())
    );
    assert!(app(&store, ORG, PROJECT, "b").await.secret_hash.is_none(), "line 2 was not tried");
}
