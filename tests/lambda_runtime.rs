//! The release binary as Lambda runs it: started under a Lambda Runtime API on loopback,
//! fed every file of `events/`, against DynamoDB Local. The whole response is asserted.

#[path = "support/gateway.rs"]
mod gateway;
#[path = "support/proxy.rs"]
#[allow(dead_code)] // tests/faults.rs uses every fault; here only a few
mod proxy;
#[path = "support/release.rs"]
mod release;
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
use release::release_binary;
use runtime_api::{Function, Outcome, RuntimeApi};
use serde_json::{Value, json};
use support::*;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A table with the demo data the files in `events/` refer to.
async fn demo_table() -> DynamoStore {
    let store = empty_table().await;
    seed_app(&store, NewApp::oidc(key("demo-org", "demo-project", "demo-app"), "demo-app@demo-project")).await;
    let api_app = NewApp {
        app_type: "API".into(),
        ..NewApp::oidc(key("demo-org", "demo-project", "demo-api"), "demo-api@demo-project")
    };
    seed_app(&store, api_app).await;
    seed_member(&store, "demo-org", None, "demo-user", &[APP_WRITE_PERMISSION]).await;
    store
}

/// The HTTP status, a header and the body of a Lambda proxy response, whatever its kind.
struct Proxied {
    status: u64,
    response: Value,
    body: Value,
}

/// A gRPC-web answer: the response message's client secret and sequence, if any, and
/// the trailers.
struct GrpcWebAnswer {
    message: Option<(String, u64)>,
    trailers: String,
}

impl Proxied {
    fn parse(outcome: Outcome) -> Self {
        let Outcome::Response(response) = outcome else { panic!("expected a response, got {outcome:?}") };
        let status = response["statusCode"].as_u64().expect("statusCode");
        assert_eq!(response["isBase64Encoded"], json!(false));
        let body = serde_json::from_str(response["body"].as_str().expect("a text body")).expect("a JSON body");
        Self { status, response, body }
    }

    /// A gRPC-web answer: HTTP 200, binary bodies base64-encoded as API Gateway requires,
    /// the text form base64 itself.
    fn grpc_web(outcome: Outcome, text: bool) -> GrpcWebAnswer {
        use base64::Engine;
        use oidc_client_secret::api::proto::RegenerateOidcClientSecretResponse;
        use prost::Message;
        let Outcome::Response(response) = outcome else { panic!("expected a response, got {outcome:?}") };
        use base64::engine::general_purpose::STANDARD;
        assert_eq!(response["statusCode"], json!(200), "{response}");
        assert_eq!(response["headers"]["cache-control"], json!("no-store"));
        // What API Gateway hands the client: the body, base64-decoded when flagged; the
        // text form is base64 once more.
        let body = response["body"].as_str().unwrap();
        let body = match response["isBase64Encoded"].as_bool() {
            Some(true) => STANDARD.decode(body).unwrap(),
            _ => body.as_bytes().to_vec(),
        };
        let body = if text { STANDARD.decode(body).unwrap() } else { body };
        let (mut message, mut trailers, mut rest) = (None, String::new(), body.as_slice());
        while rest.len() >= 5 {
            let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let payload = &rest[5..5 + length];
            if rest[0] == 0x80 {
                trailers = String::from_utf8(payload.to_vec()).unwrap();
            } else {
                let decoded = RegenerateOidcClientSecretResponse::decode(payload).unwrap();
                message = Some((decoded.client_secret, decoded.details.unwrap().sequence));
            }
            rest = &rest[5 + length..];
        }
        GrpcWebAnswer { message, trailers }
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
        if name.starts_with("rotation-") || name.starts_with("authorizer-") {
            continue; // Secrets Manager and authorizer events: their functions' tests use them.
        }
        invoked += 1;
        // The gRPC-web and Connect samples, then the REST ones.
        match name {
            "grpc-web-binary.json" | "grpc-web-text.json" => {
                let answer = Proxied::grpc_web(invoke(&mut api, &mut function, file).await, name.contains("text"));
                assert_eq!(answer.trailers, "grpc-status: 0\r\n", "{name}");
                let (secret, answered) = answer.message.expect("a response message");
                sequence += 1;
                assert_eq!(answered, sequence, "{name}");
                secrets.push(secret);
                continue;
            }
            "grpc-web-malformed-frame.json" => {
                let answer = Proxied::grpc_web(invoke(&mut api, &mut function, file).await, false);
                assert!(answer.message.is_none());
                assert!(answer.trailers.starts_with("grpc-status: 3\r\n"), "{name}: {}", answer.trailers);
                continue;
            }
            // The v2 door, Connect JSON, on the demo API app (its org from the project).
            "connect-json-v2.json" => {
                let answer = Proxied::parse(invoke(&mut api, &mut function, file).await);
                secrets.push(assert_v2_answer_on_demo_api(&store, name, &answer, 3).await);
                continue;
            }
            "connect-json.json" => {
                let answer = Proxied::parse(invoke(&mut api, &mut function, file).await);
                assert_eq!(answer.status, 200, "{name}: {}", answer.response);
                answer.assert_headers();
                sequence += 1;
                assert_eq!(answer.body["details"]["sequence"], json!(sequence.to_string()), "{name}");
                secrets.push(answer.body["clientSecret"].as_str().unwrap().to_owned());
                continue;
            }
            _ => {}
        }
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
            // The v1 API door, on the demo API app: its own sequence.
            "apigw-http-jwt-api-config.json" => {
                assert_eq!(answer.status, 200, "{name}: {}", answer.response);
                answer.assert_headers();
                assert_eq!(answer.body["details"]["sequence"], json!("1"), "{name}");
                let stored = app(&store, "demo-org", "demo-project", "demo-api").await;
                let secret = answer.body["clientSecret"].as_str().unwrap().to_owned();
                assert!(verify_client_secret(&stored, &secret, OffsetDateTime::now_utc()), "{name}");
                secrets.push(secret);
            }
            // The v2beta REST door, on the demo API app: the project and the type in the
            // body, the org from the project; the answer `clientSecret`, `creationDate`.
            "apigw-http-jwt-v2beta.json" => {
                secrets.push(assert_v2_answer_on_demo_api(&store, name, &answer, 2).await);
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
    assert_eq!(sequence, 7);
    assert!(api.init_duration(&function).is_some(), "the function polled `next` after its init");
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    assert_eq!(stored.sequence, 7);
    assert!(verify_client_secret(&stored, secrets.last().unwrap(), OffsetDateTime::now_utc()));

    // The function's own log: one JSON line per request, and no secret in any line.
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("JSON log lines")).collect();
    let requests = lines.iter().filter(|l| l["message"] == json!("regenerate client secret")).count();
    assert_eq!(requests, invoked, "one log line per request");
    let stored_hash = stored.secret_hash.clone().expect("a hash");
    let mut values: Vec<&str> = secrets.iter().map(String::as_str).collect();
    values.push(&stored_hash);
    assert_log_holds_none(&log, &values);
    for forbidden in ["$2b$", "Bearer", "eyJhbGciOiJSUzI1NiJ9", "acme-abc123.zitadel.cloud", "312909075211944344"] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
}

/// A v2beta or v2 answer on the demo API app: 200 with the common headers, exactly
/// `clientSecret` and `creationDate`, the secret verifying against the stored hash, the app
/// at `sequence` (shared with every door before it). Returns the secret.
async fn assert_v2_answer_on_demo_api(store: &DynamoStore, name: &str, answer: &Proxied, sequence: u64) -> String {
    assert_eq!(answer.status, 200, "{name}: {}", answer.response);
    answer.assert_headers();
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientSecret", "creationDate"], "{name}");
    let stored = app(store, "demo-org", "demo-project", "demo-api").await;
    let secret = answer.body["clientSecret"].as_str().unwrap().to_owned();
    assert!(verify_client_secret(&stored, &secret, OffsetDateTime::now_utc()), "{name}");
    assert_eq!(stored.sequence, sequence, "{name}: after the doors before it");
    secret
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
    let steps: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("rotate client secret"))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(steps.len(), 5, "one log line per step:\n{log}");
    let outcomes: Vec<(&str, &str)> =
        steps.iter().map(|l| (l["Step"].as_str().unwrap(), l["Outcome"].as_str().unwrap())).collect();
    assert_eq!(
        outcomes,
        [
            ("createSecret", "created"),
            ("setSecret", "set"),
            ("testSecret", "tested"),
            ("finishSecret", "finished"),
            ("createSecret", "InvalidToken")
        ]
    );
    for step in &steps {
        assert_emf(step);
    }
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

/// Runs the published client `transport` (tests/clients/regenerate.mjs) on `calls`.
async fn node_client(transport: &str, url: &str, calls: &Value) -> Vec<Value> {
    node_script("tests/clients/regenerate.mjs", transport, url, calls).await
}

/// Runs one of tests/clients/: `node <script> <transport> <url>`, `calls` on its stdin.
async fn node_script(script: &str, transport: &str, url: &str, calls: &Value) -> Vec<Value> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .arg(transport)
        .arg(url)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (Node 20) and `npm ci` (make test runs it) are needed");
    child.stdin.take().unwrap().write_all(calls.to_string().as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{transport}: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{transport}: {e}: {stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_grpc_web_and_connect_clients_regenerate_and_read_every_error_detail() {
    let store = demo_table().await;
    seed_app(
        &store,
        NewApp { app_type: "API".into(), ..NewApp::oidc(key("demo-org", "demo-project", "api-app"), "a") },
    )
    .await;
    seed_app(
        &store,
        NewApp { auth_method: "NONE".into(), ..NewApp::oidc(key("demo-org", "demo-project", "spa"), "s") },
    )
    .await;
    seed_member(&store, "other-org", None, "outsider", &[APP_WRITE_PERMISSION]).await;
    let api = RuntimeApi::start().await;
    let function = api.start_function(&release_binary("regenerate-secret"), &function_env(store.table()), None);
    let gateway = gateway::Gateway::start(api, function).await;
    // A second function whose DynamoDB does not answer: every call is 503.
    let mut unreachable_env = function_env(store.table());
    unreachable_env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL_DYNAMODB");
    unreachable_env.push(("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1".into()));
    let api = RuntimeApi::start().await;
    let function = api.start_function(&release_binary("regenerate-secret"), &unreachable_env, None);
    let down = gateway::Gateway::start(api, function).await;

    let call = |token: &str, org: Option<&str>, project: &str, app: &str| json!({"token": token, "org": org, "projectId": project, "appId": app});
    let member = "demo-user@demo-org";
    let calls = json!([
        call(member, None, "demo-project", "demo-app"),
        call("", None, "demo-project", "demo-app"),
        call(member, None, "", "demo-app"),
        call("outsider@other-org", Some("demo-org"), "demo-project", "demo-app"),
        call(member, None, "demo-project", "missing"),
        call(member, None, "demo-project", "api-app"),
        call(member, Some("demo-org"), "demo-project", "spa"),
        call(member, None, "demo-project", "bad#id"),
        // The v1 API door, through ZITADEL's own ManagementService descriptor.
        json!({"token": member, "projectId": "demo-project", "appId": "api-app", "method": "regenerateAPIClientSecret"}),
        json!({"token": member, "projectId": "demo-project", "appId": "demo-app", "method": "regenerateAPIClientSecret"}),
    ]);
    let errors: [(u64, &str, &str); 6] = [
        (16, "AUTH-7fs1e", "Token is invalid"),
        (3, "COMMAND-99i83", "ID missing"),
        (7, "AUTH-5mWD2", "No matching permissions found"),
        (5, "COMMAND-2g66f", "Application doesn't exist"),
        (3, "COMMAND-Ghrh3", "Application is not type OIDC"),
        (9, "COMMAND-GDrg2", "Chosen OIDC Auth Method does not require a secret"),
    ];
    let mut sequence = 0;
    for transport in ["zitadel-grpc-web", "grpc-web", "connect"] {
        let results = node_client(transport, &gateway.url(), &calls).await;
        assert_eq!(results.len(), 10, "{transport}");
        let success = &results[0];
        assert_eq!(success["ok"], json!(true), "{transport}: {success}");
        sequence += 1;
        assert_eq!(success["sequence"], json!(sequence.to_string()), "{transport}: shared with every transport");
        assert_eq!(success["resourceOwner"], json!("demo-org"));
        let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
        let secret = success["clientSecret"].as_str().unwrap();
        assert!(verify_client_secret(&stored, secret, OffsetDateTime::now_utc()), "{transport}: the hash is stored");
        let created = OffsetDateTime::parse(
            success["creationDate"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(created.unix_timestamp(), stored.creation_date.unix_timestamp(), "{transport}");
        for (result, (code, id, text)) in results[1..7].iter().zip(errors) {
            assert_eq!(result["ok"], json!(false), "{transport}: {result}");
            assert_eq!(result["code"], json!(code), "{transport}: {result}");
            assert_eq!(result["detailId"], json!(id), "{transport}: {result}");
            assert_eq!(result["detailMessage"], json!(text), "{transport}: {result}");
            assert_eq!(result["message"], json!(format!("{text} ({id})")), "{transport}: {result}");
        }
        assert_eq!((results[7]["code"].as_u64(), results[7]["detailId"].as_str()), (Some(3), Some("REQ-invalid")));
        let api_app = &results[8];
        assert_eq!(api_app["ok"], json!(true), "{transport}: {api_app}");
        assert_eq!(api_app["sequence"], json!(sequence.to_string()), "{transport}: the API app's own sequence");
        let stored = app(&store, "demo-org", "demo-project", "api-app").await;
        assert!(verify_client_secret(&stored, api_app["clientSecret"].as_str().unwrap(), OffsetDateTime::now_utc()));
        let not_api = &results[9];
        assert_eq!(
            (not_api["code"].as_u64(), not_api["detailId"].as_str()),
            (Some(3), Some("COMMAND-aeH4")),
            "{transport}"
        );
        assert_eq!(not_api["detailMessage"], json!("Application is not type API"));
        let unavailable =
            node_client(transport, &down.url(), &json!([call(member, None, "demo-project", "demo-app")])).await;
        assert_eq!(unavailable[0]["code"], json!(14), "{transport}: {}", unavailable[0]);
        assert_eq!(unavailable[0]["detailId"], json!("STORE-unavailable"));
    }
    assert_eq!(app(&store, "demo-org", "demo-project", "demo-app").await.sequence, 3);
    assert_eq!(events(&store, "demo-org", "demo-project", "demo-app").await.len(), 3);
    let api_events = events(&store, "demo-org", "demo-project", "api-app").await;
    assert_eq!(api_events.len(), 3);
    assert!(api_events.iter().all(|e| text(e, "type") == "project.application.config.api.secret.changed"));
}

/// Runs the published v2beta client `transport` (tests/clients/app-v2beta.mjs) on `calls`.
async fn node_v2beta_client(transport: &str, url: &str, calls: &Value) -> Vec<Value> {
    node_script("tests/clients/app-v2beta.mjs", transport, url, calls).await
}

/// `curl` posting `body` (a file, as is) to `url` with a bearer token; the status and body.
async fn curl_post(url: &str, token: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let file = std::env::temp_dir().join(format!("curl-body-{:032x}", rand::random::<u128>()));
    std::fs::write(&file, body).unwrap();
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-X", "POST", "-o", "-", "-w", "\n%{http_code}", "-H"])
        .arg(format!("authorization: Bearer {token}"))
        .args(["-H", &format!("content-type: {content_type}"), "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    std::fs::remove_file(&file).unwrap();
    let out = output.stdout;
    let split = out.iter().rposition(|b| *b == b'\n').unwrap();
    let status = std::str::from_utf8(&out[split + 1..]).unwrap().parse().unwrap();
    (status, out[..split].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2beta_and_v2_doors_answer_published_clients_and_curl_on_one_sequence_per_app() {
    use oidc_client_secret::api::proto::{ClientSecretResponse, GenerateClientSecretRequest};
    use prost::Message;
    let store = demo_table().await;
    // Another org's project and app; demo-user has permission in demo-org only.
    seed_app(&store, NewApp::oidc(key("other-org", "other-project", "foreign-app"), "foreign@other")).await;
    let api = RuntimeApi::start().await;
    let function = api.start_function(&release_binary("regenerate-secret"), &function_env(store.table()), None);
    let gateway = gateway::Gateway::start(api, function).await;
    let foreign_before = app(&store, "other-org", "other-project", "foreign-app").await;

    let member = "demo-user@demo-org";
    let call = |project: &str, app: &str, kind: Option<&str>| json!({"token": member, "projectId": project, "applicationId": app, "type": kind});
    let calls = json!([
        call("demo-project", "demo-app", Some("oidc")),
        call("demo-project", "demo-api", Some("api")),
        // The header plays no part: the org is the project's.
        json!({"token": member, "org": "other-org", "projectId": "demo-project", "applicationId": "demo-app", "type": "oidc"}),
        call("demo-project", "demo-app", None),
        call("demo-project", "demo-app", Some("api")),
        call("demo-project", "demo-api", Some("oidc")),
        call("demo-project", "", Some("oidc")),
        // Another org's app, a missing one there, a project no org owns: the same answer.
        call("other-project", "foreign-app", Some("oidc")),
        call("other-project", "missing", Some("oidc")),
        call("no-such-project", "foreign-app", Some("oidc")),
        json!({"token": "", "projectId": "demo-project", "applicationId": "demo-app", "type": "oidc"}),
    ]);
    let not_found = (5, "COMMAND-2g66f", "Application doesn't exist");
    let errors: [(u64, &str, &str); 8] = [
        (3, "APP-aLWIzw", "unknown app type"),
        (3, "COMMAND-aeH4", "Application is not type API"),
        (3, "COMMAND-Ghrh3", "Application is not type OIDC"),
        (3, "COMMAND-99i83", "ID missing"),
        not_found,
        not_found,
        not_found,
        (16, "AUTH-7fs1e", "Token is invalid"),
    ];
    let (mut oidc, mut api_app) = (0, 0);
    let mut last_secret = String::new();
    for transport in ["grpc-web", "connect", "connect-json"] {
        let results = node_v2beta_client(transport, &gateway.url(), &calls).await;
        assert_eq!(results.len(), 11, "{transport}");
        // Two changes of demo-app (the second answer is its current secret), one of demo-api.
        oidc += 2;
        api_app += 1;
        for (index, result) in results[..3].iter().enumerate() {
            assert_eq!(result["ok"], json!(true), "{transport}: {result}");
            let (app_id, sequence) = if index == 1 { ("demo-api", api_app) } else { ("demo-app", oidc) };
            let stored = app(&store, "demo-org", "demo-project", app_id).await;
            assert_eq!(stored.sequence, sequence, "{transport}: {app_id}");
            let secret = result["clientSecret"].as_str().unwrap();
            let verifies = verify_client_secret(&stored, secret, OffsetDateTime::now_utc());
            assert_eq!(verifies, index != 0, "{transport}: {app_id}: the last answer's hash is stored");
            let changed = OffsetDateTime::parse(
                result["creationDate"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert!((changed - OffsetDateTime::now_utc()).whole_seconds().abs() <= 5, "creationDate is the change's");
        }
        last_secret = results[2]["clientSecret"].as_str().unwrap().to_owned();
        for (result, (code, id, text)) in results[3..].iter().zip(errors) {
            assert_eq!(result["ok"], json!(false), "{transport}: {result}");
            assert_eq!(result["code"], json!(code), "{transport}: {result}");
            assert_eq!(result["detailId"], json!(id), "{transport}: {result}");
            assert_eq!(result["detailMessage"], json!(text), "{transport}: {result}");
            assert_eq!(result["message"], json!(format!("{text} ({id})")), "{transport}: {result}");
        }
    }
    let foreign_after = app(&store, "other-org", "other-project", "foreign-app").await;
    assert_eq!(foreign_after, foreign_before, "nothing of the other org's app changed");
    assert!(events(&store, "other-org", "other-project", "foreign-app").await.is_empty());

    // The v2beta REST mapping, by curl: the type and the project in the body.
    let url = gateway.url();
    let rest = format!("{url}/v2beta/applications/demo-app/generate_client_secret");
    let (status, body) =
        curl_post(&rest, member, "application/json", br#"{"projectId":"demo-project","isOidc":true}"#).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{answer}");
    oidc += 1;
    let (status, body) = curl_post(&rest, member, "application/json", br#"{"projectId":"demo-project"}"#).await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &error["message"]), (400, &json!("unknown app type (APP-aLWIzw)")));
    // v2, Connect JSON by curl, then gRPC-web frames built from ZITADEL's field numbers.
    let v2 = format!("{url}/zitadel.application.v2.ApplicationService/GenerateClientSecret");
    let (status, body) =
        curl_post(&v2, member, "application/json", br#"{"applicationId":"demo-app","projectId":"demo-project"}"#).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{answer}");
    oidc += 1;
    let message = GenerateClientSecretRequest { application_id: "demo-api".into(), project_id: "demo-project".into() };
    let mut frame = vec![0];
    frame.extend((message.encode_to_vec().len() as u32).to_be_bytes());
    frame.extend(message.encode_to_vec());
    let (status, body) = curl_post(&v2, member, "application/grpc-web+proto", &frame).await;
    assert_eq!(status, 200);
    let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let decoded = ClientSecretResponse::decode(&body[5..5 + length]).unwrap();
    assert_eq!(std::str::from_utf8(&body[10 + length..]).unwrap(), "grpc-status: 0\r\n");
    api_app += 1;
    let stored = app(&store, "demo-org", "demo-project", "demo-api").await;
    assert!(verify_client_secret(&stored, &decoded.client_secret, OffsetDateTime::now_utc()));
    // And the v1 door on the same app: every door moves one sequence, one event each.
    let v1 = format!("{url}/management/v1/projects/demo-project/apps/demo-app/oidc_config/_generate_client_secret");
    let (status, body) = curl_post(&v1, member, "application/json", b"").await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    oidc += 1;
    assert_eq!((status, &answer["details"]["sequence"]), (200, &json!(oidc.to_string())));
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    assert_eq!((stored.sequence, api_app), (oidc, 4));
    assert!(verify_client_secret(&stored, answer["clientSecret"].as_str().unwrap(), OffsetDateTime::now_utc()));
    assert!(!verify_client_secret(&stored, &last_secret, OffsetDateTime::now_utc()), "grace 0: the older is gone");
    assert_eq!(events(&store, "demo-org", "demo-project", "demo-app").await.len() as u64, oidc);
    let api_events = events(&store, "demo-org", "demo-project", "demo-api").await;
    assert_eq!(api_events.len() as u64, api_app);
    assert!(api_events.iter().all(|e| text(e, "type") == "project.application.config.api.secret.changed"));
}

/// Asserts that `line` is a CloudWatch Embedded Metric Format document: an `_aws` block
/// with a timestamp and one directive in our namespace, every dimension a string
/// property of the line, every metric a number of the line in a unit EMF knows.
fn assert_emf(line: &Value) {
    let aws = &line["_aws"];
    assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{line}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics");
    assert_eq!(directives.len(), 1, "{line}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], json!("OidcClientSecret"));
    let dimension_sets = directive["Dimensions"].as_array().expect("Dimensions");
    assert!(!dimension_sets.is_empty());
    for set in dimension_sets {
        let set = set.as_array().expect("a dimension set");
        assert!(!set.is_empty() && set.len() <= 30);
        for name in set {
            let name = name.as_str().unwrap();
            assert!(line[name].is_string(), "dimension {name} has a string value: {line}");
            assert!(!["org", "project", "app", "request_id"].contains(&name), "high-cardinality dimension {name}");
        }
    }
    for metric in directive["Metrics"].as_array().expect("Metrics") {
        let name = metric["Name"].as_str().unwrap();
        let unit = metric["Unit"].as_str().unwrap();
        assert!(["Count", "Milliseconds"].contains(&unit), "{unit}");
        assert!(line[name].as_f64().is_some_and(|v| v >= 0.0), "metric {name} has a number: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_class_is_one_embedded_metric_format_line_from_the_release_binary() {
    let store = demo_table().await;
    let broken = key("demo-org", "demo-project", "broken");
    seed_app(&store, NewApp::oidc(broken.clone(), "b")).await;
    let text = aws_sdk_dynamodb::types::AttributeValue::S("7".into());
    set_app_attribute(&store, &broken, "sequence", Some(text)).await;
    let proxy = proxy::Proxy::start().await;
    let mut env = function_env(store.table());
    env.retain(|(name, _)| *name != "AWS_ENDPOINT_URL_DYNAMODB");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint()));
    env.push(("AWS_LAMBDA_FUNCTION_NAME", "regenerate-secret-test".into()));
    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}-emf.log", store.table()));
    let mut function = api.start_function(&release_binary("regenerate-secret"), &env, Some(&log));

    let member = Some(json!({"jwt": {"claims": claims("demo-user", "demo-org")}}));
    let outsider = Some(json!({"jwt": {"claims": claims("outsider", "other-org")}}));
    let post = |app: &str| Call::post("demo-project", app);
    let cases: Vec<(Value, proxy::Fault, &str, u64)> = vec![
        (http_v2_event_with(&post("demo-app"), member.clone()), proxy::Fault::None, "success", 200),
        (http_v2_event_with(&post("demo-app"), None), proxy::Fault::None, "unauthenticated", 401),
        (http_v2_event_with(&post("bad#id"), member.clone()), proxy::Fault::None, "invalid_argument", 400),
        (http_v2_event_with(&post("demo-app").org("demo-org"), outsider), proxy::Fault::None, "permission_denied", 403),
        (http_v2_event_with(&post("missing"), member.clone()), proxy::Fault::None, "not_found", 404),
        (http_v2_event_with(&post("demo-app"), member.clone()), proxy::Fault::ConflictTransactions, "conflict", 409),
        (http_v2_event_with(&post("demo-app"), member.clone()), proxy::Fault::Throttle, "unavailable", 503),
        (http_v2_event_with(&post("broken"), member.clone()), proxy::Fault::None, "internal", 500),
    ];
    let mut secrets = Vec::new();
    for (event, fault, _, status) in &cases {
        proxy.set(*fault);
        let outcome = api.invoke(&mut function, event.to_string().as_bytes(), TIMEOUT).await;
        let answer = Proxied::parse(outcome);
        assert_eq!(answer.status, *status, "{}", answer.response);
        if let Some(secret) = answer.body["clientSecret"].as_str() {
            secrets.push(secret.to_owned());
        }
    }
    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("JSON log lines")).collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == json!("regenerate client secret")).collect();
    assert_eq!(requests.len(), cases.len(), "one line per request");
    for (line, (_, _, outcome, _)) in requests.iter().zip(&cases) {
        assert_emf(line);
        assert_eq!(line["Outcome"], json!(outcome), "{line}");
        assert_eq!(
            (line["Function"].as_str(), line["Transport"].as_str()),
            (Some("regenerate-secret-test"), Some("rest"))
        );
        assert_eq!(line["Requests"], json!(1.0));
        assert!(line["Duration"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(requests[5]["Attempts"], json!(3.0), "a conflict is three lost races");
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    let hash = stored.secret_hash.clone().unwrap();
    let mut values: Vec<&str> = secrets.iter().map(String::as_str).collect();
    values.push(&hash);
    assert_log_holds_none(&log, &values);
    for forbidden in ["$2b$", "Bearer", "issuer.example.com", "eyJ"] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_active_tracing_the_read_the_hash_and_the_transaction_reach_the_xray_daemon() {
    let store = demo_table().await;
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut env = function_env(store.table());
    env.push(("AWS_XRAY_DAEMON_ADDRESS", format!("udp:{} tcp:127.0.0.1:1", daemon.local_addr().unwrap())));
    let mut api = RuntimeApi::start().await;
    let mut function = api.start_function(&release_binary("regenerate-secret"), &env, None);
    let event = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/apigw-http-jwt.json");
    assert_eq!(Proxied::parse(invoke(&mut api, &mut function, &event).await).status, 200);
    let mut subsegments = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while subsegments.len() < 3 {
        let received = tokio::time::timeout(Duration::from_secs(5), daemon.recv(&mut buffer)).await;
        let length = received.expect("a subsegment within 5 s").unwrap();
        let datagram = std::str::from_utf8(&buffer[..length]).unwrap();
        let (header, body) = datagram.split_once('\n').expect("header line, then the document");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        subsegments.push(serde_json::from_str::<Value>(body).unwrap());
    }
    function.child.start_kill().unwrap();
    let mut names: Vec<&str> = subsegments.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["DynamoDB BatchGetItem", "DynamoDB TransactWriteItems", "bcrypt hash"]);
    for subsegment in &subsegments {
        assert_eq!(subsegment["type"], json!("subsegment"));
        assert_eq!(subsegment["trace_id"], subsegments[0]["trace_id"], "one trace");
        assert_eq!(subsegment["parent_id"], subsegments[0]["parent_id"], "one function segment");
        assert!(subsegment["trace_id"].as_str().unwrap().starts_with("1-67470000-"));
        assert!(subsegment["end_time"].as_f64() >= subsegment["start_time"].as_f64());
    }
}

/// The secret of the demo app in the `authorizer-*` sample events (a fixture, never issued).
const EVENTS_SECRET: &str = "sample-only-secret";

/// Sets an app's current hash (and previous one, with its expiry) by hand.
async fn set_hashes(
    store: &DynamoStore,
    app: &oidc_client_secret::app::AppKey,
    current: &str,
    previous: Option<(&str, OffsetDateTime)>,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let hash = |s: &str| AttributeValue::S(bcrypt::hash(s, 4).unwrap());
    let mut update = store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(oidc_client_secret::store::keys::org_pk(&app.org)))
        .key("sk", AttributeValue::S(oidc_client_secret::store::keys::app_sk(&app.project, &app.app)))
        .expression_attribute_values(":h", hash(current));
    update = match previous {
        Some((old, expires)) => update
            .update_expression("SET secretHash = :h, previousSecretHash = :p, previousSecretExpiresAt = :e")
            .expression_attribute_values(":p", hash(old))
            .expression_attribute_values(":e", AttributeValue::S(oidc_client_secret::app::format_timestamp(expires))),
        None => update.update_expression("SET secretHash = :h REMOVE previousSecretHash, previousSecretExpiresAt"),
    };
    update.send().await.unwrap();
}

fn basic(client: &str, secret: &str) -> String {
    use base64::Engine;
    let encode = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", encode(client), encode(secret)))
    )
}

/// The payload 2.0 sample with another Authorization header.
fn v2_event_with(authorization: &str) -> Vec<u8> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/authorizer-http-v2-allowed.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    event["headers"]["authorization"] = json!(authorization);
    event["identitySource"] = json!([authorization]);
    serde_json::to_vec(&event).unwrap()
}

fn allowed_context(client: &str, app: &str, secret: &str) -> Value {
    json!({"clientId": client, "orgId": "demo-org", "projectId": "demo-project", "appId": app, "secret": secret})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorizer_event_file_gets_its_exact_answer_from_the_release_binary() {
    let store = demo_table().await;
    let demo = key("demo-org", "demo-project", "demo-app");
    set_hashes(&store, &demo, EVENTS_SECRET, None).await;
    let mut api = RuntimeApi::start().await;
    let log = std::env::temp_dir().join(format!("{}-verify.log", store.table()));
    let mut function = api.start_function(&release_binary("verify-secret"), &function_env(store.table()), Some(&log));
    let events_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let context = allowed_context("demo-app@demo-project", "demo-app", "current");
    let policy = |resource: &str| {
        json!({
            "principalId": "demo-app@demo-project",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": ["execute-api:Invoke"], "Effect": "Allow", "Resource": [resource]}]},
            "context": context,
        })
    };
    let unauthorized = Outcome::Error(json!({"errorType": "Unauthorized", "errorMessage": "Unauthorized"}));
    let expected = [
        ("authorizer-http-v2-allowed.json", Outcome::Response(json!({"isAuthorized": true, "context": context}))),
        ("authorizer-http-v2-wrong-secret.json", Outcome::Response(json!({"isAuthorized": false}))),
        ("authorizer-http-v2-malformed.json", Outcome::Response(json!({"isAuthorized": false}))),
        (
            "authorizer-http-v1-allowed.json",
            Outcome::Response(policy("arn:aws:execute-api:eu-central-1:123456789012:r3pmxmplak/$default/*")),
        ),
        (
            "authorizer-rest-request-allowed.json",
            Outcome::Response(policy("arn:aws:execute-api:eu-central-1:123456789012:a1b2c3d4e5/prod/*")),
        ),
        ("authorizer-rest-request-wrong-secret.json", unauthorized.clone()),
    ];
    let mut files: Vec<String> = std::fs::read_dir(&events_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("authorizer-"))
        .collect();
    files.sort();
    for name in &files {
        let outcome = invoke(&mut api, &mut function, &events_dir.join(name)).await;
        if name == "authorizer-whoami.json" {
            let Outcome::Response(response) = outcome else { panic!("{name}: {outcome:?}") };
            assert_eq!(response["statusCode"], json!(200));
            assert_eq!(response["headers"]["cache-control"], json!("no-store"));
            let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
            assert_eq!(body, context, "the route answers the authorizer's context");
            continue;
        }
        let (_, wanted) = expected
            .iter()
            .find(|(file, _)| file == name)
            .unwrap_or_else(|| panic!("events/{name} has no expected answer"));
        assert_eq!(&outcome, wanted, "{name}");
    }
    assert_eq!(files.len(), expected.len() + 1);

    function.child.start_kill().unwrap();
    let _ = function.child.wait().await;
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> =
        log.lines().filter(|l| l.contains("authenticate client")).map(|l| serde_json::from_str(l).unwrap()).collect();
    let outcomes: Vec<&str> = lines.iter().map(|l| l["Outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "current").count(), 3, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "denied").count(), 3, "{outcomes:?}");
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).filter(|r| !r.is_empty()).collect();
    assert!(
        reasons.contains(&"wrong secret") && reasons.contains(&"malformed credentials"),
        "the log says why: {reasons:?}"
    );
    assert!(lines.iter().all(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == json!("Authentications")));
    let stored = app(&store, "demo-org", "demo-project", "demo-app").await;
    assert_log_holds_none(&log, &[EVENTS_SECRET, stored.secret_hash.as_deref().unwrap()]);
    for forbidden in ["Basic ", "ZGVtby1hcHA", "$2b$"] {
        assert!(!log.contains(forbidden), "{forbidden:?} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_reads_encoded_ids_keeps_the_grace_window_and_revokes_at_once() {
    let store = demo_table().await;
    // A client id with `%` and `@`, a secret with `+` and a space: form-urlencoded in the header.
    let weird = key("demo-org", "demo-project", "weird-app");
    seed_app(&store, NewApp::oidc(weird.clone(), "weird%client@demo")).await;
    let (current, old) = ("p+q r/current", "p+q r/previous");
    set_hashes(&store, &weird, current, Some((old, OffsetDateTime::now_utc() + Duration::from_secs(60)))).await;
    let mut api = RuntimeApi::start().await;
    let mut function = api.start_function(&release_binary("verify-secret"), &function_env(store.table()), None);
    let mut ask =
        async |authorization: String| api.invoke(&mut function, &v2_event_with(&authorization), TIMEOUT).await;
    let allowed = |secret: &str| {
        Outcome::Response(
            json!({"isAuthorized": true, "context": allowed_context("weird%client@demo", "weird-app", secret)}),
        )
    };
    let denied = Outcome::Response(json!({"isAuthorized": false}));
    assert_eq!(ask(basic("weird%client@demo", current)).await, allowed("current"));
    assert_eq!(ask(basic("weird%client@demo", old)).await, allowed("previous"), "inside the grace window");
    // Unencoded, the `+` is a space and the `%c` no escape: not the same credentials.
    use base64::Engine;
    let raw =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("weird%client@demo:{current}")));
    assert_eq!(ask(raw).await, denied);
    assert_eq!(ask(basic("weird%client@demo", "p q r/current")).await, denied);
    assert_eq!(ask(basic("nobody@demo", current)).await, denied);
    // Past its expiry, the previous secret is denied.
    set_hashes(&store, &weird, current, Some((old, OffsetDateTime::now_utc() - Duration::from_secs(1)))).await;
    assert_eq!(ask(basic("weird%client@demo", old)).await, denied, "after the grace window");
    // revoke-previous kills a previous secret at once, with its own event.
    set_hashes(&store, &weird, current, Some((old, OffsetDateTime::now_utc() + Duration::from_secs(600)))).await;
    assert_eq!(ask(basic("weird%client@demo", old)).await, allowed("previous"));
    let before = app(&store, "demo-org", "demo-project", "weird-app").await.sequence;
    assert_eq!(store.revoke_previous(&weird, "admin").await.unwrap(), Some(before + 1));
    assert_eq!(ask(basic("weird%client@demo", old)).await, denied, "revoked");
    assert_eq!(ask(basic("weird%client@demo", current)).await, allowed("current"), "the current one stays");
    let events = events(&store, "demo-org", "demo-project", "weird-app").await;
    assert_eq!(text(events.last().unwrap(), "type"), "project.application.config.secret.previous.revoked");
    assert_eq!(store.revoke_previous(&weird, "admin").await.unwrap(), None, "nothing left to revoke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_its_own_basic_auth_gets_through_the_authorizer_with_the_current_secret_only() {
    let store = demo_table().await;
    let demo = key("demo-org", "demo-project", "demo-app");
    let secret = oidc_client_secret::secret::ClientSecret::generate(64);
    set_hashes(&store, &demo, secret.expose(), None).await;
    let api = RuntimeApi::start().await;
    let function = api.start_function(&release_binary("verify-secret"), &function_env(store.table()), None);
    let gateway = gateway::Gateway::start_behind_lambda_authorizer(api, function).await;
    let url = format!("{}/client/whoami", gateway.url());
    // curl's own `-u`: it base64-encodes `id:secret` itself, as most clients do (a value
    // without `%` or `+` is its own form-urlencoding).
    let curl = |user: Option<String>| {
        let url = url.clone();
        async move {
            let mut command = tokio::process::Command::new("curl");
            command.args(["-s", "-w", "\n%{http_code}", &url]);
            if let Some(user) = user {
                command.arg("-u").arg(user);
            }
            let output = command.output().await.expect("curl runs");
            let text = String::from_utf8(output.stdout).unwrap();
            let (body, status) = text.rsplit_once('\n').unwrap();
            (status.parse::<u16>().unwrap(), serde_json::from_str::<Value>(body).unwrap())
        }
    };
    let (status, body) = curl(Some(format!("demo-app@demo-project:{}", secret.expose()))).await;
    assert_eq!((status, body), (200, allowed_context("demo-app@demo-project", "demo-app", "current")));
    let (status, body) = curl(Some("demo-app@demo-project:not-it".into())).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})), "API Gateway's 403 for isAuthorized: false");
    let (status, body) = curl(None).await;
    assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));
}
