//! A fault proxy between the function instances and DynamoDB Local that misbehaves at
//! random: at `rate`, a call (or a new connection) gets one of the faults of [`Fault`],
//! picked evenly; everything else passes. Each fault is what DynamoDB or the network does
//! to a real client: a connection refused or reset before the request reached DynamoDB, a
//! reset after DynamoDB answered (the write happened, the answer is lost), a request or an
//! answer held past the SDK's attempt timeout, DynamoDB's throttling answers (HTTP 400)
//! and its 500, before or after applying the call, in DynamoDB's JSON error format.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Past the SDK's attempt timeout (2 s, `oidc_client_secret::deadline::ATTEMPT_TIMEOUT`).
pub const DELAY: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A new connection is closed at once, before any request on it.
    Refuse,
    /// The connection is dropped before the request is passed on: DynamoDB never sees it.
    ResetBefore,
    /// DynamoDB applies the call; the connection drops before its answer.
    ResetAfter,
    /// The request is held past the attempt timeout, then delivered to DynamoDB.
    DelayRequest,
    /// DynamoDB applies the call at once; its answer comes past the attempt timeout.
    DelayResponse,
    /// HTTP 400 `ProvisionedThroughputExceededException`; DynamoDB never sees the call.
    ProvisionedThroughputExceeded,
    /// HTTP 400 `ThrottlingException`; DynamoDB never sees the call.
    Throttling,
    /// HTTP 500 `InternalServerError`; DynamoDB never sees the call.
    InternalServerError,
    /// DynamoDB applies the call, and its answer is replaced by an HTTP 500 `InternalServerError`.
    AppliedThenInternalServerError,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::Refuse,
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::DelayRequest,
        Fault::DelayResponse,
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::InternalServerError,
        Fault::AppliedThenInternalServerError,
    ];

    pub const PER_CALL: [Fault; 8] = [
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::DelayRequest,
        Fault::DelayResponse,
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::InternalServerError,
        Fault::AppliedThenInternalServerError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Refuse => "refuse connection",
            Fault::ResetBefore => "reset before DynamoDB",
            Fault::ResetAfter => "reset after DynamoDB answered",
            Fault::DelayRequest => "request delayed 2.5 s",
            Fault::DelayResponse => "answer delayed 2.5 s",
            Fault::ProvisionedThroughputExceeded => "400 ProvisionedThroughputExceeded",
            Fault::Throttling => "400 ThrottlingException",
            Fault::InternalServerError => "500 InternalServerError",
            Fault::AppliedThenInternalServerError => "500 after applying",
        }
    }
}

#[derive(Default)]
struct Counts {
    calls: u64,
    connections: u64,
    faults: BTreeMap<Fault, u64>,
    /// Faults on `TransactWriteItems` calls.
    transact: u64,
}

pub struct Chaos {
    addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
}

/// Connections to DynamoDB Local, kept open between calls (one per call would leave tens
/// of thousands of sockets in TIME_WAIT over a soak).
struct Upstream {
    addr: SocketAddr,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Upstream {
    async fn call(&self, request: Request<Full<Bytes>>) -> std::io::Result<Response<Full<Bytes>>> {
        let mut sender = loop {
            let idle = self.idle.lock().unwrap().pop();
            match idle {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        break sender;
                    }
                }
                None => {
                    let stream = TcpStream::connect(self.addr).await?;
                    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(std::io::Error::other)?;
                    tokio::spawn(connection);
                    break sender;
                }
            }
        };
        let response = sender.send_request(request).await.map_err(std::io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
        self.idle.lock().unwrap().push(sender);
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

impl Chaos {
    /// A proxy to `upstream` (DynamoDB Local's `http://host:port`) faulting at `rate`.
    pub async fn start(upstream: &str, rate: f64) -> Self {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").parse().expect("an http://host:port endpoint");
        let upstream = Arc::new(Upstream { addr: upstream, idle: Mutex::default() });
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = counts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                {
                    let mut counts = shared.lock().unwrap();
                    counts.connections += 1;
                    if rand::random::<f64>() < rate {
                        *counts.faults.entry(Fault::Refuse).or_default() += 1;
                        drop(stream);
                        continue;
                    }
                }
                let (shared, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(request, upstream.clone(), shared.clone(), rate)
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr, counts }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls seen, the faults injected by kind, and those on a `TransactWriteItems`.
    pub fn counts(&self) -> (u64, BTreeMap<Fault, u64>, u64) {
        let counts = self.counts.lock().unwrap();
        (counts.calls, counts.faults.clone(), counts.transact)
    }
}

fn dynamodb_error(status: StatusCode, kind: &str) -> Response<Full<Bytes>> {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the soak's proxy"}}"#);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0".parse().unwrap());
    response
}

async fn forward(
    request: Request<Incoming>,
    upstream: Arc<Upstream>,
    counts: Arc<Mutex<Counts>>,
    rate: f64,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let transact = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.ends_with(".TransactWriteItems"));
    let fault = {
        let mut counts = counts.lock().unwrap();
        counts.calls += 1;
        let fault = (rand::random::<f64>() < rate)
            .then(|| Fault::PER_CALL[rand::random::<u32>() as usize % Fault::PER_CALL.len()]);
        if let Some(fault) = fault {
            *counts.faults.entry(fault).or_default() += 1;
            counts.transact += u64::from(transact);
        }
        fault
    };
    match fault {
        Some(Fault::ResetBefore) => return Err(std::io::Error::other("reset before DynamoDB")),
        Some(Fault::ProvisionedThroughputExceeded) => {
            return Ok(dynamodb_error(StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException"));
        }
        Some(Fault::Throttling) => return Ok(dynamodb_error(StatusCode::BAD_REQUEST, "ThrottlingException")),
        Some(Fault::InternalServerError) => {
            return Ok(dynamodb_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"));
        }
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let request = Request::from_parts(parts, Full::new(body));
    let late = fault == Some(Fault::DelayRequest);
    // On a task of its own: DynamoDB gets the call even when the client has given up on it
    // (and closed the connection, which drops this future).
    let call = async move {
        if late {
            tokio::time::sleep(DELAY).await;
        }
        upstream.call(request).await
    };
    let response = tokio::spawn(call).await.map_err(std::io::Error::other)??;
    match fault {
        Some(Fault::ResetAfter) => Err(std::io::Error::other("reset after DynamoDB answered")),
        Some(Fault::AppliedThenInternalServerError) => {
            Ok(dynamodb_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"))
        }
        Some(Fault::DelayResponse) => {
            tokio::time::sleep(DELAY).await;
            Ok(response)
        }
        _ => Ok(response),
    }
}
