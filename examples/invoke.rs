//! `make invoke EVENT=events/<file>.json`: runs the release `regenerate-secret` binary
//! under a Lambda Runtime API on loopback (the one the tests use), hands it the event,
//! and prints the function's response: `sam local invoke` without Docker.
//! The function's environment is this process's (TABLE_NAME, AWS_ENDPOINT_URL_DYNAMODB, ...).

#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::time::Duration;

use runtime_api::{Outcome, RuntimeApi};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(event), Some(binary)) = (args.next(), args.next()) else {
        eprintln!("usage: invoke <event.json> <function binary>");
        std::process::exit(2);
    };
    let payload = std::fs::read(&event).unwrap_or_else(|e| {
        eprintln!("{event}: {e}");
        std::process::exit(2)
    });
    let passed: Vec<(&str, String)> = [
        "TABLE_NAME",
        "SECRET_LENGTH",
        "SECRET_HASH_COST",
        "SECRET_GRACE_SECONDS",
        "USER_CLAIM",
        "ORG_CLAIM",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_LAMBDA_LOG_LEVEL",
        "RUST_LOG",
    ]
    .into_iter()
    .filter_map(|name| std::env::var(name).ok().map(|value| (name, value)))
    .collect();
    let log = std::env::temp_dir().join(format!("invoke-{}.log", std::process::id()));
    let mut api = RuntimeApi::start().await;
    let mut function = api.spawn(&PathBuf::from(binary), &passed, Some(&log));
    let outcome = api.invoke(&mut function, &payload, Duration::from_secs(30)).await;
    if let Some(init) = api.init_duration(&function) {
        eprintln!("init: {:.1} ms (process start to the first `next`)", init.as_secs_f64() * 1000.0);
    }
    let _ = function.child.start_kill();
    let _ = function.child.wait().await;
    eprint!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    let _ = std::fs::remove_file(&log);
    match outcome {
        Outcome::Response(response) => println!("{}", serde_json::to_string_pretty(&response).unwrap()),
        other => {
            eprintln!("{other:?}");
            std::process::exit(1);
        }
    }
}
