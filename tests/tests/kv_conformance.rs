//! The `KvEngine` conformance suite, run against every storage backend.

use std::path::Path;
use std::sync::Arc;

use calamus_domain::KvEngine;
use calamus_storage_rocksdb::RocksDbConfig;
use calamus_storage_sled::SledConfig;
use calamus_tests::kv_conformance_tests;

/// A RocksDB store with the default configuration.
fn open_rocksdb(path: &Path) -> Arc<dyn KvEngine> {
    Arc::new(calamus_storage_rocksdb::open(path, &RocksDbConfig::default()).expect("open a RocksDB store"))
}

/// A sled store with the default configuration (flush on every write).
fn open_sled(path: &Path) -> Arc<dyn KvEngine> {
    Arc::new(calamus_storage_sled::open(path, &SledConfig::default()).expect("open a sled store"))
}

kv_conformance_tests!(rocksdb, open_rocksdb);
kv_conformance_tests!(sled, open_sled);
