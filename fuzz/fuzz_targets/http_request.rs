//! The decoding of HTTP request bodies on any bytes: the body of `POST /v1/api/sql` (the
//! JSON object, its namespace id, each parameter as the value bound to `$n`) and the body
//! of `POST /v1/api/auth/login`.
//!
//! Checks that nothing panics, and that a body is only ever accepted when it is one JSON
//! object (never an array standing in for it).

#![no_main]

use calamus_api_http::fuzzing::{decode_login_request, decode_sql_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let sql = decode_sql_request(body);
    let login = decode_login_request(body);
    if sql.is_ok() || login.is_ok() {
        let value: serde_json::Value = serde_json::from_slice(body).expect("an accepted body is JSON");
        assert!(value.is_object(), "an accepted body is an object: {value}");
    }
});
