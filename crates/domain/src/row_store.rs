//! The `RowStore` port: rows of the three table kinds, addressed by partition.

use std::ops::Bound;

use async_trait::async_trait;

use crate::codec::RowVersion;
use crate::error::DomainResult;
use crate::keys::Partition;
use crate::kv::PairVisitor;
use crate::model::{Manifest, Segment, TableDefinition};
use crate::types::Value;

/// One stored row: its row id (the key without the partition prefix) and its latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The row id inside its partition.
    pub row_id: Vec<u8>,
    /// The owner of the row (USER and STREAM tables).
    pub user: Option<String>,
    /// The latest version.
    pub version: RowVersion,
}

/// A new version of an existing row (UPDATE), or its removal (DELETE).
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// The row id the row has now.
    pub row_id: Vec<u8>,
    /// The new values, in schema order (ignored for deletes).
    pub values: Vec<Value>,
    /// Whether this change deletes the row.
    pub delete: bool,
    /// The version the change was read from (values in schema order, its `_seq`), as the
    /// query saw it: the store uses it when the row's newest version is in the cold tier.
    pub old: Option<RowVersion>,
}

/// What a scan reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRequest {
    /// Lower bound on row ids.
    pub start: Bound<Vec<u8>>,
    /// Upper bound on row ids.
    pub end: Bound<Vec<u8>>,
    /// Whether soft-deleted rows are returned too.
    pub include_deleted: bool,
    /// Newest-first instead of key order.
    pub reverse: bool,
    /// At most this many rows.
    pub limit: Option<usize>,
}

impl ScanRequest {
    /// Every live row of the partition, in key order.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            include_deleted: false,
            reverse: false,
            limit: None,
        }
    }
}

/// An iterator over stored rows; it owns what it reads from, so it can move to a
/// blocking thread.
pub type RowIter = Box<dyn Iterator<Item = DomainResult<StoredRow>> + Send>;

/// The rows of every table.
///
/// Guarantees: every write method is atomic (all of its rows are written, or none, and a
/// failed call changes nothing); a USER or STREAM partition is only ever read or written
/// through its own user's [`Partition`]; `_seq` values are strictly increasing over the
/// server's life; STREAM rows past their TTL are never returned.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RowStore: std::fmt::Debug + Send + Sync + 'static {
    /// Prepares storage for a new table.
    async fn create_table(&self, table: &TableDefinition) -> DomainResult<()>;

    /// Removes every row of a table, in every partition.
    async fn drop_table(&self, table: &TableDefinition) -> DomainResult<()>;

    /// Inserts new rows (values in schema order), giving them their `_seq`; a primary key
    /// already live in the partition, or given twice, is `DuplicateKey` and inserts nothing.
    async fn insert(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        rows: Vec<Vec<Value>>,
    ) -> DomainResult<Vec<StoredRow>>;

    /// Writes new versions of existing rows: an update (a new `_seq`; if the primary key
    /// changes, the row moves and the new key must be free) or a delete (soft for USER and
    /// SHARED tables, for good for STREAM tables). Returns the versions written.
    async fn write_changes(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        changes: Vec<RowChange>,
    ) -> DomainResult<Vec<StoredRow>>;

    /// Reads rows of one partition. The iterator is synchronous: call it from a thread
    /// that may block.
    fn scan(&self, table: &TableDefinition, partition: &Partition, request: ScanRequest) -> DomainResult<RowIter>;

    /// The same rows as [`RowStore::scan`], not decoded and not copied: `visit` is called
    /// with each row's id and its latest version encoded by a [`crate::RowCodec`] for the
    /// table's current schema, both borrowed for the call, until it returns `false`. Rows
    /// are read a chunk at a time, each chunk a consistent read (read committed across
    /// chunks, like [`RowStore::scan`]). Synchronous, like [`RowStore::scan`]; queries
    /// build Arrow arrays in place with [`crate::row_batch::RowBatchBuilder`].
    fn visit_encoded(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        request: ScanRequest,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<()>;

    /// Whether any partition of the table holds a live row.
    async fn has_live_rows(&self, table: &TableDefinition) -> DomainResult<bool>;

    /// Whether any live row of any partition holds NULL in the column at `position` of the
    /// current schema.
    async fn has_live_null(&self, table: &TableDefinition, position: usize) -> DomainResult<bool>;

    /// Removes STREAM rows past their TTL or past `MAX_ROWS`, in every partition; returns
    /// how many were removed.
    async fn evict_stream_rows(&self, table: &TableDefinition) -> DomainResult<u64>;

    /// Removes for good the hot soft-deleted rows of a USER or SHARED table deleted before
    /// `deleted_before` (a `_seq`, so a time), in every partition; a deleted row whose
    /// flushed version is live stays, or that version would be seen again. Gives how many
    /// were removed.
    async fn purge_deleted(&self, table: &TableDefinition, deleted_before: i64) -> DomainResult<u64>;

    /// The manifest of a partition's cold tier (empty if it never flushed).
    fn manifest(&self, table: &TableDefinition, partition: &Partition) -> DomainResult<Manifest>;

    /// The manifests of every partition of a table that flushed.
    fn manifests(&self, table: &TableDefinition) -> DomainResult<Vec<(Partition, Manifest)>>;

    /// The partitions of a table holding hot rows (what a flush of the table visits).
    fn hot_partitions(&self, table: &TableDefinition) -> DomainResult<Vec<Partition>>;

    /// The smallest and the largest row id of a partition's hot versions (deleted ones
    /// too), or `None` when it has none: two reads, each at its own moment, so a hint for
    /// planning a read, never a bound a result relies on.
    fn hot_row_id_range(
        &self,
        table: &TableDefinition,
        partition: &Partition,
    ) -> DomainResult<Option<(Vec<u8>, Vec<u8>)>>;

    /// Hands flushed rows over to the cold tier in one atomic write: `segment` (already
    /// written and synced) joins the partition's manifest, and each flushed
    /// `(row id, _seq, deleted)` leaves the hot tier unless the row was written again
    /// since. Gives how many hot versions were removed.
    async fn commit_flush(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        segment: Segment,
        flushed: Vec<(Vec<u8>, i64, bool)>,
    ) -> DomainResult<u64>;

    /// Replaces segments of a partition with one holding their rows compacted, in one
    /// atomic write: the `replaced` segments (by batch number) leave the manifest, their
    /// paths recorded as retired, and `segment` (already written and synced; `None` when no
    /// row is left) takes their place; each `purged` `(row id, _seq)`, a deleted version
    /// dropped for good, leaves the cold index if it is still the row's flushed version.
    /// Changes nothing and fails if the manifest no longer lists every replaced segment or
    /// `segment`'s number was taken.
    async fn commit_compaction(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        replaced: Vec<u64>,
        segment: Option<Segment>,
        purged: Vec<(Vec<u8>, i64)>,
    ) -> DomainResult<()>;

    /// Drops what the hot versions a flush or a clean-up removed left behind in the store,
    /// so scans of the table's hot tier step over live versions only (see
    /// [`crate::KvEngine::compact_range`]). No row changes. Blocks while the store
    /// rewrites the table's hot rows.
    fn compact_hot(&self, table: &TableDefinition) -> DomainResult<()>;
}
