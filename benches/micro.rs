//! Micro-benchmarks of the pure parts: what one request costs before and after storage.

use criterion::{Criterion, criterion_group, criterion_main};
use oidc_client_secret::api::{failure, request_from_event, success};
use oidc_client_secret::app::parse_timestamp;
use oidc_client_secret::error::Error;
use oidc_client_secret::ids::OrgId;
use oidc_client_secret::regenerate::Outcome;
use oidc_client_secret::secret::ClientSecret;
use std::hint::black_box;

const EVENT: &str = include_str!("../events/apigw-http-jwt.json");

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
}

criterion_group!(benches, pure_parts);
criterion_main!(benches);
