//! Calamus's whole-system test support.

pub mod bench_support;
pub mod kv_conformance;
pub mod server;
pub mod slt;
