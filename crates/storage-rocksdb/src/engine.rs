//! [`RocksDbEngine`]: the `KvEngine` port over one RocksDB database, one column family per
//! keyspace.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use calamus_domain::{DomainError, DomainResult, KeyRange, KvEngine, KvIter, KvPair, PairVisitor, WriteBatch, WriteOp};
use parking_lot::Mutex;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, BoundColumnFamily, Cache, ColumnFamilyDescriptor, CompactOptions,
    DBCompressionType, DBIteratorWithThreadMode, DBWithThreadMode, IteratorMode, MultiThreaded, Options, ReadOptions,
    WriteOptions,
};

use crate::config::RocksDbConfig;

/// RocksDB's own column family, always present; it holds no keyspace and is never listed.
const DEFAULT_COLUMN_FAMILY: &str = rocksdb::DEFAULT_COLUMN_FAMILY_NAME;

/// The database type: multi-threaded so column families are created and dropped through `&self`.
type Db = DBWithThreadMode<MultiThreaded>;

/// A RocksDB database serving the `KvEngine` port; keyspaces are column families.
pub struct RocksDbEngine {
    db: Db,
    write_options: WriteOptions,
    /// Options every keyspace's column family is created with.
    column_family_options: Options,
    /// The keyspaces, kept here because RocksDB has no cheap listing of open column
    /// families; the lock also serialises creating and dropping them.
    keyspaces: Mutex<BTreeSet<String>>,
}

/// Opens (creating it if needed) the RocksDB store at `path`, with every keyspace it holds.
pub fn open(path: &Path, config: &RocksDbConfig) -> DomainResult<RocksDbEngine> {
    let column_family_options = column_family_options(config);
    let mut db_options = column_family_options.clone();
    db_options.create_if_missing(true);
    db_options.create_missing_column_families(true);
    db_options.set_max_open_files(config.max_open_files);
    // The info LOG rolls on every open; a few old ones are enough to debug a restart.
    db_options.set_keep_log_file_num(4);

    let existing = existing_column_families(path, &db_options)?;
    let descriptors = existing
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, column_family_options.clone()));
    let db = Db::open_cf_descriptors(&db_options, path, descriptors)
        .map_err(|e| storage_error(format_args!("opening the store at {}", path.display()), e))?;

    let mut write_options = WriteOptions::default();
    write_options.set_sync(config.sync_writes);
    let keyspaces = existing
        .into_iter()
        .filter(|name| name != DEFAULT_COLUMN_FAMILY)
        .collect();
    Ok(RocksDbEngine {
        db,
        write_options,
        column_family_options,
        keyspaces: Mutex::new(keyspaces),
    })
}

/// Options of every column family (the database options start from these too).
fn column_family_options(config: &RocksDbConfig) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(config.block_cache_bytes));
    // Point reads (primary-key lookups, catalog reads) skip SSTs that cannot hold the key.
    table.set_bloom_filter(10.0, false);
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    // The crate is built without compression libraries (default-features = false): say so
    // explicitly rather than rely on RocksDB falling back when Snappy is missing.
    options.set_compression_type(DBCompressionType::None);
    // A table file where deletes crowd the live keys (rows flushed to Parquet, expired
    // STREAM rows) is compacted in the background, so scans stop stepping over them.
    options.add_compact_on_deletion_collector_factory(10_000, 5_000, 0.5);
    options
}

/// The column families of the store at `path`, or none when no store exists there yet.
fn existing_column_families(path: &Path, options: &Options) -> DomainResult<Vec<String>> {
    // `list_cf` fails on a directory without a store; only a missing CURRENT file means
    // "new store", every other failure is reported.
    if !path.join("CURRENT").exists() {
        return Ok(Vec::new());
    }
    Db::list_cf(options, path)
        .map_err(|e| storage_error(format_args!("listing the keyspaces of {}", path.display()), e))
}

impl RocksDbEngine {
    /// The handle of `keyspace`'s column family.
    fn column_family(&self, keyspace: &str) -> DomainResult<Arc<BoundColumnFamily<'_>>> {
        let handle = if keyspace == DEFAULT_COLUMN_FAMILY {
            None
        } else {
            self.db.cf_handle(keyspace)
        };
        handle.ok_or_else(|| DomainError::KeyspaceNotFound {
            keyspace: keyspace.to_owned(),
        })
    }
}

impl KvEngine for RocksDbEngine {
    fn backend_name(&self) -> &'static str {
        "rocksdb"
    }

    fn create_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        if keyspace == DEFAULT_COLUMN_FAMILY {
            return Err(DomainError::ReservedName {
                kind: "keyspace",
                name: keyspace.to_owned(),
            });
        }
        let mut keyspaces = self.keyspaces.lock();
        if keyspaces.contains(keyspace) {
            return Ok(());
        }
        self.db
            .create_cf(keyspace, &self.column_family_options)
            .map_err(|e| storage_error(format_args!("creating keyspace '{keyspace}'"), e))?;
        keyspaces.insert(keyspace.to_owned());
        Ok(())
    }

    fn drop_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        let mut keyspaces = self.keyspaces.lock();
        if !keyspaces.contains(keyspace) {
            return Ok(());
        }
        // RocksDB deletes the files once the last handle (e.g. of a running scan) is gone.
        self.db
            .drop_cf(keyspace)
            .map_err(|e| storage_error(format_args!("dropping keyspace '{keyspace}'"), e))?;
        keyspaces.remove(keyspace);
        Ok(())
    }

    fn keyspaces(&self) -> DomainResult<Vec<String>> {
        Ok(self.keyspaces.lock().iter().cloned().collect())
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> DomainResult<Option<Vec<u8>>> {
        let column_family = self.column_family(keyspace)?;
        self.db
            .get_cf(&column_family, key)
            .map_err(|e| storage_error(format_args!("reading a key of keyspace '{keyspace}'"), e))
    }

    fn write(&self, batch: WriteBatch) -> DomainResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Every keyspace is resolved before anything is written, so a missing one fails
        // the whole batch. RocksDB gives each op its own sequence number: later ops win.
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                WriteOp::Put { keyspace, key, value } => {
                    rocks_batch.put_cf(&self.column_family(&keyspace)?, key, value);
                }
                WriteOp::Delete { keyspace, key } => {
                    rocks_batch.delete_cf(&self.column_family(&keyspace)?, key);
                }
                WriteOp::DeleteRange { keyspace, start, end } => {
                    let column_family = self.column_family(&keyspace)?;
                    // An empty range deletes nothing; RocksDB rejects start > end.
                    if start < end {
                        rocks_batch.delete_range_cf(&column_family, start, end);
                    }
                }
            }
        }
        self.db
            .write_opt(rocks_batch, &self.write_options)
            .map_err(|e| storage_error("writing a batch", e))
    }

    fn scan<'a>(&'a self, keyspace: &str, range: KeyRange, reverse: bool) -> DomainResult<KvIter<'a>> {
        let column_family = self.column_family(keyspace)?;
        let Some(read_options) = read_options_of(range) else {
            return Ok(Box::new(std::iter::empty()));
        };
        // No explicit snapshot needed: a RocksDB iterator reads the implicit snapshot
        // taken when it is created, which is the port's consistency guarantee.
        let mode = if reverse {
            IteratorMode::End
        } else {
            IteratorMode::Start
        };
        let iter = self.db.iterator_cf_opt(&column_family, read_options, mode);
        Ok(Box::new(ColumnFamilyScan {
            iter,
            _column_family: column_family,
            keyspace: keyspace.to_owned(),
            failed: false,
        }))
    }

    /// Steps a raw iterator over the range and lends each pair straight from RocksDB's
    /// blocks and memtables: nothing is copied or allocated per pair.
    fn scan_visit(
        &self,
        keyspace: &str,
        range: KeyRange,
        reverse: bool,
        limit: usize,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<usize> {
        let column_family = self.column_family(keyspace)?;
        let Some(read_options) = read_options_of(range) else {
            return Ok(0);
        };
        let mut iter = self.db.raw_iterator_cf_opt(&column_family, read_options);
        if reverse {
            iter.seek_to_last();
        } else {
            iter.seek_to_first();
        }
        let mut visited = 0;
        while visited < limit {
            let Some((key, value)) = iter.item() else {
                break;
            };
            visited += 1;
            if !visit.visit(key, value)? {
                return Ok(visited);
            }
            if reverse {
                iter.prev();
            } else {
                iter.next();
            }
        }
        iter.status()
            .map_err(|e| storage_error(format_args!("scanning keyspace '{keyspace}'"), e))?;
        Ok(visited)
    }

    fn sync(&self) -> DomainResult<()> {
        self.db
            .flush_wal(true)
            .map_err(|e| storage_error("syncing the write-ahead log", e))
    }

    /// A manual compaction of the range through every level, the last one included: a
    /// table file moved down whole keeps its tombstones, so the last level is rewritten
    /// too, and there a tombstone with nothing below it is dropped.
    fn compact_range(&self, keyspace: &str, range: KeyRange) -> DomainResult<()> {
        let column_family = self.column_family(keyspace)?;
        let Some((lower, upper)) = iterate_bounds(range) else {
            return Ok(());
        };
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
        self.db.compact_range_cf_opt(&column_family, lower, upper, &options);
        Ok(())
    }

    /// A RocksDB checkpoint: the table files are hard-linked (copied when `target` is on
    /// another file system) and the write-ahead log copied, so writes go on meanwhile and the
    /// copy holds every batch acknowledged before it, whole. Keyspaces are not created or
    /// dropped while it is taken.
    fn checkpoint(&self, target: &Path) -> DomainResult<()> {
        let _keyspaces = self.keyspaces.lock();
        let checkpoint =
            rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(|e| storage_error("preparing a checkpoint", e))?;
        checkpoint
            .create_checkpoint(target)
            .map_err(|e| storage_error(format_args!("writing a checkpoint to {}", target.display()), e))
    }
}

/// An inclusive lower and an exclusive upper bound, each optional: RocksDB's iterate bounds.
type IterateBounds = (Option<Vec<u8>>, Option<Vec<u8>>);

/// RocksDB's iterate bounds for `range`, or `None` when the range holds no key.
///
/// Both translations are exact: in bytewise order `key ++ [0]` is the smallest key after
/// `key`, so `> key` is `>= key ++ [0]` and `<= key` is `< key ++ [0]`.
fn iterate_bounds(range: KeyRange) -> Option<IterateBounds> {
    let lower = match range.start {
        Bound::Included(key) => Some(key),
        Bound::Excluded(key) => Some(successor(key)),
        Bound::Unbounded => None,
    };
    let upper = match range.end {
        Bound::Included(key) => Some(successor(key)),
        Bound::Excluded(key) => Some(key),
        Bound::Unbounded => None,
    };
    match (&lower, &upper) {
        (Some(lower), Some(upper)) if lower >= upper => None,
        _ => Some((lower, upper)),
    }
}

/// Read options bounding an iterator to `range`; `None` when the range is empty.
fn read_options_of(range: KeyRange) -> Option<ReadOptions> {
    let (lower, upper) = iterate_bounds(range)?;
    let mut read_options = ReadOptions::default();
    if let Some(lower) = lower {
        read_options.set_iterate_lower_bound(lower);
    }
    if let Some(upper) = upper {
        read_options.set_iterate_upper_bound(upper);
    }
    Some(read_options)
}

/// The smallest key greater than `key`.
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

/// A scan of one column family; it keeps the column family's handle alive while it runs,
/// so dropping the keyspace meanwhile cannot free what the iterator reads.
struct ColumnFamilyScan<'a> {
    // Declared first so it is dropped before the handle.
    iter: DBIteratorWithThreadMode<'a, Db>,
    _column_family: Arc<BoundColumnFamily<'a>>,
    keyspace: String,
    failed: bool,
}

impl Iterator for ColumnFamilyScan<'_> {
    type Item = DomainResult<KvPair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.iter.next()? {
            Ok((key, value)) => Some(Ok((key.into_vec(), value.into_vec()))),
            Err(e) => {
                self.failed = true;
                Some(Err(storage_error(
                    format_args!("scanning keyspace '{}'", self.keyspace),
                    e,
                )))
            }
        }
    }
}

/// A RocksDB failure, with what was being done; a full or read-only disk is told apart.
fn storage_error(context: impl Display, error: rocksdb::Error) -> DomainError {
    let message = error.to_string();
    if message.contains("No space left on device") {
        return DomainError::DiskFull(format!(
            "rocksdb: {context}: {message}; after a failed log write RocksDB takes no more \
             writes: free some space, then restart the server"
        ));
    }
    if message.contains("Read-only file system") {
        return DomainError::DiskReadOnly(format!(
            "rocksdb: {context}: {message}; make the file system writable, then restart the server"
        ));
    }
    DomainError::Storage(format!("rocksdb: {context}: {message}"))
}

#[cfg(test)]
mod tests {
    use calamus_domain::{KeyRange, KvEngine, WriteBatch};

    use super::*;

    /// The deletes a keyspace's table files and memtable still hold, read from RocksDB's
    /// own properties.
    fn stored_deletes(engine: &RocksDbEngine, keyspace: &str) -> u64 {
        let column_family = engine.column_family(keyspace).expect("keyspace");
        let property = |name: &str| {
            engine
                .db
                .property_value_cf(&column_family, name)
                .expect("property")
                .expect("known property")
        };
        let in_memory: u64 = property("rocksdb.num-deletes-active-mem-table")
            .parse()
            .expect("a count");
        let tables = property("rocksdb.aggregated-table-properties");
        let in_tables: u64 = tables
            .split(';')
            .find_map(|field| field.trim().strip_prefix("# deletions="))
            .unwrap_or_else(|| panic!("no deletion count in {tables}"))
            .trim()
            .parse()
            .expect("a count");
        in_memory + in_tables
    }

    #[test]
    fn a_compaction_drops_the_tombstones_of_deleted_keys() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let engine = open(dir.path(), &RocksDbConfig::default()).expect("open");
        engine.create_keyspace("rows").expect("create");
        let mut batch = WriteBatch::new();
        for i in 0u32..2000 {
            batch.put("rows", i.to_be_bytes().to_vec(), vec![7; 100]);
        }
        engine.write(batch).expect("put");
        // Written and deleted while in the memtable, as rows flushed soon after they were
        // written: the memtable's table file holds only tombstones, and overlapping nothing
        // below, a plain compaction would move it down whole, tombstones and all.
        let mut batch = WriteBatch::new();
        for i in 0u32..1990 {
            batch.delete("rows", i.to_be_bytes().to_vec());
        }
        engine.write(batch).expect("delete");
        assert_eq!(stored_deletes(&engine, "rows"), 1990);

        engine.compact_range("rows", KeyRange::all()).expect("compact");
        assert_eq!(stored_deletes(&engine, "rows"), 0);
        let left = engine.scan("rows", KeyRange::all(), false).expect("scan").count();
        assert_eq!(left, 10);
    }
}
