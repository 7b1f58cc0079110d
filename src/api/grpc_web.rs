//! gRPC-web, as ZITADEL's console and `@zitadel/client`'s web transport speak it:
//! `application/grpc-web(+proto)` and its base64 form `application/grpc-web-text(+proto)`.
//!
//! A request body is one frame: a flag byte (0), a 4-byte big-endian length, the message.
//! The answer is HTTP 200 with a message frame and a trailer frame (flag `0x80`) of
//! `key: value\r\n` lines: `grpc-status`, and for an error the percent-encoded
//! `grpc-message` and `grpc-status-details-bin` (base64 of `google.rpc.Status` with
//! ZITADEL's `ErrorDetail`). Anything malformed is `grpc-status: 3`, before storage.
//!
//! Native gRPC (`application/grpc`) needs HTTP/2 trailers end to end, which neither API
//! Gateway nor a function URL gives a Lambda function: it gets `grpc-status: 12`
//! trailers-only, with a `grpc-message` that names gRPC-web.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use lambda_http::http::HeaderValue;
use lambda_http::{Body, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use prost::Message;

use super::MAX_BODY_BYTES;
use super::doors::{Decoded, Wire};
use super::proto;
use super::rest::answer;
use crate::error::Error;
use crate::regenerate::Outcome;

const MESSAGE_FLAG: u8 = 0x00;
const COMPRESSED_FLAG: u8 = 0x01;
const TRAILER_FLAG: u8 = 0x80;
const PREFIX: usize = 5;

/// What `grpc-message` must percent-encode: controls, non-ASCII, and `%` itself.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

const CONTENT_TYPE: &str = "application/grpc-web+proto";
const TEXT_CONTENT_TYPE: &str = "application/grpc-web-text+proto";

const NATIVE_GRPC_MESSAGE: &str = "native gRPC needs HTTP/2 trailers, which API Gateway does not carry to a Lambda function: call this method over gRPC-web (application/grpc-web+proto) or Connect";

fn malformed(what: &str) -> Error {
    Error::invalid(format!("invalid gRPC-web request: {what}"))
}

/// The one message of a request body, as the door's wire reads it; `text` for the base64 form.
pub fn decode(body: &[u8], text: bool, wire: Wire) -> Result<Decoded, Error> {
    let decoded;
    let bytes = if text {
        let trimmed = body.trim_ascii();
        decoded = STANDARD
            .decode(trimmed)
            .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
            .map_err(|_| malformed("the body is not base64"))?;
        decoded.as_slice()
    } else {
        body
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(malformed(&format!("the body must be at most {MAX_BODY_BYTES} bytes")));
    }
    let (prefix, message) = bytes.split_at_checked(PREFIX).ok_or_else(|| malformed("no frame"))?;
    match prefix[0] {
        MESSAGE_FLAG => {}
        flag if flag & COMPRESSED_FLAG != 0 => return Err(malformed("compressed messages are not supported")),
        _ => return Err(malformed("the first frame is not a message")),
    }
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if message.len() != length {
        return Err(malformed("the frame length does not match the body: one message is expected"));
    }
    wire.decode_proto(message).map_err(|error| match error {
        Error::InvalidArgument(_) => malformed("the message is not valid protobuf"),
        other => other,
    })
}

fn frame(flag: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(flag);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The trailer lines of an error: status, percent-encoded message, details.
fn error_trailers(error: &Error) -> Vec<(&'static str, String)> {
    let message = proto::error_message(error);
    vec![
        ("grpc-status", error.grpc_code().to_string()),
        ("grpc-message", utf8_percent_encode(&message, GRPC_MESSAGE).to_string()),
        ("grpc-status-details-bin", STANDARD_NO_PAD.encode(proto::status(error).encode_to_vec())),
    ]
}

fn respond(body: Vec<u8>, text: bool) -> Response<Body> {
    match text {
        true => answer(200, Body::Text(STANDARD.encode(body)), TEXT_CONTENT_TYPE),
        false => answer(200, Body::Binary(body), CONTENT_TYPE),
    }
}

/// HTTP 200: the response message and `grpc-status: 0`, or the error's trailers alone.
pub fn encode(result: &Result<Outcome, Error>, text: bool, wire: Wire) -> Response<Body> {
    let mut body = Vec::with_capacity(256);
    let trailers = match result {
        Ok(outcome) => {
            frame(MESSAGE_FLAG, &wire.encode_proto(outcome), &mut body);
            vec![("grpc-status", "0".to_owned())]
        }
        Err(error) => error_trailers(error),
    };
    let lines: String = trailers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    frame(TRAILER_FLAG, lines.as_bytes(), &mut body);
    respond(body, text)
}

/// Native gRPC's answer: trailers-only, `grpc-status: 12`, in the HTTP headers.
pub fn native_grpc_unsupported() -> Response<Body> {
    let mut response = answer(200, Body::Empty, "application/grpc");
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static("12"));
    let message = utf8_percent_encode(NATIVE_GRPC_MESSAGE, GRPC_MESSAGE).to_string();
    headers.insert("grpc-message", HeaderValue::from_str(&message).expect("percent-encoded ASCII"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(flag, message, &mut out);
        out
    }

    fn request(project: &str, app: &str) -> Vec<u8> {
        let message = proto::RegenerateOidcClientSecretRequest { project_id: project.into(), app_id: app.into() };
        framed(MESSAGE_FLAG, &message.encode_to_vec())
    }

    fn ids(decoded: Decoded) -> (String, String) {
        (decoded.project, decoded.app)
    }

    #[test]
    fn one_message_frame_decodes_in_both_forms() {
        let body = request("p", "a");
        let expected = ("p".to_owned(), "a".to_owned());
        assert_eq!(ids(decode(&body, false, Wire::V1).unwrap()), expected);
        assert_eq!(ids(decode(STANDARD.encode(&body).as_bytes(), true, Wire::V1).unwrap()), expected);
        assert_eq!(ids(decode(STANDARD_NO_PAD.encode(&body).as_bytes(), true, Wire::V1).unwrap()), expected);
        // The v2 message has the ids the other way round: application_id = 1, project_id = 2.
        let v2 = proto::GenerateClientSecretRequest { application_id: "a".into(), project_id: "p".into() };
        assert_eq!(v2.encode_to_vec(), b"\x0a\x01a\x12\x01p");
        assert_eq!(ids(decode(&framed(MESSAGE_FLAG, &v2.encode_to_vec()), false, Wire::V2).unwrap()), expected);
    }

    #[test]
    fn malformed_frames_are_invalid_argument() {
        let good = request("p", "a");
        let mut wrong_length = good.clone();
        wrong_length[4] += 1;
        let two = [good.clone(), good.clone()].concat();
        let cases: Vec<(Vec<u8>, bool)> = vec![
            (Vec::new(), false),
            (vec![0, 0, 0], false),
            (wrong_length, false),
            (two, false),
            (framed(COMPRESSED_FLAG, b"\x0a\x01p"), false),
            (framed(TRAILER_FLAG, b"grpc-status: 0\r\n"), false),
            (framed(MESSAGE_FLAG, b"\xff\xff\xff"), false),
            (b"not base64!".to_vec(), true),
        ];
        for (body, text) in cases {
            let error = decode(&body, text, Wire::V1).expect_err("refused");
            assert_eq!(error.grpc_code(), 3, "{body:?}: {error}");
        }
    }

    #[test]
    fn an_error_travels_in_the_trailer_frame() {
        let response = encode(&Err(Error::AppNotFound), false, Wire::V1);
        let body: &[u8] = response.body().as_ref();
        assert_eq!(body[0], TRAILER_FLAG);
        let text = std::str::from_utf8(&body[PREFIX..]).unwrap();
        assert!(
            text.starts_with("grpc-status: 5\r\ngrpc-message: Application doesn't exist (COMMAND-2g66f)\r\n"),
            "{text}"
        );
        assert!(text.contains("grpc-status-details-bin: "), "{text}");
        let message = utf8_percent_encode("100% ünïcode\n", GRPC_MESSAGE).to_string();
        assert_eq!(message, "100%25 %C3%BCn%C3%AFcode%0A");
    }
}
