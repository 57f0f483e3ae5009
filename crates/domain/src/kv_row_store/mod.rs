//! [`KvRowStore`]: the table-kind semantics, written once over [`KvEngine`].
//!
//! - One keyspace per table (`t<uid>`), keys as [`crate::keys`] lays them out.
//! - The store keeps the latest version of each row; an UPDATE writes a new version with a
//!   new `_seq`, a DELETE of a USER or SHARED row writes a version with the delete flag
//!   (soft delete) and a STREAM delete removes the key.
//! - STREAM rows are keyed by `_seq`, so expiry is a range: reads start at the TTL floor,
//!   inserts trim each user's partition to `MAX_ROWS` in the same atomic batch.
//! - Writers of one table are serialised by a per-table lock, so the primary-key check and
//!   the write it guards are one step.
//! - After a write is durable, and before that lock is released, the change listeners that
//!   watch the partition are told what the write did to each row.

mod cold;
mod stream_index;

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use self::stream_index::{PartitionRows, StreamIndexes};
use crate::change_feed::{ChangeBatch, ChangeListener, RowEvent};
use crate::codec::{RowCodec, RowVersion};
use crate::error::{DomainError, DomainResult};
use crate::ids::{SnowflakeGenerator, now_millis, snowflake_floor_for_millis};
use crate::keys::{Partition, encode_internal_row_id, encode_key_value, row_id_of, split_user_key};
use crate::kv::{KeyRange, KvEngine, KvPair, PairVisitor, WriteBatch, prefix_successor};
use crate::model::{Manifest, Segment, TableDefinition, TableKind};
use crate::row_store::{RowChange, RowIter, RowStore, ScanRequest, StoredRow};
use crate::types::Value;

/// A live STREAM row's key and, if the table has one, its encoded primary key.
type StreamKey = (Vec<u8>, Option<Vec<u8>>);

/// Rows fetched from the engine per step of a scan.
const SCAN_CHUNK: usize = 1024;
/// The most rows a long scan fetches per step: its steps double up to this size, so a
/// scan of millions of rows opens few engine iterators, and a small one stays small.
const MAX_SCAN_CHUNK: usize = 16 * 1024;

/// The row store over a key-value engine.
pub struct KvRowStore {
    kv: Arc<dyn KvEngine>,
    seq: Arc<SnowflakeGenerator>,
    table_locks: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
    listeners: Vec<Arc<dyn ChangeListener>>,
    /// The live rows of STREAM partitions inserted into lately.
    stream_indexes: StreamIndexes,
}

impl std::fmt::Debug for KvRowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvRowStore").finish_non_exhaustive()
    }
}

impl KvRowStore {
    /// A row store writing to `kv`, with `_seq` values from `seq`.
    pub fn new(kv: Arc<dyn KvEngine>, seq: Arc<SnowflakeGenerator>) -> Self {
        Self {
            kv,
            seq,
            table_locks: Mutex::new(HashMap::new()),
            listeners: Vec::new(),
            stream_indexes: StreamIndexes::default(),
        }
    }

    /// The same store, also telling `listener` of every committed write it watches.
    pub fn with_change_listener(mut self, listener: Arc<dyn ChangeListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// The listeners that watch `partition` of `table`.
    fn watchers(&self, table: &TableDefinition, partition: &Partition) -> Vec<&dyn ChangeListener> {
        self.listeners
            .iter()
            .map(|l| l.as_ref())
            .filter(|l| l.watches(table.uid, partition))
            .collect()
    }

    /// Tells the listeners watching `partition` of `table` of a committed write; `events`
    /// is only built if one does.
    fn tell(&self, table: &TableDefinition, partition: &Partition, events: impl FnOnce() -> Vec<RowEvent>) {
        let watchers = self.watchers(table, partition);
        let Some((last, others)) = watchers.split_last() else {
            return;
        };
        let events = events();
        if events.is_empty() {
            return;
        }
        let batch = ChangeBatch {
            table_uid: table.uid,
            schema_version: table.schema().version,
            partition: partition.clone(),
            events,
        };
        for listener in others {
            listener.committed(batch.clone());
        }
        last.committed(batch);
    }

    /// The insert events of `written` rows.
    fn insert_events(written: &[StoredRow]) -> Vec<RowEvent> {
        written
            .iter()
            .map(|row| RowEvent::Insert {
                row_id: row.row_id.clone(),
                new: row.version.clone(),
            })
            .collect()
    }

    fn lock_for(&self, table: &TableDefinition) -> Arc<Mutex<()>> {
        Arc::clone(self.table_locks.lock().entry(table.uid).or_default())
    }

    fn check_partition(table: &TableDefinition, partition: &Partition) -> DomainResult<()> {
        match (table.kind.is_per_user(), partition) {
            (true, Partition::User(_)) | (false, Partition::Shared) => Ok(()),
            _ => Err(DomainError::InvalidDefinition(format!(
                "table '{}' is a {} table: wrong partition kind",
                table.id, table.kind
            ))),
        }
    }

    /// The stored pairs of a scan (deleted versions left out unless asked for), read a
    /// chunk at a time.
    fn chunked_scan(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        request: ScanRequest,
    ) -> DomainResult<ChunkedScan> {
        Ok(ChunkedScan {
            kv: Arc::clone(&self.kv),
            keyspace: table.keyspace(),
            range: Self::scan_range(table, partition, &request)?,
            include_deleted: request.include_deleted,
            reverse: request.reverse,
            remaining: request.limit.unwrap_or(usize::MAX),
            chunk: SCAN_CHUNK,
            buffer: Vec::new().into_iter(),
            exhausted: false,
        })
    }

    /// The keys a scan of a partition reads: its row id bounds under the partition's
    /// prefix, and for a STREAM table with a TTL, none older than the TTL.
    fn scan_range(table: &TableDefinition, partition: &Partition, request: &ScanRequest) -> DomainResult<KeyRange> {
        Self::check_partition(table, partition)?;
        let prefix = partition.key_prefix();
        let with_prefix = |b: &[u8]| partition.row_key(b);
        let mut start = match &request.start {
            Bound::Included(b) => Bound::Included(with_prefix(b)),
            Bound::Excluded(b) => Bound::Excluded(with_prefix(b)),
            Bound::Unbounded => Bound::Included(prefix.clone()),
        };
        if table.kind == TableKind::Stream
            && let Some(floor) = Self::stream_floor(table)
        {
            let floor_key = with_prefix(&floor);
            let below_floor = match &start {
                Bound::Included(s) | Bound::Excluded(s) => s.as_slice() < floor_key.as_slice(),
                Bound::Unbounded => true,
            };
            if below_floor {
                start = Bound::Included(floor_key);
            }
        }
        let end = match &request.end {
            Bound::Included(b) => Bound::Included(with_prefix(b)),
            Bound::Excluded(b) => Bound::Excluded(with_prefix(b)),
            Bound::Unbounded => match prefix_successor(&prefix) {
                Some(next) if !prefix.is_empty() => Bound::Excluded(next),
                _ => Bound::Unbounded,
            },
        };
        Ok(KeyRange { start, end })
    }

    /// The smallest stream key still inside the TTL, for a partition.
    fn stream_floor(table: &TableDefinition) -> Option<[u8; 8]> {
        let ttl = table.options.ttl_seconds?;
        let floor_ms = now_millis().saturating_sub(ttl.saturating_mul(1000));
        Some(encode_internal_row_id(snowflake_floor_for_millis(floor_ms) as u64))
    }

    fn check_not_null(table: &TableDefinition, values: &[Value]) -> DomainResult<()> {
        let schema = table.schema();
        if values.len() != schema.columns.len() {
            return Err(DomainError::InvalidValue(format!(
                "a row for table '{}' has {} values, the table has {} columns",
                table.id,
                values.len(),
                schema.columns.len()
            )));
        }
        for (column, value) in schema.columns.iter().zip(values) {
            if value.is_null() && (!column.nullable || schema.primary_key == Some(column.id)) {
                return Err(DomainError::Constraint(format!(
                    "column '{}' of table '{}' cannot be NULL",
                    column.name, table.id
                )));
            }
            if !value.fits(&column.data_type) {
                return Err(DomainError::InvalidValue(format!(
                    "value {value} does not fit column '{}' of type {}",
                    column.name, column.data_type
                )));
            }
        }
        Ok(())
    }

    fn primary_key_value<'v>(table: &TableDefinition, values: &'v [Value]) -> Option<&'v Value> {
        table.schema().primary_key_position().map(|i| &values[i])
    }

    /// Primary-key values of live STREAM rows of a partition (streams are keyed by `_seq`).
    fn live_stream_keys(&self, table: &TableDefinition, partition: &Partition) -> DomainResult<Vec<StreamKey>> {
        let pk = table.schema().primary_key_position();
        let mut out = Vec::new();
        for row in self.scan(table, partition, ScanRequest::all())? {
            let row = row?;
            let pk_bytes = pk.map(|i| encode_key_value(&row.version.values[i])).transpose()?;
            out.push((partition.row_key(&row.row_id), pk_bytes));
        }
        Ok(out)
    }

    /// Whether a live row of `table` (not soft-deleted, not past a stream's TTL) has a
    /// stored value for which `test` holds. Reads the keyspace a chunk at a time and stops
    /// at the first such row.
    fn any_live_row(&self, table: &TableDefinition, test: impl Fn(&[u8]) -> DomainResult<bool>) -> DomainResult<bool> {
        let keyspace = table.keyspace();
        let floor = Self::stream_floor(table);
        let mut range = KeyRange::all();
        loop {
            let chunk = self.kv.scan_limited(&keyspace, range.clone(), false, SCAN_CHUNK)?;
            let full = chunk.len() == SCAN_CHUNK;
            for (key, value) in &chunk {
                if let Some(floor) = floor {
                    let (_, row_id) = split_user_key(key)?;
                    if row_id < floor.as_slice() {
                        continue;
                    }
                }
                if !RowCodec::decode_header(value)?.1 && test(value)? {
                    return Ok(true);
                }
            }
            match chunk.into_iter().next_back() {
                Some((last, _)) if full => range.start = Bound::Excluded(last),
                _ => return Ok(false),
            }
        }
    }

    fn duplicate(table: &TableDefinition, value: &Value) -> DomainError {
        DomainError::DuplicateKey {
            table: table.id.to_string(),
            key: value.to_string(),
        }
    }

    fn insert_stream(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        rows: Vec<Vec<Value>>,
    ) -> DomainResult<Vec<StoredRow>> {
        let keyspace = table.keyspace();
        // The partition's live rows are needed only to keep a primary key unique or to trim
        // to MAX_ROWS; an append-only stream inserts without reading.
        let needs_existing = table.schema().primary_key.is_some() || table.options.max_rows.is_some();
        let mut existing = match self.stream_indexes.take(table.uid, partition) {
            Some(list) => list,
            None if needs_existing => PartitionRows::new(self.live_stream_keys(table, partition)?),
            None => PartitionRows::default(),
        };
        existing.forget_expired(partition, Self::stream_floor(table));
        let (mut batch, written, new_keys) = match self.stream_batch(table, partition, &existing, rows) {
            Ok(prepared) => prepared,
            Err(refused) => {
                // Nothing was written: the list is still the partition's.
                if needs_existing {
                    self.stream_indexes.put(table.uid, partition, existing);
                }
                return Err(refused);
            }
        };
        // The rows after this write, oldest first; past MAX_ROWS the oldest go.
        for row in new_keys {
            existing.push(row);
        }
        if let Some(max) = table.options.max_rows {
            while existing.len() > max as usize {
                let Some(oldest) = existing.pop_oldest() else { break };
                batch.delete(&keyspace, oldest);
            }
        }
        // A failed write drops the list (it is read again): what the store holds is unknown.
        self.kv.write(batch)?;
        if needs_existing {
            self.stream_indexes.put(table.uid, partition, existing);
        }
        self.tell(table, partition, || Self::insert_events(&written));
        Ok(written)
    }

    /// The write batch of new STREAM rows (refusing a primary key a live row or another new
    /// row has), the rows, and their keys with their primary keys.
    fn stream_batch(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        existing: &PartitionRows,
        rows: Vec<Vec<Value>>,
    ) -> DomainResult<(WriteBatch, Vec<StoredRow>, Vec<StreamKey>)> {
        let keyspace = table.keyspace();
        let codec = RowCodec::new(table.schema());
        let mut taken: HashSet<Vec<u8>> = HashSet::new();
        let mut batch = WriteBatch::new();
        let mut written = Vec::with_capacity(rows.len());
        let mut new_keys: Vec<StreamKey> = Vec::with_capacity(rows.len());
        for values in rows {
            Self::check_not_null(table, &values)?;
            let pk_bytes = Self::primary_key_value(table, &values)
                .map(encode_key_value)
                .transpose()?;
            if let Some(pk) = &pk_bytes
                && (existing.has_primary_key(pk) || !taken.insert(pk.clone()))
            {
                let value = Self::primary_key_value(table, &values).expect("a primary key");
                return Err(Self::duplicate(table, value));
            }
            let seq = self.seq.next_id();
            let row_id = encode_internal_row_id(seq as u64).to_vec();
            let version = RowVersion {
                seq,
                deleted: false,
                values,
            };
            let key = partition.row_key(&row_id);
            batch.put(&keyspace, key.clone(), codec.encode(&version)?);
            new_keys.push((key, pk_bytes));
            written.push(StoredRow {
                row_id,
                user: partition.user().map(|u| u.to_string()),
                version,
            });
        }
        Ok((batch, written, new_keys))
    }
}

#[async_trait]
impl RowStore for KvRowStore {
    async fn create_table(&self, table: &TableDefinition) -> DomainResult<()> {
        self.kv.create_keyspace(&table.keyspace())?;
        if table.kind != TableKind::Stream {
            self.kv.create_keyspace(&table.cold_keyspace())?;
        }
        Ok(())
    }

    async fn drop_table(&self, table: &TableDefinition) -> DomainResult<()> {
        self.forget_manifests(table)?;
        self.kv.drop_keyspace(&table.keyspace())?;
        if table.kind != TableKind::Stream {
            self.kv.drop_keyspace(&table.cold_keyspace())?;
        }
        self.table_locks.lock().remove(&table.uid);
        self.stream_indexes.forget_table(table.uid);
        Ok(())
    }

    async fn insert(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        rows: Vec<Vec<Value>>,
    ) -> DomainResult<Vec<StoredRow>> {
        Self::check_partition(table, partition)?;
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        if table.kind == TableKind::Stream {
            return self.insert_stream(table, partition, rows);
        }
        let keyspace = table.keyspace();
        let codec = RowCodec::new(table.schema());
        let mut batch = WriteBatch::new();
        let mut in_batch = HashSet::new();
        let mut written = Vec::with_capacity(rows.len());
        let flushed = table.schema().primary_key.is_some() && self.has_flushed_rows(table, partition)?;
        for values in rows {
            Self::check_not_null(table, &values)?;
            let seq = self.seq.next_id();
            let row_id = match Self::primary_key_value(table, &values) {
                Some(pk) => {
                    let row_id = encode_key_value(pk)?;
                    if !in_batch.insert(row_id.clone()) || self.is_live(table, &partition.row_key(&row_id), flushed)? {
                        return Err(Self::duplicate(table, pk));
                    }
                    row_id
                }
                None => encode_internal_row_id(seq as u64).to_vec(),
            };
            let version = RowVersion {
                seq,
                deleted: false,
                values,
            };
            batch.put(&keyspace, partition.row_key(&row_id), codec.encode(&version)?);
            written.push(StoredRow {
                row_id,
                user: partition.user().map(|u| u.to_string()),
                version,
            });
        }
        self.kv.write(batch)?;
        self.tell(table, partition, || Self::insert_events(&written));
        Ok(written)
    }

    async fn write_changes(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        changes: Vec<RowChange>,
    ) -> DomainResult<Vec<StoredRow>> {
        Self::check_partition(table, partition)?;
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        // An UPDATE or DELETE of STREAM rows changes what the kept lists say.
        if table.kind == TableKind::Stream {
            self.stream_indexes.forget_table(table.uid);
        }
        let keyspace = table.keyspace();
        let codec = RowCodec::new(table.schema());
        let mut batch = WriteBatch::new();
        let mut written = Vec::with_capacity(changes.len());
        // Events are collected whenever someone may listen; whether anyone watches this
        // partition is asked after the write, so a subscription registered meanwhile
        // still hears of it.
        let collect_events = !self.listeners.is_empty();
        let mut events = Vec::new();
        // Row ids that end this statement holding a live row, and ones it vacates.
        let mut claimed: HashSet<Vec<u8>> = HashSet::new();
        let vacated: HashSet<Vec<u8>> = changes
            .iter()
            .filter(|c| c.delete || table.kind != TableKind::Stream)
            .map(|c| c.row_id.clone())
            .collect();
        for change in changes {
            let old_key = partition.row_key(&change.row_id);
            let old = match self.kv.get(&keyspace, &old_key)? {
                Some(old_bytes) => codec.decode(&old_bytes)?,
                // Not hot: the newest version may be a flushed one, which the query read.
                None => match (self.cold_version(table, &old_key)?, change.old.clone()) {
                    (Some(cold), Some(read)) if !cold.deleted && cold.seq == read.seq => read,
                    // Written again and flushed since the statement read it: the statement
                    // runs again on the newer version rather than skip or overwrite it.
                    (Some(cold), Some(_)) if !cold.deleted => {
                        return Err(DomainError::ReadRacedFlush(format!(
                            "a row of {} changed and was flushed while this statement ran; run it again",
                            table.id
                        )));
                    }
                    _ => continue, // The row vanished since it was read: nothing to change.
                },
            };
            if old.deleted {
                continue;
            }
            let seq = self.seq.next_id();
            if change.delete {
                if collect_events {
                    events.push(RowEvent::Delete {
                        row_id: change.row_id.clone(),
                        old: old.clone(),
                        seq,
                    });
                }
                if table.kind.has_soft_delete() {
                    let version = RowVersion {
                        seq,
                        deleted: true,
                        values: old.values,
                    };
                    batch.put(&keyspace, old_key, codec.encode(&version)?);
                    written.push(StoredRow {
                        row_id: change.row_id,
                        user: partition.user().map(|u| u.to_string()),
                        version,
                    });
                } else {
                    batch.delete(&keyspace, old_key);
                    written.push(StoredRow {
                        row_id: change.row_id,
                        user: partition.user().map(|u| u.to_string()),
                        version: old,
                    });
                }
                continue;
            }
            Self::check_not_null(table, &change.values)?;
            let new_row_id = match (table.kind, Self::primary_key_value(table, &change.values)) {
                (TableKind::Stream, _) | (_, None) => change.row_id.clone(),
                (_, Some(pk)) => encode_key_value(pk)?,
            };
            if new_row_id != change.row_id {
                let moved_into_live = !vacated.contains(&new_row_id)
                    && self.is_live_in_any_tier(table, &partition.row_key(&new_row_id))?;
                if moved_into_live || claimed.contains(&new_row_id) {
                    let pk = Self::primary_key_value(table, &change.values).expect("a key changed, so there is one");
                    return Err(Self::duplicate(table, pk));
                }
                // The old key keeps a deleted version, so cold copies of it stay hidden.
                let tombstone = RowVersion {
                    seq,
                    deleted: true,
                    values: old.values.clone(),
                };
                if !claimed.contains(&change.row_id) {
                    batch.put(&keyspace, old_key, codec.encode(&tombstone)?);
                }
            } else if claimed.contains(&new_row_id) {
                let pk = Self::primary_key_value(table, &change.values).expect("keys collide only with a primary key");
                return Err(Self::duplicate(table, pk));
            }
            claimed.insert(new_row_id.clone());
            let version = RowVersion {
                seq: self.seq.next_id(),
                deleted: false,
                values: change.values,
            };
            if collect_events {
                events.push(RowEvent::Update {
                    old_row_id: change.row_id.clone(),
                    old: old.clone(),
                    row_id: new_row_id.clone(),
                    new: version.clone(),
                });
            }
            batch.put(&keyspace, partition.row_key(&new_row_id), codec.encode(&version)?);
            written.push(StoredRow {
                row_id: new_row_id,
                user: partition.user().map(|u| u.to_string()),
                version,
            });
        }
        self.kv.write(batch)?;
        self.tell(table, partition, || events);
        Ok(written)
    }

    fn scan(&self, table: &TableDefinition, partition: &Partition, request: ScanRequest) -> DomainResult<RowIter> {
        let pairs = self.chunked_scan(table, partition, request)?;
        let codec = RowCodec::new(table.schema());
        let (partition, user) = (partition.clone(), partition.user().map(|u| u.to_string()));
        Ok(Box::new(pairs.map(move |pair| {
            let (key, value) = pair?;
            Ok(StoredRow {
                row_id: row_id_of(&partition, &key).to_vec(),
                user: user.clone(),
                version: codec.decode(&value)?,
            })
        })))
    }

    fn visit_encoded(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        request: ScanRequest,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<()> {
        let keyspace = table.keyspace();
        let mut range = Self::scan_range(table, partition, &request)?;
        let mut remaining = request.limit.unwrap_or(usize::MAX);
        let mut chunk = SCAN_CHUNK;
        // The last key of a chunk, where the next one starts: copied into one buffer,
        // since the engine lends each key only for its call.
        let mut last_key = Vec::new();
        while remaining > 0 {
            let mut stopped = false;
            let visited = self.kv.scan_visit(
                &keyspace,
                range.clone(),
                request.reverse,
                chunk,
                &mut |key: &[u8], value: &[u8]| {
                    last_key.clear();
                    last_key.extend_from_slice(key);
                    if !request.include_deleted && RowCodec::decode_header(value)?.1 {
                        return Ok(true);
                    }
                    remaining -= 1;
                    stopped = !visit.visit(row_id_of(partition, key), value)? || remaining == 0;
                    Ok(!stopped)
                },
            )?;
            if stopped || visited < chunk {
                return Ok(());
            }
            let next = Bound::Excluded(last_key.clone());
            if request.reverse {
                range.end = next;
            } else {
                range.start = next;
            }
            chunk = (chunk * 2).min(MAX_SCAN_CHUNK);
        }
        Ok(())
    }

    async fn has_live_rows(&self, table: &TableDefinition) -> DomainResult<bool> {
        // Flushed rows count as live: telling otherwise would mean reading the segments.
        Ok(self.any_live_row(table, |_| Ok(true))? || self.read_manifests(table)?.iter().any(|(_, m)| !m.is_empty()))
    }

    async fn has_live_null(&self, table: &TableDefinition, position: usize) -> DomainResult<bool> {
        let codec = RowCodec::new(table.schema());
        let hot = self.any_live_row(table, |value| {
            let row = codec.decode(value)?;
            Ok(row.values.get(position).is_none_or(Value::is_null))
        })?;
        // Flushed rows: by the segments' NULL counts (a segment written before the column
        // existed holds only NULLs in it). Deleted versions count too: a conservative yes.
        let column_id = table.schema().columns.get(position).map(|c| c.id);
        let cold = self.read_manifests(table)?.iter().any(|(_, manifest)| {
            manifest.segments.iter().any(|segment| {
                let stats = segment.columns.iter().find(|c| Some(c.column_id) == column_id);
                stats.is_none_or(|c| c.nulls > 0)
            })
        });
        Ok(hot || cold)
    }

    async fn purge_deleted(&self, table: &TableDefinition, deleted_before: i64) -> DomainResult<u64> {
        if !table.kind.has_soft_delete() {
            return Ok(0);
        }
        let keyspace = table.keyspace();
        // Candidates are found without the table's lock, so writers are not held up by
        // the scan; each is checked again under the lock before it goes.
        let mut candidates = Vec::new();
        for pair in self.kv.scan(&keyspace, KeyRange::all(), false)? {
            let (key, value) = pair?;
            let (seq, deleted) = RowCodec::decode_header(&value)?;
            if deleted && seq < deleted_before {
                candidates.push((key, seq));
            }
        }
        if candidates.is_empty() {
            return Ok(0);
        }
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        let mut batch = WriteBatch::new();
        for (key, seq) in candidates {
            let unchanged = match self.kv.get(&keyspace, &key)? {
                Some(value) => RowCodec::decode_header(&value)? == (seq, true),
                None => false,
            };
            let hides_a_flushed_row = self.cold_version(table, &key)?.is_some_and(|cold| !cold.deleted);
            if unchanged && !hides_a_flushed_row {
                batch.delete(&keyspace, key);
            }
        }
        let purged = batch.len() as u64;
        self.kv.write(batch)?;
        Ok(purged)
    }

    async fn evict_stream_rows(&self, table: &TableDefinition) -> DomainResult<u64> {
        if table.kind != TableKind::Stream {
            return Ok(0);
        }
        let lock = self.lock_for(table);
        let _guard = lock.lock();
        let keyspace = table.keyspace();
        let floor = Self::stream_floor(table);
        let max_rows = table.options.max_rows.map(|m| m as usize);
        let mut batch = WriteBatch::new();
        let mut current_user: Option<String> = None;
        let mut live: Vec<Vec<u8>> = Vec::new();
        let mut removed = 0u64;
        let flush_user = |live: &mut Vec<Vec<u8>>, batch: &mut WriteBatch, removed: &mut u64| {
            if let Some(max) = max_rows {
                let excess = live.len().saturating_sub(max);
                for key in live.drain(..excess) {
                    batch.delete(&keyspace, key);
                    *removed += 1;
                }
            }
            live.clear();
        };
        for pair in self.kv.scan(&keyspace, KeyRange::all(), false)? {
            let (key, _) = pair?;
            let (user, row_id) = split_user_key(&key)?;
            if current_user.as_deref() != Some(user) {
                flush_user(&mut live, &mut batch, &mut removed);
                current_user = Some(user.to_owned());
            }
            if floor.is_some_and(|f| row_id < f.as_slice()) {
                batch.delete(&keyspace, key);
                removed += 1;
            } else {
                live.push(key);
            }
        }
        flush_user(&mut live, &mut batch, &mut removed);
        if !batch.is_empty() {
            self.stream_indexes.forget_table(table.uid);
            self.kv.write(batch)?;
        }
        Ok(removed)
    }

    fn manifest(&self, table: &TableDefinition, partition: &Partition) -> DomainResult<Manifest> {
        Self::check_partition(table, partition)?;
        self.read_manifest(table, partition)
    }

    fn manifests(&self, table: &TableDefinition) -> DomainResult<Vec<(Partition, Manifest)>> {
        self.read_manifests(table)
    }

    fn hot_partitions(&self, table: &TableDefinition) -> DomainResult<Vec<Partition>> {
        self.partitions_with_hot_rows(table)
    }

    fn hot_row_id_range(
        &self,
        table: &TableDefinition,
        partition: &Partition,
    ) -> DomainResult<Option<(Vec<u8>, Vec<u8>)>> {
        Self::check_partition(table, partition)?;
        let keyspace = table.keyspace();
        let prefix = partition.key_prefix();
        let first_key = |reverse| -> DomainResult<Option<Vec<u8>>> {
            let pairs = self.kv.scan_limited(&keyspace, KeyRange::prefix(&prefix), reverse, 1)?;
            Ok(pairs.into_iter().next().map(|(key, _)| key[prefix.len()..].to_vec()))
        };
        Ok(first_key(false)?.zip(first_key(true)?))
    }

    async fn commit_flush(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        segment: Segment,
        flushed: Vec<(Vec<u8>, i64, bool)>,
    ) -> DomainResult<u64> {
        Self::check_partition(table, partition)?;
        if table.kind == TableKind::Stream {
            return Err(DomainError::InvalidDefinition(format!(
                "STREAM table {} is never flushed: its rows expire",
                table.id
            )));
        }
        self.hand_over(table, partition, segment, &flushed)
    }

    async fn commit_compaction(
        &self,
        table: &TableDefinition,
        partition: &Partition,
        replaced: Vec<u64>,
        segment: Option<Segment>,
        purged: Vec<(Vec<u8>, i64)>,
    ) -> DomainResult<()> {
        Self::check_partition(table, partition)?;
        self.replace_segments(table, partition, &replaced, segment, &purged)
    }

    fn compact_hot(&self, table: &TableDefinition) -> DomainResult<()> {
        self.kv.compact_range(&table.keyspace(), KeyRange::all())
    }
}

/// A scan that reads the engine a chunk at a time, so it owns nothing borrowed and can run
/// on any thread. Each chunk is a consistent read; a scan spanning chunks may see writes
/// that committed between them (read committed).
struct ChunkedScan {
    kv: Arc<dyn KvEngine>,
    keyspace: String,
    range: KeyRange,
    include_deleted: bool,
    reverse: bool,
    remaining: usize,
    /// Pairs to fetch at the next step.
    chunk: usize,
    buffer: std::vec::IntoIter<KvPair>,
    exhausted: bool,
}

impl ChunkedScan {
    fn refill(&mut self) -> DomainResult<()> {
        let want = self.chunk.min(self.remaining);
        let pairs = self
            .kv
            .scan_limited(&self.keyspace, self.range.clone(), self.reverse, want)?;
        let full = pairs.len() == want;
        self.chunk = (self.chunk * 2).min(MAX_SCAN_CHUNK);
        let last_key = pairs.last().map(|(key, _)| key.clone());
        let mut kept = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            if self.include_deleted || !RowCodec::decode_header(&value)?.1 {
                kept.push((key, value));
            }
        }
        self.buffer = kept.into_iter();
        match last_key {
            Some(key) if full => {
                if self.reverse {
                    self.range.end = Bound::Excluded(key);
                } else {
                    self.range.start = Bound::Excluded(key);
                }
            }
            _ => self.exhausted = true,
        }
        Ok(())
    }
}

impl Iterator for ChunkedScan {
    type Item = DomainResult<KvPair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        while self.buffer.as_slice().is_empty() && !self.exhausted {
            if let Err(e) = self.refill() {
                self.exhausted = true;
                return Some(Err(e));
            }
        }
        let row = self.buffer.next()?;
        self.remaining -= 1;
        Some(Ok(row))
    }
}
