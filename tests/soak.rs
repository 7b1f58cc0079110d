//! The soak (issue 21): every entry point at once, under random DynamoDB faults and
//! instance kills, judged afterwards by the history checker of `support/soak`. `make
//! test` runs a short one on the test build's binaries; `make soak` the long one on the
//! release binaries. The checker is tested here on histories fed by hand, each with one
//! violation it must find.

#[path = "support/soak/mod.rs"]
mod soak;
mod support;

use std::path::PathBuf;
use std::time::Duration;

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
