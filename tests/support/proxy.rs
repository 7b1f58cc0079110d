//! A TCP proxy on loopback in front of DynamoDB Local that the test controls: it passes
//! requests through, or makes DynamoDB refuse, hang, throttle, conflict, lose a response,
//! answer its own 500, or receive a transaction late.

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
    /// Pass every TransactWriteItems to DynamoDB, and hold its answer this long.
    DelayTransactResponses(std::time::Duration),
    /// Never pass a TransactWriteItems on, nor answer it; everything else passes.
    HangTransactions,
    /// Every BatchGetItem hangs; everything else passes.
    HangReads,
    /// The first BatchGetItem hangs; everything else passes.
    HangFirstRead,
    /// Every call but BatchGetItem hangs: the read before the commit works, then nothing.
    HangAfterReads,
    /// The n-th TransactWriteItems gets the n-th of these; those after the list pass.
    Transactions(&'static [Tx]),
}

/// What happens to one TransactWriteItems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    Pass,
    /// DynamoDB applies it; its answer is lost (the connection drops).
    LoseAnswer,
    /// Answered with a ThrottlingException; DynamoDB never sees it.
    Throttle,
    /// Answered with DynamoDB's HTTP 500 of this `__type` (`InternalServerError`,
    /// `InternalFailure`); DynamoDB never sees it.
    Error500(&'static str),
    /// DynamoDB applies it, and the answer is replaced by a 500 of this `__type`.
    ApplyThen500(&'static str),
    /// Held in the network this long, then delivered to DynamoDB; its answer is lost.
    DeliverLate(std::time::Duration),
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    operations: Vec<String>,
    transactions: usize,
    reads: usize,
    /// Late transactions DynamoDB has received, and what it answered (HTTP status).
    delivered_late: Vec<u16>,
    /// GetItems still to be answered "no item", as a read that DynamoDB orders before a
    /// write the caller has already seen elsewhere (serializable, not linearizable).
    blank_gets: usize,
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
        state.transactions = 0;
        state.reads = 0;
        state.delivered_late.clear();
    }

    /// The next `n` GetItems find nothing, whatever the table holds.
    pub fn blank_gets(&self, n: usize) {
        self.state.lock().unwrap().blank_gets = n;
    }

    /// The HTTP status DynamoDB gave each transaction delivered late, so far.
    pub fn delivered_late(&self) -> Vec<u16> {
        self.state.lock().unwrap().delivered_late.clone()
    }

    /// The DynamoDB operations that reached the proxy since the last `set`, in order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().unwrap().operations.clone()
    }
}

fn dynamodb_error(kind: &str, extra: &str) -> Response<Full<Bytes>> {
    error_with_status(StatusCode::BAD_REQUEST, kind, extra)
}

/// DynamoDB's own 500: it may or may not have applied the request.
fn server_error(kind: &str) -> Response<Full<Bytes>> {
    error_with_status(StatusCode::INTERNAL_SERVER_ERROR, kind, "")
}

fn error_with_status(status: StatusCode, kind: &str, extra: &str) -> Response<Full<Bytes>> {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test proxy"{extra}}}"#
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
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
    let transact = operation == "TransactWriteItems";
    let read = operation == "BatchGetItem";
    let (fault, tx, nth_read) = {
        let mut state = state.lock().unwrap();
        state.operations.push(operation.clone());
        let fault = state.fault.unwrap_or(Fault::None);
        let tx = match fault {
            Fault::Transactions(script) if transact => {
                state.transactions += 1;
                script.get(state.transactions - 1).copied().unwrap_or(Tx::Pass)
            }
            _ => Tx::Pass,
        };
        if read {
            state.reads += 1;
        }
        if operation == "GetItem" && state.blank_gets > 0 {
            state.blank_gets -= 1;
            let mut response = Response::new(Full::new(Bytes::from("{}")));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.0".parse().unwrap());
            return Ok(response);
        }
        (fault, tx, state.reads)
    };
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::HangTransactions if transact => std::future::pending::<()>().await,
        Fault::HangReads if read => std::future::pending::<()>().await,
        Fault::HangFirstRead if read && nth_read == 1 => std::future::pending::<()>().await,
        Fault::HangAfterReads if !read => std::future::pending::<()>().await,
        Fault::Throttle => return Ok(dynamodb_error("ThrottlingException", "")),
        Fault::ConflictTransactions if transact => {
            let reasons = r#","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]"#;
            return Ok(dynamodb_error("TransactionCanceledException", reasons));
        }
        _ => {}
    }
    match tx {
        Tx::Throttle => return Ok(dynamodb_error("ThrottlingException", "")),
        Tx::Error500(kind) => return Ok(server_error(kind)),
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let request = Request::from_parts(parts, Full::new(body));
    if let Tx::DeliverLate(delay) = tx {
        // On its own task, so that the client giving up on it does not cancel it.
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let status = match upstream_call(request, upstream).await {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            state.lock().unwrap().delivered_late.push(status);
        });
        return std::future::pending().await;
    }
    // Applied even if the client gives up waiting for it.
    let response = tokio::spawn(upstream_call(request, upstream)).await.map_err(std::io::Error::other)??;
    match tx {
        Tx::LoseAnswer => return Err(std::io::Error::other("response lost on the way back")),
        Tx::ApplyThen500(kind) => return Ok(server_error(kind)),
        _ => {}
    }
    if let Fault::DelayTransactResponses(delay) = fault
        && transact
    {
        tokio::time::sleep(delay).await;
    }
    Ok(response)
}

/// One request to DynamoDB Local, its whole answer read.
async fn upstream_call(
    request: Request<Full<Bytes>>,
    upstream: SocketAddr,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
