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
    /// The token endpoint answered 200 with this access token.
    Token {
        token: String,
    },
    /// `GET /oauth/v2/keys` answered 200 with this JWKS.
    Jwks(serde_json::Value),
    /// The introspection endpoint answered 200: whether the token is active.
    Introspected {
        active: bool,
    },
    /// An OAuth endpoint answered an RFC 6749 error: its HTTP status and `error`.
    OAuthError {
        status: u16,
        error: String,
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
            Outcome::Token { .. } => "200 token".into(),
            Outcome::Jwks(_) => "200 jwks".into(),
            Outcome::Introspected { active: true } => "active".into(),
            Outcome::Introspected { active: false } => "inactive".into(),
            Outcome::OAuthError { status, error } => format!("{status} {error}"),
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
    /// `v1-oidc`, `v1-api`, `v2`, `v2beta`, `authorizer`, `rotation`, or the oauth
    /// function's `oauth-token`, `oauth-introspect`, `oauth-keys`.
    pub door: &'static str,
    /// `rest`, `grpc-web`, `connect-json`, ...; the step for rotation calls; for a token
    /// request, the client authentication and what the soak meant to present (`basic
    /// current`, `post wrong`, ...).
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
    /// The client id a token request or an introspection presented (the checker finds
    /// its app, if any, in the table).
    pub client: Option<String>,
    /// The token an introspection asked about.
    pub token: Option<String>,
}

impl Call {
    /// Whether this call is one of the oauth function's (none of them writes).
    pub fn is_oauth(&self) -> bool {
        self.door.starts_with("oauth-")
    }

    /// Whether this call is a regenerate door's.
    pub fn is_regenerate(&self) -> bool {
        !matches!(self.door, "authorizer" | "rotation") && !self.is_oauth()
    }

    /// Whether this call may have written an event: a regenerate call that answered a
    /// secret or nothing definite, a rotation `setSecret` that succeeded or is unknown.
    pub fn may_write(&self) -> bool {
        match self.door {
            _ if self.is_oauth() => false,
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
    pub client_id: Option<String>,
    /// `ACTIVE`, `INACTIVE`, `REMOVED` (no door changes it: the soak seeds it).
    pub state: Option<String>,
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
    /// The credentials sent as they travel in an event: the `Authorization` values sent to
    /// the authorizer and the token endpoint, and the base64 form bodies that carry a
    /// `client_secret`.
    pub authorizations: Vec<String>,
    /// Secrets the soak gave apps when it seeded them (no event of theirs): each is the
    /// app's from the start until its first write.
    pub seeded: Vec<(AppName, String)>,
    /// The JWKS `GET /oauth/v2/keys` published (fetched once per run), and the issuer the
    /// oauth instances were given.
    pub jwks: Option<serde_json::Value>,
    pub issuer: String,
    /// The wall clock at the start of the soak, the origin of the calls' times (a token's
    /// `exp` is Unix time).
    pub epoch: Duration,
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
    /// Token requests that got a token, and that were refused `invalid_client`;
    /// introspections answered (active or not).
    pub tokens_issued: u64,
    pub tokens_refused: u64,
    pub introspections: u64,
    /// Faults of each of these kinds (by name), at least `faults_per_kind`.
    pub fault_kinds: Vec<&'static str>,
    pub faults_per_kind: u64,
    pub transact_faults: u64,
    pub kills: u64,
}
