//! Decoding a request's JSON: objects only.
//!
//! serde reads a struct from a JSON array too, field by field in order, so
//! `["DELETE FROM t"]` would pass for `{"sql": "DELETE FROM t"}`. The protocol's messages
//! are objects; anything else is refused here.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// `bytes` as a `T`, if they are one JSON object of that shape; else why not.
pub fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    from_object_value(value)
}

/// A decoded JSON value as a `T`, if it is an object of that shape (nested objects
/// included: no member may be an array standing in for a struct).
pub fn from_object_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    if !value.is_object() {
        return Err("it is not a JSON object".into());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Request {
        sql: String,
    }

    #[test]
    fn an_array_does_not_pass_for_an_object() {
        assert_eq!(
            from_object::<Request>(br#"{"sql": "SELECT 1"}"#).unwrap(),
            Request { sql: "SELECT 1".into() }
        );
        assert!(from_object::<Request>(br#"["DELETE FROM t"]"#).is_err());
        assert!(from_object::<Request>(br#""SELECT 1""#).is_err());
        assert!(from_object::<Request>(b"{\"sql\": \"\xff\"}").is_err());
    }
}
