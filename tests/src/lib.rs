//! Calamus's whole-system test support.

pub mod bench_support;
pub mod kv_conformance;
pub mod server;
pub mod slt;
pub mod ws_client;

/// Runs each `$name(backend)` function of the calling test file as one test per backend:
/// `on_both_backends!(a, b)` makes `rocksdb::a`, `rocksdb::b`, `sled::a`, `sled::b`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $(#[test] fn $name() { super::$name(calamus::StorageBackend::RocksDb) })*
        }
        mod sled {
            $(#[test] fn $name() { super::$name(calamus::StorageBackend::Sled) })*
        }
    };
}
