//! # calamus-api-http
//!
//! Calamus's HTTP API, speaking KalamDB's v1 protocol (API.md): the hyper server, its
//! routes, authentication (Argon2id passwords, HS256 JWTs, Basic), the encoding of
//! results, and the protocol's error vocabulary.

pub mod auth;
pub mod auth_routes;
pub mod config;
pub mod encode;
pub mod error_code;
#[doc(hidden)]
pub mod fuzzing;
pub mod json_body;
pub mod metrics;
pub mod rate_limit;
pub mod response;
pub mod run_to_end;
pub mod server;
pub mod sql;
pub mod tasks;
pub mod ws;

pub use config::HttpConfig;
pub use error_code::{ApiError, ErrorCode};
pub use server::{ApiServer, ApiState};
