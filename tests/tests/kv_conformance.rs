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

/// A sled store whose scan cache holds a couple of KiB: copies are evicted all the time,
/// and the longer answers are too long to be kept at all.
fn open_sled_with_a_small_scan_cache(path: &Path) -> Arc<dyn KvEngine> {
    let config = SledConfig {
        scan_cache_bytes: 2048,
        ..SledConfig::default()
    };
    Arc::new(calamus_storage_sled::open(path, &config).expect("open a sled store"))
}

/// The scan guarantees again, on sled with a small scan cache.
mod sled_with_a_small_scan_cache {
    use calamus_tests::kv_conformance as guarantee;

    use super::open_sled_with_a_small_scan_cache as open;

    #[test]
    fn repeated_scans_follow_every_write() {
        guarantee::repeated_scans_follow_every_write(open);
    }

    #[test]
    fn batch_is_atomic_to_concurrent_scans() {
        guarantee::batch_is_atomic_to_concurrent_scans(open);
    }

    #[test]
    fn visited_scans_stop_where_asked() {
        guarantee::visited_scans_stop_where_asked(open);
    }

    #[test]
    fn many_keys_scan_in_order() {
        guarantee::many_keys_scan_in_order(open);
    }
}
