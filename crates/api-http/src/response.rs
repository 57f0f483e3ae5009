//! Building responses: JSON bodies, error bodies, and streamed bodies.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::error_code::ApiError;

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// `application/json`.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Milliseconds since `started`, as the protocol's `took`.
pub fn elapsed_ms(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(status, serde_json::to_vec(value).unwrap_or_default(), JSON)
}

/// A response of `bytes` with `content_type`.
pub fn bytes_response(status: StatusCode, bytes: impl Into<Bytes>, content_type: HeaderValue) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// The protocol's error body: `{"status": "error", "results": [], "took", "error": {...}}`.
pub fn error_body(error: &ApiError, took_ms: f64) -> Value {
    let mut detail = json!({"code": error.code.as_str(), "message": error.message});
    if let Some(details) = &error.details {
        detail["details"] = Value::String(details.clone());
    }
    json!({"status": "error", "results": [], "took": took_ms, "error": detail})
}

/// An error response with the code's status.
pub fn error_response(error: &ApiError, took_ms: f64) -> Response<Body> {
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error_body(error, took_ms))
}
