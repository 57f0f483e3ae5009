//! The decoding of WebSocket client messages on any text frame: the message (`authenticate`,
//! `subscribe`, `next_batch`, `unsubscribe`, `ping`), and a `subscribe` message's
//! subscription (`id`, `sql`, `options`). The bytes are read as UTF-8 with invalid
//! sequences replaced, as a text frame is always valid UTF-8.
//!
//! Checks that nothing panics, and that a frame is only ever accepted when it is one JSON
//! object.

#![no_main]

use calamus_api_http::fuzzing::decode_ws_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if decode_ws_message(&text).is_ok() {
        let value: serde_json::Value = serde_json::from_str(&text).expect("an accepted frame is JSON");
        assert!(value.is_object(), "an accepted frame is an object: {value}");
    }
});
