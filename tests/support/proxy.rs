//! A TCP proxy on loopback in front of DynamoDB Local that the test controls: it passes
//! requests through, or makes DynamoDB refuse, hang, throttle, conflict, or lose a response.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Accept connections and close them at once.
    Refuse,
    /// Accept requests and never answer.
    Hang,
    /// Answer every request with DynamoDB's ThrottlingException.
    Throttle,
    /// Answer every TransactWriteItems with a cancellation for a transaction conflict.
    ConflictTransactions,
    /// Pass the first TransactWriteItems to DynamoDB, then drop its response.
    LoseFirstTransactResponse,
    /// Pass every TransactWriteItems to DynamoDB, and hold its answer this long.
    DelayTransactResponses(std::time::Duration),
    /// Never pass a TransactWriteItems on, nor answer it; everything else passes.
    HangTransactions,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    operations: Vec<String>,
    lost_one: bool,
}

pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy to the DynamoDB Local that `make test` started.
    pub async fn start() -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make test`");
        let upstream: SocketAddr =
            endpoint.trim_start_matches("http://").parse().expect("an http://host:port endpoint");
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State { fault: Some(Fault::None), ..State::default() }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                if shared.lock().unwrap().fault == Some(Fault::Refuse) {
                    drop(stream);
                    continue;
                }
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| forward(request, upstream, shared.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.fault = Some(fault);
        state.operations.clear();
    }

    /// The DynamoDB operations that reached the proxy since the last `set`, in order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().unwrap().operations.clone()
    }
}

fn dynamodb_error(kind: &str, extra: &str) -> Response<Full<Bytes>> {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test proxy"{extra}}}"#
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0".parse().unwrap());
    response
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_owned();
    let fault = {
        let mut state = state.lock().unwrap();
        state.operations.push(operation.clone());
        state.fault.unwrap_or(Fault::None)
    };
    let transact = operation == "TransactWriteItems";
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::HangTransactions if transact => std::future::pending::<()>().await,
        Fault::Throttle => return Ok(dynamodb_error("ThrottlingException", "")),
        Fault::ConflictTransactions if transact => {
            let reasons = r#","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]"#;
            return Ok(dynamodb_error("TransactionCanceledException", reasons));
        }
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response =
        sender.send_request(Request::from_parts(parts, Full::new(body))).await.map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    if fault == Fault::LoseFirstTransactResponse && transact {
        let mut state = state.lock().unwrap();
        if !state.lost_one {
            state.lost_one = true;
            return Err(std::io::Error::other("response lost on the way back"));
        }
    }
    if let Fault::DelayTransactResponses(delay) = fault
        && transact
    {
        tokio::time::sleep(delay).await;
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
