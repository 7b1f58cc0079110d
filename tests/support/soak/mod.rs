//! The soak: every entry point at once under random faults, then the invariants checked
//! from the table and from every answer (issue 21; the shape is Jepsen's: a history of
//! invocations and outcomes, judged afterwards by [`checker`]).
//!
//! Several instances of each function run at once, each in its own sandbox
//! ([`lambda::Instance`]) behind a fault proxy to DynamoDB Local ([`chaos::Chaos`]):
//! `regenerate-secret` instances write hot apps (every instance on the same few apps) and
//! cold ones (one writer each), through every door and transport, with a share of calls
//! that must be refused; `verify-secret` instances authenticate with the current, the
//! previous and a wrong secret; one `rotate-secret` instance runs whole rotations through
//! moto's Secrets Manager; `oauth` instances ask for tokens (with the current secret, the
//! previous one, a wrong one, an unknown client id, an INACTIVE app's client) and API apps
//! introspect the tokens they got, signed by a KMS key on moto. Instances are SIGKILLed at
//! random in the middle of a request and replaced.

pub mod chaos;
pub mod checker;
pub mod doors;
pub mod history;
pub mod lambda;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use oidc_client_secret::authorizer::{STORE_UNAVAILABLE, UNAUTHORIZED};
use oidc_client_secret::regenerate::APP_WRITE_PERMISSION;
use oidc_client_secret::store::dynamodb::DynamoStore;
use oidc_client_secret::store::seed::NewApp;
use rand::RngExt;
use serde_json::{Value, json};

use crate::support;
use doors::{DOORS, Envelope, Target, Transport};
use history::{AppState, Call, EventRow, Exercised, History, InstanceRecord, Minimums, NoAnswer, Outcome, RotationRun};
use lambda::{Instance, Reply};

/// What a soak runs, and for how long.
#[derive(Debug, Clone)]
pub struct Config {
    pub requests: u64,
    pub limit: Duration,
    /// The share of DynamoDB calls (and new connections) that get a fault.
    pub fault_rate: f64,
    /// The share of requests whose instance is SIGKILLed while it serves them.
    pub kill_rate: f64,
    /// At least this many kills, forced if chance gave fewer by the halfway mark.
    pub min_kills: u64,
    pub regenerate: usize,
    pub verify: usize,
    pub rotate: usize,
    pub oauth: usize,
    /// The function binaries: `regenerate-secret`, `verify-secret`, `rotate-secret`, `oauth`.
    pub binaries: [PathBuf; 4],
    pub grace: Duration,
    /// An instance's RSS is taken after this many of its requests, and compared at its end.
    pub rss_after: u64,
    /// 200s the soak must see at each door (its other minimums follow from the settings).
    pub min_ok_per_door: u64,
}

impl Config {
    /// `defaults`, with each `SOAK_*` variable that is set taking its place.
    pub fn from_env(defaults: Config) -> Config {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            match std::env::var(name) {
                Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
                Err(_) => default,
            }
        }
        let mut config = Config {
            requests: var("SOAK_REQUESTS", defaults.requests),
            limit: Duration::from_secs(var("SOAK_SECONDS", defaults.limit.as_secs())),
            fault_rate: var("SOAK_FAULT_RATE", defaults.fault_rate),
            kill_rate: var("SOAK_KILL_RATE", defaults.kill_rate),
            min_kills: var("SOAK_MIN_KILLS", defaults.min_kills),
            regenerate: var("SOAK_REGENERATE", defaults.regenerate),
            verify: var("SOAK_VERIFY", defaults.verify),
            rotate: var("SOAK_ROTATE", defaults.rotate),
            oauth: var("SOAK_OAUTH", defaults.oauth),
            grace: Duration::from_secs(var("SOAK_GRACE_SECONDS", defaults.grace.as_secs())),
            rss_after: var("SOAK_RSS_AFTER", defaults.rss_after),
            min_ok_per_door: var("SOAK_MIN_OK_PER_DOOR", defaults.min_ok_per_door),
            binaries: defaults.binaries,
        };
        if let Ok(dir) = std::env::var("SOAK_BIN_DIR") {
            let dir = PathBuf::from(dir);
            config.binaries = ["regenerate-secret", "verify-secret", "rotate-secret", "oauth"].map(|b| dir.join(b));
        }
        for binary in &config.binaries {
            assert!(binary.exists(), "{} is missing", binary.display());
        }
        config
    }
}

fn wall_clock() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// The soak's own bounds on a call: Lambda's timeouts (template.yaml), and the client's
/// patience beyond them.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const ROTATION_TIMEOUT: Duration = Duration::from_secs(30);
const PATIENCE: Duration = Duration::from_secs(5);
const WRITER: &str = "soak-writer";
const OUTSIDER: &str = "soak-outsider";
const HOME_ORG: &str = "soak-org-0";
const ORGS: usize = 8;
const COLD_PER_WRITER: usize = 10;
/// The oauth instances' issuer, and their tokens' lifetime (longer than any soak, so an
/// issued token is active whenever it is introspected).
const ISSUER: &str = "https://soak.example.com";
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The INACTIVE app whose client, with its right secret, must never get a token.
const INACTIVE_APP: &str = "inactive";
/// The issued tokens the oauth instances keep to introspect (the most recent).
const KEPT_TOKENS: usize = 128;

#[derive(Debug, Clone)]
struct AppSpec {
    target: Target,
    client_id: String,
    /// Which regenerate slot writes it; `None` for every slot (hot), rotation apps have none.
    writer: Option<usize>,
    hot: bool,
    rotation_arn: Option<String>,
}

impl AppSpec {
    fn name(&self) -> String {
        format!("{}/{}/{}", self.target.org, self.target.project, self.target.app)
    }
}

/// An app the soak gives a secret when it seeds it, never written by a door: the API apps
/// that introspect (one per project) and the INACTIVE app.
#[derive(Debug, Clone)]
struct Seeded {
    name: String,
    project: String,
    client_id: String,
    secret: String,
}

/// What the instances share while they run.
struct Shared {
    config: Config,
    started: Instant,
    /// The wall clock at the start: calls are timed on it, as the functions time the
    /// previous secret's expiry on theirs (a sandbox paused and resumed steps the wall
    /// clock past the monotonic one; the judgement must use the clock the product used).
    wall: Duration,
    issued: AtomicU64,
    kills: AtomicU64,
    apps: Vec<AppSpec>,
    /// The secrets each app's clients have been given, latest last.
    known: Mutex<HashMap<String, Vec<String>>>,
    /// Introspectors by project, and the INACTIVE app.
    introspectors: BTreeMap<String, Seeded>,
    inactive: Seeded,
    /// Tokens the token endpoint answered, with their client's project, for introspection.
    tokens: Mutex<VecDeque<(String, String)>>,
    env: Vec<(String, String)>,
    /// What only the oauth instances are given (the KMS endpoint, the signing key, ...).
    oauth_env: Vec<(String, String)>,
    logs: PathBuf,
}

impl Shared {
    /// One more request, while the count and the time allow.
    fn ticket(&self) -> bool {
        self.started.elapsed() < self.config.limit && self.issued.fetch_add(1, Ordering::SeqCst) < self.config.requests
    }

    fn kill_now(&self) -> Option<Duration> {
        let halfway = self.issued.load(Ordering::SeqCst) > self.config.requests / 2
            || self.started.elapsed() > self.config.limit / 2;
        let forced = self.kills.load(Ordering::SeqCst) < self.config.min_kills && halfway;
        (forced || rand::random::<f64>() < self.config.kill_rate)
            .then(|| Duration::from_millis(rand::rng().random_range(1..20)))
    }

    fn now(&self) -> Duration {
        wall_clock().saturating_sub(self.wall)
    }
}

/// One slot: an instance after another (each replaced when it dies), and their calls.
struct Slot {
    function: &'static str,
    index: usize,
    binary: PathBuf,
    timeout: Duration,
    instance: Instance,
    generation: u32,
    records: Vec<InstanceRecord>,
    calls: Vec<Call>,
    served: u64,
    /// The instance's RSS after its first `rss_after` requests, and the latest sample since
    /// (every 50 requests, before the request: so a killed instance has one too).
    early: Option<u64>,
    latest: Option<u64>,
}

impl Slot {
    async fn start(shared: &Shared, function: &'static str, index: usize, binary: PathBuf, timeout: Duration) -> Slot {
        let instance = Self::spawn(shared, function, index, 0, &binary, timeout).await;
        Slot {
            function,
            index,
            binary,
            timeout,
            instance,
            generation: 0,
            records: Vec::new(),
            calls: Vec::new(),
            served: 0,
            early: None,
            latest: None,
        }
    }

    async fn spawn(
        shared: &Shared,
        function: &str,
        index: usize,
        generation: u32,
        binary: &std::path::Path,
        timeout: Duration,
    ) -> Instance {
        let name = format!("{function}-{index}.{generation}");
        let mut env = shared.env.clone();
        if function == "oauth" {
            env.extend(shared.oauth_env.iter().cloned());
        }
        if index == 0 {
            // The first instance of each function logs at the most verbose settings a user
            // can make (the SDK's and hyper's traces, the signer's input): still no secret,
            // hash or credential may reach its log.
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
            env.push(("LOG_SIGNABLE_BODY".into(), "true".into()));
        }
        Instance::start(function, name, binary, &env, &shared.logs, timeout).await
    }

    fn record(&self) -> InstanceRecord {
        InstanceRecord {
            name: self.instance.name.clone(),
            killed: false,
            died: None,
            rss_early: None,
            rss_end: None,
            served: self.instance.served,
        }
    }

    /// Invokes the current instance; a killed, dead or silent one is replaced.
    async fn invoke(&mut self, shared: &Shared, event: Vec<u8>) -> (String, Duration, Duration, Reply) {
        self.served += 1;
        let id = format!("{}{}-{:06}", self.function.trim_end_matches("-secret"), self.index, self.served);
        let kill = shared.kill_now();
        match self.instance.served {
            n if n == shared.config.rss_after => self.early = self.instance.rss_kib(),
            n if self.early.is_some() && n % 50 == 0 => self.latest = self.instance.rss_kib(),
            _ => {}
        }
        let started = shared.now();
        let reply = self.instance.invoke(&id, event, self.timeout + PATIENCE, kill).await;
        let ended = shared.now();
        let replace = match &reply {
            Reply::Killed => {
                shared.kills.fetch_add(1, Ordering::SeqCst);
                Some((true, None))
            }
            Reply::Exited(code) => Some((false, Some(format!("exited ({code:?}) during {id}")))),
            Reply::TimedOut => Some((false, Some(format!("no answer to {id} within its timeout and {PATIENCE:?}")))),
            _ => None,
        };
        if let Some((killed, died)) = replace {
            self.instance.stop().await;
            let mut record = self.record();
            record.killed = killed;
            record.died = died;
            record.rss_early = self.early.take();
            record.rss_end = record.rss_early.and(self.latest.take());
            self.records.push(record);
            self.generation += 1;
            self.instance =
                Self::spawn(shared, self.function, self.index, self.generation, &self.binary, self.timeout).await;
        }
        (id, started, ended, reply)
    }

    async fn finish(mut self) -> (Vec<InstanceRecord>, Vec<Call>) {
        let mut record = self.record();
        record.rss_early = self.early;
        record.rss_end = self.early.and(self.instance.rss_kib().or(self.latest));
        if let Some(code) = self.instance.exited() {
            record.died = Some(format!("exited ({code:?}) by the end of the soak"));
        }
        self.instance.stop().await;
        self.records.push(record);
        (self.records, self.calls)
    }
}

fn no_answer(reply: &Reply) -> Option<Outcome> {
    match reply {
        Reply::Killed => Some(Outcome::NoAnswer(NoAnswer::Killed)),
        Reply::Exited(_) => Some(Outcome::NoAnswer(NoAnswer::Exited)),
        Reply::TimedOut => Some(Outcome::NoAnswer(NoAnswer::TimedOut)),
        _ => None,
    }
}

fn pick<T: Copy>(items: &[T]) -> T {
    items[rand::rng().random_range(0..items.len())]
}

/// One regenerate call, planned.
struct Planned {
    event: Vec<u8>,
    door: &'static str,
    transport: Transport,
    app: String,
    must_fail: bool,
    refusal: &'static [u32],
    /// The answer is v1's (with `details.sequence`).
    v1: bool,
}

/// One regenerate call: what it names, through which door, as whom.
fn regenerate_call(shared: &Shared, slot: usize) -> Planned {
    let mut rng = rand::rng();
    let writable: Vec<&AppSpec> =
        shared.apps.iter().filter(|a| a.rotation_arn.is_none() && (a.hot || a.writer == Some(slot))).collect();
    let hot: Vec<&&AppSpec> = writable.iter().filter(|a| a.hot).collect();
    let cold: Vec<&&AppSpec> = writable.iter().filter(|a| !a.hot).collect();
    let app = if rng.random_bool(0.5) || cold.is_empty() { pick(&hot) } else { pick(&cold) };
    let mut target = app.target.clone();
    let mut doors: Vec<&doors::Door> = DOORS.iter().filter(|d| d.apps.contains(&target.app_type)).collect();
    let (mut caller, mut envelope, mut must_fail) = (
        (WRITER, HOME_ORG),
        pick(&[Envelope::HttpJwt, Envelope::HttpJwt, Envelope::HttpLambdaAuthorizer, Envelope::RestClaims]),
        false,
    );
    // About one call in seven must be refused, each for a reason of its own.
    let mut refusal: &'static [u32] = &[];
    if rng.random_bool(0.15) {
        must_fail = true;
        // The gRPC codes of each refusal: 7 permission denied (or 5, an app the caller
        // may not see), 5 not found, 3 invalid argument, 16 unauthenticated, 9 failed
        // precondition.
        refusal = match rng.random_range(0..6) {
            0 => {
                caller = (OUTSIDER, "soak-outsiders");
                &[7, 5]
            }
            1 => {
                target.app = "no-such-app".into();
                &[5]
            }
            2 => {
                target.app = "bad#id".into();
                &[3, 5]
            }
            3 => {
                envelope = Envelope::Anonymous;
                &[16]
            }
            4 => {
                target.app = "soak-spa".into();
                target.project = "soak-proj-0".into();
                target.org = HOME_ORG.into();
                target.app_type = "OIDC";
                doors = DOORS.iter().filter(|d| d.apps.contains(&"OIDC")).collect();
                &[9]
            }
            _ => {
                doors = DOORS.iter().filter(|d| !d.apps.contains(&target.app_type)).collect();
                &[3]
            }
        };
    }
    let door = pick(&doors);
    let transports: Vec<Transport> =
        Transport::ALL.into_iter().filter(|t| *t != Transport::Rest || door.rest.is_some()).collect();
    let transport = pick(&transports);
    let org_header =
        (door.org_header && (target.org != HOME_ORG || rng.random_bool(0.5))).then_some(target.org.as_str());
    let event = doors::event(door, transport, &target, envelope, caller, org_header);
    let name = format!("{}/{}/{}", target.org, target.project, target.app);
    Planned { event, door: door.name, transport, app: name, must_fail, refusal, v1: door.v1 }
}

async fn regenerate_slot(shared: Arc<Shared>, index: usize) -> (Vec<InstanceRecord>, Vec<Call>) {
    let [binary, _, _, _] = shared.config.binaries.clone();
    let mut slot = Slot::start(&shared, "regenerate-secret", index, binary, HTTP_TIMEOUT).await;
    while shared.ticket() {
        let Planned { event, door, transport, app, must_fail, refusal, v1 } = regenerate_call(&shared, index);
        let (id, started, ended, reply) = slot.invoke(&shared, event).await;
        let outcome = match &reply {
            Reply::Response(response) => doors::read(response, transport, v1),
            Reply::Error(error) => Outcome::Unreadable(format!("the HTTP function failed: {error}")),
            other => no_answer(other).unwrap(),
        };
        if let Outcome::Secret { secret, .. } = &outcome {
            shared.known.lock().unwrap().entry(app.clone()).or_default().push(secret.clone());
        }
        let instance = slot.instance.name.clone();
        slot.calls.push(Call {
            id,
            instance,
            door,
            transport: transport.name(),
            app: Some(app),
            started,
            ended,
            outcome,
            must_fail,
            refusal,
            presented: None,
            client: None,
            token: None,
        });
    }
    slot.finish().await
}

fn basic(client: &str, secret: &str) -> String {
    let encode = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
    let credentials = format!("{}:{}", encode(client), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

fn random_secret() -> String {
    oidc_client_secret::secret::ClientSecret::generate(64).expose().to_owned()
}

async fn verify_slot(shared: Arc<Shared>, index: usize) -> (Vec<InstanceRecord>, Vec<Call>, Vec<String>) {
    let [_, binary, _, _] = shared.config.binaries.clone();
    let mut slot = Slot::start(&shared, "verify-secret", index, binary, HTTP_TIMEOUT).await;
    let rest_template: Value = serde_json::from_slice(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/events/authorizer-rest-request-allowed.json")).unwrap(),
    )
    .unwrap();
    let mut authorizations = Vec::new();
    while shared.ticket() {
        let app = pick(&shared.apps.iter().filter(|a| a.target.app != "soak-spa").collect::<Vec<_>>()).clone();
        let known = shared.known.lock().unwrap().get(&app.name()).cloned().unwrap_or_default();
        // The current secret, the previous one, or a wrong one.
        let presented = match rand::rng().random_range(0..10) {
            0..6 if !known.is_empty() => known[known.len() - 1].clone(),
            6..8 if known.len() >= 2 => known[known.len() - 2].clone(),
            _ => random_secret(),
        };
        let authorization = basic(&app.client_id, &presented);
        let rest = rand::rng().random_bool(0.25);
        let event = if rest {
            let mut event = rest_template.clone();
            event["headers"]["Authorization"] = json!(authorization);
            event["multiValueHeaders"]["Authorization"] = json!([authorization]);
            event
        } else {
            oidc_client_secret::authorizer::simple_request_event(&authorization, "GET", "/orders")
        };
        authorizations.push(authorization);
        let (id, started, ended, reply) = slot.invoke(&shared, serde_json::to_vec(&event).unwrap()).await;
        let matched = |answer: &Value| answer["context"]["secret"].as_str().unwrap_or("?").to_owned();
        let outcome = match &reply {
            Reply::Response(answer) if !rest && answer["isAuthorized"] == json!(true) => {
                Outcome::Allowed { matched: matched(answer) }
            }
            Reply::Response(answer) if !rest && answer["isAuthorized"] == json!(false) => Outcome::Denied,
            Reply::Response(answer) if rest && answer["policyDocument"]["Statement"][0]["Effect"] == json!("Allow") => {
                Outcome::Allowed { matched: matched(answer) }
            }
            Reply::Error(error) if rest && error["errorType"] == json!(UNAUTHORIZED) => Outcome::Denied,
            Reply::Error(error) if error["errorType"] == json!(STORE_UNAVAILABLE) => Outcome::Unavailable,
            Reply::Response(other) | Reply::Error(other) => Outcome::Unreadable(format!("authorizer answered {other}")),
            other => no_answer(other).unwrap(),
        };
        let transport = if rest { "rest-request" } else { "http-v2-simple" };
        let instance = slot.instance.name.clone();
        slot.calls.push(Call {
            id,
            instance,
            door: "authorizer",
            transport,
            app: Some(app.name()),
            started,
            ended,
            outcome,
            must_fail: false,
            refusal: &[],
            presented: Some(presented),
            client: None,
            token: None,
        });
    }
    let (records, calls) = slot.finish().await;
    (records, calls, authorizations)
}

/// What a token request presents, as the soak means it (the checker judges what the table
/// and the history say, not this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presenting {
    /// The latest secret the app's clients were given.
    Current,
    /// The one before it: inside its grace, or after it, as the writes' timing has it.
    Previous,
    /// A secret no write gave.
    Wrong,
    /// A client id that names no app (with a real secret of another app).
    Unknown,
    /// The INACTIVE app's client with its right secret.
    Inactive,
}

/// The report's row of a token request: how the client authenticated, what it presented.
fn token_label(post: bool, presenting: Presenting) -> &'static str {
    match (post, presenting) {
        (false, Presenting::Current) => "basic current",
        (false, Presenting::Previous) => "basic previous",
        (false, Presenting::Wrong) => "basic wrong",
        (false, Presenting::Unknown) => "basic unknown",
        (false, Presenting::Inactive) => "basic inactive",
        (true, Presenting::Current) => "post current",
        (true, Presenting::Previous) => "post previous",
        (true, Presenting::Wrong) => "post wrong",
        (true, Presenting::Unknown) => "post unknown",
        (true, Presenting::Inactive) => "post inactive",
    }
}

fn form_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One oauth call: which door, the report's row, and what its client presented.
struct OAuthCall {
    door: &'static str,
    label: &'static str,
    event: Vec<u8>,
    client: Option<String>,
    presented: Option<String>,
    token: Option<String>,
}

impl Slot {
    /// Invokes an oauth instance, reads its answer as an OAuth client does, records the call.
    async fn oauth(&mut self, shared: &Shared, call: OAuthCall) -> Outcome {
        let (id, started, ended, reply) = self.invoke(shared, call.event).await;
        let outcome = match &reply {
            Reply::Response(answer) if call.door == "oauth-keys" => match answer["statusCode"].as_u64() {
                Some(200) => match answer["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
                    Some(jwks) => Outcome::Jwks(jwks),
                    None => Outcome::Unreadable(format!("a JWKS that is not JSON: {answer}")),
                },
                _ => doors::read_oauth(answer, false),
            },
            Reply::Response(answer) => doors::read_oauth(answer, call.door == "oauth-introspect"),
            Reply::Error(error) => Outcome::Unreadable(format!("the oauth function failed: {error}")),
            other => no_answer(other).unwrap(),
        };
        self.calls.push(Call {
            id,
            instance: self.instance.name.clone(),
            door: call.door,
            transport: call.label,
            app: None,
            started,
            ended,
            outcome: outcome.clone(),
            must_fail: false,
            refusal: &[],
            presented: call.presented,
            client: call.client,
            token: call.token,
        });
        outcome
    }
}

/// One token request, planned, with the credential as its event carries it (the
/// `Authorization` value or the base64 body), and its client's project.
fn token_request(shared: &Shared) -> (OAuthCall, String, Option<String>) {
    let mut rng = rand::rng();
    let app = pick(&shared.apps.iter().collect::<Vec<_>>()).clone();
    let known = shared.known.lock().unwrap().get(&app.name()).cloned().unwrap_or_default();
    let (mut client_id, mut project) = (app.client_id.clone(), Some(app.target.project.clone()));
    let presenting = match rng.random_range(0..20) {
        0..9 if !known.is_empty() => Presenting::Current,
        9..13 if known.len() >= 2 => Presenting::Previous,
        13..16 if !known.is_empty() => Presenting::Unknown,
        16..18 => Presenting::Inactive,
        _ => Presenting::Wrong,
    };
    let secret = match presenting {
        Presenting::Current => known[known.len() - 1].clone(),
        Presenting::Previous => known[known.len() - 2].clone(),
        Presenting::Wrong => random_secret(),
        Presenting::Unknown => {
            client_id = format!("ghost-{}@{}", rng.random_range(0..1000), app.target.project);
            project = None;
            known[known.len() - 1].clone()
        }
        Presenting::Inactive => {
            client_id = shared.inactive.client_id.clone();
            project = Some(shared.inactive.project.clone());
            shared.inactive.secret.clone()
        }
    };
    let post = rng.random_bool(0.5);
    let grant = "grant_type=client_credentials";
    let (event, credential) = if post {
        let form = format!("{grant}&client_id={}&client_secret={}", form_encode(&client_id), form_encode(&secret));
        doors::oauth_event("POST", doors::TOKEN_PATH, None, Some(&form))
    } else {
        let authorization = basic(&client_id, &secret);
        (doors::oauth_event("POST", doors::TOKEN_PATH, Some(&authorization), Some(grant)).0, authorization)
    };
    let call = OAuthCall {
        door: "oauth-token",
        label: token_label(post, presenting),
        event,
        client: Some(client_id),
        presented: Some(secret),
        token: None,
    };
    (call, credential, project)
}

/// A token with one character of its signature changed: one the endpoint never issued.
fn forged(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    // Well inside the signature: its last character also holds padding bits.
    let at = bytes.len() - 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("base64url")
}

/// An introspection of a token the soak got, by an API app, with the credentials as its
/// event carries them.
fn introspection(shared: &Shared) -> Option<(OAuthCall, [String; 2])> {
    let mut rng = rand::rng();
    let (project, token) = {
        let tokens = shared.tokens.lock().unwrap();
        tokens.get(rng.random_range(0..tokens.len().max(1)))?.clone()
    };
    // Mostly its own project's API app with the token as it got it; now and then a forged
    // token, or another project's API app (for which the token is not meant).
    let own = shared.introspectors[&project].clone();
    let (label, introspector, token) = match rng.random_range(0..10) {
        0 => ("forged token", own, forged(&token)),
        1 => {
            let other = shared.introspectors.values().find(|i| i.project != project).unwrap_or(&own).clone();
            ("another project's", other, token)
        }
        _ => ("own project's", own, token),
    };
    let authorization = basic(&introspector.client_id, &introspector.secret);
    let (event, body) =
        doors::oauth_event("POST", doors::INTROSPECT_PATH, Some(&authorization), Some(&format!("token={token}")));
    let call = OAuthCall {
        door: "oauth-introspect",
        label,
        event,
        client: Some(introspector.client_id),
        presented: Some(introspector.secret),
        token: Some(token),
    };
    Some((call, [authorization, body]))
}

async fn oauth_slot(shared: Arc<Shared>, index: usize) -> (Vec<InstanceRecord>, Vec<Call>, Vec<String>, Option<Value>) {
    let [_, _, _, binary] = shared.config.binaries.clone();
    let mut slot = Slot::start(&shared, "oauth", index, binary, HTTP_TIMEOUT).await;
    let mut credentials = Vec::new();
    let mut jwks = None;
    // The JWKS, once per run: what every issued token must verify against.
    while index == 0 && jwks.is_none() && shared.ticket() {
        let (event, _) = doors::oauth_event("GET", doors::KEYS_PATH, None, None);
        let call = OAuthCall { door: "oauth-keys", label: "jwks", event, client: None, presented: None, token: None };
        if let Outcome::Jwks(published) = slot.oauth(&shared, call).await {
            jwks = Some(published);
        }
    }
    while shared.ticket() {
        if rand::rng().random_bool(0.3)
            && let Some((call, sent)) = introspection(&shared)
        {
            credentials.extend(sent);
            slot.oauth(&shared, call).await;
            continue;
        }
        let (call, credential, project) = token_request(&shared);
        credentials.push(credential);
        if let (Outcome::Token { token }, Some(project)) = (slot.oauth(&shared, call).await, project)
            && shared.introspectors.contains_key(&project)
        {
            let mut tokens = shared.tokens.lock().unwrap();
            tokens.push_back((project, token));
            if tokens.len() > KEPT_TOKENS {
                tokens.pop_front();
            }
        }
    }
    let (records, calls) = slot.finish().await;
    (records, calls, credentials, jwks)
}

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];
/// Secrets Manager retries a failed step; so does the soak, this often in all.
const STEP_ATTEMPTS: usize = 4;

async fn rotate_slot(
    shared: Arc<Shared>,
    index: usize,
    store: DynamoStore,
) -> (Vec<InstanceRecord>, Vec<Call>, Vec<RotationRun>) {
    let [_, _, binary, _] = shared.config.binaries.clone();
    let secrets = support::secrets_client().await;
    let mut slot = Slot::start(&shared, "rotate-secret", index, binary, ROTATION_TIMEOUT).await;
    let apps: Vec<AppSpec> = shared.apps.iter().filter(|a| a.rotation_arn.is_some()).cloned().collect();
    let mut runs = Vec::new();
    let mut turn = 0;
    while shared.ticket() {
        let app = &apps[turn % apps.len()];
        turn += 1;
        let arn = app.rotation_arn.clone().unwrap();
        let token = support::start_rotation(&secrets, &arn).await;
        let mut run = RotationRun {
            app: app.name(),
            token: token.clone(),
            pending: None,
            finished: false,
            current_after: None,
            hash_at_finish: None,
            set_calls: Vec::new(),
            set_verified: None,
        };
        'steps: for step in STEPS {
            for attempt in 0..STEP_ATTEMPTS {
                if attempt > 0 && !shared.ticket() {
                    break 'steps;
                }
                let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": token});
                let (id, started, ended, reply) = slot.invoke(&shared, serde_json::to_vec(&event).unwrap()).await;
                let outcome = match &reply {
                    Reply::Response(Value::Null) => Outcome::Step,
                    Reply::Error(error) => Outcome::StepFailed {
                        kind: error["errorType"].as_str().unwrap_or("?").to_owned(),
                        unknown: error["errorMessage"].as_str().is_some_and(|m| m.contains("outcome is unknown")),
                        message: error["errorMessage"].as_str().unwrap_or("").to_owned(),
                    },
                    Reply::Response(other) => Outcome::Unreadable(format!("rotation step answered {other}")),
                    other => no_answer(other).unwrap(),
                };
                if step == "setSecret" {
                    run.set_calls.push(id.clone());
                }
                let ok = outcome == Outcome::Step;
                let instance = slot.instance.name.clone();
                slot.calls.push(Call {
                    id,
                    instance,
                    door: "rotation",
                    transport: step,
                    app: Some(app.name()),
                    started,
                    ended,
                    outcome,
                    must_fail: false,
                    refusal: &[],
                    presented: None,
                    client: None,
                    token: None,
                });
                if ok {
                    if step == "setSecret"
                        && let Some(pending) = &run.pending
                    {
                        // The pending secret is the app's now: an ok that wrote nothing is a lie.
                        let key = support::key(&app.target.org, &app.target.project, &app.target.app);
                        let table = store.app(&key).await.ok().flatten();
                        let now = time::OffsetDateTime::now_utc();
                        run.set_verified = Some(
                            table.is_some_and(|a| oidc_client_secret::secret::verify_client_secret(&a, pending, now)),
                        );
                    }
                    if step == "createSecret" {
                        let pending = secrets.get_secret_value().secret_id(&arn).version_id(&token).send().await.ok();
                        run.pending = pending.and_then(|p| p.secret_string).and_then(|s| {
                            serde_json::from_str::<Value>(&s).ok()?["clientSecret"].as_str().map(str::to_owned)
                        });
                    }
                    if step == "finishSecret" {
                        run.finished = true;
                        let current = support::stage_value(&secrets, &arn, "AWSCURRENT").await;
                        run.current_after = current.and_then(|v| v["clientSecret"].as_str().map(str::to_owned));
                        let key = support::key(&app.target.org, &app.target.project, &app.target.app);
                        run.hash_at_finish = store.app(&key).await.ok().flatten().and_then(|a| a.secret_hash);
                        if let Some(current) = &run.current_after {
                            shared.known.lock().unwrap().entry(app.name()).or_default().push(current.clone());
                        }
                    }
                    continue 'steps;
                }
            }
            break; // the step kept failing: the rotation is abandoned, as Secrets Manager would after its retries
        }
        // What Secrets Manager does at the end of a rotation, and what moto does not.
        support::complete_rotation(&secrets, &arn, &token).await;
        runs.push(run);
    }
    let (records, calls) = slot.finish().await;
    (records, calls, runs)
}

/// The table's apps and events, read straight from DynamoDB Local.
async fn snapshot(store: &DynamoStore) -> (Vec<AppState>, Vec<EventRow>) {
    let (mut apps, mut events) = (Vec::new(), Vec::new());
    let text = |item: &support::Item, name: &str| match item.get(name) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) | Some(aws_sdk_dynamodb::types::AttributeValue::N(s)) => {
            Some(s.clone())
        }
        _ => None,
    };
    for item in support::scan(store).await {
        let (Some(pk), Some(sk)) = (text(&item, "pk"), text(&item, "sk")) else { continue };
        let Some(org) = pk.strip_prefix("ORG#") else { continue };
        if let Some(rest) = sk.strip_prefix("APP#") {
            let (project, app) = rest.split_once('#').unwrap_or((rest, ""));
            apps.push(AppState {
                name: format!("{org}/{project}/{app}"),
                client_id: text(&item, "clientId"),
                state: text(&item, "state"),
                sequence: text(&item, "sequence").and_then(|s| s.parse().ok()).unwrap_or(0),
                secret_hash: text(&item, "secretHash"),
                previous_hash: text(&item, "previousSecretHash"),
            });
        } else if let Some(rest) = sk.strip_prefix("EVENT#") {
            let mut parts = rest.rsplitn(2, '#');
            let (sequence, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (project, app) = path.split_once('#').unwrap_or((path, ""));
            events.push(EventRow {
                app: format!("{org}/{project}/{app}"),
                sequence: sequence.parse().unwrap_or(0),
                request_id: text(&item, "requestId").unwrap_or_default(),
            });
        }
    }
    (apps, events)
}

/// An app seeded with a secret of the soak's (its hash set behind the doors' back, as
/// `admin import` would): the introspecting API apps and the INACTIVE app.
async fn seed_with_secret(store: &DynamoStore, new: NewApp) -> Seeded {
    let secret = random_secret();
    let hash = bcrypt::hash(&secret, oidc_client_secret::secret::DEFAULT_COST).unwrap();
    let key = new.key.clone();
    let client_id = new.client_id.clone();
    support::seed_app(store, new).await;
    support::set_app_attribute(store, &key, "secretHash", Some(AttributeValue::S(hash))).await;
    Seeded {
        name: format!("{}/{}/{}", key.org, key.project, key.app),
        project: key.project.to_string(),
        client_id,
        secret,
    }
}

/// The grant SPEC section 13 asks of an app before it gets a token.
async fn grant_client_credentials(store: &DynamoStore, key: &oidc_client_secret::app::AppKey) {
    let grant = AttributeValue::Ss(vec!["client_credentials".into()]);
    support::set_app_attribute(store, key, "grantTypes", Some(grant)).await;
}

/// The apps the doors write, the introspectors by project, and the INACTIVE app.
async fn seed(store: &DynamoStore, config: &Config) -> (Vec<AppSpec>, BTreeMap<String, Seeded>, Seeded) {
    let mut apps = Vec::new();
    let target = |org: usize, app: String, app_type: &'static str| Target {
        org: format!("soak-org-{org}"),
        project: format!("soak-proj-{org}"),
        app,
        app_type,
    };
    for (i, app_type) in ["OIDC", "OIDC", "OIDC", "API"].into_iter().enumerate() {
        apps.push(AppSpec {
            target: target(0, format!("hot-{i}"), app_type),
            client_id: String::new(),
            writer: None,
            hot: true,
            rotation_arn: None,
        });
    }
    for writer in 0..config.regenerate {
        for j in 0..COLD_PER_WRITER {
            let n = writer * COLD_PER_WRITER + j;
            let app_type = if n % 3 == 2 { "API" } else { "OIDC" };
            apps.push(AppSpec {
                target: target(n % ORGS, format!("cold-{n}"), app_type),
                client_id: String::new(),
                writer: Some(writer),
                hot: false,
                rotation_arn: None,
            });
        }
    }
    if config.rotate > 0 {
        let secrets = support::secrets_client().await;
        for i in 0..2 {
            let t = target(0, format!("rotated-{i}"), "OIDC");
            let arn = support::create_app_secret(&secrets, &t.org, &t.project, &t.app).await;
            apps.push(AppSpec {
                target: t,
                client_id: String::new(),
                writer: None,
                hot: false,
                rotation_arn: Some(arn),
            });
        }
    }
    for app in &mut apps {
        app.client_id = format!("{}@{}", app.target.app, app.target.project);
        let new = NewApp {
            app_type: app.target.app_type.into(),
            auth_method: if app.target.app_type == "API" { "BASIC" } else { pick(&["BASIC", "POST"]) }.into(),
            rotation_secret_arn: app.rotation_arn.clone(),
            ..NewApp::oidc(support::key(&app.target.org, &app.target.project, &app.target.app), app.client_id.clone())
        };
        let key = new.key.clone();
        support::seed_app(store, new).await;
        grant_client_credentials(store, &key).await;
    }
    let mut introspectors = BTreeMap::new();
    for org in 0..ORGS {
        let (org, project) = (format!("soak-org-{org}"), format!("soak-proj-{org}"));
        let new = NewApp {
            app_type: "API".into(),
            ..NewApp::oidc(support::key(&org, &project, "introspector"), format!("introspector@{project}"))
        };
        introspectors.insert(project, seed_with_secret(store, new).await);
    }
    let key = support::key(HOME_ORG, "soak-proj-0", INACTIVE_APP);
    let new = NewApp { state: "INACTIVE".into(), ..NewApp::oidc(key.clone(), format!("{INACTIVE_APP}@soak-proj-0")) };
    let inactive = seed_with_secret(store, new).await;
    grant_client_credentials(store, &key).await;
    let spa = NewApp {
        auth_method: "NONE".into(),
        ..NewApp::oidc(support::key(HOME_ORG, "soak-proj-0", "soak-spa"), "soak-spa@soak-proj-0")
    };
    support::seed_app(store, spa).await;
    for org in 0..ORGS {
        support::seed_member(store, &format!("soak-org-{org}"), None, WRITER, &[APP_WRITE_PERMISSION]).await;
    }
    support::seed_member(store, "soak-outsiders", None, OUTSIDER, &[APP_WRITE_PERMISSION]).await;
    (apps, introspectors, inactive)
}

/// The outcome of a soak: its history, the checks, and the report's figures.
pub struct Report {
    pub history: History,
    pub checks: Vec<checker::Check>,
    pub calls: u64,
    pub faults: BTreeMap<chaos::Fault, u64>,
    pub dynamodb_calls: u64,
    pub kills: u64,
    pub took: Duration,
    pub rss_after: u64,
}

impl Report {
    pub fn violations(&self) -> usize {
        checker::total_violations(&self.checks)
    }
}

/// The least a soak of `config` must exercise: loose enough for a loaded 2-core machine
/// (the short soak has reached only about 1,000 requests there), and a fault of each kind
/// only where the fault rate makes one all but certain.
fn minimums(config: &Config, apps: &[AppSpec]) -> Minimums {
    let faults = config.fault_rate > 0.0;
    Minimums {
        doors: DOORS.iter().map(|d| d.name).collect(),
        ok_per_door: config.min_ok_per_door,
        hot_apps: apps.iter().filter(|a| a.hot).map(AppSpec::name).collect(),
        events_per_hot_app: u64::from(config.regenerate > 0),
        allowed: u64::from(config.verify > 0),
        denied: u64::from(config.verify > 0),
        finished_rotations: u64::from(config.rotate > 0),
        tokens_issued: if config.oauth > 0 { config.min_ok_per_door } else { 0 },
        tokens_refused: if config.oauth > 0 { config.min_ok_per_door } else { 0 },
        introspections: if config.oauth > 0 { config.min_ok_per_door } else { 0 },
        fault_kinds: if faults { chaos::Fault::ALL.iter().map(|f| f.name()).collect() } else { Vec::new() },
        faults_per_kind: u64::from(faults),
        transact_faults: u64::from(faults && config.regenerate > 0),
        kills: config.min_kills,
    }
}

/// Runs a soak against the DynamoDB Local and moto that `scripts/local-services.sh` started.
pub async fn run(config: Config) -> Report {
    let store = support::empty_table().await;
    let (apps, introspectors, inactive) = seed(&store, &config).await;
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run under scripts/local-services.sh");
    let proxy = chaos::Chaos::start(&upstream, config.fault_rate).await;
    let logs = std::env::temp_dir().join(format!("soak-{}", store.table()));
    std::fs::create_dir_all(&logs).unwrap();
    let mut env: Vec<(String, String)> = vec![
        ("TABLE_NAME".into(), store.table().into()),
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.endpoint()),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER".into(),
            std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").unwrap_or_default(),
        ),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ("SECRET_GRACE_SECONDS".into(), config.grace.as_secs().to_string()),
    ];
    env.retain(|(_, v)| !v.is_empty());
    let mut oauth_env = Vec::new();
    if config.oauth > 0 {
        // KMS straight on moto (no faults there), in the region the key was made in.
        let kms = oidc_client_secret::kms::client_from_env().await;
        let key = oidc_client_secret::kms::create_signing_key(&kms).await.expect("a signing key on moto's KMS");
        let endpoint = std::env::var("AWS_ENDPOINT_URL_KMS").expect("run under scripts/local-services.sh");
        oauth_env = vec![
            ("AWS_ENDPOINT_URL_KMS".into(), endpoint),
            ("TOKEN_SIGNING_KEYS".into(), key),
            ("ISSUER".into(), ISSUER.into()),
            ("TOKEN_LIFETIME_SECONDS".into(), TOKEN_LIFETIME.as_secs().to_string()),
        ];
    }
    let seeded: Vec<(String, String)> =
        introspectors.values().chain([&inactive]).map(|s| (s.name.clone(), s.secret.clone())).collect();
    println!("soak: table {}, logs in {}", store.table(), logs.display());
    let shared = Arc::new(Shared {
        config: config.clone(),
        started: Instant::now(),
        wall: wall_clock(),
        issued: AtomicU64::new(0),
        kills: AtomicU64::new(0),
        apps,
        known: Mutex::default(),
        introspectors,
        inactive,
        tokens: Mutex::default(),
        env,
        oauth_env,
        logs: logs.clone(),
    });
    let mut regenerate = Vec::new();
    for i in 0..config.regenerate {
        regenerate.push(tokio::spawn(regenerate_slot(shared.clone(), i)));
    }
    let mut verify = Vec::new();
    for i in 0..config.verify {
        verify.push(tokio::spawn(verify_slot(shared.clone(), i)));
    }
    let mut rotate = Vec::new();
    for i in 0..config.rotate {
        rotate.push(tokio::spawn(rotate_slot(shared.clone(), i, store.clone())));
    }
    let mut oauth = Vec::new();
    for i in 0..config.oauth {
        oauth.push(tokio::spawn(oauth_slot(shared.clone(), i)));
    }
    let mut history = History {
        grace: config.grace,
        late: chaos::DELAY + Duration::from_secs(1),
        seeded,
        issuer: ISSUER.into(),
        epoch: shared.wall,
        ..History::default()
    };
    for task in regenerate {
        let (records, calls) = task.await.expect("a regenerate slot");
        history.instances.extend(records);
        history.calls.extend(calls);
    }
    for task in verify {
        let (records, calls, authorizations) = task.await.expect("a verify slot");
        history.instances.extend(records);
        history.calls.extend(calls);
        history.authorizations.extend(authorizations);
    }
    for task in rotate {
        let (records, calls, runs) = task.await.expect("a rotate slot");
        history.instances.extend(records);
        history.calls.extend(calls);
        history.runs.extend(runs);
    }
    for task in oauth {
        let (records, calls, credentials, jwks) = task.await.expect("an oauth slot");
        history.instances.extend(records);
        history.calls.extend(calls);
        history.authorizations.extend(credentials);
        history.jwks = history.jwks.take().or(jwks);
    }
    let took = shared.started.elapsed();
    // What the network still holds lands before the table is read.
    tokio::time::sleep(history.late).await;
    let (apps, events) = snapshot(&store).await;
    history.read_at = shared.now();
    history.apps = apps;
    history.events = events;
    for instance in &history.instances {
        // Lossily: a line that is not UTF-8 must still be scanned, not drop the whole log.
        let bytes = std::fs::read(logs.join(format!("{}.log", instance.name))).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        history.logs.push((instance.name.clone(), text));
    }
    write_history(&history, &logs.join("history.txt"));
    let (dynamodb_calls, faults, transact_faults) = proxy.counts();
    let kills = shared.kills.load(Ordering::SeqCst);
    history.exercised =
        Exercised { faults: faults.iter().map(|(f, n)| (f.name(), *n)).collect(), transact_faults, kills };
    history.minimums = minimums(&config, &shared.apps);
    let checks = checker::check(&history);
    Report {
        calls: history.calls.len() as u64,
        history,
        checks,
        faults,
        dynamodb_calls,
        kills,
        took,
        rss_after: config.rss_after,
    }
}

/// The history as text, one call or event a line, for reading a violation afterwards
/// (secrets as their first 8 characters).
fn write_history(history: &History, path: &std::path::Path) {
    use std::fmt::Write;
    let mut text = String::new();
    let short = |s: &str| s.chars().take(8).collect::<String>();
    for c in &history.calls {
        let secret = match (&c.outcome, &c.presented) {
            (Outcome::Secret { secret, sequence }, _) => format!("secret {} sequence {sequence:?}", short(secret)),
            (_, Some(presented)) => {
                format!("client {} presented {}", c.client.as_deref().unwrap_or("-"), short(presented))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            text,
            "call {} {} {} {} {} {}..{} ms {:?} {secret}",
            c.id,
            c.instance,
            c.door,
            c.transport,
            c.app.as_deref().unwrap_or("-"),
            c.started.as_millis(),
            c.ended.as_millis(),
            c.outcome.class(),
        );
    }
    for e in &history.events {
        let _ = writeln!(text, "event {} {} {}", e.app, e.sequence, e.request_id);
    }
    for r in &history.runs {
        let pending = r.pending.as_deref().map(short).unwrap_or_default();
        let _ =
            writeln!(text, "run {} {} pending {pending} finished {} set {:?}", r.app, r.token, r.finished, r.set_calls);
    }
    let _ = std::fs::write(path, text);
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        type Row = (BTreeMap<String, u64>, Vec<Duration>);
        let mut doors: BTreeMap<(&str, &str), Row> = BTreeMap::new();
        for call in &self.history.calls {
            let row = doors.entry((call.door, call.transport)).or_default();
            *row.0.entry(call.outcome.class()).or_default() += 1;
            if !matches!(call.outcome, Outcome::NoAnswer(_)) {
                row.1.push(call.ended.saturating_sub(call.started));
            }
        }
        writeln!(f, "\nrequests by door and outcome ({} in {:.1} s)", self.calls, self.took.as_secs_f64())?;
        writeln!(f, "  {:<16} {:<23} {:>6}  {:>7} {:>7}  outcomes", "door", "transport", "count", "p50 ms", "p99 ms")?;
        let mut per_door: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for ((door, transport), (outcomes, mut latencies)) in doors {
            latencies.sort();
            per_door.entry(door).or_default().extend(latencies.iter().copied());
            let count: u64 = outcomes.values().sum();
            let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            writeln!(
                f,
                "  {door:<16} {transport:<23} {count:>6}  {:>7.1} {:>7.1}  {}",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                outcomes.join(", ")
            )?;
        }
        writeln!(f, "\nlatency per door (answered calls)")?;
        for (door, mut latencies) in per_door {
            latencies.sort();
            writeln!(
                f,
                "  {door:<16} p50 {:>7.1} ms  p99 {:>7.1} ms",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            )?;
        }
        let faults: u64 = self.faults.values().sum();
        writeln!(f, "\nfaults injected: {faults} in {} DynamoDB calls", self.dynamodb_calls)?;
        for (fault, n) in &self.faults {
            writeln!(f, "  {:<36} {n:>6}", fault.name())?;
        }
        writeln!(f, "kills (SIGKILL mid-request): {}", self.kills)?;
        writeln!(f, "\ninstances")?;
        for instance in &self.history.instances {
            let rss = match (instance.rss_early, instance.rss_end) {
                (Some(early), Some(end)) => {
                    format!("RSS {early} KiB after {} requests, {end} KiB at its end", self.rss_after)
                }
                _ => format!("RSS not compared (fewer than {} requests)", self.rss_after),
            };
            let fate = if instance.killed {
                "killed"
            } else if instance.died.is_some() {
                "DIED"
            } else {
                "ran to the end"
            };
            writeln!(f, "  {:<22} {:>5} requests  {fate:<15} {rss}", instance.name, instance.served)?;
        }
        writeln!(f, "\nchecks")?;
        for check in &self.checks {
            let verdict = if check.violations.is_empty() { "ok" } else { "VIOLATED" };
            writeln!(f, "  {verdict:<8} {:>6} checked  {}", check.checked, check.name)?;
            if let Some((what, n)) = check.apart {
                writeln!(f, "  {:<8} {n:>6}          {what}", "")?;
            }
            for note in &check.notes {
                writeln!(f, "                             {note}")?;
            }
            for violation in &check.violations {
                writeln!(f, "             - {violation}")?;
            }
        }
        write!(f, "\nsoak: {} requests, {faults} faults, {} violations", self.calls, self.violations())
    }
}
