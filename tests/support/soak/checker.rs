//! The soak's checker: judges a whole [`History`] against the contract (SPEC sections 5,
//! 6a, 11, 13), as Jepsen's checkers judge theirs. Calls whose outcome is unknown (no
//! answer, 504 `STORE-unknown`) may or may not have written; every other call's answer is
//! taken at its word, and the table at the end must agree with all of them. The secrets a
//! client presents, to the authorizer or to the token endpoint, are judged on the same
//! windows in which each write's secret can have been, and certainly was, valid.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::history::{AppState, Call, History, Outcome};

/// One check: what it judged, and what it found wrong.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub checked: u64,
    /// Counted apart, not a violation (authentications denied while DynamoDB failed).
    pub apart: Option<(&'static str, u64)>,
    /// Figures the report prints under the check (the coverage reached).
    pub notes: Vec<String>,
    pub violations: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self { name, checked: 0, apart: None, notes: Vec::new(), violations: Vec::new() }
    }
}

/// Most a check lists; the count says how many there were.
const LISTED: usize = 20;

const FOREVER: Duration = Duration::from_secs(1 << 40);
/// Clock slack between the soak's clock and the instances' (one machine: scheduling only).
const SLOP: Duration = Duration::from_millis(50);

pub fn total_violations(checks: &[Check]) -> usize {
    checks.iter().map(|c| c.violations.len()).sum()
}

/// Who can have written an event: a call, or a rotation run, whose events name its
/// version token (any of its setSecret invocations, retries included, may have written).
struct Writer<'a> {
    what: String,
    app: Option<&'a str>,
    started: Duration,
    ended: Duration,
    /// It answered a success, or had no definite answer.
    may_write: bool,
    /// No definite answer: its write may land up to `late` after `ended`.
    unknown: bool,
    secret: Option<&'a str>,
}

fn writers_of(history: &History) -> HashMap<&str, Writer<'_>> {
    let mut writers = HashMap::new();
    for call in history.calls.iter().filter(|c| c.door != "rotation") {
        let secret = match &call.outcome {
            Outcome::Secret { secret, .. } => Some(secret.as_str()),
            _ => None,
        };
        let what = format!(
            "{} ({} {}, on {}, answered {})",
            call.id,
            call.door,
            call.transport,
            call.instance,
            describe(&call.outcome)
        );
        writers.insert(
            call.id.as_str(),
            Writer {
                what,
                app: call.app.as_deref(),
                started: call.started,
                ended: call.ended,
                may_write: call.may_write(),
                unknown: call.outcome.unknown(),
                secret,
            },
        );
    }
    let by_id: HashMap<&str, &Call> = history.calls.iter().map(|c| (c.id.as_str(), c)).collect();
    for run in &history.runs {
        let calls: Vec<&Call> = run.set_calls.iter().filter_map(|id| by_id.get(id.as_str()).copied()).collect();
        let (Some(first), Some(last)) = (calls.first(), calls.last()) else { continue };
        let outcomes: Vec<String> = calls.iter().map(|c| format!("{} {}", c.id, describe(&c.outcome))).collect();
        writers.insert(
            run.token.as_str(),
            Writer {
                what: format!("rotation {} (setSecret: {})", run.token, outcomes.join(", ")),
                app: Some(run.app.as_str()),
                started: first.started,
                ended: last.ended,
                may_write: calls.iter().any(|c| c.may_write()),
                unknown: !calls.iter().any(|c| c.outcome == Outcome::Step),
                secret: run.pending.as_deref(),
            },
        );
    }
    writers
}

/// Every check, in the order the report prints them.
pub fn check(history: &History) -> Vec<Check> {
    let writers = writers_of(history);
    let mut events: BTreeMap<&str, Vec<&super::history::EventRow>> = BTreeMap::new();
    for event in &history.events {
        events.entry(event.app.as_str()).or_default().push(event);
    }
    for list in events.values_mut() {
        list.sort_by_key(|e| e.sequence);
    }
    let secret_of = |id: &str| -> Option<&str> { writers.get(id).and_then(|w| w.secret) };
    let validity = Validity::new(history, &events, &writers);
    let mut checks = vec![
        sequences(history, &events),
        event_writers(history, &writers),
        failures_wrote_nothing(history, &writers),
        successes(history),
        answers(history),
        hashes(history, &events, &writers, &secret_of),
        authentications(history, &validity),
        tokens(history, &validity),
        token_signatures(history),
        introspections(history, &validity),
        rotations(history, &events),
        logs(history),
        instances(history),
        memory(history),
        coverage(history),
    ];
    let unreadable: Vec<String> = history
        .calls
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Unreadable(why) => Some(format!("{} ({} {}): {why}", c.id, c.door, c.transport)),
            _ => None,
        })
        .collect();
    let mut readable = Check::new("every answer is one the client can read, its HTTP status its code's");
    readable.checked = history.calls.len() as u64;
    readable.violations = unreadable;
    checks.push(readable);
    for check in &mut checks {
        if check.violations.len() > LISTED {
            let more = check.violations.len() - LISTED;
            check.violations.truncate(LISTED);
            check.violations.push(format!("... and {more} more"));
        }
    }
    checks
}

fn sequences(history: &History, events: &BTreeMap<&str, Vec<&super::history::EventRow>>) -> Check {
    let mut check = Check::new("per app, events 1..n with no gap or duplicate, and the app's sequence is n");
    let apps: HashMap<&str, u64> = history.apps.iter().map(|a| (a.name.as_str(), a.sequence)).collect();
    for app in &history.apps {
        check.checked += 1;
        let list = events.get(app.name.as_str()).map(Vec::as_slice).unwrap_or_default();
        let sequences: Vec<u64> = list.iter().map(|e| e.sequence).collect();
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        if sequences != expected {
            let mut seen = HashSet::new();
            let duplicates: Vec<u64> = sequences.iter().copied().filter(|s| !seen.insert(*s)).collect();
            let missing: Vec<u64> =
                (1..=sequences.iter().copied().max().unwrap_or(0)).filter(|s| !seen.contains(s)).collect();
            check.violations.push(format!(
                "{}: events {} (gaps at {missing:?}, duplicates {duplicates:?})",
                app.name,
                summary(&sequences)
            ));
        }
        if app.sequence != sequences.len() as u64 {
            check.violations.push(format!("{}: sequence {} but {} events", app.name, app.sequence, sequences.len()));
        }
    }
    for (app, list) in events {
        if !apps.contains_key(app) {
            check.violations.push(format!("{app}: {} events of an app that is not in the table", list.len()));
        }
    }
    check
}

fn summary(sequences: &[u64]) -> String {
    if sequences.len() <= 8 {
        return format!("{sequences:?}");
    }
    format!(
        "[{}, {}, ... {}] ({} of them)",
        sequences[0],
        sequences[1],
        sequences[sequences.len() - 1],
        sequences.len()
    )
}

fn event_writers(history: &History, writers: &HashMap<&str, Writer<'_>>) -> Check {
    let mut check = Check::new("events = the 200s + writes of calls with no definite answer, and nothing else");
    let mut per_request: HashMap<&str, Vec<u64>> = HashMap::new();
    for event in &history.events {
        check.checked += 1;
        per_request.entry(event.request_id.as_str()).or_default().push(event.sequence);
        match writers.get(event.request_id.as_str()) {
            None => check.violations.push(format!(
                "{} sequence {}: written by request {}, which no call of the soak made",
                event.app, event.sequence, event.request_id
            )),
            Some(writer) if writer.app != Some(event.app.as_str()) => check.violations.push(format!(
                "{} sequence {}: written by {}, a call on {:?}",
                event.app, event.sequence, writer.what, writer.app
            )),
            // A definite failure that wrote is the next check's.
            Some(_) => {}
        }
    }
    for (id, sequences) in per_request {
        if sequences.len() > 1 {
            check.violations.push(format!("request {id} wrote {} events: sequences {sequences:?}", sequences.len()));
        }
    }
    check
}

fn failures_wrote_nothing(history: &History, writers: &HashMap<&str, Writer<'_>>) -> Check {
    let mut check = Check::new("every 503, 409, 403, 404, 400, 500 (and refused step) wrote nothing");
    check.checked = writers.values().filter(|w| !w.may_write).count() as u64;
    for event in &history.events {
        if let Some(writer) = writers.get(event.request_id.as_str()).filter(|w| !w.may_write) {
            check.violations.push(format!("{} wrote sequence {} of {}", writer.what, event.sequence, event.app));
        }
    }
    // A call that must be refused writes nothing, whatever its answer (none, a 504, ...):
    // its refusal comes before any write.
    let refused: HashMap<&str, &Call> =
        history.calls.iter().filter(|c| c.must_fail).map(|c| (c.id.as_str(), c)).collect();
    for event in &history.events {
        if let Some(call) = refused.get(event.request_id.as_str()) {
            check.violations.push(format!(
                "{} ({} {}, answered {}) must have been refused, and wrote sequence {} of {}",
                call.id,
                call.door,
                call.transport,
                describe(&call.outcome),
                event.sequence,
                event.app
            ));
        }
    }
    for call in history.calls.iter().filter(|c| c.must_fail) {
        if matches!(call.outcome, Outcome::Secret { .. }) {
            check.violations.push(format!(
                "{} ({} {} on {}) must have been refused, and answered a secret",
                call.id,
                call.door,
                call.transport,
                call.app.as_deref().unwrap_or("-")
            ));
        }
    }
    check
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed { code, id } => format!("{} {id}", super::history::http_class(*code)),
        other => other.class(),
    }
}

fn successes(history: &History) -> Check {
    let mut check = Check::new("every 200 has its own event with its sequence; no two 200s share one");
    let mut written: HashMap<&str, Vec<&super::history::EventRow>> = HashMap::new();
    for event in &history.events {
        written.entry(event.request_id.as_str()).or_default().push(event);
    }
    let mut claimed: HashMap<(&str, u64), &str> = HashMap::new();
    for call in &history.calls {
        let Outcome::Secret { sequence, .. } = &call.outcome else { continue };
        check.checked += 1;
        let app = call.app.as_deref().unwrap_or("-");
        let own = written.get(call.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        match own {
            [] => check.violations.push(format!(
                "{} ({} {} on {app}) answered 200 and no event is its",
                call.id, call.door, call.transport
            )),
            [event] => {
                if sequence.is_some_and(|s| s != event.sequence) {
                    check.violations.push(format!(
                        "{} ({} on {app}) answered sequence {:?}, its event is {}",
                        call.id, call.door, sequence, event.sequence
                    ));
                }
                if let Some(other) = claimed.insert((event.app.as_str(), event.sequence), call.id.as_str()) {
                    check
                        .violations
                        .push(format!("{} and {other} both hold sequence {} of {app}", call.id, event.sequence));
                }
            }
            _ => {} // a request that wrote twice is the writers' check
        }
    }
    check
}

/// A regenerate call that should succeed is answered a secret, or what DynamoDB's
/// failures allow (503, 504, 409, none); one that must fail, its refusal's code (or those).
fn answers(history: &History) -> Check {
    let mut check =
        Check::new("every rightful write answered 200, 503, 504 or 409 (or none); every refusal its own error");
    for call in history.calls.iter().filter(|c| c.is_regenerate()) {
        let right = match &call.outcome {
            Outcome::Failed { code: 14 | 4, .. } | Outcome::NoAnswer(_) | Outcome::Unreadable(_) => true,
            Outcome::Secret { .. } => !call.must_fail,
            Outcome::Failed { code: 10 | 6, .. } if !call.must_fail => true,
            Outcome::Failed { code, .. } if call.must_fail => call.refusal.is_empty() || call.refusal.contains(code),
            _ => false,
        };
        check.checked += 1;
        if !right {
            let expected = if call.must_fail {
                format!("refused with code {:?}", call.refusal)
            } else {
                "a rightful write".to_owned()
            };
            check.violations.push(format!(
                "{} ({} {} on {}), {expected}, answered {}",
                call.id,
                call.door,
                call.transport,
                call.app.as_deref().unwrap_or("-"),
                describe(&call.outcome)
            ));
        }
    }
    check
}

fn verifies(secret: &str, hash: &str) -> bool {
    bcrypt::verify(secret, hash).unwrap_or(false)
}

/// How many returned secrets of an app are tried against a hash whose own secret is
/// unknown (its write had no definite answer): the most recent ones.
const TRIED_WHEN_UNKNOWN: usize = 64;

fn hashes<'a>(
    history: &'a History,
    events: &BTreeMap<&str, Vec<&'a super::history::EventRow>>,
    writers: &HashMap<&str, Writer<'a>>,
    secret_of: &dyn Fn(&str) -> Option<&'a str>,
) -> Check {
    let mut check = Check::new("the app's hash verifies its last write's secret, and no other secret answered");
    let mut seen = HashMap::new();
    for call in &history.calls {
        if let Outcome::Secret { secret, .. } = &call.outcome
            && let Some(first) = seen.insert(secret.as_str(), call.id.as_str())
        {
            check.violations.push(format!("{} and {first} answered the same secret", call.id));
        }
    }
    // (what, secret, hash, must verify): run side by side, bcrypt is the cost here.
    let mut jobs: Vec<(String, &str, &str, bool)> = Vec::new();
    let seeded: HashMap<&str, &str> = history.seeded.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect();
    for app in &history.apps {
        let list = events.get(app.name.as_str()).map(Vec::as_slice).unwrap_or_default();
        let Some(last) = list.last() else {
            // An app the soak seeded with a secret holds its hash until its first write.
            match (app.secret_hash.as_deref(), seeded.get(app.name.as_str())) {
                (Some(hash), Some(secret)) => {
                    check.checked += 1;
                    jobs.push((format!("{}: the seeded hash", app.name), secret, hash, true));
                }
                (Some(_), None) => check.violations.push(format!("{}: a hash and no event", app.name)),
                (None, Some(_)) => check.violations.push(format!("{}: seeded with a secret, and no hash", app.name)),
                (None, None) => {}
            }
            continue;
        };
        check.checked += 1;
        let Some(hash) = app.secret_hash.as_deref() else {
            check.violations.push(format!("{}: {} events and no hash", app.name, list.len()));
            continue;
        };
        match secret_of(&last.request_id) {
            Some(secret) => {
                jobs.push((format!("{}: the current hash, of {}", app.name, last.request_id), secret, hash, true))
            }
            None => {
                for event in list.iter().rev().skip(1).take(TRIED_WHEN_UNKNOWN) {
                    if let Some(secret) = secret_of(&event.request_id) {
                        let what = format!(
                            "{}: the current hash (of {}, unanswered), against {}",
                            app.name, last.request_id, event.request_id
                        );
                        jobs.push((what, secret, hash, false));
                    }
                }
            }
        }
        // With a grace period, the write that replaced a secret keeps its hash as the
        // previous one, which cannot have expired before its grace from the write's start:
        // a table read before then must hold it (a rotation's write is not judged here).
        if !history.grace.is_zero()
            && list.len() >= 2
            && app.previous_hash.is_none()
            && let Some(writer) = writers.get(last.request_id.as_str())
            && !history.runs.iter().any(|r| r.token == last.request_id)
            && history.read_at + SLOP < writer.started + history.grace
        {
            check.violations.push(format!(
                "{}: no previous hash, read {} ms after {} replaced a secret, inside the {:?} grace",
                app.name,
                history.read_at.saturating_sub(writer.started).as_millis(),
                last.request_id,
                history.grace
            ));
        }
        if let (Some(previous), Some(before)) =
            (app.previous_hash.as_deref(), list.len().checked_sub(2).map(|i| list[i]))
            && let Some(secret) = secret_of(&before.request_id)
        {
            jobs.push((format!("{}: the previous hash, of {}", app.name, before.request_id), secret, previous, true));
        }
    }
    let failures = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for chunk in jobs.chunks(jobs.len().div_ceil(threads).max(1)) {
            let failures = &failures;
            scope.spawn(move || {
                for (what, secret, hash, expected) in chunk {
                    if verifies(secret, hash) != *expected {
                        let said = if *expected { "does not verify its secret" } else { "verifies that secret" };
                        failures.lock().unwrap().push(format!("{what} {said}"));
                    }
                }
            });
        }
    });
    check.violations.extend(failures.into_inner().unwrap());
    check
}

/// When a write's commit happened: inside its call, or up to `late` after a call that
/// had no definite answer.
#[derive(Clone, Copy)]
struct Window {
    start: Duration,
    end: Duration,
    /// The call answered that the write happened: it was committed by `end`.
    answered: bool,
}

/// When each secret an app was given could have been, and certainly was, valid: per app,
/// each write's window and secret in order (a secret the soak seeded first, as sequence 0),
/// to judge a call that presented one (SPEC section 11: the current secret, or the
/// previous one inside its grace).
struct Validity<'a> {
    grace: Duration,
    /// Per app: each write's window and secret, in order; the sequence of row k is k + 1,
    /// or k where the app's first row is its seeded secret.
    writes: HashMap<&'a str, Vec<(Window, Option<&'a str>)>>,
    index: HashMap<(&'a str, &'a str), usize>,
    seeded: HashSet<&'a str>,
}

/// How a presented secret stood during a call.
struct Judged {
    /// The sequence of the write that gave it (0: the soak seeded it).
    sequence: u64,
    own: Window,
    next: Option<Window>,
    /// It may have been valid (current, or previous in its grace) at some moment of the call.
    possible: bool,
    /// It may have been the current secret at some moment of the call.
    possible_current: bool,
    /// It was valid for the whole call: its write had answered, and neither a later write
    /// nor the end of its grace can have come before the call ended.
    certain: bool,
}

impl<'a> Validity<'a> {
    fn new(
        history: &'a History,
        events: &BTreeMap<&'a str, Vec<&'a super::history::EventRow>>,
        writers: &HashMap<&str, Writer<'a>>,
    ) -> Self {
        let mut validity =
            Validity { grace: history.grace, writes: HashMap::new(), index: HashMap::new(), seeded: HashSet::new() };
        for (app, secret) in &history.seeded {
            let known = Window { start: Duration::ZERO, end: Duration::ZERO, answered: true };
            validity.seeded.insert(app.as_str());
            validity.index.insert((app.as_str(), secret.as_str()), 0);
            validity.writes.insert(app.as_str(), vec![(known, Some(secret.as_str()))]);
        }
        for (app, list) in events {
            let rows = validity.writes.entry(app).or_default();
            for event in list {
                let writer = writers.get(event.request_id.as_str());
                let window = match writer {
                    Some(w) if w.unknown => Window { start: w.started, end: w.ended + history.late, answered: false },
                    Some(w) => Window { start: w.started, end: w.ended, answered: true },
                    None => Window { start: Duration::ZERO, end: FOREVER, answered: false },
                };
                let secret = writer.and_then(|w| w.secret);
                if let Some(secret) = secret {
                    validity.index.insert((app, secret), rows.len());
                }
                rows.push((window, secret));
            }
        }
        validity
    }

    /// `presented` on `app` during a call from `a0` to `a1`; `None`: no write of the app gave it.
    fn judge(&self, app: &str, presented: &str, a0: Duration, a1: Duration) -> Option<Judged> {
        let &k = self.index.get(&(app, presented))?;
        let rows = &self.writes[app];
        let grace = self.grace;
        let (own, _) = rows[k];
        let next = rows.get(k + 1).map(|(w, _)| *w);
        let after = rows.get(k + 2).map(|(w, _)| *w);
        // Possibly valid: from the earliest its commit can be, to the latest the next
        // write can have replaced it (and, with a grace period, the one after that, or
        // the previous hash's expiry).
        let possible_current_end = next.map_or(FOREVER, |w| w.end);
        let possible_end = match next {
            None => FOREVER,
            Some(_) if grace.is_zero() => possible_current_end,
            Some(w) => (w.end + grace + SLOP).min(after.map_or(FOREVER, |w| w.end)),
        };
        // Certainly valid: from the answer that said it was written, until the earliest
        // the next write can have replaced it (or the previous hash's earliest expiry).
        let certain_start = if own.answered { own.end } else { FOREVER };
        let certain_end = match next {
            None => FOREVER,
            Some(w) if grace.is_zero() => w.start,
            Some(w) => (w.start + grace).saturating_sub(SLOP).min(after.map_or(FOREVER, |w| w.start)),
        };
        Some(Judged {
            sequence: k as u64 + u64::from(!self.seeded.contains(app)),
            own,
            next,
            possible: a1 >= own.start && a0 <= possible_end,
            possible_current: a0 <= possible_current_end,
            certain: a0 >= certain_start && a1 <= certain_end,
        })
    }
}

impl Judged {
    /// The call and the writes around it, to read a violation by.
    fn timeline(&self, a0: Duration, a1: Duration) -> String {
        let ms = |d: Duration| d.as_millis();
        let next = match self.next {
            Some(w) => format!("sequence {} from {} ms", self.sequence + 1, ms(w.start)),
            None => "no later write".into(),
        };
        format!("the call {}..{} ms, its write answered at {} ms, {next}", ms(a0), ms(a1), ms(self.own.end))
    }
}

fn authentications(history: &History, validity: &Validity<'_>) -> Check {
    let mut check = Check::new(
        "authentications: allowed only while valid, never denied while valid; DynamoDB failing is an error, not a denial",
    );
    let outcomes = authorizer_outcomes(history);
    let mut unavailable = 0;
    for call in history.calls.iter().filter(|c| c.door == "authorizer") {
        let (Some(app), Some(presented)) = (call.app.as_deref(), call.presented.as_deref()) else { continue };
        let allowed = match &call.outcome {
            Outcome::Allowed { matched } => Some(matched.as_str()),
            // API Gateway would cache a denial for the TTL and tell a valid client its
            // credentials are wrong long after DynamoDB recovered.
            Outcome::Denied if outcomes.get(call.id.as_str()).is_some_and(|o| o == "unavailable") => {
                check.checked += 1;
                check.violations.push(format!("{} answered a DynamoDB failure on {app} as a denial", call.id));
                continue;
            }
            Outcome::Denied => None,
            Outcome::Unavailable => {
                unavailable += 1;
                continue;
            }
            _ => continue,
        };
        check.checked += 1;
        let (a0, a1) = (call.started, call.ended);
        let Some(judged) = validity.judge(app, presented, a0, a1) else {
            if allowed.is_some() {
                check.violations.push(format!("{} allowed on {app} a secret that no write of the app gave", call.id));
            }
            continue;
        };
        let sequence = judged.sequence;
        match allowed {
            Some(_) if !judged.possible => check.violations.push(format!(
                "{} allowed on {app} the secret of sequence {sequence} outside the time it was valid",
                call.id
            )),
            Some("current") if !judged.possible_current => check.violations.push(format!(
                "{} allowed on {app} the secret of sequence {sequence} as current after sequence {} replaced it",
                call.id,
                sequence + 1
            )),
            None if judged.certain => {
                check.violations.push(format!(
                    "{} denied on {app} the secret of sequence {sequence} while it was valid (logged {:?}): {}",
                    call.id,
                    outcomes.get(call.id.as_str()),
                    judged.timeline(a0, a1)
                ));
            }
            _ => {}
        }
    }
    check.apart = Some(("answered StoreUnavailable while DynamoDB failed (no verdict)", unavailable));
    check
}

/// The apps of the table by their client id.
fn apps_by_client(history: &History) -> HashMap<&str, &AppState> {
    history.apps.iter().filter_map(|a| Some((a.client_id.as_deref()?, a))).collect()
}

/// `org/project/app` -> (org, project).
fn org_and_project(app: &str) -> (&str, &str) {
    let mut parts = app.split('/');
    (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

const ACTIVE: &str = "ACTIVE";

/// How an OAuth endpoint answered a call's client authentication.
enum ClientAnswer {
    /// Authenticated (a token, or an introspection's answer).
    Accepted,
    /// `401 invalid_client`.
    Refused,
    /// `503 temporarily_unavailable`: the store failed, never a judgement on the client.
    Unavailable,
    /// No answer, or one the client could not read (that check's violation).
    Unknown,
    /// Anything else: a violation (the soak sends only well-formed requests of granted apps).
    Other,
}

fn client_answer(outcome: &Outcome) -> ClientAnswer {
    match outcome {
        Outcome::Token { .. } | Outcome::Introspected { .. } => ClientAnswer::Accepted,
        Outcome::OAuthError { status: 401, error } if error == "invalid_client" => ClientAnswer::Refused,
        Outcome::OAuthError { status: 503, error } if error == "temporarily_unavailable" => ClientAnswer::Unavailable,
        Outcome::NoAnswer(_) | Outcome::Unreadable(_) => ClientAnswer::Unknown,
        _ => ClientAnswer::Other,
    }
}

/// SPEC section 13's client authentication, judged as the authorizer's: a token only for
/// an ACTIVE app's client presenting a secret valid at that moment; a client refused
/// `invalid_client` only when its secret was not certainly valid (an outage is a 503).
fn tokens(history: &History, validity: &Validity<'_>) -> Check {
    let mut check = Check::new(
        "tokens: issued only to an ACTIVE app's client with a secret valid then; a valid one refused only with 503",
    );
    let apps = apps_by_client(history);
    let mut unavailable = 0;
    // What the judged calls presented and got, for the report.
    let mut figures: BTreeMap<&str, u64> = BTreeMap::new();
    for call in history.calls.iter().filter(|c| c.door == "oauth-token") {
        let issued = match client_answer(&call.outcome) {
            ClientAnswer::Accepted => true,
            ClientAnswer::Refused => false,
            ClientAnswer::Unavailable => {
                unavailable += 1;
                continue;
            }
            ClientAnswer::Unknown => continue,
            ClientAnswer::Other => {
                let client = call.client.as_deref().unwrap_or("-");
                check.violations.push(format!("{} (client {client}) answered {}", call.id, describe(&call.outcome)));
                continue;
            }
        };
        check.checked += 1;
        let client = call.client.as_deref().unwrap_or("");
        let (a0, a1) = (call.started, call.ended);
        let app = apps.get(client);
        let active = app.is_some_and(|a| a.state.as_deref() == Some(ACTIVE));
        let judged = app
            .filter(|_| active)
            .zip(call.presented.as_deref())
            .and_then(|(app, presented)| validity.judge(&app.name, presented, a0, a1));
        let figure = match (issued, app, &judged) {
            (false, None, _) => "refused: a client id that names no app",
            (false, Some(_), _) if !active => "refused: the client of an app that is not ACTIVE",
            (false, _, None) => "refused: a secret no write of the app gave",
            (false, _, Some(j)) if !j.possible => "refused: a secret replaced, or past its grace",
            (false, _, Some(j)) if !j.certain => "refused: a secret that may have been valid then",
            (true, _, Some(j)) if j.certain => "issued: for a secret valid all through the call",
            (true, _, Some(j)) if j.possible => "issued: for a secret that may have been valid then",
            _ => "VIOLATED",
        };
        *figures.entry(figure).or_default() += 1;
        let name = app.map_or("-", |a| a.name.as_str());
        match (issued, app, judged) {
            (true, None, _) => check
                .violations
                .push(format!("{} issued a token to client id {client:?}, which names no app", call.id)),
            (true, Some(app), _) if !active => check.violations.push(format!(
                "{} issued a token to {client} of {name}, an app that is {}",
                call.id,
                app.state.as_deref().unwrap_or("of no state")
            )),
            (true, _, None) => check
                .violations
                .push(format!("{} issued a token to {client} of {name} for a secret that no write of it gave", call.id)),
            (true, _, Some(j)) if !j.possible => check.violations.push(format!(
                "{} issued a token to {client} of {name} for the secret of sequence {} outside the time it was valid: {}",
                call.id,
                j.sequence,
                j.timeline(a0, a1)
            )),
            (false, _, Some(j)) if j.certain => check.violations.push(format!(
                "{} refused {client} of {name} invalid_client for the secret of sequence {} while it was valid: {}",
                call.id,
                j.sequence,
                j.timeline(a0, a1)
            )),
            _ => {}
        }
    }
    figures.remove("VIOLATED");
    check.notes.extend(figures.iter().map(|(what, n)| format!("{what}: {n}")));
    check.apart = Some(("answered 503 temporarily_unavailable (DynamoDB failed)", unavailable));
    check
}

/// The claims of a token, read without checking it (what the checker compares with).
fn claims_of(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The keys of the JWKS the run fetched, as `jwt::verify` takes them.
fn published_keys(history: &History) -> Vec<oidc_client_secret::jwt::PublicKey> {
    use base64::Engine;
    let decode = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.as_str()?).ok();
    let keys = history.jwks.as_ref().and_then(|j| j["keys"].as_array().cloned()).unwrap_or_default();
    keys.iter()
        .filter(|k| k["kty"] == "RSA" && k["alg"] == "RS256")
        .filter_map(|k| {
            let key = oidc_client_secret::jwt::PublicKey::from_components(&decode(&k["n"])?, &decode(&k["e"])?);
            // A JWK whose kid is not its thumbprint is not the key it claims to be.
            (k["kid"].as_str() == Some(key.kid.as_str())).then_some(key)
        })
        .collect()
}

/// Unix seconds at `at` on the calls' clock.
fn unix_at(history: &History, at: Duration) -> i64 {
    (history.epoch + at).as_secs() as i64
}

/// Every token answered verifies against the JWKS `GET /oauth/v2/keys` published: RS256
/// with a published `kid` and a signature that verifies, typed `at+jwt`, this issuer, its
/// client's project in `aud`, `exp` ahead of the answer; and it names its own client.
fn token_signatures(history: &History) -> Check {
    let mut check = Check::new(
        "every issued token verifies against the published JWKS: RS256, its kid, iss, aud, exp; sub and client_id its client",
    );
    let keys = published_keys(history);
    let apps = apps_by_client(history);
    for call in &history.calls {
        let Outcome::Token { token } = &call.outcome else { continue };
        check.checked += 1;
        if keys.is_empty() {
            check.violations.push(format!("{}: a token, and no JWKS with an RS256 key to verify it against", call.id));
            continue;
        }
        let client = call.client.as_deref().unwrap_or("");
        // A token for a client of no app is the tokens check's; its project is then the one it claims.
        let project = match apps.get(client) {
            Some(app) => org_and_project(&app.name).1.to_owned(),
            None => claims_of(token).and_then(|c| c["aud"][0].as_str().map(str::to_owned)).unwrap_or_default(),
        };
        let now = unix_at(history, call.ended);
        match oidc_client_secret::jwt::verify(token, &keys, &history.issuer, &project, now) {
            Err(rejection) => check.violations.push(format!(
                "{} (client {client}): the token does not verify against the JWKS ({})",
                call.id,
                rejection.reason()
            )),
            Ok(claims) if claims.client_id != client || claims.sub != client => check.violations.push(format!(
                "{}: a token asked for by {client} names client_id {:?}, sub {:?}",
                call.id, claims.client_id, claims.sub
            )),
            Ok(claims) if apps.get(client).is_some_and(|a| org_and_project(&a.name).0 != claims.org) => {
                check.violations.push(format!("{}: a token for {client} names another org, {:?}", call.id, claims.org))
            }
            Ok(_) => {}
        }
    }
    check
}

/// Introspection (SPEC section 13): a token the endpoint issued is active to an API app of
/// its project until it expires (its client stays ACTIVE in the soak); a token it did not
/// issue (the soak forges some), or one for another project, never is; the API app, whose
/// secret is valid, is refused only as DynamoDB's failures allow (503).
fn introspections(history: &History, validity: &Validity<'_>) -> Check {
    let mut check = Check::new(
        "introspections: an issued token active to its project's API app until it expires, no other token; the API app refused only with 503",
    );
    let apps = apps_by_client(history);
    let issued: HashMap<&str, &Call> = history
        .calls
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Token { token } => Some((token.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut unavailable = 0;
    for call in history.calls.iter().filter(|c| c.door == "oauth-introspect") {
        let client = call.client.as_deref().unwrap_or("");
        let (a0, a1) = (call.started, call.ended);
        let caller = apps.get(client);
        let active = match (client_answer(&call.outcome), &call.outcome) {
            (_, Outcome::Introspected { active }) => *active,
            (ClientAnswer::Refused, _) => {
                check.checked += 1;
                let judged =
                    caller.zip(call.presented.as_deref()).and_then(|(a, p)| validity.judge(&a.name, p, a0, a1));
                if let Some(j) = judged.filter(|j| j.certain) {
                    check.violations.push(format!(
                        "{} refused the API app {client} invalid_client for the secret of sequence {} while it was valid: {}",
                        call.id,
                        j.sequence,
                        j.timeline(a0, a1)
                    ));
                }
                continue;
            }
            (ClientAnswer::Unavailable, _) => {
                unavailable += 1;
                continue;
            }
            (ClientAnswer::Unknown, _) => continue,
            _ => {
                check.violations.push(format!("{} (API app {client}) answered {}", call.id, describe(&call.outcome)));
                continue;
            }
        };
        check.checked += 1;
        let token = call.token.as_deref().unwrap_or("");
        let project = caller.map(|a| org_and_project(&a.name).1).unwrap_or("");
        let claims = claims_of(token);
        let for_project =
            claims.as_ref().and_then(|c| c["aud"].as_array().cloned()).is_some_and(|aud| aud.contains(&project.into()));
        let exp = claims.as_ref().and_then(|c| c["exp"].as_i64()).unwrap_or(0);
        let client_active = claims
            .as_ref()
            .and_then(|c| apps.get(c["client_id"].as_str()?))
            .is_some_and(|a| a.state.as_deref() == Some(ACTIVE));
        let issued_by = issued.get(token);
        let why_not = match issued_by {
            None => Some("a token the endpoint never issued"),
            Some(_) if !for_project => Some("a token for another project"),
            Some(_) if !client_active => Some("a token of a client that is not ACTIVE"),
            Some(_) if exp <= unix_at(history, a1) => Some("an expired token"),
            Some(_) => None,
        };
        match (active, why_not, issued_by) {
            (true, Some(why), _) => {
                check.violations.push(format!("{} (API app {client}) found active {why}", call.id));
            }
            (false, None, Some(token_call)) if exp > unix_at(history, a1) + 1 => {
                check.violations.push(format!(
                    "{} (API app {client}) found inactive the token {} issued at {} ms, for its project, before its exp",
                    call.id,
                    token_call.id,
                    token_call.ended.as_millis()
                ));
            }
            _ => {}
        }
    }
    check.apart = Some(("answered 503 temporarily_unavailable (DynamoDB failed)", unavailable));
    check
}

/// The authorizer's logged outcome of each request (`current`, `denied`, `unavailable`, ...).
fn authorizer_outcomes(history: &History) -> HashMap<String, String> {
    let mut outcomes = HashMap::new();
    for (_, log) in &history.logs {
        for line in log.lines().filter(|l| l.contains("authenticate client")) {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if let (Some(id), Some(outcome)) = (json["request_id"].as_str(), json["Outcome"].as_str()) {
                outcomes.insert(id.to_owned(), outcome.to_owned());
            }
        }
    }
    outcomes
}

fn rotations(history: &History, events: &BTreeMap<&str, Vec<&super::history::EventRow>>) -> Check {
    let mut check = Check::new(
        "every finished rotation leaves AWSCURRENT holding the secret the table verifies; every ok setSecret wrote \
         the pending secret; a step fails only as DynamoDB's failures allow",
    );
    check.checked += history.runs.iter().filter(|r| r.set_verified.is_some()).count() as u64;
    for run in history.runs.iter().filter(|r| r.set_verified == Some(false)) {
        check.violations.push(format!(
            "{}: setSecret {:?} answered ok, and the table does not verify the pending secret",
            run.app, run.set_calls
        ));
    }
    for call in history.calls.iter().filter(|c| c.door == "rotation") {
        let Outcome::StepFailed { kind, message, .. } = &call.outcome else { continue };
        check.checked += 1;
        if !expected_step_failure(kind, message) {
            check.violations.push(format!(
                "{} ({} on {}) failed {kind}: {message}",
                call.id,
                call.transport,
                call.app.as_deref().unwrap_or("-")
            ));
        }
    }
    for run in history.runs.iter().filter(|r| r.finished) {
        check.checked += 1;
        let (Some(current), Some(pending)) = (run.current_after.as_deref(), run.pending.as_deref()) else {
            check.violations.push(format!("{}: a finished rotation with no AWSCURRENT or pending value", run.app));
            continue;
        };
        if current != pending {
            check.violations.push(format!("{}: AWSCURRENT after finishSecret is not the pending secret", run.app));
        }
        if !run.hash_at_finish.as_deref().is_some_and(|hash| verifies(current, hash)) {
            check
                .violations
                .push(format!("{}: the table's hash after finishSecret does not verify AWSCURRENT", run.app));
        }
        let list = events.get(run.app.as_str()).map(Vec::as_slice).unwrap_or_default();
        if !list.iter().any(|e| e.request_id == run.token) {
            check.violations.push(format!(
                "{}: a finished rotation whose setSecret calls {:?} wrote no event",
                run.app, run.set_calls
            ));
        }
    }
    check
}

/// How a rotation step may fail under the soak: DynamoDB unavailable, the outcome unknown,
/// a concurrent change (the app's error, `AppRefused`), or Secrets Manager itself. Anything
/// else (an invalid token, a test that failed, a refused app, ...) is the product's fault.
fn expected_step_failure(kind: &str, message: &str) -> bool {
    match kind {
        "AppRefused" => {
            ["Service temporarily unavailable", "The outcome is unknown", "Application was changed concurrently"]
                .iter()
                .any(|m| message.starts_with(m))
        }
        "SecretsManagerError" => true,
        _ => false,
    }
}

/// Maximal runs of the bytes `keep` in `text`.
fn runs(text: &str, keep: fn(u8) -> bool) -> impl Iterator<Item = &str> {
    text.split(move |c: char| !c.is_ascii() || !keep(c as u8)).filter(|run| !run.is_empty())
}

/// Strings to find in a log, each by its last 16 characters: a credential's or a token
/// part's tail is what differs between them (a form body or a claims part may share its
/// head with every other), and one lookup per position keeps a long log quick to scan.
struct Needles<'a>(HashMap<&'a str, Vec<&'a str>>);

const TAIL: usize = 16;

impl<'a> Needles<'a> {
    fn new(all: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = HashMap::<&str, Vec<&str>>::new();
        for needle in all.into_iter().filter(|n| n.len() >= TAIL) {
            needles.entry(&needle[needle.len() - TAIL..]).or_default().push(needle);
        }
        Self(needles)
    }

    /// Whether `run` holds one of the needles whole.
    fn found_in(&self, run: &str) -> bool {
        (TAIL..=run.len()).any(|end| {
            self.0.get(&run[end - TAIL..end]).is_some_and(|list| list.iter().any(|n| run[..end].ends_with(n)))
        })
    }
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A compact JWS (`header.claims.signature`, each base64url, the first two JSON objects,
/// so `eyJ`...): a token the soak never saw (its answer lost) is still one.
fn looks_like_a_token(run: &str) -> bool {
    let parts: Vec<&str> = run.split('.').collect();
    parts.windows(3).any(|w| w[0].contains("eyJ") && w[1].starts_with("eyJ") && w[2].len() >= TAIL)
}

fn logs(history: &History) -> Check {
    let mut check = Check::new(
        "no secret, hash, token or Authorization value in any log line (nor 64 letters and digits, nor a JWS); no empty log",
    );
    let mut secrets: HashSet<&str> = HashSet::new();
    let mut tokens = Vec::new();
    for call in &history.calls {
        if let Outcome::Secret { secret, .. } = &call.outcome {
            secrets.insert(secret);
        }
        if let Outcome::Token { token } = &call.outcome {
            tokens.extend(token.split('.'));
        }
        if let Some(presented) = &call.presented {
            secrets.insert(presented);
        }
    }
    for run in &history.runs {
        secrets.extend(run.pending.as_deref());
    }
    secrets.extend(history.seeded.iter().map(|(_, s)| s.as_str()));
    let lengths: HashSet<usize> = secrets.iter().map(|s| s.len()).collect();
    let credentials = Needles::new(history.authorizations.iter().map(|a| a.rsplit(' ').next().unwrap_or(a)));
    let tokens = Needles::new(tokens);
    let hashes: Vec<&str> =
        history.apps.iter().flat_map(|a| [a.secret_hash.as_deref(), a.previous_hash.as_deref()]).flatten().collect();
    // A hash in modular-crypt form, as text or as the decimal bytes a signer's trace prints.
    let markers = ["$2b$", "$2a$", "$2y$", "36, 50, 98, 36", "36,50,98,36"];
    let windows = |run: &str, lengths: &HashSet<usize>, set: &HashSet<&str>| {
        lengths.iter().any(|&n| run.len() >= n && (0..=run.len() - n).any(|i| set.contains(&run[i..i + n])))
    };
    let logs: HashMap<&str, &str> = history.logs.iter().map(|(n, l)| (n.as_str(), l.as_str())).collect();
    for instance in &history.instances {
        // An instance that answered a request logged it (a killed one may have died in its first).
        let answered = instance.served.saturating_sub(u64::from(instance.killed));
        if answered > 0 && logs.get(instance.name.as_str()).is_none_or(|l| l.trim().is_empty()) {
            check
                .violations
                .push(format!("{}: served {} requests and its log is empty", instance.name, instance.served));
        }
    }
    for (name, log) in &history.logs {
        for (number, line) in log.lines().enumerate() {
            check.checked += 1;
            let mut found = Vec::new();
            if runs(line, |b| b.is_ascii_alphanumeric()).any(|run| windows(run, &lengths, &secrets)) {
                found.push("a client secret");
            } else if runs(line, |b| b.is_ascii_alphanumeric()).any(looks_like_a_secret) {
                found.push("what looks like a client secret (64 letters and digits)");
            }
            if runs(line, |b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
                .any(|run| credentials.found_in(run))
            {
                found.push("an Authorization value");
            }
            if runs(line, base64url).any(|run| tokens.found_in(run)) {
                found.push("a token (a part of one the token endpoint answered)");
            } else if runs(line, |b| base64url(b) || b == b'.').any(looks_like_a_token) {
                found.push("what looks like a token (a compact JWS)");
            }
            if markers.iter().any(|m| line.contains(m))
                || hashes.iter().any(|h| h.get(7..).is_some_and(|tail| line.contains(tail)))
            {
                found.push("a bcrypt hash");
            }
            if !found.is_empty() {
                check.violations.push(format!("{name} line {}: {}", number + 1, found.join(", ")));
            }
        }
    }
    check
}

/// The product's secrets are `SECRET_LENGTH` (the soak leaves it at its default, 64) letters and digits: any run of
/// that length is one, known to the soak or not (a secret it never saw, from a call whose
/// answer was lost). Lowercase hex is not: a SHA-256 or a SigV4 signature, and a secret
/// of 62 symbols is all lowercase hex with odds of (16/62)^64.
fn looks_like_a_secret(run: &str) -> bool {
    run.len() == oidc_client_secret::secret::DEFAULT_LENGTH
        && !run.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn instances(history: &History) -> Check {
    let mut check = Check::new("no instance exited but the killed ones");
    for instance in &history.instances {
        check.checked += 1;
        if let Some(how) = &instance.died {
            check.violations.push(format!("{}: {how}", instance.name));
        }
    }
    check
}

fn memory(history: &History) -> Check {
    let mut check =
        Check::new("each instance's RSS at its end (or its kill) within 10% of its RSS after its first requests");
    for instance in &history.instances {
        let (Some(early), Some(end)) = (instance.rss_early, instance.rss_end) else { continue };
        check.checked += 1;
        if end * 10 > early * 11 {
            check
                .violations
                .push(format!("{}: {early} KiB after its first requests, {end} KiB at its end", instance.name));
        }
    }
    check
}

/// The soak reached its minimums: a soak where every call failed, or no fault was
/// injected, keeps every other invariant and proves nothing.
fn coverage(history: &History) -> Check {
    let mut check = Check::new("coverage: the soak exercised what its checks judge (minimums of its settings)");
    let m = &history.minimums;
    let mut need = |what: String, reached: u64, least: u64| {
        if least == 0 {
            return;
        }
        check.checked += 1;
        check.notes.push(format!("{what}: {reached} (at least {least})"));
        if reached < least {
            check.violations.push(format!("{what}: {reached}, fewer than {least}"));
        }
    };
    for door in &m.doors {
        let ok = history.calls.iter().filter(|c| c.door == *door && matches!(c.outcome, Outcome::Secret { .. })).count()
            as u64;
        need(format!("200s at {door}"), ok, m.ok_per_door);
    }
    for app in &m.hot_apps {
        let events = history.events.iter().filter(|e| e.app == *app).count() as u64;
        need(format!("events on {app}"), events, m.events_per_hot_app);
    }
    let judged = |allowed: bool| {
        history
            .calls
            .iter()
            .filter(|c| c.door == "authorizer" && c.app.is_some() && c.presented.is_some())
            .filter(|c| match c.outcome {
                Outcome::Allowed { .. } => allowed,
                Outcome::Denied => !allowed,
                _ => false,
            })
            .count() as u64
    };
    need("authentications allowed".into(), judged(true), m.allowed);
    need("authentications denied".into(), judged(false), m.denied);
    let oauth = |door: &str, counted: fn(&Outcome) -> bool| {
        history.calls.iter().filter(|c| c.door == door && counted(&c.outcome)).count() as u64
    };
    let issued = oauth("oauth-token", |o| matches!(o, Outcome::Token { .. }));
    need("tokens issued".into(), issued, m.tokens_issued);
    let refused = oauth("oauth-token", |o| matches!(client_answer(o), ClientAnswer::Refused));
    need("token requests refused invalid_client".into(), refused, m.tokens_refused);
    let introspected = oauth("oauth-introspect", |o| matches!(o, Outcome::Introspected { .. }));
    need("introspections answered".into(), introspected, m.introspections);
    let finished = history.runs.iter().filter(|r| r.finished).count() as u64;
    need("rotations finished".into(), finished, m.finished_rotations);
    for kind in &m.fault_kinds {
        let n = history.exercised.faults.get(kind).copied().unwrap_or(0);
        need(format!("faults {kind}"), n, m.faults_per_kind);
    }
    need("faults on a TransactWriteItems".into(), history.exercised.transact_faults, m.transact_faults);
    need("kills".into(), history.exercised.kills, m.kills);
    check
}
