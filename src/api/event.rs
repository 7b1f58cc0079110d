//! The Lambda event repairs that `lambda_http`'s conversion needs: every value of a
//! repeated header kept, and a body flagged base64 that is not taken out before it can
//! make the conversion panic.

use lambda_http::Request;
use lambda_http::request::LambdaRequest;

/// The request an event stands for, as the Lambda runtime builds it.
pub fn request_from_event(mut event: LambdaRequest) -> Request {
    let bad_base64 = prepare(&mut event);
    let mut request: Request = event.into();
    if bad_base64 {
        request.extensions_mut().insert(BadBase64Body);
    }
    request
}

/// Fixes up an event before `lambda_http` converts it; true when its body was flagged
/// base64 but was not, and has been taken out.
pub(super) fn prepare(event: &mut LambdaRequest) -> bool {
    keep_repeated_headers(event);
    take_bad_base64_body(event)
}

/// Marks a request whose `isBase64Encoded` body was not base64.
#[derive(Clone, Copy)]
pub(crate) struct BadBase64Body;

/// `lambda_http` panics on a body flagged base64 that does not decode; such a body is
/// taken out here, before the conversion, and refused by the body check instead.
fn take_bad_base64_body(event: &mut LambdaRequest) -> bool {
    use base64::Engine;
    let (flagged, body) = match event {
        LambdaRequest::ApiGatewayV1(e) => (e.is_base64_encoded, &mut e.body),
        LambdaRequest::ApiGatewayV2(e) => (e.is_base64_encoded, &mut e.body),
        LambdaRequest::Alb(e) => (e.is_base64_encoded, &mut e.body),
        _ => return false,
    };
    let bad = flagged && body.as_deref().is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_err());
    if bad {
        *body = None;
    }
    bad
}

/// `lambda_http` lays a REST API's or ALB's `headers` (the last value of each name) over
/// `multiValueHeaders` (every value), which would hide a repeated `x-zitadel-orgid`.
/// Dropping the single values that the multi-value map also holds lets every value through.
fn keep_repeated_headers(event: &mut LambdaRequest) {
    let (single, multi) = match event {
        LambdaRequest::ApiGatewayV1(e) => (&mut e.headers, &e.multi_value_headers),
        LambdaRequest::Alb(e) => (&mut e.headers, &e.multi_value_headers),
        _ => return,
    };
    for name in multi.keys() {
        single.remove(name);
    }
}
