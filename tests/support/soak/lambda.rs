//! Function instances as Lambda runs them when it scales out: each instance is its own
//! sandbox, a process with a Runtime API of its own on loopback that hands it one
//! invocation at a time, under a request id unique in the whole soak (Lambda's are UUIDs;
//! the product matches its own writes by them when it resolves an unknown outcome, so two
//! instances must never share one). An instance can be killed in the middle of a request
//! (SIGKILL: the caller gets no answer, as when Lambda loses a sandbox) and replaced.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

const PREFIX: &str = "/2018-06-01/runtime/invocation/";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

/// What one invocation came to, as its caller saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// What the function posted to `/response`.
    Response(Value),
    /// What it posted to `/error` (`errorType`, `errorMessage`).
    Error(Value),
    /// The soak killed the instance while the request was in flight.
    Killed,
    /// The process exited on its own before answering (a violation).
    Exited(Option<i32>),
    /// No answer within the caller's timeout; the instance is then replaced, as Lambda
    /// replaces a sandbox whose invocation timed out.
    TimedOut,
}

struct Invocation {
    id: String,
    event: Bytes,
    deadline_ms: u64,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// One sandbox: its Runtime API and its process.
pub struct Instance {
    pub name: String,
    child: Child,
    queue: mpsc::UnboundedSender<Invocation>,
    pending: Pending,
    server: tokio::task::JoinHandle<()>,
    /// Lambda's timeout for this function: each invocation's deadline is this after it starts.
    timeout: Duration,
    /// Invocations handed to this process.
    pub served: u64,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.child.start_kill();
    }
}

impl Instance {
    /// Starts `binary` named `name` (its log in `dir/name.log`) with `env`, behind a
    /// Runtime API of its own.
    pub async fn start(
        function: &str,
        name: String,
        binary: &Path,
        env: &[(String, String)],
        dir: &Path,
        timeout: Duration,
    ) -> Self {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.expect("bind runtime api");
        let addr = listener.local_addr().unwrap();
        let (queue, receiver) = mpsc::unbounded_channel::<Invocation>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let pending: Pending = Arc::default();
        let state = pending.clone();
        let arn = format!("{ARN}{function}");
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (receiver, state, arn) = (receiver.clone(), state.clone(), arn.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        serve(request, receiver.clone(), state.clone(), arn.clone())
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create instance log");
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("soak/[$LATEST]{name}"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true);
        let child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Self { name, child, queue, pending, server, timeout, served: 0 }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process's resident set, from `/proc`, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().ok().flatten().map(|status| status.code())
    }

    /// Hands `event` to the instance under request id `id` and waits for its answer, at
    /// most `wait`; with `kill_after`, the instance is SIGKILLed that long after the
    /// event was handed over, if it has not answered by then.
    pub async fn invoke(&mut self, id: &str, event: Vec<u8>, wait: Duration, kill_after: Option<Duration>) -> Reply {
        self.served += 1;
        let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + self.timeout;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id.to_owned(), tx);
        let invocation =
            Invocation { id: id.to_owned(), event: Bytes::from(event), deadline_ms: deadline.as_millis() as u64 };
        if self.queue.send(invocation).is_err() {
            return Reply::Exited(None);
        }
        let kill = async {
            match kill_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let reply = tokio::select! {
            reply = rx => reply.unwrap_or(Reply::Exited(None)),
            status = self.child.wait() => Reply::Exited(status.ok().and_then(|s| s.code())),
            _ = kill => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Reply::Killed
            }
            _ = tokio::time::sleep(wait) => Reply::TimedOut,
        };
        self.pending.lock().unwrap().remove(id);
        reply
    }

    /// Stops the process (at the end of the soak, or after a timeout).
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn serve(
    request: Request<Incoming>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    pending: Pending,
    arn: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PREFIX) else {
        // `init/error`: the function could not start; its log says why, and the soak
        // sees the process exit.
        return Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{\"status\":\"OK\"}")));
    };
    if request.method() == Method::GET && route == "next" {
        let Some(invocation) = queue.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, Bytes::new()));
        };
        let mut response = reply(StatusCode::OK, invocation.event);
        let headers = response.headers_mut();
        headers.insert("lambda-runtime-aws-request-id", invocation.id.parse().unwrap());
        headers.insert("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string().parse().unwrap());
        headers.insert("lambda-runtime-invoked-function-arn", arn.parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        return Ok(response);
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    let Some((id, kind)) = route.split_once('/') else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    };
    let answer = match kind {
        "response" => Reply::Response(json),
        "error" => Reply::Error(json),
        _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
    };
    if let Some(tx) = pending.lock().unwrap().remove(id) {
        let _ = tx.send(answer);
    }
    Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{\"status\":\"OK\"}")))
}
