//! AWS X-Ray subsegments for the three parts of a request worth seeing in a trace: the
//! consistent read, the bcrypt hash and the transaction (spans [`READ`], [`HASH`],
//! [`TRANSACTION`]). With active tracing (the template's `Tracing=true`), Lambda runs the
//! X-Ray daemon beside the function, names it in `AWS_XRAY_DAEMON_ADDRESS`, and sets the
//! invocation's trace header (`Root=...;Parent=...;Sampled=1`), which `lambda_runtime`
//! puts in `_X_AMZN_TRACE_ID`. Each closed span becomes one subsegment of the function's
//! segment, sent to the daemon in one UDP datagram. Without the daemon address this layer
//! is not installed at all, so tracing off costs nothing.

use std::net::{SocketAddr, UdpSocket};
use std::time::SystemTime;

use serde_json::json;
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub const READ: &str = "DynamoDB BatchGetItem";
pub const HASH: &str = "bcrypt hash";
pub const TRANSACTION: &str = "DynamoDB TransactWriteItems";

const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// Sends a subsegment per closed span of [`READ`], [`HASH`] or [`TRANSACTION`].
pub struct XrayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl XrayLayer {
    /// The layer, when `AWS_XRAY_DAEMON_ADDRESS` names a daemon (`host:port`, or Lambda's
    /// `udp:host:port tcp:host:port` form).
    pub fn from_env() -> Option<Self> {
        let address = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
        let udp = address.split_whitespace().find_map(|a| a.strip_prefix("udp:")).unwrap_or(address.as_str());
        let daemon: SocketAddr = udp.parse().ok()?;
        let socket = UdpSocket::bind(if daemon.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Self { socket, daemon })
    }
}

struct Started(SystemTime);

fn seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The subsegment document of `name` from `start` to `end` under the trace `header`; `None`
/// when the header is missing, malformed or not sampled.
pub fn subsegment(header: &str, name: &str, start: SystemTime, end: SystemTime) -> Option<String> {
    let field = |key: &str| header.split(';').find_map(|part| part.trim().strip_prefix(key)?.strip_prefix('='));
    let (root, parent) = (field("Root")?, field("Parent")?);
    if field("Sampled") != Some("1") {
        return None;
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let document = json!({
        "name": name,
        "id": id,
        "trace_id": root,
        "parent_id": parent,
        "type": "subsegment",
        "namespace": if name == HASH { "local" } else { "aws" },
        "start_time": seconds(start),
        "end_time": seconds(end),
    });
    Some(format!("{HEADER}{document}"))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for XrayLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if [READ, HASH, TRANSACTION].contains(&attrs.metadata().name())
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(Started(SystemTime::now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(Started(start)) = span.extensions().get::<Started>().map(|s| Started(s.0)) else { return };
        let Ok(header) = std::env::var("_X_AMZN_TRACE_ID") else { return };
        if let Some(datagram) = subsegment(&header, span.name(), start, SystemTime::now()) {
            // A full socket buffer or a missing daemon loses a subsegment, never a request.
            let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_sampled_header_gives_a_subsegment_of_its_parent() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let datagram = subsegment(header, READ, start, start + Duration::from_millis(4)).unwrap();
        let (head, body) = datagram.split_once('\n').unwrap();
        assert_eq!(format!("{head}\n"), HEADER);
        let document: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(document["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(document["parent_id"], "53995c3f42cd8ad8");
        assert_eq!((document["name"].as_str(), document["type"].as_str()), (Some(READ), Some("subsegment")));
        let took = document["end_time"].as_f64().unwrap() - document["start_time"].as_f64().unwrap();
        assert!((took - 0.004).abs() < 1e-6, "{took}");
        assert_eq!(document["id"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn unsampled_or_partial_headers_give_nothing() {
        let now = SystemTime::now();
        assert!(subsegment("Root=1-a-b;Parent=c;Sampled=0", HASH, now, now).is_none());
        assert!(subsegment("Root=1-a-b;Sampled=1", HASH, now, now).is_none());
        assert!(subsegment("", HASH, now, now).is_none());
    }
}
