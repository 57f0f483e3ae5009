//! One subscription's life: the snapshot in batches, then the changes that match.
//!
//! The subscription is registered before its snapshot is read, so every write that commits
//! after registration is queued for it. While the snapshot is read and sent, queued writes
//! wait; when the last batch is sent they are reconciled with what the snapshot saw (each
//! row's `_seq`), so a write the snapshot already holds is not sent again and one it missed
//! is sent once. From then on each write is matched on its own: an UPDATE whose row leaves
//! the filter is sent as a delete, one that enters it as an insert.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, BinaryArray, BooleanArray, Int64Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use calamus_domain::model::{DELETED_COLUMN, SEQ_COLUMN, TableKind};
use calamus_domain::{ChangeBatch, DomainError, RowEvent, RowVersion, ScanRequest, StoredRow, Value};

use super::query::LiveQuery;
use super::registry::{LiveConnection, LiveEntry, NewSubscription, RegisterError};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult, retry_when_raced_by_flush};
use crate::parser::parse_statements;
use crate::providers::ROW_ID_COLUMN;
use crate::session::Session;
use crate::statement::Statement;
use crate::types::column_values;

/// Rows per initial batch when the client does not say.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// The most rows per initial batch.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// Writes a subscription holds while its snapshot is being sent, before it is ended.
pub const MAX_PENDING_WRITES: usize = 10_000;

/// A subscription's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionOptions {
    /// Rows per initial batch.
    pub batch_size: Option<usize>,
    /// Only the newest `n` rows in the snapshot.
    pub last_rows: Option<usize>,
    /// Only rows changed after this `_seq` (resuming).
    pub from_seq_id: Option<i64>,
}

impl SubscriptionOptions {
    fn to_json(&self) -> String {
        serde_json::json!({
            "batch_size": self.batch_size,
            "last_rows": self.last_rows,
            "from_seq_id": self.from_seq_id,
        })
        .to_string()
    }
}

/// Where the initial load stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// The ack of a snapshot sent in several batches.
    Loading,
    /// A batch with more to follow.
    LoadingBatch,
    /// The snapshot is complete.
    Ready,
}

impl BatchStatus {
    /// The protocol's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            BatchStatus::Loading => "loading",
            BatchStatus::LoadingBatch => "loading_batch",
            BatchStatus::Ready => "ready",
        }
    }
}

/// The `batch_control` of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchControl {
    /// The batch's number, from 0.
    pub batch_num: usize,
    /// Whether more batches follow.
    pub has_more: bool,
    /// The load's status.
    pub status: BatchStatus,
    /// The newest `_seq` sent so far.
    pub last_seq_id: Option<i64>,
}

/// What a change did to the subscriber's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Rows entered the view.
    Insert,
    /// Rows in the view changed.
    Update,
    /// Rows left the view.
    Delete,
}

impl ChangeKind {
    /// The protocol's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// A message for the subscriber.
#[derive(Debug, Clone)]
pub enum LiveMessage {
    /// The subscription is registered.
    Ack {
        /// Rows in the snapshot.
        total_rows: usize,
        /// The load's state.
        control: BatchControl,
        /// The rows' schema.
        schema: SchemaRef,
    },
    /// Rows of the snapshot.
    InitialBatch {
        /// The rows.
        rows: RecordBatch,
        /// The load's state.
        control: BatchControl,
    },
    /// A change to the view.
    Change {
        /// What kind.
        kind: ChangeKind,
        /// New rows (insert, update).
        rows: Option<RecordBatch>,
        /// Previous rows (update, delete).
        old: Option<RecordBatch>,
    },
}

/// What the snapshot saw, kept until the queued writes are reconciled with it.
#[derive(Debug, Default)]
struct Reconciliation {
    /// For every row id the snapshot read (live or deleted), the `_seq` it read.
    seen: HashMap<Vec<u8>, i64>,
    /// Row ids the subscriber holds.
    view: HashSet<Vec<u8>>,
    /// Writes queued while loading.
    pending: Vec<Arc<ChangeBatch>>,
}

/// The state of a subscription while its snapshot is sent; dropped when loading ends, so
/// an idle subscription holds only its entry and its compiled query.
#[derive(Debug)]
struct Loading {
    batch_size: usize,
    /// Snapshot rows not sent yet, oldest `_seq` first.
    snapshot: std::collections::VecDeque<RowVersion>,
    total_rows: usize,
    batches_sent: usize,
    last_seq_id: Option<i64>,
    /// Rows deleted or moved out of the filter since `from_seq_id`, sent once the snapshot is.
    deleted_since: Vec<RowVersion>,
    reconciliation: Reconciliation,
}

/// One live subscription of a connection.
#[derive(Debug)]
pub struct Subscription {
    entry: Arc<LiveEntry>,
    query: LiveQuery,
    /// `Some` while loading.
    loading: Option<Box<Loading>>,
}

impl QueryEngine {
    /// Starts a subscription of `connection` (whose user and role `session` carries):
    /// compiles `sql`, registers it, and reads its snapshot.
    pub async fn subscribe(
        &self,
        session: &Session,
        connection: &LiveConnection,
        subscription_id: &str,
        sql: &str,
        options: SubscriptionOptions,
    ) -> QueryResult<Subscription> {
        if let Some(size) = options.batch_size
            && !(1..=MAX_BATCH_SIZE).contains(&size)
        {
            return Err(QueryError::InvalidParameter(format!(
                "batch_size must be between 1 and {MAX_BATCH_SIZE}"
            )));
        }
        let query = self.compile_live_query(session, sql).await?;
        let entry = connection
            .register(NewSubscription {
                subscription_id: subscription_id.to_owned(),
                table: query.table().id.clone(),
                table_uid: query.table().uid,
                partition: query.partition().clone(),
                query: sql.to_owned(),
                options: options.to_json(),
            })
            .map_err(|RegisterError::DuplicateId| {
                QueryError::InvalidParameter(format!(
                    "this connection already has a subscription '{subscription_id}'; unsubscribe it first"
                ))
            })?;
        let scanned = match self.snapshot_versions(session, &query).await {
            Ok(rows) => rows,
            Err(e) => {
                connection.unregister(subscription_id);
                return Err(e);
            }
        };
        match Subscription::new(entry, query, options, scanned) {
            Ok(subscription) => Ok(subscription),
            Err(e) => {
                connection.unregister(subscription_id);
                Err(e)
            }
        }
    }
}

impl QueryEngine {
    /// The newest version of every row of a subscription's partition, deleted ones
    /// included. Hot rows only for STREAM tables (never flushed); otherwise both tiers,
    /// through the same merged read as a query, run again if it overlapped a flush.
    async fn snapshot_versions(&self, session: &Session, query: &LiveQuery) -> QueryResult<Vec<StoredRow>> {
        let table = Arc::clone(query.table());
        if table.kind == TableKind::Stream || self.cold.is_none() {
            let (rows, partition) = (Arc::clone(&self.rows), query.partition().clone());
            return tokio::task::spawn_blocking(move || {
                let request = ScanRequest {
                    include_deleted: true,
                    ..ScanRequest::all()
                };
                rows.scan(&table, &partition, request)?
                    .collect::<Result<Vec<StoredRow>, _>>()
            })
            .await
            .map_err(|e| QueryError::InvalidStatement(format!("the snapshot read failed: {e}")))?
            .map_err(QueryError::from);
        }
        let quote = |name: &str| format!("\"{name}\"");
        let columns: Vec<String> = table.schema().columns.iter().map(|c| quote(c.name.as_str())).collect();
        let sql = format!(
            "SELECT {}, {seq}, {deleted}, {row_id} FROM {}.{} WHERE {deleted} OR NOT {deleted}",
            columns.join(", "),
            quote(table.id.namespace.as_str()),
            quote(table.id.table.as_str()),
            seq = quote(SEQ_COLUMN),
            deleted = quote(DELETED_COLUMN),
            row_id = quote(ROW_ID_COLUMN),
        );
        let Some(Statement::Sql(statement)) = parse_statements(&sql)?.into_iter().next() else {
            return Err(QueryError::InvalidStatement("the snapshot query does not parse".into()));
        };
        let (_, batches) = retry_when_raced_by_flush(|| {
            let state = self.state_for(session, Some(table.id.clone()));
            let statement = (*statement).clone();
            async move { self.query(&state, statement, &[]).await }
        })
        .await?;
        let user = query.partition().user().map(|u| u.to_string());
        let n = table.schema().columns.len();
        let mut versions = Vec::new();
        for batch in &batches {
            let values: Vec<Vec<Value>> = table
                .schema()
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| column_values(batch.column(i), &c.data_type, c.name.as_str()))
                .collect::<QueryResult<_>>()?;
            let corrupt = || QueryError::Domain(DomainError::Corrupt("the snapshot's hidden columns".into()));
            let seqs = batch
                .column(n)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(corrupt)?;
            let deleted = batch
                .column(n + 1)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(corrupt)?;
            let ids = batch
                .column(n + 2)
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(corrupt)?;
            for row in 0..batch.num_rows() {
                versions.push(StoredRow {
                    row_id: ids.value(row).to_vec(),
                    user: user.clone(),
                    version: RowVersion {
                        seq: seqs.value(row),
                        deleted: deleted.value(row),
                        values: values.iter().map(|c| c[row].clone()).collect(),
                    },
                });
            }
        }
        Ok(versions)
    }
}

impl Subscription {
    fn new(
        entry: Arc<LiveEntry>,
        query: LiveQuery,
        options: SubscriptionOptions,
        scanned: Vec<StoredRow>,
    ) -> QueryResult<Self> {
        let mut reconciliation = Reconciliation::default();
        let versions: Vec<&RowVersion> = scanned.iter().map(|r| &r.version).collect();
        let matches = query.matches(&query.rows_batch(&versions)?)?;
        let mut visible = Vec::new();
        let mut deleted_since = Vec::new();
        for (row, matched) in scanned.into_iter().zip(matches) {
            reconciliation.seen.insert(row.row_id.clone(), row.version.seq);
            let changed_since = options.from_seq_id.is_none_or(|from| row.version.seq > from);
            if matched && !row.version.deleted {
                reconciliation.view.insert(row.row_id);
                if changed_since {
                    visible.push(row.version);
                }
            } else if options.from_seq_id.is_some() && changed_since {
                // Deleted, or updated out of the filter, since the client's `_seq`: the client
                // may hold it. Past versions are not kept, so whether it does is unknown; a
                // delete of a row the client does not hold changes nothing for it.
                deleted_since.push(row.version);
            }
        }
        visible.sort_by_key(|v| v.seq);
        if let Some(n) = options.last_rows {
            let excess = visible.len().saturating_sub(n);
            visible.drain(..excess);
        }
        deleted_since.sort_by_key(|v| v.seq);
        Ok(Self {
            entry,
            query,
            loading: Some(Box::new(Loading {
                batch_size: options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                total_rows: visible.len(),
                last_seq_id: visible.last().map(|v| v.seq),
                snapshot: visible.into(),
                batches_sent: 0,
                deleted_since,
                reconciliation,
            })),
        })
    }

    /// The registry's entry.
    pub fn entry(&self) -> &Arc<LiveEntry> {
        &self.entry
    }

    /// The client's name for it.
    pub fn id(&self) -> &str {
        &self.entry.subscription_id
    }

    /// Whether the snapshot is still being sent.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// The ack, then the first batch (and, if that was all, the queued changes).
    pub fn start(&mut self) -> QueryResult<Vec<LiveMessage>> {
        let (total_rows, last_seq_id) = self
            .loading
            .as_ref()
            .map_or((0, None), |l| (l.total_rows, l.last_seq_id));
        let has_more = total_rows > 0;
        let mut messages = vec![LiveMessage::Ack {
            total_rows,
            control: BatchControl {
                batch_num: 0,
                has_more,
                status: if has_more {
                    BatchStatus::Loading
                } else {
                    BatchStatus::Ready
                },
                last_seq_id,
            },
            schema: Arc::clone(self.query.schema()),
        }];
        if has_more {
            messages.extend(self.next_batch()?);
        } else {
            messages.extend(self.finish_loading()?);
        }
        Ok(messages)
    }

    /// The next batch of the snapshot (the client asked with `next_batch`); after the last
    /// one, the changes queued meanwhile. Nothing once loading is over.
    pub fn next_batch(&mut self) -> QueryResult<Vec<LiveMessage>> {
        let Some(loading) = self.loading.as_mut().filter(|l| !l.snapshot.is_empty()) else {
            return Ok(Vec::new());
        };
        let take = loading.batch_size.min(loading.snapshot.len());
        let versions: Vec<RowVersion> = loading.snapshot.drain(..take).collect();
        let has_more = !loading.snapshot.is_empty();
        let batch_num = loading.batches_sent;
        loading.batches_sent += 1;
        let refs: Vec<&RowVersion> = versions.iter().collect();
        let rows = self.query.project(&self.query.rows_batch(&refs)?)?;
        let control = BatchControl {
            batch_num,
            has_more,
            status: if has_more {
                BatchStatus::LoadingBatch
            } else {
                BatchStatus::Ready
            },
            last_seq_id: versions.last().map(|v| v.seq),
        };
        let mut messages = vec![LiveMessage::InitialBatch { rows, control }];
        if !has_more {
            messages.extend(self.finish_loading()?);
        }
        Ok(messages)
    }

    /// A committed write to the subscription's partition: the messages it makes.
    pub fn on_changes(&mut self, batch: Arc<ChangeBatch>) -> QueryResult<Vec<LiveMessage>> {
        if batch.table_uid != self.query.table().uid {
            return Ok(Vec::new()); // Not this subscription's table (cannot happen by routing).
        }
        if batch.schema_version != self.query.table().schema().version {
            return Err(QueryError::InvalidStatement(format!(
                "table {} was altered; subscribe again to see its new columns",
                self.query.table().id
            )));
        }
        if let Some(loading) = &mut self.loading {
            let pending = &mut loading.reconciliation.pending;
            if pending.len() >= MAX_PENDING_WRITES {
                return Err(QueryError::InvalidStatement(format!(
                    "more than {MAX_PENDING_WRITES} writes arrived before the snapshot was read; \
                     ask for the next batches sooner or use a larger batch_size"
                )));
            }
            pending.push(batch);
            return Ok(Vec::new());
        }
        self.match_live(&batch)
    }

    /// Sends the deletes since `from_seq_id`, then reconciles the writes queued while loading.
    fn finish_loading(&mut self) -> QueryResult<Vec<LiveMessage>> {
        let Some(loading) = self.loading.take() else {
            return Ok(Vec::new());
        };
        let Loading {
            deleted_since,
            mut reconciliation,
            ..
        } = *loading;
        let mut out = Vec::new();
        if !deleted_since.is_empty() {
            let refs: Vec<&RowVersion> = deleted_since.iter().collect();
            out.push(LiveMessage::Change {
                kind: ChangeKind::Delete,
                rows: None,
                old: Some(self.query.project(&self.query.rows_batch(&refs)?)?),
            });
        }
        for batch in std::mem::take(&mut reconciliation.pending) {
            if batch.schema_version != self.query.table().schema().version {
                return Err(QueryError::InvalidStatement(format!(
                    "table {} was altered; subscribe again to see its new columns",
                    self.query.table().id
                )));
            }
            let mut changes = Vec::new();
            for event in &batch.events {
                if let Some(change) = self.reconcile(&mut reconciliation, event)? {
                    changes.push(change);
                }
            }
            self.emit(changes, &mut out)?;
        }
        Ok(out)
    }

    /// What a write queued while loading changes in the view the snapshot gave.
    fn reconcile<'e>(&self, loading: &mut Reconciliation, event: &'e RowEvent) -> QueryResult<Option<ViewChange<'e>>> {
        let seen = |row_id: &[u8]| loading.seen.get(row_id).copied();
        let matches = |version: &RowVersion| -> QueryResult<bool> {
            Ok(self.query.matches(&self.query.rows_batch(&[version])?)?[0])
        };
        let change = match event {
            RowEvent::Insert { row_id, new } => {
                if seen(row_id).is_some_and(|s| s >= new.seq) || !matches(new)? {
                    return Ok(None);
                }
                loading.view.insert(row_id.clone());
                ViewChange::enter(new)
            }
            RowEvent::Update {
                old_row_id,
                old,
                row_id,
                new,
            } => {
                let old_reflected = seen(old_row_id).is_some_and(|s| s > old.seq);
                let new_reflected = seen(row_id).is_some_and(|s| s >= new.seq);
                let left = !old_reflected && loading.view.remove(old_row_id);
                let entered = !new_reflected && matches(new)? && loading.view.insert(row_id.clone());
                match (left, entered) {
                    (true, true) => ViewChange::update(old, new),
                    (true, false) => ViewChange::leave(old),
                    (false, true) => ViewChange::enter(new),
                    (false, false) => return Ok(None),
                }
            }
            RowEvent::Delete { row_id, old, seq } => {
                if seen(row_id).is_some_and(|s| s >= *seq) || !loading.view.remove(row_id) {
                    return Ok(None);
                }
                ViewChange::leave(old)
            }
        };
        Ok(Some(change))
    }

    /// The messages of a write, matched against the filter on its own.
    fn match_live(&self, batch: &ChangeBatch) -> QueryResult<Vec<LiveMessage>> {
        // The filter runs once over all old versions and once over all new ones.
        let (olds, news): (Vec<Option<&RowVersion>>, Vec<Option<&RowVersion>>) = batch
            .events
            .iter()
            .map(|e| match e {
                RowEvent::Insert { new, .. } => (None, Some(new)),
                RowEvent::Update { old, new, .. } => (Some(old), Some(new)),
                RowEvent::Delete { old, .. } => (Some(old), None),
            })
            .unzip();
        let old_matches = self.matches_of(&olds)?;
        let new_matches = self.matches_of(&news)?;
        let changes = olds
            .iter()
            .zip(&news)
            .zip(old_matches.iter().zip(&new_matches))
            .filter_map(
                |((old, new), (old_matched, new_matched))| match (old, new, old_matched, new_matched) {
                    (Some(old), Some(new), true, true) => Some(ViewChange::update(old, new)),
                    (Some(old), _, true, false) => Some(ViewChange::leave(old)),
                    (_, Some(new), false, true) => Some(ViewChange::enter(new)),
                    _ => None,
                },
            )
            .collect();
        let mut out = Vec::new();
        self.emit(changes, &mut out)?;
        Ok(out)
    }

    /// Whether each present version matches (absent ones do not).
    fn matches_of(&self, versions: &[Option<&RowVersion>]) -> QueryResult<Vec<bool>> {
        let present: Vec<&RowVersion> = versions.iter().flatten().copied().collect();
        let mut flags = self.query.matches(&self.query.rows_batch(&present)?)?.into_iter();
        Ok(versions
            .iter()
            .map(|v| v.is_some() && flags.next().unwrap_or(false))
            .collect())
    }

    /// Groups consecutive changes of one kind into one message each.
    fn emit(&self, changes: Vec<ViewChange<'_>>, out: &mut Vec<LiveMessage>) -> QueryResult<()> {
        let mut delivered = 0u64;
        let mut start = 0;
        while start < changes.len() {
            let kind = changes[start].kind;
            let end = changes[start..]
                .iter()
                .position(|c| c.kind != kind)
                .map_or(changes.len(), |p| start + p);
            let run = &changes[start..end];
            let news: Vec<&RowVersion> = run.iter().filter_map(|c| c.new).collect();
            let olds: Vec<&RowVersion> = run.iter().filter_map(|c| c.old).collect();
            let rows = (!news.is_empty())
                .then(|| self.query.project(&self.query.rows_batch(&news)?))
                .transpose()?;
            let old = (!olds.is_empty())
                .then(|| self.query.project(&self.query.rows_batch(&olds)?))
                .transpose()?;
            out.push(LiveMessage::Change { kind, rows, old });
            delivered += run.len() as u64;
            start = end;
        }
        if delivered > 0 {
            self.entry.delivered(delivered);
        }
        Ok(())
    }
}

/// One row's change to the view.
struct ViewChange<'a> {
    kind: ChangeKind,
    old: Option<&'a RowVersion>,
    new: Option<&'a RowVersion>,
}

impl<'a> ViewChange<'a> {
    fn enter(new: &'a RowVersion) -> Self {
        Self {
            kind: ChangeKind::Insert,
            old: None,
            new: Some(new),
        }
    }
    fn update(old: &'a RowVersion, new: &'a RowVersion) -> Self {
        Self {
            kind: ChangeKind::Update,
            old: Some(old),
            new: Some(new),
        }
    }
    fn leave(old: &'a RowVersion) -> Self {
        Self {
            kind: ChangeKind::Delete,
            old: Some(old),
            new: None,
        }
    }
}
