//! How a sled store is opened: durability and cache size.

/// Settings of a sled store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledConfig {
    /// Flush sled's write buffers to disk (with fsync) after every write batch and keyspace
    /// change, before acknowledging it. On by default, and needed for the port's guarantee:
    /// sled keeps recent writes in memory and flushes them in the background (every 500 ms),
    /// so without this flush a killed process can lose writes that were acknowledged. Turn
    /// it off only where losing the last half-second of writes is acceptable (benchmarks,
    /// scratch stores); `KvEngine::sync` still flushes on demand.
    pub flush_on_write: bool,
    /// Size in bytes of sled's page cache.
    pub cache_capacity: u64,
    /// Bytes kept of recently scanned ranges, so that reading an unchanged range again does
    /// not walk sled's tree again (a copy is dropped as soon as a write changes a key in its
    /// range); `0` keeps none.
    pub scan_cache_bytes: usize,
}

impl Default for SledConfig {
    fn default() -> Self {
        // sled's own default cache is 1 GiB; hot rows are a recent window and cold data
        // lives in Parquet files, so a smaller cache holds the working set.
        Self {
            flush_on_write: true,
            cache_capacity: 128 * 1024 * 1024,
            scan_cache_bytes: 32 * 1024 * 1024,
        }
    }
}
