//! Access tokens as JSON Web Tokens (RFC 9068), pure: no I/O, no KMS.
//!
//! A token is a compact JWS signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256) by a [`Signer`]
//! this module only declares: AWS KMS in production (`crate::kms`), whose private key never
//! leaves it, so signing is "hand the signing input to the signer, append what it answers".
//! Checking a token (introspection) is `jsonwebtoken`'s work, held to one algorithm, one
//! issuer, one audience and no leeway, with the public keys the signer publishes; the few
//! rules it has no switch for (`typ`, a `kid` we publish, `iat` not ahead) are checked here.
//! A public key arrives as KMS gives it (DER SubjectPublicKeyInfo) and leaves as a JWK whose
//! `kid` is its RFC 7638 thumbprint, so the same key always has the same `kid`.

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::deadline::Deadline;
use crate::error::Error;

/// The token type of RFC 9068 access tokens, in the JOSE header's `typ`.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The claim that names the org owning the client, as ZITADEL's tokens carry it.
pub const ORG_CLAIM: &str = "urn:zitadel:iam:user:resourceowner:id";
/// How far ahead of our clock a token's `iat` may be and still be one of ours.
pub const MAX_IAT_AHEAD_SECONDS: i64 = 60;

/// An RSA public key that verifies tokens, with its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The RFC 7638 thumbprint of the key.
    pub kid: String,
    /// The signer's own name for the key whose public half this is (KMS: the key's id, as
    /// `GetPublicKey` answered it), matched against the key a [`Signature`] names.
    pub signer_key: String,
    /// The modulus and the public exponent, big-endian, without leading zeros.
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("signer_key", &self.signer_key)
            .field("bits", &(self.modulus.len() * 8))
            .finish()
    }
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo (what KMS `GetPublicKey` answers): an RSA key of at
    /// least 2048 bits, else why not.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        use spki::der::Decode;
        let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| format!("not a public key: {e}"))?;
        if info.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(format!("not an RSA key (algorithm {})", info.algorithm.oid));
        }
        let bits = info.subject_public_key.as_bytes().ok_or("an RSA key whose bit string is not whole bytes")?;
        let rsa = pkcs1::RsaPublicKeyRef::from_der(bits).map_err(|e| format!("not an RSA public key: {e}"))?;
        Ok(Self::from_components(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes()))
            .and_then(|key| if key.modulus.len() >= 256 { Ok(key) } else { Err("an RSA key under 2048 bits".into()) })
    }

    /// From the modulus and exponent, big-endian (leading zeros dropped, as JWKs carry them).
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Self {
        let trim = |bytes: &[u8]| bytes.iter().position(|b| *b != 0).map_or_else(Vec::new, |at| bytes[at..].to_vec());
        let (modulus, exponent) = (trim(modulus), trim(exponent));
        let kid = thumbprint(&URL_SAFE_NO_PAD.encode(&modulus), &URL_SAFE_NO_PAD.encode(&exponent));
        Self { kid, signer_key: String::new(), modulus, exponent }
    }

    /// The same key, named as its signer names it.
    pub fn signed_by(self, signer_key: impl Into<String>) -> Self {
        Self { signer_key: signer_key.into(), ..self }
    }

    /// The key as a JWK of a JWKS (RFC 7517), for RS256 signatures.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.modulus),
            "e": URL_SAFE_NO_PAD.encode(&self.exponent),
        })
    }
}

/// RFC 7638: base64url of the SHA-256 of the required members in lexicographic order,
/// without whitespace.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Whoever holds the private keys: signs with the first key, publishes them all.
pub trait Signer: Send + Sync {
    /// The public keys, the signing one first; read once per process, never per request.
    fn keys(&self, deadline: Deadline) -> impl Future<Output = Result<Arc<[PublicKey]>, Error>> + Send;
    /// An RS256 signature of `message` by the first key, and which key made it.
    fn sign(&self, message: &[u8], deadline: Deadline) -> impl Future<Output = Result<Signature, Error>> + Send;
}

/// An RS256 signature and the key that made it, as the signer names it (KMS: the key
/// `Sign` answers it used, which is not always the one asked for: an alias may have moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub bytes: Vec<u8>,
    pub signer_key: String,
}

/// The claims of an access token (RFC 9068 section 2.2), and what introspection reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(rename = "urn:zitadel:iam:user:resourceowner:id")]
    pub org: String,
}

/// A fresh `jti`: 128 random bits, base64url.
pub fn new_jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// The signed token: `base64url(header) . base64url(claims) . base64url(signature)`.
pub async fn issue<S: Signer>(signer: &S, claims: &Claims, deadline: Deadline) -> Result<String, Error> {
    let keys = signer.keys(deadline).await?;
    let signing = keys.first().ok_or_else(|| Error::Internal("no signing key".into()))?;
    let header = json!({"alg": "RS256", "typ": ACCESS_TOKEN_TYPE, "kid": signing.kid});
    let encode = |value: &[u8]| URL_SAFE_NO_PAD.encode(value);
    let payload = serde_json::to_vec(claims).map_err(|e| Error::Internal(format!("encoding claims: {e}")))?;
    let input = format!("{}.{}", encode(header.to_string().as_bytes()), encode(&payload));
    let signature = signer.sign(input.as_bytes(), deadline).await?;
    // A token signed by another key than the published one whose `kid` it carries (a KMS
    // alias moved to another key under a warm process, say) is never answered: no client
    // could use it. The signer names the key that signed, and a key's material never
    // changes under its name (KMS asymmetric keys are never rotated in place), so comparing
    // the names is the signature check without its cost (an RSA verification is 0.4 M
    // instructions, 7 % of a token: docs/performance.md). A name that is empty names no key
    // (a key read without its signer's name, a KMS answer naming none): never a match.
    if signing.signer_key.is_empty() || signature.signer_key != signing.signer_key {
        return Err(Error::Unavailable(format!(
            "signed by key {:?}, but the published key {} is {:?}",
            signature.signer_key, signing.kid, signing.signer_key
        )));
    }
    // What the name check cannot see, and costs nothing to see: an RS256 signature is
    // exactly as long as the key's modulus (RFC 8017 section 8.2.1); any other answer is no
    // signature by the published key.
    if signature.bytes.len() != signing.modulus.len() {
        return Err(Error::Unavailable(format!(
            "a signature of {} bytes by key {:?}, whose modulus is {} bytes",
            signature.bytes.len(),
            signature.signer_key,
            signing.modulus.len()
        )));
    }
    Ok(format!("{input}.{}", encode(&signature.bytes)))
}

/// Why a token is not active: for the log only (introspection answers `{"active": false}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Algorithm,
    Type,
    UnknownKey,
    /// The signature, the issuer, the audience or the expiry, as `jsonwebtoken` judged them.
    Invalid,
    IssuedAhead,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "token: not a compact JWS",
            Rejection::Algorithm => "token: not RS256",
            Rejection::Type => "token: not an at+jwt",
            Rejection::UnknownKey => "token: kid not in the JWKS",
            Rejection::Invalid => "token: signature, issuer, audience or expiry",
            Rejection::IssuedAhead => "token: issued in the future",
        }
    }
}

/// The claims of `token` if it is one of ours, for `audience`, at `now` (Unix seconds):
/// RS256 with a published `kid`, typed `at+jwt`, its signature verifying, `iss` this
/// issuer, `exp` ahead, `iat` at most a minute ahead, `aud` holding `audience`.
pub fn verify(token: &str, keys: &[PublicKey], issuer: &str, audience: &str, now: i64) -> Result<Claims, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    // `jsonwebtoken` takes the algorithm from the validation, never from the header; this
    // only names the rejection.
    if header.alg != Algorithm::RS256 {
        return Err(Rejection::Algorithm);
    }
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)) {
        return Err(Rejection::Type);
    }
    let kid = header.kid.ok_or(Rejection::UnknownKey)?;
    let key = keys.iter().find(|k| k.kid == kid).ok_or(Rejection::UnknownKey)?;
    let decoding = DecodingKey::from_rsa_raw_components(&key.modulus, &key.exponent);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation).map_err(|_| Rejection::Invalid)?.claims;
    // `jsonwebtoken` lets a token live through the second of its `exp`: here it is over.
    if claims.exp <= now {
        return Err(Rejection::Invalid);
    }
    if claims.iat > now + MAX_IAT_AHEAD_SECONDS {
        return Err(Rejection::IssuedAhead);
    }
    Ok(claims)
}

/// The Unix time now, in seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway RSA-2048 key made for the unit tests only (PKCS#1 DER private, SPKI DER
    /// public): an RS256 signer in memory, in KMS's place. KMS itself is tested on moto's
    /// server (tests/oauth.rs).
    const TEST_PRIVATE: &[u8] = include_bytes!("oauth/test_keys/a.rsa.der");
    const TEST_PUBLIC: &[u8] = include_bytes!("oauth/test_keys/a.spki.der");

    pub struct FakeSigner {
        pub keys: Arc<[PublicKey]>,
        pub fail: bool,
    }

    impl FakeSigner {
        pub fn new() -> Self {
            Self {
                keys: Arc::from(vec![PublicKey::from_spki_der(TEST_PUBLIC).unwrap().signed_by("test-key")]),
                fail: false,
            }
        }
    }

    impl Signer for FakeSigner {
        async fn keys(&self, _deadline: Deadline) -> Result<Arc<[PublicKey]>, Error> {
            if self.fail { Err(Error::Unavailable("KMS down".into())) } else { Ok(self.keys.clone()) }
        }
        async fn sign(&self, message: &[u8], _deadline: Deadline) -> Result<Signature, Error> {
            if self.fail {
                return Err(Error::Unavailable("KMS down".into()));
            }
            let key = jsonwebtoken::EncodingKey::from_rsa_der(TEST_PRIVATE);
            let signature = jsonwebtoken::crypto::sign(message, &key, Algorithm::RS256).unwrap();
            Ok(Signature { bytes: URL_SAFE_NO_PAD.decode(signature).unwrap(), signer_key: "test-key".into() })
        }
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 section 3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let e = "AQAB";
        let key = PublicKey::from_components(&URL_SAFE_NO_PAD.decode(n).unwrap(), &URL_SAFE_NO_PAD.decode(e).unwrap());
        assert_eq!(key.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(key.jwk()["n"], n);
        assert_eq!(key.jwk()["e"], e);
    }

    #[test]
    fn leading_zeros_do_not_change_the_key() {
        let a = PublicKey::from_components(&[0, 0, 9, 8], &[0, 1, 0, 1]);
        let b = PublicKey::from_components(&[9, 8], &[1, 0, 1]);
        assert_eq!(a, b);
    }

    #[test]
    fn a_key_that_is_not_an_rsa_spki_is_refused() {
        assert!(PublicKey::from_spki_der(b"not der").is_err());
        assert!(PublicKey::from_spki_der(&[]).is_err());
    }

    fn claims() -> Claims {
        Claims {
            iss: "https://issuer.example".into(),
            sub: "client-1".into(),
            client_id: "client-1".into(),
            aud: vec!["proj-1".into()],
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            jti: new_jti(),
            scope: Some("read".into()),
            org: "org-a".into(),
        }
    }

    #[tokio::test]
    async fn an_issued_token_has_the_rfc_9068_header_and_the_claims() {
        let signer = FakeSigner::new();
        let mut live = claims();
        (live.iat, live.exp) = (unix_now(), unix_now() + 60);
        let token = issue(&signer, &live, Deadline::for_request()).await.unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "at+jwt", "kid": signer.keys[0].kid}));
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["urn:zitadel:iam:user:resourceowner:id"], "org-a");
        assert_eq!(payload["aud"], json!(["proj-1"]));
        assert_eq!(verify(&token, &signer.keys, "https://issuer.example", "proj-1", unix_now()), Ok(live));
        let mut unscoped = claims();
        unscoped.scope = None;
        let token = issue(&signer, &unscoped, Deadline::for_request()).await.unwrap();
        let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("scope"), "no scope claim when none is granted");
    }

    #[tokio::test]
    async fn a_signer_that_fails_issues_nothing() {
        let mut signer = FakeSigner::new();
        signer.fail = true;
        assert!(matches!(issue(&signer, &claims(), Deadline::for_request()).await, Err(Error::Unavailable(_))));
    }

    #[test]
    fn tokens_that_are_not_rs256_at_jwt_with_our_kid_are_rejected_before_the_signature() {
        let keys = FakeSigner::new().keys;
        let encode = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = encode(serde_json::to_value(claims()).unwrap());
        let token = |header: Value| format!("{}.{body}.c2ln", encode(header));
        let kid = keys[0].kid.clone();
        let verdict = |t: &str| verify(t, &keys, "https://issuer.example", "proj-1", 1_700_000_100);
        assert_eq!(verdict("abc"), Err(Rejection::Malformed));
        assert_eq!(verdict(&token(json!({"alg": "none", "typ": "at+jwt", "kid": kid}))), Err(Rejection::Malformed));
        for alg in ["HS256", "ES256", "PS256", "RS512"] {
            assert_eq!(verdict(&token(json!({"alg": alg, "typ": "at+jwt", "kid": kid}))), Err(Rejection::Algorithm));
        }
        assert_eq!(verdict(&token(json!({"alg": "RS256", "typ": "JWT", "kid": kid}))), Err(Rejection::Type));
        assert_eq!(verdict(&token(json!({"alg": "RS256", "typ": "at+jwt"}))), Err(Rejection::UnknownKey));
        assert_eq!(
            verdict(&token(json!({"alg": "RS256", "typ": "at+jwt", "kid": "other"}))),
            Err(Rejection::UnknownKey)
        );
        // Our header, a signature that is no RSA signature by the key.
        assert_eq!(verdict(&token(json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}))), Err(Rejection::Invalid));
    }
}
