//! How a RocksDB store is opened: durability and light tuning.

/// Settings of a RocksDB store.
///
/// Durability: the write-ahead log is always on and every write batch reaches it (in the
/// operating system's page cache) before `write` returns, so a killed process loses nothing
/// that was acknowledged. What an operating-system crash or power loss may lose depends on
/// [`RocksDbConfig::sync_writes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocksDbConfig {
    /// Fsync the write-ahead log on every write batch, so that an operating-system crash
    /// loses nothing acknowledged either. Off by default: it costs one fsync per batch,
    /// and `KvEngine::sync` gives the same guarantee at a chosen point (e.g. on shutdown).
    pub sync_writes: bool,
    /// Size in bytes of the LRU cache of uncompressed data blocks, shared by every keyspace.
    pub block_cache_bytes: usize,
    /// Most table files RocksDB keeps open at once (`-1`: no limit).
    pub max_open_files: i32,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        Self {
            sync_writes: false,
            // Modest: hot rows are a recent window and cold data lives in Parquet files,
            // so the working set of the KV store is small.
            block_cache_bytes: 64 * 1024 * 1024,
            // RocksDB's default (-1) keeps every SST open; a server with many tables and
            // a default `ulimit -n` of 1024 would run out of descriptors.
            max_open_files: 512,
        }
    }
}
