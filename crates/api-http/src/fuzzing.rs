//! The request decoding of the HTTP and WebSocket endpoints, callable without a server,
//! for the fuzz targets in `fuzz/`. Not part of the API: nothing here is stable.
//!
//! Each function runs the same decoding the endpoint runs on a body or frame before any
//! statement is parsed or any credential checked, and gives the decoded request's debug
//! form, or why it was refused.

use calamus_domain::NamespaceId;

use crate::auth_routes::LoginRequest;
use crate::json_body::{from_object, from_object_value};
use crate::sql::{SqlRequest, param_value};
use crate::ws::{ClientMessage, SubscribeRequest};

/// Decodes a `POST /v1/api/sql` body: the JSON object, its `namespace_id` as a namespace
/// and each of its `params` as the value bound to `$n`.
pub fn decode_sql_request(body: &[u8]) -> Result<String, String> {
    let request: SqlRequest = from_object(body)?;
    if let Some(namespace) = &request.namespace_id {
        NamespaceId::new(namespace).map_err(|e| e.to_string())?;
    }
    for (i, value) in request.params.iter().flatten().enumerate() {
        param_value(i + 1, value).map_err(|e| e.to_string())?;
    }
    Ok(format!("{request:?}"))
}

/// Decodes a `POST /v1/api/auth/login` body.
pub fn decode_login_request(body: &[u8]) -> Result<String, String> {
    let request: LoginRequest = from_object(body)?;
    Ok(format!("{request:?}"))
}

/// Decodes a WebSocket text frame as a client message, and a `subscribe` message's
/// subscription as a subscription request.
pub fn decode_ws_message(text: &str) -> Result<String, String> {
    let message: ClientMessage = from_object(text.as_bytes())?;
    if let ClientMessage::Subscribe { subscription } = message {
        let request: SubscribeRequest = from_object_value(subscription)?;
        return Ok(format!("{request:?}"));
    }
    Ok(format!("{message:?}"))
}
