//! # calamus-api-http
//!
//! Calamus's HTTP and WebSocket API, speaking KalamDB's v1 protocol. This version holds the
//! protocol's error vocabulary; the hyper server and its routes build on it.

pub mod error_code;

pub use error_code::{ApiError, ErrorCode};
