//! Adversarial review of SPEC sections 11 and 13 (branch `review`). Each test says what it
//! proves. Tests named `hole_*` demonstrate a finding (they fail while the finding stands);
//! tests named `held_*` are attacks that the code resisted (they pass).
//!
//! `test_keys/` holds two throwaway RSA-2048 test keys (PKCS#1 DER private, SPKI DER
//! public), generated for these tests only: a real RS256 signer, so that introspection can
//! answer `active: true` in unit tests (the FakeSigner's signature never verifies).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::tests::{basic, post};
use super::*;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::ids::ClientId;
use crate::jwt::{PublicKey, Signature, Signer};
use crate::secret::ClientSecret;
use crate::store::memory::{MemoryStore, key, oidc_app};

const A_PRIVATE: &[u8] = include_bytes!("test_keys/a.rsa.der");
const A_PUBLIC: &[u8] = include_bytes!("test_keys/a.spki.der");
const B_PRIVATE: &[u8] = include_bytes!("test_keys/b.rsa.der");
const B_PUBLIC: &[u8] = include_bytes!("test_keys/b.spki.der");

const ISSUER: &str = "https://auth.example.com";
const CLIENT: &str = "client-1";
const API_CLIENT: &str = "api-2";
const API_SAME_PROJECT: &str = "api-1";

/// A real RS256 signer: publishes `keys`, signs with `signing`, which it names `signing_key`
/// as KMS names the key that signed (the same key unless a test wants them to differ).
struct RsaSigner {
    keys: Arc<[PublicKey]>,
    signing: &'static [u8],
    signing_key: &'static str,
}

impl RsaSigner {
    fn a() -> Self {
        Self {
            keys: Arc::from(vec![PublicKey::from_spki_der(A_PUBLIC).unwrap().signed_by("key-a")]),
            signing: A_PRIVATE,
            signing_key: "key-a",
        }
    }
}

impl Signer for RsaSigner {
    async fn keys(&self, _deadline: Deadline) -> Result<Arc<[PublicKey]>, Error> {
        Ok(self.keys.clone())
    }
    async fn sign(&self, message: &[u8], _deadline: Deadline) -> Result<Signature, Error> {
        let sig = jsonwebtoken::crypto::sign(message, &EncodingKey::from_rsa_der(self.signing), Algorithm::RS256)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Signature { bytes: URL_SAFE_NO_PAD.decode(sig).unwrap(), signer_key: self.signing_key.into() })
    }
}

struct Secrets {
    client: ClientSecret,
    api: ClientSecret,
    api_same: ClientSecret,
}

/// org-a/proj-1: an OIDC client `client-1` (grant, scopes read, audiences proj-2) and an
/// API app `api-1`; org-b/proj-2: an API app `api-2`.
fn world(signer: RsaSigner, cost: u32) -> (OAuth<MemoryStore, RsaSigner>, Secrets) {
    let store = MemoryStore::default();
    let add = |org: &str, project: &str, app: &str, client: &str, app_type: &str| {
        let secret = ClientSecret::generate(64);
        let mut item = oidc_app(key(org, project, app));
        item.client_id = client.into();
        item.app_type = app_type.into();
        item.secret_hash = Some(secret.hash(cost).unwrap());
        item.grant_types = vec!["client_credentials".into()];
        item.scopes = vec!["read".into(), "openid".into()];
        item.audiences = vec!["proj-2".into()];
        store.put_app(item.clone());
        store.index_client(&ClientId::parse(client, "c").unwrap(), &item.key);
        secret
    };
    let client = add("org-a", "proj-1", "app-1", CLIENT, "OIDC");
    let api_same = add("org-a", "proj-1", "app-api", API_SAME_PROJECT, "API");
    let api = add("org-b", "proj-2", "app-2", API_CLIENT, "API");
    let config = OAuthConfig { signing_keys: vec!["k".into()], token_lifetime: 600, issuer: Some(ISSUER.into()) };
    (OAuth::new(store, signer, cost, config), Secrets { client, api, api_same })
}

async fn answer<S: Signer>(oauth: &OAuth<MemoryStore, S>, request: Request) -> (u16, Value) {
    let response = oauth.handle(request).await;
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

async fn token_for(oauth: &OAuth<MemoryStore, RsaSigner>, secret: &ClientSecret, scope: &str) -> String {
    let body = format!("grant_type=client_credentials&scope={scope}");
    let (status, body) = answer(oauth, post(TOKEN_PATH, &body, Some(&basic(CLIENT, secret.expose())))).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(oauth: &OAuth<MemoryStore, RsaSigner>, client: &str, secret: &ClientSecret, token: &str) -> Value {
    let body = format!("token={}", percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC));
    let (status, body) = answer(oauth, post(INTROSPECT_PATH, &body, Some(&basic(client, secret.expose())))).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn b64(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

/// A token of raw header and payload JSON text, RS256-signed by our own key `A`.
fn signed_by_a(header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_rsa_der(A_PRIVATE), Algorithm::RS256).unwrap();
    format!("{input}.{sig}")
}

fn payload_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Token forgery at introspection.
// ---------------------------------------------------------------------------------------

/// HELD: a genuine token is active for the API app of its own project, and every forgery
/// is inactive: alg none, HS256 keyed with our public key (SPKI DER, modulus bytes, JWK
/// text), PS256 / RS512 by our own key, another key under our kid, `jku`/`jwk`/`x5u`
/// headers pointing at an attacker key, four parts, padded or standard base64, trailing
/// bytes after the signature, a token with a flipped payload byte.
#[tokio::test]
async fn held_forged_tokens_are_inactive() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let genuine = token_for(&oauth, &s.client, "read").await;
    let active = introspect(&oauth, API_SAME_PROJECT, &s.api_same, &genuine).await;
    assert_eq!(active["active"], true, "baseline: the genuine token is active for proj-1's API");

    let kid = PublicKey::from_spki_der(A_PUBLIC).unwrap().kid;
    let parts: Vec<&str> = genuine.split('.').collect();
    let payload_text = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let jwk = PublicKey::from_spki_der(A_PUBLIC).unwrap().jwk();
    let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let with_alg = |alg: &str, extra: &str| format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{kid}"{extra}}}"#);
    let sign_with = |header: &str, key: &EncodingKey, alg: Algorithm| {
        let input = format!("{}.{}", b64(header), parts[1]);
        format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap())
    };
    let b_key = EncodingKey::from_rsa_der(B_PRIVATE);
    let b_jwk = PublicKey::from_spki_der(B_PUBLIC).unwrap().jwk();
    let mut forgeries = vec![
        ("alg none", format!("{}.{}.", b64(&with_alg("none", "")), parts[1])),
        (
            "HS256 keyed with SPKI DER",
            sign_with(&with_alg("HS256", ""), &EncodingKey::from_secret(A_PUBLIC), Algorithm::HS256),
        ),
        (
            "HS256 keyed with n",
            sign_with(&with_alg("HS256", ""), &EncodingKey::from_secret(&modulus), Algorithm::HS256),
        ),
        (
            "HS256 keyed with JWK text",
            sign_with(&with_alg("HS256", ""), &EncodingKey::from_secret(jwk.to_string().as_bytes()), Algorithm::HS256),
        ),
        (
            "PS256 by our key",
            sign_with(&with_alg("PS256", ""), &EncodingKey::from_rsa_der(A_PRIVATE), Algorithm::PS256),
        ),
        (
            "RS512 by our key",
            sign_with(&with_alg("RS512", ""), &EncodingKey::from_rsa_der(A_PRIVATE), Algorithm::RS512),
        ),
        ("key B under our kid", sign_with(&with_alg("RS256", ""), &b_key, Algorithm::RS256)),
        (
            "embedded jwk of key B",
            sign_with(&with_alg("RS256", &format!(r#","jwk":{b_jwk}"#)), &b_key, Algorithm::RS256),
        ),
        (
            "jku / x5u at an attacker",
            sign_with(
                &with_alg("RS256", r#","jku":"https://evil/jwks","x5u":"https://evil/x5""#),
                &b_key,
                Algorithm::RS256,
            ),
        ),
        ("four parts", format!("{genuine}.{}", parts[2])),
        ("header.header.payload.sig", format!("{}.{genuine}", parts[0])),
        ("padded signature", format!("{genuine}==")),
        ("standard-alphabet padded signature", {
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            format!("{}.{}.{}", parts[0], parts[1], STANDARD.encode(sig))
        }),
        ("padded payload", {
            // Pad the payload so that it needs `=` (a payload whose length is a multiple of 3 has none).
            let padded = format!("{payload_text} ");
            let padded = if padded.len() % 3 == 0 { format!("{padded} ") } else { padded };
            format!("{}.{}.{}", parts[0], URL_SAFE.encode(padded.as_bytes()), parts[2])
        }),
        ("padded header", {
            let header = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            let header = if header.len().is_multiple_of(3) { format!("{header} ") } else { header };
            format!("{}.{}.{}", URL_SAFE.encode(header.as_bytes()), parts[1], parts[2])
        }),
        ("trailing data", format!("{genuine}AA")),
        ("leading space", format!(" {genuine}")),
        ("tampered payload", {
            let tampered = payload_text.replace("\"proj-1\"", "\"proj-2\"");
            format!("{}.{}.{}", parts[0], b64(&tampered), parts[2])
        }),
    ];
    // A last-character flip of the signature that keeps the same decoded bytes is not
    // possible with canonical base64 (trailing bits are refused): try every such variant.
    let last = parts[2].chars().last().unwrap();
    for c in URL_SAFE_NO_PAD.encode([0u8; 0]).chars().chain("AQgw".chars()) {
        if c != last {
            let mut sig = parts[2].to_owned();
            sig.pop();
            sig.push(c);
            forgeries.push(("non-canonical signature tail", format!("{}.{}.{sig}", parts[0], parts[1])));
        }
    }
    for (what, token) in forgeries {
        let body = introspect(&oauth, API_SAME_PROJECT, &s.api_same, &token).await;
        assert_eq!(body, json!({"active": false}), "{what}: {token}");
    }
}

/// HELD: tokens signed by OUR key but with claims we would never issue are still held to
/// the claim rules: `aud` as a string, `exp` as a float / string / past / huge, duplicate
/// `aud`/`exp` keys in the payload or `alg` in the header, `iat` far ahead, another issuer.
#[tokio::test]
async fn held_odd_claims_signed_by_our_key_are_inactive() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let kid = PublicKey::from_spki_der(A_PUBLIC).unwrap().kid;
    let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}"}}"#);
    let now = crate::jwt::unix_now();
    let claims = |aud: &str, exp: &str, iat: &str, iss: &str, extra: &str| {
        format!(
            r#"{{"iss":"{iss}","sub":"{CLIENT}","client_id":"{CLIENT}","aud":{aud},"iat":{iat},"exp":{exp},"jti":"j","urn:zitadel:iam:user:resourceowner:id":"org-a"{extra}}}"#
        )
    };
    let (exp, iat) = ((now + 300).to_string(), now.to_string());
    // Baseline: a hand-made token of our shape is active (so the rejections below are real).
    let ok = signed_by_a(&header, &claims(r#"["proj-1"]"#, &exp, &iat, ISSUER, ""));
    assert_eq!(introspect(&oauth, API_SAME_PROJECT, &s.api_same, &ok).await["active"], true);
    let cases = [
        ("aud string", claims(r#""proj-1""#, &exp, &iat, ISSUER, "")),
        ("exp float", claims(r#"["proj-1"]"#, &format!("{exp}.5"), &iat, ISSUER, "")),
        ("exp string", claims(r#"["proj-1"]"#, &format!("\"{exp}\""), &iat, ISSUER, "")),
        ("exp past", claims(r#"["proj-1"]"#, &(now - 1).to_string(), &iat, ISSUER, "")),
        ("exp now", claims(r#"["proj-1"]"#, &now.to_string(), &iat, ISSUER, "")),
        ("exp huge", claims(r#"["proj-1"]"#, "1e400", &iat, ISSUER, "")),
        ("exp u64 max", claims(r#"["proj-1"]"#, "18446744073709551615", &iat, ISSUER, "")),
        ("iat ahead", claims(r#"["proj-1"]"#, &exp, &(now + 120).to_string(), ISSUER, "")),
        ("iss other", claims(r#"["proj-1"]"#, &exp, &iat, "https://auth.example.com/", "")),
        ("dup aud", claims(r#"["proj-9"]"#, &exp, &iat, ISSUER, r#","aud":["proj-1"]"#)),
        ("dup exp", claims(r#"["proj-1"]"#, &(now - 10).to_string(), &iat, ISSUER, &format!(r#","exp":{exp}"#))),
        ("dup iss", claims(r#"["proj-1"]"#, &exp, &iat, "https://evil", &format!(r#","iss":"{ISSUER}""#))),
    ];
    for (what, payload) in cases {
        let token = signed_by_a(&header, &payload);
        assert_eq!(introspect(&oauth, API_SAME_PROJECT, &s.api_same, &token).await, json!({"active": false}), "{what}");
    }
    let dup_alg = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}","alg":"RS256"}}"#);
    let token = signed_by_a(&dup_alg, &claims(r#"["proj-1"]"#, &exp, &iat, ISSUER, ""));
    assert_eq!(introspect(&oauth, API_SAME_PROJECT, &s.api_same, &token).await, json!({"active": false}), "dup alg");
}

// ---------------------------------------------------------------------------------------
// Cross-tenant introspection and revocation.
// ---------------------------------------------------------------------------------------

/// HELD: the API app of org-b/proj-2 does not see a proj-1 token as active; it does when
/// the client asked for (and its app holds) the audience proj-2, as SPEC says. A token
/// whose client is made INACTIVE is inactive at once; an OIDC app cannot introspect.
#[tokio::test]
async fn held_cross_tenant_and_revocation() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let plain = token_for(&oauth, &s.client, "read").await;
    assert_eq!(introspect(&oauth, API_CLIENT, &s.api, &plain).await, json!({"active": false}));
    let with_aud = token_for(&oauth, &s.client, "urn:zitadel:iam:org:project:id:proj-2:aud").await;
    assert_eq!(payload_of(&with_aud)["aud"], json!(["proj-1", "proj-2"]));
    assert_eq!(introspect(&oauth, API_CLIENT, &s.api, &with_aud).await["active"], true);
    // Audience of a project not in `audiences`: dropped, not honoured.
    let stranger = token_for(&oauth, &s.client, "urn:zitadel:iam:org:project:id:proj-9:aud+read+READ+openid").await;
    assert_eq!(payload_of(&stranger)["aud"], json!(["proj-1"]));
    assert_eq!(payload_of(&stranger)["scope"], "read");
    // An OIDC app's correct secret does not introspect.
    let body = format!("token={plain}");
    let (status, body) = answer(&oauth, post(INTROSPECT_PATH, &body, Some(&basic(CLIENT, s.client.expose())))).await;
    assert_eq!((status, body), (401, json!({"error": "invalid_client"})));
    // INACTIVE client: its tokens die at once.
    let mut app = oidc_app(key("org-a", "proj-1", "app-1"));
    app.client_id = CLIENT.into();
    app.state = "INACTIVE".into();
    oauth.authenticator.directory().put_app(app);
    assert_eq!(introspect(&oauth, API_SAME_PROJECT, &s.api_same, &plain).await, json!({"active": false}));
}

// ---------------------------------------------------------------------------------------
// Client authentication edge cases.
// ---------------------------------------------------------------------------------------

/// HELD: Basic with an empty secret, a `client_id` with `#`, a percent-encoded `#`, a secret
/// of the right 64 characters plus a NUL or a tail, the form's client_id differing from
/// Basic's, two mechanisms, two Authorization headers: never a token.
#[tokio::test]
async fn held_client_authentication_edges() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let secret = s.client.expose();
    let grant = "grant_type=client_credentials";
    let cases: Vec<(String, Option<String>, u16, &str)> = vec![
        (grant.into(), Some(basic(CLIENT, "")), 401, "invalid_client"),
        (grant.into(), Some(basic(&format!("{CLIENT}#x"), secret)), 401, "invalid_client"),
        (grant.into(), Some(basic(&format!("{CLIENT}%23"), secret)), 401, "invalid_client"),
        (grant.into(), Some(basic(CLIENT, &format!("{secret}%00"))), 401, "invalid_client"),
        (grant.into(), Some(basic(CLIENT, &format!("{secret}x"))), 401, "invalid_client"),
        (format!("{grant}&client_id=other"), Some(basic(CLIENT, secret)), 400, "invalid_request"),
        (format!("{grant}&client_secret={secret}"), Some(basic(CLIENT, secret)), 400, "invalid_request"),
        (format!("{grant}&client_id={CLIENT}&client_secret={secret}"), Some("Bearer x".into()), 400, "invalid_request"),
        (format!("{grant}&client_id={CLIENT}"), None, 401, "invalid_client"),
        (format!("{grant}&client_id={CLIENT}&client_secret="), None, 401, "invalid_client"),
        (format!("{grant}&client_id={CLIENT}%00&client_secret={secret}"), None, 401, "invalid_client"),
    ];
    for (body, auth, status, error) in cases {
        let (got, answered) = answer(&oauth, post(TOKEN_PATH, &body, auth.as_deref())).await;
        assert_eq!((got, answered["error"].as_str()), (status, Some(error)), "{body} {auth:?}");
    }
    // Percent-encoding the right secret is the right secret (RFC 6749 2.3.1): allowed.
    let encoded: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, _) = answer(&oauth, post(TOKEN_PATH, grant, Some(&basic(CLIENT, &encoded)))).await;
    assert_eq!(status, 200);
}

/// HELD: every denial (unknown id, malformed header, wrong secret, INACTIVE, NONE method,
/// no secret, non-API at introspection after a wrong secret) costs the same two reads
/// and about the same time (two bcrypt verifications at cost 8): the fastest of 9
/// interleaved runs of each differ by less than 1.5x (wall clock on a shared machine).
#[tokio::test]
async fn held_denials_cost_the_same() {
    let (oauth, s) = world(RsaSigner::a(), 8);
    let dir = oauth.authenticator.directory();
    let mut inactive = oidc_app(key("org-a", "proj-1", "app-x"));
    inactive.client_id = "inactive".into();
    inactive.state = "INACTIVE".into();
    inactive.secret_hash = Some(s.client.hash(8).unwrap());
    dir.put_app(inactive.clone());
    dir.index_client(&ClientId::parse("inactive", "c").unwrap(), &inactive.key);
    let mut none = inactive.clone();
    none.key = key("org-a", "proj-1", "app-n");
    none.client_id = "none".into();
    none.state = "ACTIVE".into();
    none.auth_method = "NONE".into();
    dir.put_app(none.clone());
    dir.index_client(&ClientId::parse("none", "c").unwrap(), &none.key);
    let mut nosecret = none.clone();
    nosecret.key = key("org-a", "proj-1", "app-s");
    nosecret.client_id = "nosecret".into();
    nosecret.auth_method = "BASIC".into();
    nosecret.secret_hash = None;
    dir.put_app(nosecret.clone());
    dir.index_client(&ClientId::parse("nosecret", "c").unwrap(), &nosecret.key);
    let secret = s.client.expose();
    let cases = [
        ("unknown", basic("nobody", secret)),
        ("malformed", "Basic !!!".to_owned()),
        ("wrong", basic(CLIENT, "wrong")),
        ("inactive", basic("inactive", secret)),
        ("none", basic("none", secret)),
        ("nosecret", basic("nosecret", secret)),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let reads = dir.directory_reads();
    const ROUNDS: usize = 9;
    for _ in 0..ROUNDS {
        for (i, (what, auth)) in cases.iter().enumerate() {
            let started = std::time::Instant::now();
            let (status, _) = answer(&oauth, post(TOKEN_PATH, "grant_type=client_credentials", Some(auth))).await;
            samples[i].push(started.elapsed().as_secs_f64());
            assert_eq!(status, 401, "{what}");
        }
    }
    assert_eq!(dir.directory_reads() - reads, (2 * ROUNDS * cases.len()) as u32, "two reads each");
    let times: Vec<(&str, f64)> = cases
        .iter()
        .zip(samples.iter_mut())
        .map(|((what, _), s)| {
            s.sort_by(f64::total_cmp);
            // The fastest run: the work itself, least disturbed by other load on the machine.
            (*what, s[0])
        })
        .collect();
    let (min, max) = times.iter().fold((f64::MAX, 0f64), |(lo, hi), (_, t)| (lo.min(*t), hi.max(*t)));
    eprintln!("fastest seconds: {times:?}");
    assert!(max / min < 1.5, "{times:?}");
}

// ---------------------------------------------------------------------------------------
// Odd requests: never a 500, never a read.
// ---------------------------------------------------------------------------------------

/// HELD: invalid UTF-8, no body, a repeated content type, a 17 KiB body, a body flagged
/// base64 that is not, `%` garbage, HEAD/OPTIONS/PUT, a trailing slash, a percent-encoded
/// path, a double slash: 4xx, no store read.
#[tokio::test]
async fn held_odd_requests_are_4xx_without_reads() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let auth = basic(CLIENT, s.client.expose());
    let form = |body: Body, types: &[&str], method: &str, path: &str| {
        let mut b =
            lambda_http::http::Request::builder().method(method).uri(path).header("authorization", auth.as_str());
        for t in types {
            b = b.header("content-type", *t);
        }
        b.body(body).unwrap()
    };
    let ct = "application/x-www-form-urlencoded";
    let big = format!("grant_type=client_credentials&x={}", "a".repeat(17 * 1024));
    let joined = format!("{ct},{ct}");
    let cases: Vec<(Request, u16)> = vec![
        (form(Body::Binary(vec![0xff, 0xfe, b'=']), &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Empty, &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Text("grant_type=client_credentials".into()), &[ct, ct], "POST", TOKEN_PATH), 400),
        (form(Body::Text("grant_type=client_credentials".into()), &[joined.as_str()], "POST", TOKEN_PATH), 400),
        (form(Body::Text(big), &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Text("grant_type=client%5Fcredentials&grant%5Ftype=x".into()), &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Text("grant_type=client_credentials&scope=a%09b".into()), &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Text("grant_type=client_credentials&scope=+read".into()), &[ct], "POST", TOKEN_PATH), 400),
        (form(Body::Empty, &[], "HEAD", TOKEN_PATH), 405),
        (form(Body::Empty, &[], "OPTIONS", INTROSPECT_PATH), 405),
        (form(Body::Empty, &[], "PUT", KEYS_PATH), 405),
        (form(Body::Empty, &[], "POST", "/oauth/v2/token/"), 404),
        (form(Body::Empty, &[], "POST", "/oauth/v2/%74oken"), 404),
        (form(Body::Empty, &[], "POST", "//oauth/v2/token"), 404),
    ];
    for (i, (request, status)) in cases.into_iter().enumerate() {
        let (got, body) = answer(&oauth, request).await;
        assert_eq!(got, status, "case {i}: {body}");
    }
    let mut request = form(Body::Empty, &[ct], "POST", TOKEN_PATH);
    request.extensions_mut().insert(crate::api::event::BadBase64Body);
    assert_eq!(answer(&oauth, request).await.0, 400);
    assert_eq!(oauth.authenticator.directory().directory_reads(), 0);
}

/// HELD: without ISSUER, the issuer comes from `requestContext.domainName`, never from a
/// spoofed `Host` or `X-Forwarded-Host` header; a domain name with `/` or `@` is refused.
#[tokio::test]
async fn held_issuer_is_not_spoofable_by_headers() {
    let (mut oauth, _) = world(RsaSigner::a(), 4);
    oauth.config.issuer = None;
    let event = |domain: &str| {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/.well-known/openid-configuration",
            "rawQueryString": "", "headers": {"host": "evil.example", "x-forwarded-host": "evil.example"},
            "isBase64Encoded": false,
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": domain,
                "domainPrefix": "a", "http": {"method": "GET", "path": "/.well-known/openid-configuration",
                "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}, "requestId": "r",
                "routeKey": "$default", "stage": "$default", "time": "", "timeEpoch": 0}})
    };
    let request =
        lambda_http::request::from_str(&event("a.execute-api.eu-central-1.amazonaws.com").to_string()).unwrap();
    assert_eq!(answer(&oauth, request).await.1["issuer"], "https://a.execute-api.eu-central-1.amazonaws.com");
    for bad in ["evil.example/x", "a@evil.example", ""] {
        let request = lambda_http::request::from_str(&event(bad).to_string()).unwrap();
        assert_eq!(answer(&oauth, request).await.0, 500, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Findings.
// ---------------------------------------------------------------------------------------

/// Review finding 1, fixed: when what `Sign` uses differs from what `GetPublicKey`
/// published at cold start (TOKEN_SIGNING_KEYS naming an alias that was retargeted), a token
/// would be dead everywhere: SPEC 13 "a token is never answered ... half made". Published
/// A, signed by B (and named B, as KMS's `Sign` names the key it used): no token is
/// answered (503), never a 200 its own introspection rejects.
#[tokio::test]
async fn a_token_signed_by_another_key_than_its_kid_is_never_answered() {
    let signer = RsaSigner {
        keys: Arc::from(vec![PublicKey::from_spki_der(A_PUBLIC).unwrap().signed_by("key-a")]),
        signing: B_PRIVATE,
        signing_key: "key-b",
    };
    let (oauth, s) = world(signer, 4);
    let body = "grant_type=client_credentials";
    let (status, answered) = answer(&oauth, post(TOKEN_PATH, body, Some(&basic(CLIENT, s.client.expose())))).await;
    let token = answered["access_token"].as_str().unwrap_or_default().to_owned();
    let verdict =
        if status == 200 { introspect(&oauth, API_SAME_PROJECT, &s.api_same, &token).await } else { json!(null) };
    assert!(
        status == 503 && verdict == json!(null),
        "answered {status} with a token that does not verify under its own kid: {verdict}"
    );
}

/// Keycheck review finding 1: `issue`'s name check compared the two names only, and an
/// unnamed key is named "" (`PublicKey::from_spki_der` names no signer; a KMS answer of
/// `"KeyId": ""`, or an ARN ending in `:key/`, reduces to ""). Published A unnamed, signed
/// by B named "": the names were equal, and a token no published key verifies was answered
/// 200. A key that no one named is no key the check can vouch for: 503.
#[tokio::test]
async fn a_signature_and_a_key_that_name_no_key_answer_no_token() {
    let signer = RsaSigner {
        keys: Arc::from(vec![PublicKey::from_spki_der(A_PUBLIC).unwrap()]),
        signing: B_PRIVATE,
        signing_key: "",
    };
    let (oauth, s) = world(signer, 4);
    let body = "grant_type=client_credentials";
    let (status, answered) = answer(&oauth, post(TOKEN_PATH, body, Some(&basic(CLIENT, s.client.expose())))).await;
    assert!(answered.get("access_token").is_none(), "answered {status}: a token no published key verifies");
    assert_eq!((status, answered), (503, json!({"error": "temporarily_unavailable"})));
}

/// A signer that names the published key but answers other bytes than its signature
/// (`change` makes them from the genuine signature).
struct MangledSigner(RsaSigner, Change);

type Change = fn(Vec<u8>) -> Vec<u8>;

impl Signer for MangledSigner {
    async fn keys(&self, deadline: Deadline) -> Result<Arc<[PublicKey]>, Error> {
        self.0.keys(deadline).await
    }
    async fn sign(&self, message: &[u8], deadline: Deadline) -> Result<Signature, Error> {
        let signature = self.0.sign(message, deadline).await?;
        Ok(Signature { bytes: (self.1)(signature.bytes), ..signature })
    }
}

/// Keycheck review finding 2: the RSA verification `issue` dropped also refused a
/// `Sign` answer that names the right key but whose signature is no RS256 signature by a
/// 2048-bit key at all (empty, truncated, padded: KMS's or a proxy's fault). An RS256
/// signature is exactly as long as the modulus (RFC 8017 8.2.1), which costs nothing to
/// check: such an answer is 503, never a token the JWKS cannot verify.
#[tokio::test]
async fn a_signature_of_the_wrong_length_answers_no_token() {
    let changes: [(&str, Change); 3] = [
        ("empty", |_| Vec::new()),
        ("truncated", |mut b| {
            b.pop();
            b
        }),
        ("padded", |mut b| {
            b.insert(0, 0);
            b
        }),
    ];
    for (what, change) in changes {
        let (oauth, s) = world(RsaSigner::a(), 4);
        let oauth = OAuth {
            authenticator: oauth.authenticator,
            signer: MangledSigner(RsaSigner::a(), change),
            config: oauth.config,
            function: oauth.function,
        };
        let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, s.client.expose())));
        let (status, body) = answer(&oauth, request).await;
        assert!(body.get("access_token").is_none(), "{what}: answered {status} with a token the JWKS cannot verify");
        assert_eq!((status, body), (503, json!({"error": "temporarily_unavailable"})), "{what}");
    }
}

/// A signer that KMS refuses (a disabled key, a key pending deletion, a key policy that no
/// longer allows `kms:Sign`): `crate::kms::bounded` turns those 4xx answers into
/// `Error::Internal`.
struct RefusingSigner(RsaSigner);

impl Signer for RefusingSigner {
    async fn keys(&self, deadline: Deadline) -> Result<Arc<[PublicKey]>, Error> {
        self.0.keys(deadline).await
    }
    async fn sign(&self, _message: &[u8], _deadline: Deadline) -> Result<Signature, Error> {
        Err(Error::Internal("KMS Sign: DisabledException: arn:aws:kms:...:key/... is disabled".into()))
    }
}

/// Review finding 2, fixed: SPEC 13 says "The store or KMS failing: 503
/// {"error": "temporarily_unavailable"}". A KMS refusal at `Sign` (DisabledException,
/// KMSInvalidStateException, AccessDeniedException, NotFoundException, which `kms.rs` maps
/// to `Error::Internal`) is 503 too, as is a DynamoDB refusal at introspection's client read.
#[tokio::test]
async fn a_kms_refusal_is_503_temporarily_unavailable() {
    let store_signer = RefusingSigner(RsaSigner::a());
    let (oauth, s) = world(RsaSigner::a(), 4);
    let oauth = OAuth {
        authenticator: oauth.authenticator,
        signer: store_signer,
        config: oauth.config,
        function: oauth.function,
    };
    let request = post(TOKEN_PATH, "grant_type=client_credentials", Some(&basic(CLIENT, s.client.expose())));
    let (status, body) = answer(&oauth, request).await;
    assert!(body.get("access_token").is_none(), "no token, whatever the status");
    assert_eq!((status, body), (503, json!({"error": "temporarily_unavailable"})));
}

/// A stray `%` that starts no `%XX` escape is taken
/// literally (WHATWG form decoding), not "a body that does not parse": `scope=%` is the
/// scope token `%` (dropped, not granted), `client_secret=%zz` the three characters `%zz`.
#[tokio::test]
async fn a_stray_percent_is_taken_literally() {
    let (oauth, s) = world(RsaSigner::a(), 4);
    let request =
        post(TOKEN_PATH, "grant_type=client_credentials&scope=%+read", Some(&basic(CLIENT, s.client.expose())));
    let (status, body) = answer(&oauth, request).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("read")));
}
