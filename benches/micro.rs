//! Micro-benchmarks of the pure parts: what one request costs before and after storage.

use criterion::{Criterion, criterion_group, criterion_main};
use oidc_client_secret::api::doors::Wire;
use oidc_client_secret::api::{failure, grpc_web, request_from_event, success};
use oidc_client_secret::app::parse_timestamp;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::OrgId;
use oidc_client_secret::regenerate::Outcome;
use oidc_client_secret::secret::ClientSecret;
use std::hint::black_box;

const EVENT: &str = include_str!("../events/apigw-http-jwt.json");
const GRPC_WEB_EVENT: &str = include_str!("../events/grpc-web-binary.json");

fn pure_parts(c: &mut Criterion) {
    c.bench_function("secret: generate 64 characters", |b| b.iter(|| ClientSecret::generate(black_box(64))));
    let secret = ClientSecret::generate(64);
    c.bench_function("secret: bcrypt hash at cost 4", |b| b.iter(|| secret.hash(black_box(4)).unwrap()));
    c.bench_function("request: parse an HTTP API event", |b| {
        b.iter(|| request_from_event(serde_json::from_str(black_box(EVENT)).unwrap()))
    });
    let at = parse_timestamp("2026-11-27T12:00:00.123456Z").unwrap();
    let outcome = Outcome {
        secret,
        sequence: 7,
        creation_date: at,
        change_date: at,
        resource_owner: OrgId::parse("demo-org", "org").unwrap(),
    };
    c.bench_function("response: encode a success", |b| b.iter(|| success(black_box(&outcome))));
    let conflict = Error::Conflict;
    c.bench_function("response: encode an error envelope", |b| b.iter(|| failure(black_box(&conflict))));
    let frame = grpc_web_frame();
    c.bench_function("gRPC-web: decode a request frame", |b| {
        b.iter(|| grpc_web::decode(black_box(&frame), false, Wire::V1))
    });
    let success = Ok(outcome.clone());
    c.bench_function("gRPC-web: encode a response", |b| {
        b.iter(|| grpc_web::encode(black_box(&success), false, Wire::V1))
    });
    let failure = Err(Error::AppNotFound);
    c.bench_function("gRPC-web: encode an error", |b| {
        b.iter(|| grpc_web::encode(black_box(&failure), false, Wire::V1))
    });
}

/// The body of `events/grpc-web-binary.json`, as the function receives it.
fn grpc_web_frame() -> Vec<u8> {
    use base64::Engine;
    let event: serde_json::Value = serde_json::from_str(GRPC_WEB_EVENT).unwrap();
    base64::engine::general_purpose::STANDARD.decode(event["body"].as_str().unwrap()).unwrap()
}

criterion_group!(benches, pure_parts);
criterion_main!(benches);
