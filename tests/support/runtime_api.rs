//! A Lambda Runtime API on loopback, as the Lambda service offers it to a custom runtime
//! (`provided.al2023`): the binary long-polls `next`, then posts a `response` or an
//! `error` for that request id, or an `init/error` when it cannot start. Used by the
//! runtime-level tests, by `make invoke` and by `make bench`: the local equivalent of
//! `sam local invoke`, with no Docker.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-central-1:123456789012:function:regenerate-secret";

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The JSON the function posted to `/response`.
    Response(Value),
    /// The JSON the function posted to `/error` (`errorType`, `errorMessage`).
    Error(Value),
    /// The JSON the function posted to `/init/error` before taking any event.
    InitError(Value),
    /// The process exited before answering.
    Exited(Option<i32>),
}

struct Invocation {
    id: String,
    event: Bytes,
}

#[derive(Default)]
struct Shared {
    pending: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<oneshot::Sender<Outcome>>,
    first_next: Option<Instant>,
}

/// The Runtime API server; one function process at a time polls it.
pub struct RuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Mutex<Shared>>,
    next_id: u64,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind runtime api");
        let addr = listener.local_addr().unwrap();
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (receiver, state) = (receiver.clone(), state.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| serve(request, receiver.clone(), state.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr, queue, shared, next_id: 0 }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Starts `binary` as Lambda would, with `env` on top of the runtime's variables.
    /// Its stderr and stdout (the function's log) go to `log` when given, else are dropped.
    pub fn spawn(&self, binary: &Path, env: &[(&str, String)], log: Option<&Path>) -> Function {
        self.spawn_under(&[], binary, env, log)
    }

    /// As [`RuntimeApi::spawn`], through `runner` (an emulator and its arguments) when
    /// it is not empty.
    pub fn spawn_under(
        &self,
        runner: &[String],
        binary: &Path,
        env: &[(&str, String)],
        log: Option<&Path>,
    ) -> Function {
        let mut command = match runner.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", self.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", "regenerate-secret")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/regenerate-secret")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]local")
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_DEFAULT_REGION", "eu-central-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("create function log");
                command.stdout(file.try_clone().unwrap()).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        self.shared.lock().unwrap().first_next = None;
        let started = Instant::now();
        let child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let (init_tx, init_rx) = oneshot::channel();
        self.shared.lock().unwrap().init_error = Some(init_tx);
        Function { child, started, init_error: init_rx }
    }

    /// Hands `event` to the function and waits for its answer (or its death, or `timeout`).
    pub async fn invoke(&mut self, function: &mut Function, event: &[u8], timeout: Duration) -> Outcome {
        // Unique across every Runtime API of the process, as Lambda's request ids are
        // unique: the function tells its own write from another's by this id.
        self.next_id += 1;
        let id = format!("{:08x}-local-{:012x}", rand::random::<u32>(), self.next_id);
        let (tx, rx) = oneshot::channel();
        self.shared.lock().unwrap().pending.insert(id.clone(), tx);
        self.queue.send(Invocation { id, event: Bytes::copy_from_slice(event) }).expect("runtime api is running");
        tokio::select! {
            outcome = rx => outcome.expect("answer channel"),
            outcome = &mut function.init_error => outcome.expect("init error channel"),
            status = function.child.wait() => Outcome::Exited(status.ok().and_then(|s| s.code())),
            _ = tokio::time::sleep(timeout) => panic!("the function did not answer within {timeout:?}"),
        }
    }
}

impl RuntimeApi {
    /// The function's init time: from its spawn to its first `next`.
    pub fn init_duration(&self, function: &Function) -> Option<Duration> {
        self.shared.lock().unwrap().first_next.map(|at| at.duration_since(function.started))
    }
}

/// A running function process.
pub struct Function {
    pub child: Child,
    started: Instant,
    init_error: oneshot::Receiver<Outcome>,
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn serve(
    request: Request<Incoming>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    shared: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    };
    if method == Method::GET && route == "/invocation/next" {
        shared.lock().unwrap().first_next.get_or_insert_with(Instant::now);
        let Some(invocation) = queue.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, Bytes::new()));
        };
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(10);
        let mut response = reply(StatusCode::OK, invocation.event);
        let headers = response.headers_mut();
        headers.insert("lambda-runtime-aws-request-id", invocation.id.parse().unwrap());
        headers.insert("lambda-runtime-deadline-ms", deadline.as_millis().to_string().parse().unwrap());
        headers.insert("lambda-runtime-invoked-function-arn", FUNCTION_ARN.parse().unwrap());
        // Sampled, as with active tracing: a function only sends X-Ray anything when told the
        // daemon's address, which only the tracing test does.
        let trace =
            format!("Root=1-67470000-{:024x};Parent={:016x};Sampled=1", rand::random::<u64>(), rand::random::<u64>());
        headers.insert("lambda-runtime-trace-id", trace.parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        return Ok(response);
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()));
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    if route == "/init/error" {
        if let Some(tx) = shared.lock().unwrap().init_error.take() {
            let _ = tx.send(Outcome::InitError(json));
        }
        return Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{\"status\":\"OK\"}")));
    }
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let outcome = match parts.as_slice() {
        ["invocation", _, "response"] => Outcome::Response(json),
        ["invocation", _, "error"] => Outcome::Error(json),
        _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
    };
    match shared.lock().unwrap().pending.remove(parts[1]) {
        Some(tx) => {
            let _ = tx.send(outcome);
            Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{\"status\":\"OK\"}")))
        }
        None => Ok(reply(StatusCode::BAD_REQUEST, Bytes::from_static(b"{\"errorType\":\"InvalidRequestID\"}"))),
    }
}
