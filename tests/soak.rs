//! The soak (issues 21 and 27): every entry point at once, under random DynamoDB faults and
//! instance kills, judged afterwards by the history checker of `support/soak`. `make
//! test` runs a short one on the test build's binaries; `make soak` the long one on the
//! release binaries. The checker is tested here on histories fed by hand, each with one
//! violation it must find.

#[path = "support/soak/mod.rs"]
mod soak;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oidc_client_secret::jwt::Claims;

use soak::checker::{self, Check};
use soak::history::{
    AppState, Call, EventRow, Exercised, History, InstanceRecord, Minimums, NoAnswer, Outcome, RotationRun,
};

fn test_binaries() -> [PathBuf; 4] {
    [
        PathBuf::from(env!("CARGO_BIN_EXE_regenerate-secret")),
        PathBuf::from(env!("CARGO_BIN_EXE_verify-secret")),
        PathBuf::from(env!("CARGO_BIN_EXE_rotate-secret")),
        PathBuf::from(env!("CARGO_BIN_EXE_oauth")),
    ]
}

async fn soak_and_report(config: soak::Config) {
    let report = soak::run(config).await;
    println!("{report}");
    assert_eq!(report.violations(), 0, "the soak found violations:{report}");
}

/// `make test`'s soak: about 2,000 requests, faults on, at least one kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_faults_and_kills_keeps_every_invariant() {
    let config = soak::Config::from_env(soak::Config {
        requests: 2_000,
        // Within `make test`'s budget on a loaded 2-core machine, whatever the count then.
        limit: Duration::from_secs(32),
        fault_rate: 0.05,
        kill_rate: 0.002,
        min_kills: 1,
        regenerate: 4,
        verify: 2,
        rotate: 1,
        oauth: 2,
        binaries: test_binaries(),
        grace: Duration::from_secs(3),
        rss_after: 100,
        // About 1 in 20 calls is a v1-api one, the rarest door: 5 of them answered even
        // from a run of 1,000 requests on a loaded machine.
        min_ok_per_door: 5,
    });
    soak_and_report(config).await;
}

/// `make soak`: about 20,000 requests or 3 minutes, on the release binaries
/// (`SOAK_BIN_DIR=target/release`); every bound settable (`SOAK_*`, see docs/soak.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: `make soak` runs it"]
async fn soak_full() {
    let config = soak::Config::from_env(soak::Config {
        requests: 20_000,
        limit: Duration::from_secs(180),
        fault_rate: 0.05,
        kill_rate: 0.001,
        min_kills: 3,
        regenerate: 4,
        verify: 2,
        rotate: 1,
        oauth: 2,
        binaries: test_binaries(),
        grace: Duration::from_secs(3),
        rss_after: 1_000,
        min_ok_per_door: 50,
    });
    soak_and_report(config).await;
}

// ---- the checker, on histories fed by hand ----

const APP: &str = "org-a/proj-1/app-1";
const CLIENT: &str = "app-1@proj-1";

struct Fed {
    history: History,
    secrets: Vec<String>,
}

fn secret(n: u8) -> String {
    format!("{}{}", (b'A' + n) as char, "x".repeat(63))
}

fn call(id: &str, at: u64, outcome: Outcome) -> Call {
    Call {
        id: id.into(),
        instance: "regenerate-secret-0.0".into(),
        door: "v1-oidc",
        transport: "rest",
        app: Some(APP.into()),
        started: Duration::from_millis(at),
        ended: Duration::from_millis(at + 20),
        outcome,
        must_fail: false,
        refusal: &[],
        presented: None,
        client: None,
        token: None,
    }
}

fn written(id: &str, at: u64, secret: &str, sequence: u64) -> Call {
    call(id, at, Outcome::Secret { secret: secret.into(), sequence: Some(sequence) })
}

fn event(sequence: u64, request_id: &str) -> EventRow {
    EventRow { app: APP.into(), sequence, request_id: request_id.into() }
}

/// A history that keeps every invariant: two writes, a 503, a 504 that did not write, an
/// authentication with the current secret, clean logs.
fn fed() -> Fed {
    let secrets = vec![secret(0), secret(1)];
    let mut authenticate = call("verify0-000001", 200, Outcome::Allowed { matched: "current".into() });
    authenticate.door = "authorizer";
    authenticate.presented = Some(secrets[1].clone());
    let history = History {
        calls: vec![
            written("regenerate0-000001", 0, &secrets[0], 1),
            written("regenerate0-000002", 50, &secrets[1], 2),
            call("regenerate0-000003", 100, Outcome::Failed { code: 14, id: "STORE-unavailable".into() }),
            call("regenerate0-000004", 150, Outcome::Failed { code: 4, id: "STORE-unknown".into() }),
            authenticate,
        ],
        apps: vec![AppState {
            name: APP.into(),
            client_id: Some(CLIENT.into()),
            state: Some("ACTIVE".into()),
            sequence: 2,
            secret_hash: Some(bcrypt::hash(&secrets[1], 4).unwrap()),
            previous_hash: None,
        }],
        events: vec![event(1, "regenerate0-000001"), event(2, "regenerate0-000002")],
        instances: vec![InstanceRecord {
            name: "regenerate-secret-0.0".into(),
            killed: false,
            died: None,
            rss_early: Some(10_000),
            rss_end: Some(10_400),
            served: 4,
        }],
        logs: vec![(
            "regenerate-secret-0.0".into(),
            r#"{"level":"INFO","message":"regenerate client secret","request_id":"regenerate0-000001","status":200}"#
                .into(),
        )],
        grace: Duration::ZERO,
        late: Duration::from_secs(3),
        ..History::default()
    };
    Fed { history, secrets }
}

/// The checks that found something, by name.
fn violated(history: &History) -> Vec<(&'static str, Vec<String>)> {
    checker::check(history)
        .into_iter()
        .filter(|c: &Check| !c.violations.is_empty())
        .map(|c| (c.name, c.violations))
        .collect()
}

fn assert_caught(history: &History, check: &str) {
    let found = violated(history);
    assert!(found.iter().any(|(name, _)| name.starts_with(check)), "expected a violation of {check:?}, got {found:#?}");
}

/// A violation of `check` that says `why`.
fn assert_caught_saying(history: &History, check: &str, why: &str) {
    let found = violated(history);
    assert!(
        found.iter().any(|(name, violations)| name.starts_with(check) && violations.iter().any(|v| v.contains(why))),
        "expected a violation of {check:?} saying {why:?}, got {found:#?}"
    );
}

#[test]
fn the_checker_passes_a_history_that_keeps_every_invariant() {
    let Fed { history, .. } = fed();
    assert_eq!(violated(&history), vec![]);
}

#[test]
fn the_checker_finds_a_gap_in_an_apps_sequences() {
    let Fed { mut history, .. } = fed();
    history.events[1].sequence = 3;
    history.apps[0].sequence = 3;
    assert_caught(&history, "per app, events 1..n");
}

#[test]
fn the_checker_finds_a_duplicate_sequence() {
    let Fed { mut history, secrets } = fed();
    // A third call answered the same sequence 2, and an event of its own holds it too.
    history.calls.push(written("regenerate1-000001", 60, &secret(2), 2));
    history.events.push(event(2, "regenerate1-000001"));
    assert_caught(&history, "per app, events 1..n");
    assert_caught(&history, "every 200 has its own event");
    drop(secrets);
}

#[test]
fn the_checker_finds_a_503_that_wrote() {
    let Fed { mut history, .. } = fed();
    history.events.push(event(3, "regenerate0-000003"));
    history.apps[0].sequence = 3;
    assert_caught(&history, "every 503, 409, 403, 404, 400, 500");
}

#[test]
fn the_checker_finds_a_secret_leaked_in_a_log() {
    let Fed { mut history, secrets } = fed();
    let line = format!(r#"{{"level":"DEBUG","message":"sending","body":"{{\"clientSecret\":\"{}\"}}"}}"#, secrets[0]);
    history.logs.push(("regenerate-secret-1.0".into(), line));
    assert_caught(&history, "no secret, hash, token or Authorization value");
}

#[test]
fn the_checker_finds_a_hash_or_an_authorization_value_in_a_log() {
    let Fed { mut history, .. } = fed();
    let hash = history.apps[0].secret_hash.clone().unwrap();
    history.logs.push(("regenerate-secret-1.0".into(), format!("item {hash}")));
    assert_caught(&history, "no secret, hash, token or Authorization value");
    let Fed { mut history, .. } = fed();
    history.authorizations.push("Basic YXBwLTE6c2VjcmV0LXZhbHVlLTEyMzQ1Njc4".into());
    history.logs.push((
        "verify-secret-0.0".into(),
        r#"{"headers":{"authorization":"Basic YXBwLTE6c2VjcmV0LXZhbHVlLTEyMzQ1Njc4"}}"#.into(),
    ));
    assert_caught(&history, "no secret, hash, token or Authorization value");
}

#[test]
fn the_checker_finds_a_hash_that_is_not_the_last_writes_and_a_stale_authentication() {
    let Fed { mut history, secrets } = fed();
    history.apps[0].secret_hash = Some(bcrypt::hash(&secrets[0], 4).unwrap());
    assert_caught(&history, "the app's hash verifies");
    // An authentication allowed with the first secret long after the second replaced it.
    let Fed { mut history, secrets } = fed();
    let mut late = call("verify0-000002", 5_000, Outcome::Allowed { matched: "current".into() });
    late.door = "authorizer";
    late.presented = Some(secrets[0].clone());
    history.calls.push(late);
    assert_caught(&history, "authentications");
}

#[test]
fn the_checker_finds_a_write_by_no_call_and_an_instance_that_died() {
    let Fed { mut history, .. } = fed();
    history.events.push(event(3, "someone-else"));
    history.apps[0].sequence = 3;
    assert_caught(&history, "events = the 200s");
    let Fed { mut history, .. } = fed();
    history.instances[0].died = Some("exited (Some(101))".into());
    history.instances[0].rss_end = Some(20_000);
    assert_caught(&history, "no instance exited");
    assert_caught(&history, "each instance's RSS");
}

#[test]
fn the_checker_judges_a_previous_secret_by_its_grace_period() {
    let Fed { mut history, secrets } = fed();
    history.grace = Duration::from_secs(3);
    history.apps[0].previous_hash = Some(bcrypt::hash(&secrets[0], 4).unwrap());
    let denied = |id: &str, at: u64| {
        let mut denied = call(id, at, Outcome::Denied);
        denied.door = "authorizer";
        denied.presented = Some(secrets[0].clone());
        denied
    };
    // Replaced at 50..70 ms: past 3 s after that, a denial is right.
    history.calls.push(denied("verify0-000002", 3_400));
    assert_eq!(violated(&history), vec![]);
    // Inside the grace period, and DynamoDB answered: a denial is a violation.
    history.calls.push(denied("verify0-000003", 1_000));
    assert_caught(&history, "authentications");
}

#[test]
fn the_checker_finds_a_store_failure_answered_as_a_denial() {
    let Fed { mut history, secrets } = fed();
    let mut failed = call("verify0-000002", 400, Outcome::Unavailable);
    failed.door = "authorizer";
    failed.presented = Some(secrets[1].clone());
    history.calls.push(failed.clone());
    let logged = r#"{"message":"authenticate client","request_id":"verify0-000002","Outcome":"unavailable"}"#;
    history.logs.push(("verify-secret-0.0".into(), logged.into()));
    assert_eq!(violated(&history), vec![], "a function error of its own: no verdict");
    // The same failure answered as a denial: API Gateway would cache it for the TTL.
    history.calls.last_mut().unwrap().outcome = Outcome::Denied;
    assert_caught(&history, "authentications");
}

/// Minimums the fed history reaches: one door, its one app, one fault kind, one kill.
fn minimums() -> (Minimums, Exercised) {
    let minimums = Minimums {
        doors: vec!["v1-oidc"],
        ok_per_door: 2,
        hot_apps: vec![APP.into()],
        events_per_hot_app: 1,
        allowed: 1,
        denied: 0,
        finished_rotations: 0,
        tokens_issued: 0,
        tokens_refused: 0,
        introspections: 0,
        fault_kinds: vec!["reset before DynamoDB"],
        faults_per_kind: 1,
        transact_faults: 1,
        kills: 1,
    };
    let exercised =
        Exercised { faults: [("reset before DynamoDB", 3)].into_iter().collect(), transact_faults: 1, kills: 1 };
    (minimums, exercised)
}

#[test]
fn the_checker_finds_a_soak_that_exercised_too_little() {
    let Fed { mut history, .. } = fed();
    (history.minimums, history.exercised) = minimums();
    assert_eq!(violated(&history), vec![]);
    // Every call failed, no event, no authentication: every other invariant holds.
    let Fed { mut history, .. } = fed();
    (history.minimums, history.exercised) = minimums();
    for call in &mut history.calls {
        call.outcome = Outcome::Failed { code: 14, id: "STORE-unavailable".into() };
    }
    history.events.clear();
    history.apps[0].sequence = 0;
    history.apps[0].secret_hash = None;
    let found = violated(&history);
    assert_eq!(found.iter().map(|(name, _)| *name).collect::<Vec<_>>(), vec![found[0].0], "{found:#?}");
    assert!(found[0].0.starts_with("coverage"), "{found:#?}");
    assert_eq!(found[0].1.len(), 3, "200s, events and allowed authentications: {found:#?}");
    // No fault of a kind, none on a write, no kill, no finished rotation.
    let Fed { mut history, .. } = fed();
    (history.minimums, history.exercised) = minimums();
    history.minimums.finished_rotations = 1;
    history.runs.push(RotationRun {
        app: APP.into(),
        token: "token-1".into(),
        pending: None,
        finished: false,
        current_after: None,
        hash_at_finish: None,
        set_calls: Vec::new(),
        set_verified: None,
    });
    history.exercised = Exercised::default();
    let found = violated(&history);
    assert!(found.iter().all(|(name, _)| name.starts_with("coverage")), "{found:#?}");
    assert_eq!(found[0].1.len(), 4, "a fault kind, a write's fault, a kill, a rotation: {found:#?}");
}

#[test]
fn the_checker_finds_a_write_by_a_call_that_must_fail_whatever_its_answer() {
    for outcome in [Outcome::NoAnswer(NoAnswer::Killed), Outcome::Failed { code: 4, id: "STORE-unknown".into() }] {
        let Fed { mut history, .. } = fed();
        let mut outsider = call("regenerate1-000001", 300, outcome);
        outsider.must_fail = true;
        history.calls.push(outsider);
        history.events.push(event(3, "regenerate1-000001"));
        history.apps[0].sequence = 3;
        assert_caught(&history, "every 503, 409, 403, 404, 400, 500");
    }
}

#[test]
fn the_checker_takes_only_a_store_unknown_504_for_an_unknown_outcome() {
    let Fed { mut history, .. } = fed();
    history.calls.push(call("regenerate1-000001", 300, Outcome::Failed { code: 4, id: "COMMAND-other".into() }));
    history.events.push(event(3, "regenerate1-000001"));
    history.apps[0].sequence = 3;
    assert_caught(&history, "every 503, 409, 403, 404, 400, 500");
}

#[test]
fn the_client_reads_an_error_whose_http_status_is_not_its_codes_as_a_violation() {
    use soak::doors::{Transport, read};
    let answer = |status: u16, body: &str| serde_json::json!({"statusCode": status, "body": body});
    let rest = r#"{"code":14,"message":"unavailable (STORE-unavailable)","details":[{"id":"STORE-unavailable"}]}"#;
    let connect = r#"{"code":"unavailable","message":"unavailable (STORE-unavailable)"}"#;
    let unavailable = Outcome::Failed { code: 14, id: "STORE-unavailable".into() };
    assert_eq!(read(&answer(503, rest), Transport::Rest, true), unavailable);
    assert_eq!(read(&answer(503, connect), Transport::ConnectJson, false), unavailable);
    for (status, body, transport) in
        [(500, rest, Transport::Rest), (400, connect, Transport::ConnectJson), (500, connect, Transport::ConnectProto)]
    {
        let outcome = read(&answer(status, body), transport, false);
        assert!(matches!(outcome, Outcome::Unreadable(_)), "HTTP {status} over {transport:?}: {outcome:?}");
        let Fed { mut history, .. } = fed();
        history.calls.push(call("regenerate1-000001", 300, outcome));
        assert_caught(&history, "every answer is one the client can read, its HTTP status");
    }
}

#[test]
fn the_checker_finds_a_rightful_write_refused_and_a_refusal_with_the_wrong_error() {
    for (code, id) in [(7, "AUTH-5mWD2"), (5, "COMMAND-2g66f"), (3, "REQ-invalid"), (13, "INTERNAL")] {
        let Fed { mut history, .. } = fed();
        history.calls.push(call("regenerate1-000001", 300, Outcome::Failed { code, id: id.into() }));
        assert_caught(&history, "every rightful write");
    }
    // A missing app must be a 404: a 403, or a secret, is wrong; a 503 or no answer is not.
    let missing = |outcome: Outcome| {
        let mut c = call("regenerate1-000002", 300, outcome);
        c.must_fail = true;
        c.refusal = &[5];
        c
    };
    let Fed { mut history, .. } = fed();
    history.calls.push(missing(Outcome::Failed { code: 5, id: "COMMAND-2g66f".into() }));
    history.calls.push(missing(Outcome::Failed { code: 14, id: "STORE-unavailable".into() }));
    history.calls.push(missing(Outcome::NoAnswer(NoAnswer::Killed)));
    for c in history.calls.iter_mut().rev().take(3).enumerate() {
        c.1.id = format!("regenerate1-00000{}", c.0 + 2);
    }
    assert_eq!(violated(&history), vec![]);
    history.calls.push(missing(Outcome::Failed { code: 7, id: "AUTH-5mWD2".into() }));
    assert_caught(&history, "every rightful write");
}

#[test]
fn the_checker_finds_a_secret_it_never_saw_in_a_log_and_an_empty_log() {
    // A secret no answer gave (a call whose answer was lost), in a log line.
    let Fed { mut history, .. } = fed();
    let unseen = "Q7f".repeat(21) + "z";
    let line = format!(
        r#"{{"level":"DEBUG","message":"item","secretValue":"{unseen}","trace":"1-5759e988-bd862e3fe1be46a994272793"}}"#
    );
    history.logs.push(("regenerate-secret-1.0".into(), line));
    assert_caught(&history, "no secret, hash, token or Authorization value");
    // A SHA-256 (a signer's payload hash) is not one; nor are 63 or 65 letters and digits.
    let Fed { mut history, .. } = fed();
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let near = format!("{} {}", "Ab1".repeat(21), "Ab1".repeat(21) + "xy");
    history.logs.push(("regenerate-secret-1.0".into(), format!("x-amz-content-sha256: {sha} {near}")));
    assert_eq!(violated(&history), vec![]);
    // An instance that served requests and logged nothing.
    let Fed { mut history, .. } = fed();
    history.logs[0].1 = String::new();
    assert_caught(&history, "no secret, hash, token or Authorization value");
    let Fed { mut history, .. } = fed();
    history.logs.clear();
    assert_caught(&history, "no secret, hash, token or Authorization value");
}

#[test]
fn the_checker_finds_an_ok_set_secret_that_wrote_nothing_and_an_unexpected_step_failure() {
    let run = |set_verified| RotationRun {
        app: APP.into(),
        token: "token-1".into(),
        pending: None,
        finished: false,
        current_after: None,
        hash_at_finish: None,
        set_calls: vec!["rotate0-000002".into()],
        set_verified,
    };
    let Fed { mut history, .. } = fed();
    history.runs.push(run(Some(true)));
    assert_eq!(violated(&history), vec![]);
    history.runs[0] = run(Some(false));
    assert_caught(&history, "every finished rotation");
    // A step failed as DynamoDB's failures allow: no violation; any other way: one.
    let step = |kind: &str, message: &str| {
        let mut c = call(
            "rotate0-000001",
            300,
            Outcome::StepFailed { kind: kind.into(), unknown: false, message: message.into() },
        );
        c.door = "rotation";
        c.transport = "testSecret";
        c
    };
    let Fed { mut history, .. } = fed();
    history.calls.push(step("AppRefused", "Service temporarily unavailable, try again"));
    assert_eq!(violated(&history), vec![]);
    for (kind, message) in [
        ("TestFailed", "the pending secret does not verify against the table"),
        ("InvalidToken", "secret version x is not staged AWSPENDING"),
        ("AppRefused", "Application doesn't exist"),
    ] {
        let Fed { mut history, .. } = fed();
        history.calls.push(step(kind, message));
        assert_caught(&history, "every finished rotation");
    }
}

#[test]
fn the_checker_finds_a_previous_hash_missing_inside_its_grace() {
    let Fed { mut history, secrets } = fed();
    history.grace = Duration::from_secs(3);
    // Read 1 s after the second write replaced the first secret: its hash must be there.
    history.read_at = Duration::from_secs(1);
    assert_caught(&history, "the app's hash verifies");
    history.apps[0].previous_hash = Some(bcrypt::hash(&secrets[0], 4).unwrap());
    assert_eq!(violated(&history), vec![]);
    // Read past the grace: the previous hash may be gone.
    history.apps[0].previous_hash = None;
    history.read_at = Duration::from_secs(4);
    assert_eq!(violated(&history), vec![]);
}

// ---- the oauth function's calls, on histories fed by hand ----

/// A 2048-bit RSA key made for these tests alone (openssl genrsa), as PKCS#1 DER and its
/// public half as SubjectPublicKeyInfo DER: the fed histories' tokens are RS256 as the
/// function's, without KMS.
const TEST_KEY_PKCS1: &str = concat!(
    "MIIEpAIBAAKCAQEAl2+JpOgyiQDybCDIj2sjBMdlVoo/BQ/hmV1zJ/l+JrULzI90468NAO7EKVYgW1Zx8Iv+5vENAP+iW091",
    "LrrOKOHupGbY/qBTrTrgfWDbyyLcOC4N3ri3KdlOdkzrDO8lDyNKtKFI2EQHvNefvR15zcOHqTo66M2Au3HK+7dPBUG1v7SF",
    "l3Z7eCkfQqUk1vuiqXlwM/FBqw4P+1Dd657eDdnt0wYwrozKevvNcdtOe6ujkXiK79+EFrqXOzIEzwuajFyuWw3HntPuSlhM",
    "eKvjHdxDVyBGeBiPO0wiEbbxWT+Mmb431M/COEu2Yj0tr/40dMhf8RpYICRY4As+iGF5xQIDAQABAoIBABpveZ9Ee4HoHOmc",
    "RXan1LqiVkHnqz2mepLruc0KJCf8pd0lU9nlNodppuuyYb6gFg7QWYSWIteASKbY9ZNdP9zqJ98iJxI4CbNtWj/41xWcdcYG",
    "4Bv3sd3H1gcXwVaGLrl4RzPGDfHW2mTwXS3FxfwR/I4hoKQAL89I+466frxjaeh6L4vInJHdpRXc4R8gPx/d8LvA2KwyGZI1",
    "m2XERHxN3kKcNSrjKKAMZsH2cg1jlc4dWca7S3r4nyRlKqJ0FHgZSMq056+MvatdokqRtvAVcIXUUD6fUsx+gyoyuN1lZYON",
    "YWN86qydU5og/w2HyvY4fuQtnWu4qB25L7rf0DcCgYEAxpElpt1RqM/YTwC/EKRON4HdCMXiJetjA3u4jlnl1hsigX6Dc2F3",
    "EZCxO9asD1jEWRe0A3qVTXHr3M6GF4Zbv44zAzwRHtOBdxgfewNHjsVRt9w0o/xYlA5Pm5dkv1OObAlSR28efzPYfMs/0qhe",
    "4p46we7B1C+jyJtZi4JbhRMCgYEAwzyQUvDfozgxVKYOsV8TXGfuYOzX4m4TqjO78XeSbPogXkF1LEmCK6K4D+FxUxPf3mRZ",
    "iaNW5XG1S2y+NTu8vCSCutz7jdqP8Mb8fLxtKwgqwl0yXZksdwMc3f/Vd3Fw11OX1QiWatjcQY6QCqb7J1J52yv9Ei4l613I",
    "Y+jX2McCgYBeVZCcsKJd37h09/bNkjFyn2iCBXjF6QkWG433WvAdArEm8hLDGve1SZdZxUfi1poZdXBZAsCxlUCnmxoLTRKD",
    "c6v6imvbyEHGcZhrGYjCZC3Jen0rtvPiCtZ5JbiASNLtspP7SegkKF5eEzVUABdr9B4YCjTdeHCIGn21EI4oLwKBgQCOumzs",
    "JanoogD2WDuvkckOqfBMLXmZ0E1SBWYlnfuO7cDSB1qI2OhvzBJxkaeOS55C7+vBQocZT+pwzHu1YQmWJb7oqvq/9oN6S450",
    "BjBs4BiaZRWX9Y3bJ4xoA0rkeis7T6JVHGUSkZ1b08Qb9Xzwf0wUXXEyZEhWbAY+fA+oKwKBgQCj6fp/dpzTv4HD2JfFJ1NO",
    "xzc5uUPVBQYR/zooONxTGiTzGwdBdXg9xpM9AzhzO8m2z22cyd1/CuTIb8NeGeTzNw7JcNSL1G0JHfx+gpe17jRpCGWBJG6x",
    "CpKZsV3rvPrB3SUNIQ0SYpKGbcsWexwgGF9y3l7U6ieqmVzZbRdQ0Q==",
);
const TEST_KEY_SPKI: &str = concat!(
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAl2+JpOgyiQDybCDIj2sjBMdlVoo/BQ/hmV1zJ/l+JrULzI90468N",
    "AO7EKVYgW1Zx8Iv+5vENAP+iW091LrrOKOHupGbY/qBTrTrgfWDbyyLcOC4N3ri3KdlOdkzrDO8lDyNKtKFI2EQHvNefvR15",
    "zcOHqTo66M2Au3HK+7dPBUG1v7SFl3Z7eCkfQqUk1vuiqXlwM/FBqw4P+1Dd657eDdnt0wYwrozKevvNcdtOe6ujkXiK79+E",
    "FrqXOzIEzwuajFyuWw3HntPuSlhMeKvjHdxDVyBGeBiPO0wiEbbxWT+Mmb431M/COEu2Yj0tr/40dMhf8RpYICRY4As+iGF5",
    "xQIDAQAB",
);

const ISSUER: &str = "https://soak.example.com";
const INTROSPECTOR: &str = "org-a/proj-1/introspector";
const INTROSPECTOR_CLIENT: &str = "introspector@proj-1";

fn test_key() -> oidc_client_secret::jwt::PublicKey {
    oidc_client_secret::jwt::PublicKey::from_spki_der(&STANDARD.decode(TEST_KEY_SPKI).unwrap()).unwrap()
}

fn unix_now() -> i64 {
    oidc_client_secret::jwt::unix_now()
}

/// The claims the function puts in a token for `CLIENT`, issued now.
fn claims() -> Claims {
    let now = unix_now();
    Claims {
        iss: ISSUER.into(),
        sub: CLIENT.into(),
        client_id: CLIENT.into(),
        aud: vec!["proj-1".into()],
        iat: now,
        exp: now + 3600,
        jti: oidc_client_secret::jwt::new_jti(),
        scope: None,
        org: "org-a".into(),
    }
}

/// `claims` signed RS256 by the test key, typed `at+jwt`, under its kid.
fn signed(claims: &Claims) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&STANDARD.decode(TEST_KEY_PKCS1).unwrap());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(test_key().kid);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn oauth_call(id: &str, at: u64, door: &'static str, client: &str, presented: &str, outcome: Outcome) -> Call {
    let mut c = call(id, at, outcome);
    (c.door, c.transport, c.app, c.instance) = (door, "basic current", None, "oauth-0.0".into());
    (c.client, c.presented) = (Some(client.into()), Some(presented.into()));
    c
}

/// The fed history, and an oauth instance that served it: the JWKS it published, a token
/// for `CLIENT`'s current secret, a wrong secret refused, and the API app of its project
/// (seeded with its secret) introspecting the token, active.
struct FedOAuth {
    history: History,
    secrets: Vec<String>,
    token: String,
    introspector: String,
}

fn fed_oauth() -> FedOAuth {
    let Fed { mut history, secrets } = fed();
    let introspector = secret(9);
    let token = signed(&claims());
    history.epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    history.issuer = ISSUER.into();
    history.jwks = Some(serde_json::json!({"keys": [test_key().jwk()]}));
    history.seeded.push((INTROSPECTOR.into(), introspector.clone()));
    history.apps.push(AppState {
        name: INTROSPECTOR.into(),
        client_id: Some(INTROSPECTOR_CLIENT.into()),
        state: Some("ACTIVE".into()),
        sequence: 0,
        secret_hash: Some(bcrypt::hash(&introspector, 4).unwrap()),
        previous_hash: None,
    });
    let issued = Outcome::Token { token: token.clone() };
    let refused = Outcome::OAuthError { status: 401, error: "invalid_client".into() };
    history.calls.extend([
        oauth_call("oauth0-000001", 200, "oauth-token", CLIENT, &secrets[1], issued),
        oauth_call("oauth0-000002", 250, "oauth-token", CLIENT, &secret(7), refused),
        oauth_call(
            "oauth0-000003",
            300,
            "oauth-introspect",
            INTROSPECTOR_CLIENT,
            &introspector,
            Outcome::Introspected { active: true },
        ),
    ]);
    oauth_call_of(&mut history, "oauth0-000003").token = Some(token.clone());
    history.instances.push(InstanceRecord {
        name: "oauth-0.0".into(),
        killed: false,
        died: None,
        rss_early: None,
        rss_end: None,
        served: 3,
    });
    let line = |id: &str, outcome: &str| {
        format!(
            r#"{{"level":"INFO","message":"oauth request","request_id":"{id}","route":"token","client_id":"{CLIENT}","Outcome":"{outcome}","jti":"{}"}}"#,
            oidc_client_secret::jwt::new_jti()
        )
    };
    let log = [line("oauth0-000001", "issued"), line("oauth0-000002", "denied"), line("oauth0-000003", "active")];
    history.logs.push(("oauth-0.0".into(), log.join("\n")));
    FedOAuth { history, secrets, token, introspector }
}

/// The oauth call of the fed history with this id.
fn oauth_call_of<'a>(history: &'a mut History, id: &str) -> &'a mut Call {
    history.calls.iter_mut().find(|c| c.id == id).unwrap()
}

#[test]
fn the_checker_passes_tokens_and_introspections_that_keep_every_rule() {
    let FedOAuth { history, .. } = fed_oauth();
    assert_eq!(violated(&history), vec![]);
    let checks = checker::check(&history);
    let checked = |prefix: &str| checks.iter().find(|c| c.name.starts_with(prefix)).unwrap().checked;
    assert_eq!((checked("tokens"), checked("every issued token"), checked("introspections")), (2, 1, 1));
}

#[test]
fn the_checker_finds_a_token_issued_for_a_wrong_secret() {
    // The wrong secret's call answered a token instead of invalid_client.
    let FedOAuth { mut history, .. } = fed_oauth();
    oauth_call_of(&mut history, "oauth0-000002").outcome = Outcome::Token { token: signed(&claims()) };
    assert_caught_saying(&history, "tokens", "for a secret that no write of it gave");
}

#[test]
fn the_checker_finds_a_token_issued_for_an_unknown_inactive_or_expired_grace_client() {
    // A client id that names no app.
    let FedOAuth { mut history, .. } = fed_oauth();
    oauth_call_of(&mut history, "oauth0-000001").client = Some("ghost@proj-1".into());
    assert_caught_saying(&history, "tokens", "which names no app");
    // The app is INACTIVE (its right secret): no token.
    let FedOAuth { mut history, .. } = fed_oauth();
    history.apps[0].state = Some("INACTIVE".into());
    assert_caught_saying(&history, "tokens", "an app that is INACTIVE");
    // A previous secret: a token inside its grace is right, after it is not.
    let FedOAuth { mut history, secrets, .. } = fed_oauth();
    history.grace = Duration::from_secs(3);
    history.read_at = Duration::from_secs(10);
    let previous = |id: &str, at: u64| {
        oauth_call(id, at, "oauth-token", CLIENT, &secrets[0], Outcome::Token { token: signed(&claims()) })
    };
    history.calls.push(previous("oauth0-000004", 1_000));
    assert_eq!(violated(&history), vec![]);
    history.calls.push(previous("oauth0-000005", 3_400));
    assert_caught_saying(&history, "tokens", "outside the time it was valid");
}

#[test]
fn the_checker_finds_a_rightful_client_refused_unless_the_store_failed() {
    let FedOAuth { mut history, secrets, .. } = fed_oauth();
    let unavailable = Outcome::OAuthError { status: 503, error: "temporarily_unavailable".into() };
    history.calls.push(oauth_call("oauth0-000004", 400, "oauth-token", CLIENT, &secrets[1], unavailable));
    assert_eq!(violated(&history), vec![]);
    oauth_call_of(&mut history, "oauth0-000004").outcome =
        Outcome::OAuthError { status: 401, error: "invalid_client".into() };
    assert_caught(&history, "tokens");
    // The introspecting API app, with its seeded secret, likewise.
    let FedOAuth { mut history, .. } = fed_oauth();
    oauth_call_of(&mut history, "oauth0-000003").outcome =
        Outcome::OAuthError { status: 401, error: "invalid_client".into() };
    assert_caught(&history, "introspections");
}

#[test]
fn the_checker_finds_a_token_that_does_not_verify_against_the_jwks() {
    let issued = |history: &mut History, token: String| {
        oauth_call_of(history, "oauth0-000001").outcome = Outcome::Token { token };
    };
    // A genuine signature over a tampered payload.
    let FedOAuth { mut history, token, .. } = fed_oauth();
    let mut tampered = claims();
    tampered.aud = vec!["proj-1".into(), "proj-9".into()];
    let payload = signed(&tampered).split('.').nth(1).unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    issued(&mut history, format!("{}.{payload}.{}", parts[0], parts[2]));
    assert_caught(&history, "every issued token verifies");
    // Another issuer, another client, an expired token, a token for another project.
    for change in [
        (|c: &mut Claims| c.iss = "https://evil.example".into()) as fn(&mut Claims),
        |c| c.client_id = "someone-else".into(),
        |c| c.exp = unix_now() - 10,
        |c| c.aud = vec!["proj-9".into()],
    ] {
        let FedOAuth { mut history, .. } = fed_oauth();
        let mut claims = claims();
        change(&mut claims);
        issued(&mut history, signed(&claims));
        assert_caught(&history, "every issued token verifies");
    }
    // A JWKS that publishes another key, or none.
    let FedOAuth { mut history, .. } = fed_oauth();
    let other = oidc_client_secret::jwt::PublicKey::from_components(&[0xC5; 256], &[1, 0, 1]);
    history.jwks = Some(serde_json::json!({"keys": [other.jwk()]}));
    assert_caught(&history, "every issued token verifies");
    history.jwks = None;
    assert_caught(&history, "every issued token verifies");
}

#[test]
fn the_checker_finds_a_token_in_a_log() {
    // Each part of an issued token: its claims, its signature.
    for part in [1, 2] {
        let FedOAuth { mut history, token, .. } = fed_oauth();
        let leaked = token.split('.').nth(part).unwrap();
        history.logs[1].1.push_str(&format!("\n{{\"level\":\"TRACE\",\"body\":\"access_token={leaked}\"}}"));
        assert_caught(&history, "no secret, hash, token or Authorization value");
    }
    // A token the soak never saw (its answer lost), whole: none of its parts is known.
    let FedOAuth { mut history, .. } = fed_oauth();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("another".into());
    let unseen = jsonwebtoken::encode(&header, &claims(), &jsonwebtoken::EncodingKey::from_secret(b"k")).unwrap();
    history.logs[1].1.push_str(&format!("\n{{\"level\":\"DEBUG\",\"message\":\"answer\",\"token\":\"{unseen}\"}}"));
    assert_caught(&history, "no secret, hash, token or Authorization value");
    // An introspector's secret, or a post body's base64 (the credential as the event carries it).
    let FedOAuth { mut history, introspector, .. } = fed_oauth();
    history.logs[1].1.push_str(&format!("\nclient_secret={introspector}"));
    assert_caught(&history, "no secret, hash, token or Authorization value");
    let FedOAuth { mut history, secrets, .. } = fed_oauth();
    let body = STANDARD.encode(format!("grant_type=client_credentials&client_id=app-1&client_secret={}", secrets[1]));
    history.authorizations.push(body.clone());
    history.logs[1].1.push_str(&format!("\n{{\"body\":\"{body}\",\"isBase64Encoded\":true}}"));
    assert_caught(&history, "no secret, hash, token or Authorization value");
}

#[test]
fn the_checker_holds_introspection_to_its_rules() {
    // A forged token (one the endpoint never issued) found active.
    let FedOAuth { mut history, token, .. } = fed_oauth();
    let introspected = oauth_call_of(&mut history, "oauth0-000003");
    introspected.token = Some(format!("{}x", &token[..token.len() - 1]));
    assert_caught(&history, "introspections");
    // The issued token found inactive by its project's API app.
    let FedOAuth { mut history, .. } = fed_oauth();
    oauth_call_of(&mut history, "oauth0-000003").outcome = Outcome::Introspected { active: false };
    assert_caught(&history, "introspections");
    // Another project's API app finding it active.
    let FedOAuth { mut history, .. } = fed_oauth();
    history.apps[1].name = "org-a/proj-2/introspector".into();
    history.seeded[0].0 = "org-a/proj-2/introspector".into();
    assert_caught(&history, "introspections");
    oauth_call_of(&mut history, "oauth0-000003").outcome = Outcome::Introspected { active: false };
    assert_eq!(violated(&history), vec![]);
}

#[test]
fn the_checker_finds_a_soak_without_tokens_refusals_or_introspections() {
    let FedOAuth { mut history, .. } = fed_oauth();
    history.minimums = Minimums { tokens_issued: 1, tokens_refused: 1, introspections: 1, ..Minimums::default() };
    assert_eq!(violated(&history), vec![]);
    history.calls.retain(|c| !c.is_oauth());
    history.logs.pop();
    history.instances.pop();
    let found = violated(&history);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].0.starts_with("coverage") && found[0].1.len() == 3, "{found:#?}");
}
