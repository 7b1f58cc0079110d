//! The release binary as Lambda runs it: started under a Lambda Runtime API on loopback,
//! fed every file of `events/`, against DynamoDB Local. The whole response is asserted.

#[path = "support/runtime_api.rs"]
#[allow(dead_code)] // `spawn` is for the benches and `make invoke`: here every binary goes through `spawn_under`
mod runtime_api;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use oidc_client_secret::regenerate::APP_WRITE_PERMISSION;
use oidc_client_secret::secret::verify_client_secret;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use runtime_api::{Function, Outcome, RuntimeApi};
use serde_json::{Value, json};
use support::*;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A function binary and what runs it.
struct Binary {
    runner: Vec<String>,
    path: PathBuf,
}

/// The binary that ships: the `bootstrap` that `sam build` (run by `make test` first) wrote
/// for the function, arm64 like the deployed one, run through qemu-user's `qemu-aarch64`
/// when this machine is not arm64. `RELEASE_BIN_DIR` names a folder of release binaries of
/// this machine's own instead (`cargo build --release`, then `RELEASE_BIN_DIR=target/release`).
fn release_binary(name: &str) -> Binary {
    if let Some(dir) = std::env::var_os("RELEASE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(path.exists(), "{} is missing: build it with `cargo build --release`", path.display());
        return Binary { runner: Vec::new(), path };
    }
    let function = match name {
        "regenerate-secret" => "RegenerateSecretFunction",
        "rotate-secret" => "RotateSecretFunction",
        other => panic!("no function in template.yaml runs {other}"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".aws-sam/build").join(function).join("bootstrap");
    let elf =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; `make test` runs sam build first", path.display()));
    // e_machine, at byte 18 of an ELF header: 183 is AArch64.
    let arm64 = elf.get(18..20) == Some(&183u16.to_le_bytes()[..]);
    let runner = if arm64 && std::env::consts::ARCH != "aarch64" {
        let sysroot = std::env::var("QEMU_LD_PREFIX").unwrap_or_else(|_| "/usr/aarch64-linux-gnu".into());
        vec!["qemu-aarch64".to_owned(), "-L".to_owned(), sysroot]
    } else {
        Vec::new()
    };
    Binary { runner, path }
}

impl RuntimeApi {
    fn start_function(&self, binary: &Binary, env: &[(&str, String)], log: Option<&Path>) -> Function {
        self.spawn_under(&binary.runner, &binary.path, env, log)
    }
}

/// A table with the demo data the files in `events/` refer to.
async fn demo_table() -> DynamoStore {
    let store = empty_table().await;
    seed_app(&store, NewApp::oidc(key("demo-org", "demo-project", "demo-app"), "demo-app@demo-project")).await;
    seed_member(&store, "demo-org", None, "demo-user", &[APP_WRITE_PERMISSION]).await;
    store
}

fn function_env(table: &str) -> Vec<(&'static str, String)> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make test`");
    vec![
        ("TABLE_NAME", table.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        // The most verbose settings a user can make: still no payload may reach the log.
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE".into()),
        ("LOG_SIGNABLE_BODY", "true".into()),
    ]
}

/// The HTTP status, a header and the body of a Lambda proxy response, whatever its kind.
struct Proxied {
    status: u64,
    response: Value,
    body: Value,
}

impl Proxied {
    fn parse(outcome: Outcome) -> Self {
        let Outcome::Response(response) = outcome else { panic!("expected a response, got {outcome:?}") };
        let status = response["statusCode"].as_u64().expect("statusCode");
        assert_eq!(response["isBase64Encoded"], json!(false));
        let body = serde_json::from_str(response["body"].as_str().expect("a text body")).expect("a JSON body");
        Self { status, response, body }
    }

    fn header(&self, name: &str) -> Option<String> {
        let single = self.response["headers"][name].as_str().map(str::to_owned);
        single.or_else(|| self.response["multiValueHeaders"][name][0].as_str().map(str::to_owned))
    }

    fn assert_headers(&self) {
        for (name, value) in [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ] {
            assert_eq!(self.header(name).as_deref(), Some(value), "header {name} in {}", self.response);
        }
    }

    fn assert_error(&self, status: u64, code: u64, id: Option<&str>, text: &str) {
        assert_eq!(self.status, status, "{}", self.response);
        let expected = match id {
            Some(id) => json!({"code": code, "message": format!("{text} ({id})"),
                "details": [{"@type": "type.googleapis.com/zitadel.v1.ErrorDetail", "id": id, "message": text}]}),
            None => json!({"code": code, "message": text, "details": []}),
        };
        assert_eq!(self.body, expected);
        self.assert_headers();
    }
}

/// No value of `secrets` (client secrets, hashes) is in `log`, as text or as its bytes
/// printed as a decimal list (how the SigV4 signer logs a signable body).
fn assert_log_holds_none(log: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!log.contains(secret), "a secret or hash reached the log");
        let bytes: Vec<String> = secret.bytes().skip(7).take(16).map(|b| b.to_string()).collect();
        for separator in [", ", ","] {
            assert!(!log.contains(&bytes.join(separator)), "a secret's bytes reached the log");
        }
    }
}

async fn invoke(api: &mut RuntimeApi, function: &mut Function, file: &Path) -> Outcome {
    let event = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    api.invoke(function, &event, TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_file_gets_its_whole_response_from_the_release_binary() {
    let store = demo_table().await;
    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}.log", store.table()));
    let mut function =
        api.start_function(&release_binary("regenerate-secret"), &function_env(store.table()), Some(&log));

    let events_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(files.len() >= 9, "events/ holds the sample events");

    let mut sequence = 0;
    let mut invoked = 0;
    let mut secrets = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        if name.starts_with("rotation-") {
            continue; // Secrets Manager events: the rotation function's tests use them.
        }
        invoked += 1;
        let answer = Proxied::parse(invoke(&mut api, &mut function, file).await);
        match name {
            "apigw-http-jwt.json"
            | "apigw-http-lambda-authorizer.json"
            | "apigw-rest-claims.json"
            | "apigw-rest-lambda-authorizer.json" => {
                assert_eq!(answer.status, 200, "{name}: {}", answer.response);
                answer.assert_headers();
                sequence += 1;
                let details = &answer.body["details"];
                assert_eq!(details["sequence"], json!(sequence.to_string()), "{name}");
                assert_eq!(details["resourceOwner"], json!("demo-org"));
                let secret = answer.body["clientSecret"].as_str().expect("clientSecret").to_owned();
                assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_alphanumeric()), "{name}");
                assert_eq!(answer.body.as_object().unwrap().len(), 2);
                secrets.push(secret);
            }
            "alb.json" | "function-url.json" | "error-no-identity.json" => {
                answer.assert_error(401, 16, Some("AUTH-7fs1e"), "Token is invalid");
                assert_eq!(answer.header("www-authenticate").as_deref(), Some("Bearer"), "{name}");
            }
            "error-wrong-method.json" => answer.assert_error(405, 12, None, "Method Not Allowed"),
            "error-bad-base64-body.json" => {
                let text = "invalid body: flagged base64 but not base64";
                answer.assert_error(400, 3, Some("REQ-invalid"), text);
            }
            "error-malformed-id.json" => {
                let text = "invalid appId: must be 1 to 200 characters from A-Z a-z 0-9 _ - . @";
                answer.assert_error(400, 3, Some("REQ-invalid"), text);
            }
            other => panic!("events/{other} has no expected response in this test"),
        }
    }
    assert_eq!(sequence, 4);
    assert!(api.init_duration(&function).is_some(), "the function polled `next` after its init");
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    assert_eq!(stored.sequence, 4);
    assert!(verify_client_secret(&stored, secrets.last().unwrap(), OffsetDateTime::now_utc()));

    // The function's own log: one JSON line per request, and no secret in any line.
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("JSON log lines")).collect();
    let requests = lines.iter().filter(|l| l["fields"]["message"] == json!("regenerate client secret")).count();
    assert_eq!(requests, invoked, "one log line per request");
    let stored_hash = stored.secret_hash.clone().expect("a hash");
    let mut values: Vec<&str> = secrets.iter().map(String::as_str).collect();
    values.push(&stored_hash);
    assert_log_holds_none(&log, &values);
    for forbidden in ["$2b$", "Bearer", "eyJhbGciOiJSUzI1NiJ9", "acme-abc123.zitadel.cloud", "312909075211944344"] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
}

#[tokio::test]
async fn a_bad_configuration_stops_the_function_at_start_up_with_one_line() {
    let store = demo_table().await;
    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}-bad.log", store.table()));
    let mut env = function_env(store.table());
    env.push(("SECRET_HASH_COST", "3".into()));
    let mut function = api.start_function(&release_binary("regenerate-secret"), &env, Some(&log));
    let event = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("events/apigw-http-jwt.json")).unwrap();
    let outcome = api.invoke(&mut function, &event, TIMEOUT).await;
    assert_eq!(outcome, Outcome::Exited(Some(1)));
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.trim(), r#"invalid configuration: SECRET_HASH_COST must be a whole number from 4 to 16, got "3""#);
    assert_eq!(app(&store, "demo-org", "demo-project", "demo-app").await.sequence, 0);
}

/// The placeholders in `events/rotation-*.json`, replaced by a real secret and version.
const EVENT_SECRET_ARN: &str = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:oidc/demo-app-AbCdEf";
const EVENT_TOKEN: &str = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_binary_rotates_through_the_four_step_events() {
    let store = empty_table().await;
    let secrets = secrets_client().await;
    let arn = create_app_secret(&secrets, "demo-org", "demo-project", "demo-app").await;
    let rotated = NewApp {
        rotation_secret_arn: Some(arn.clone()),
        ..NewApp::oidc(key("demo-org", "demo-project", "demo-app"), "c")
    };
    seed_app(&store, rotated).await;
    let token = start_rotation(&secrets, &arn).await;

    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}-rotation.log", store.table()));
    let mut env = function_env(store.table());
    env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER", std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").unwrap()));
    env.push(("AWS_REGION", "us-east-1".into()));
    let mut function = api.start_function(&release_binary("rotate-secret"), &env, Some(&log));

    let events_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    for step in ["create", "set", "test", "finish"] {
        let file = events_dir.join(format!("rotation-{step}-secret.json"));
        let event =
            std::fs::read_to_string(&file).unwrap().replace(EVENT_SECRET_ARN, &arn).replace(EVENT_TOKEN, &token);
        let outcome = api.invoke(&mut function, event.as_bytes(), TIMEOUT).await;
        assert_eq!(outcome, Outcome::Response(Value::Null), "{step}");
    }
    complete_rotation(&secrets, &arn, &token).await;
    let current = stage_value(&secrets, &arn, "AWSCURRENT").await.unwrap();
    let secret = current["clientSecret"].as_str().unwrap().to_owned();
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    assert!(verify_client_secret(&stored, &secret, OffsetDateTime::now_utc()));
    assert_eq!(stored.sequence, 1);

    // A step for a version that is not the secret's is an error the runtime reports.
    let event = std::fs::read_to_string(events_dir.join("rotation-create-secret.json"))
        .unwrap()
        .replace(EVENT_SECRET_ARN, &arn);
    let Outcome::Error(error) = api.invoke(&mut function, event.as_bytes(), TIMEOUT).await else {
        panic!("expected an error")
    };
    assert_eq!(error["errorType"], json!("InvalidToken"));
    assert_eq!(
        error["errorMessage"],
        json!(format!("ClientRequestToken {EVENT_TOKEN} is not a version of the secret"))
    );

    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let log = std::fs::read_to_string(&log).unwrap();
    let steps = log.lines().filter(|l| l.contains("rotate client secret")).count();
    assert_eq!(steps, 5, "one log line per step:\n{log}");
    let stored_hash = stored.secret_hash.clone().expect("a hash");
    assert_log_holds_none(&log, &[&secret, &stored_hash]);
    assert!(!log.contains("$2b$"), "a hash reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_from_concurrent_processes_lose_no_update() {
    const PROCESSES: usize = 4;
    const PER_PROCESS: usize = 250;
    const APPS: [&str; 3] = ["app-0", "app-1", "app-2"];
    let store = empty_table().await;
    for app_id in APPS {
        seed_app(&store, NewApp::oidc(key("demo-org", "demo-project", app_id), app_id)).await;
    }
    seed_member(&store, "demo-org", None, "demo-user", &[APP_WRITE_PERMISSION]).await;
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("events/apigw-http-jwt.json")).unwrap();

    let mut workers = Vec::new();
    for process in 0..PROCESSES {
        let (template, table) = (template.clone(), store.table().to_owned());
        workers.push(tokio::spawn(async move {
            let mut api = RuntimeApi::start().await;
            let mut env = function_env(&table);
            env.retain(|(name, _)| *name != "AWS_LAMBDA_LOG_LEVEL");
            let mut function = api.start_function(&release_binary("regenerate-secret"), &env, None);
            let mut answers = Vec::new();
            for i in 0..PER_PROCESS {
                let app_id = APPS[(i + process) % APPS.len()];
                let event = template.replace("demo-app", app_id);
                let answer = Proxied::parse(api.invoke(&mut function, event.as_bytes(), TIMEOUT).await);
                answers.push((app_id, answer));
            }
            answers
        }));
    }
    let mut won: std::collections::HashMap<&str, Vec<(u64, String)>> = Default::default();
    let mut total = 0;
    for worker in workers {
        for (app_id, answer) in worker.await.unwrap() {
            total += 1;
            match answer.status {
                200 => {
                    let sequence = answer.body["details"]["sequence"].as_str().unwrap().parse().unwrap();
                    won.entry(app_id)
                        .or_default()
                        .push((sequence, answer.body["clientSecret"].as_str().unwrap().to_owned()));
                }
                409 => answer.assert_error(
                    409,
                    10,
                    Some("STORE-conflict"),
                    "Application was changed concurrently, try again",
                ),
                other => panic!("status {other}: {}", answer.response),
            }
        }
    }
    assert_eq!(total, PROCESSES * PER_PROCESS);
    for app_id in APPS {
        let mut wins = won.remove(app_id).unwrap_or_default();
        wins.sort();
        let sequences: Vec<u64> = wins.iter().map(|(s, _)| *s).collect();
        assert_eq!(sequences, (1..=wins.len() as u64).collect::<Vec<_>>(), "{app_id}: distinct and contiguous");
        let stored = app(&store, "demo-org", "demo-project", app_id).await;
        assert_eq!(stored.sequence, wins.len() as u64, "{app_id}");
        assert_eq!(
            events(&store, "demo-org", "demo-project", app_id).await.len(),
            wins.len(),
            "{app_id}: one event per success"
        );
        assert!(verify_client_secret(&stored, &wins.last().unwrap().1, OffsetDateTime::now_utc()), "{app_id}");
    }
}
