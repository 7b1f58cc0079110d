//! The history of a soak, as a Jepsen-style checker reads it: every call with its
//! invocation and its outcome (ok, failed, or unknown), the table at the end, the
//! rotation runs, the instances and their logs. Plain data, so that the checker can be
//! fed a history by hand (tests/soak.rs) as well as a recorded one.

use std::time::Duration;

/// What a call came to, as its client saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A regenerate door answered a secret (and, at the v1 doors, its sequence).
    Secret {
        secret: String,
        sequence: Option<u64>,
    },
    /// A regenerate door answered an error: its gRPC code and error id.
    Failed {
        code: u32,
        id: String,
    },
    /// The authorizer allowed the call, with this secret (`current` or `previous`).
    Allowed {
        matched: String,
    },
    Denied,
    /// The authorizer failed because DynamoDB did (`StoreUnavailable`): no verdict, which
    /// API Gateway answers 500 and does not cache.
    Unavailable,
    /// A rotation step succeeded.
    Step,
    /// A rotation step failed: the runtime's `errorType`, and whether its outcome is unknown.
    StepFailed {
        kind: String,
        unknown: bool,
        /// The runtime's `errorMessage`.
        message: String,
    },
    /// No answer: the instance was killed, exited, or the client gave up.
    NoAnswer(NoAnswer),
    /// An answer the soak could not read (a violation of its own).
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    Killed,
    Exited,
    TimedOut,
}

impl Outcome {
    /// The row of the outcome table: an HTTP-like class.
    pub fn class(&self) -> String {
        match self {
            Outcome::Secret { .. } => "200".into(),
            Outcome::Failed { code, .. } => http_class(*code).into(),
            Outcome::Allowed { .. } => "allowed".into(),
            Outcome::Denied => "denied".into(),
            Outcome::Unavailable => "unavailable".into(),
            Outcome::Step => "ok".into(),
            Outcome::StepFailed { kind, unknown: true, .. } => format!("{kind} (unknown)"),
            Outcome::StepFailed { kind, .. } => kind.clone(),
            Outcome::NoAnswer(NoAnswer::Killed) => "killed".into(),
            Outcome::NoAnswer(NoAnswer::Exited) => "exited".into(),
            Outcome::NoAnswer(NoAnswer::TimedOut) => "timed out".into(),
            Outcome::Unreadable(_) => "unreadable".into(),
        }
    }

    /// Whether the call may have written without saying so: no answer, a 504
    /// `STORE-unknown`, or a rotation step whose outcome is unknown.
    pub fn unknown(&self) -> bool {
        match self {
            // A 504 with another id (or a code 4 with none) is a definite failure, not this.
            Outcome::Failed { code, id } => *code == 4 && id == "STORE-unknown",
            Outcome::StepFailed { unknown, .. } => *unknown,
            Outcome::NoAnswer(_) => true,
            _ => false,
        }
    }
}

/// grpc-gateway's HTTP status for a gRPC code (SPEC section 2).
pub fn http_class(code: u32) -> &'static str {
    match code {
        0 => "200",
        3 | 9 | 11 => "400",
        16 => "401",
        7 => "403",
        5 => "404",
        12 => "405",
        6 | 10 => "409",
        8 => "429",
        13 | 2 | 15 => "500",
        14 => "503",
        4 => "504",
        _ => "other",
    }
}

/// `org/project/app`.
pub type AppName = String;

/// One call of the soak.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Lambda request id: events name their writer by it.
    pub id: String,
    pub instance: String,
    /// `v1-oidc`, `v1-api`, `v2`, `v2beta`, `authorizer`, `rotation`.
    pub door: &'static str,
    /// `rest`, `grpc-web`, `connect-json`, ...; the step for rotation calls.
    pub transport: &'static str,
    pub app: Option<AppName>,
    /// When the call was handed to the instance, and when its outcome was known, from
    /// the soak's start, on the wall clock (the one the functions' expiry times use).
    pub started: Duration,
    pub ended: Duration,
    pub outcome: Outcome,
    /// A call that must not succeed (no permission, a missing app, a wrong door, ...).
    pub must_fail: bool,
    /// The gRPC codes a call that must fail may be refused with (empty: not judged); a
    /// 503, a 504 or no answer is always possible.
    pub refusal: &'static [u32],
    /// The secret an authentication presented.
    pub presented: Option<String>,
}

impl Call {
    /// Whether this call may have written an event: a regenerate call that answered a
    /// secret or nothing definite, a rotation `setSecret` that succeeded or is unknown.
    pub fn may_write(&self) -> bool {
        match self.door {
            "authorizer" => false,
            "rotation" => self.transport == "setSecret" && (self.outcome == Outcome::Step || self.outcome.unknown()),
            _ => matches!(self.outcome, Outcome::Secret { .. }) || self.outcome.unknown(),
        }
    }
}

/// The app item at the end.
#[derive(Debug, Clone)]
pub struct AppState {
    pub name: AppName,
    pub sequence: u64,
    pub secret_hash: Option<String>,
    pub previous_hash: Option<String>,
}

/// An event item at the end.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub app: AppName,
    pub sequence: u64,
    pub request_id: String,
}

/// One rotation run: rotate-secret, then the four steps, as Secrets Manager drives them.
#[derive(Debug, Clone)]
pub struct RotationRun {
    pub app: AppName,
    /// The version's `ClientRequestToken`: the event of a rotation names it as its
    /// request id, whichever of the step's retries wrote it.
    pub token: String,
    /// The value createSecret staged AWSPENDING.
    pub pending: Option<String>,
    pub finished: bool,
    /// AWSCURRENT's client secret after finishSecret, and the app's hash then.
    pub current_after: Option<String>,
    pub hash_at_finish: Option<String>,
    /// The request ids of the run's setSecret invocations.
    pub set_calls: Vec<String>,
    /// After a setSecret that answered ok: whether the app read from the table then
    /// verifies the pending secret (`None`: no setSecret answered ok, or no pending value).
    pub set_verified: Option<bool>,
}

/// One function instance (a sandbox), from its start to the end of the soak or its death.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub name: String,
    pub killed: bool,
    /// It exited (or stopped answering) without being killed.
    pub died: Option<String>,
    /// RSS in KiB after its first 1,000 requests, and at its end (the last sample before
    /// a kill), for an instance that served that many.
    pub rss_early: Option<u64>,
    pub rss_end: Option<u64>,
    pub served: u64,
}

/// Everything the checker reads.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub calls: Vec<Call>,
    pub apps: Vec<AppState>,
    pub events: Vec<EventRow>,
    pub runs: Vec<RotationRun>,
    pub instances: Vec<InstanceRecord>,
    /// Each instance's log: its name and its text.
    pub logs: Vec<(String, String)>,
    /// The `Authorization` values sent to the authorizer.
    pub authorizations: Vec<String>,
    /// `SECRET_GRACE_SECONDS` of the writers.
    pub grace: Duration,
    /// How long after its call ended a write without a definite answer may still land
    /// (a request the network held, a transaction already at DynamoDB when the instance died).
    pub late: Duration,
    /// When the table was read (after the scan ended), on the calls' clock.
    pub read_at: Duration,
    /// What the soak did to the product: faults by kind, kills.
    pub exercised: Exercised,
    /// The least the soak must have exercised for its checks to mean anything.
    pub minimums: Minimums,
}

/// What the soak's fault proxy and killer did.
#[derive(Debug, Clone, Default)]
pub struct Exercised {
    /// Faults injected, by the fault's name.
    pub faults: std::collections::BTreeMap<&'static str, u64>,
    /// Faults injected on a `TransactWriteItems` call (the write itself).
    pub transact_faults: u64,
    pub kills: u64,
}

/// The least coverage a soak must reach, else it proves nothing (a soak where every call
/// failed would keep every other invariant). Zero means not required.
#[derive(Debug, Clone, Default)]
pub struct Minimums {
    /// 200s at each of these doors, at least `ok_per_door`.
    pub doors: Vec<&'static str>,
    pub ok_per_door: u64,
    /// Events on each of these apps, at least `events_per_hot_app`.
    pub hot_apps: Vec<AppName>,
    pub events_per_hot_app: u64,
    /// Authentications judged: allowed, and denied.
    pub allowed: u64,
    pub denied: u64,
    pub finished_rotations: u64,
    /// Faults of each of these kinds (by name), at least `faults_per_kind`.
    pub fault_kinds: Vec<&'static str>,
    pub faults_per_kind: u64,
    pub transact_faults: u64,
    pub kills: u64,
}
