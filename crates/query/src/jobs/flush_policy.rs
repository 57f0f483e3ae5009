//! Flushing by policy: each USER or SHARED table's `FLUSH_POLICY` (`rows:N`: once a
//! partition holds N new hot rows; `interval:S`: every S seconds), checked every tick,
//! and every table with a policy flushed once more at graceful shutdown. Each flush is a
//! `flush` job of `system.jobs`.
//!
//! New hot rows are counted by [`HotRowCounter`], a change listener of the row store that
//! watches only tables with a `rows:N` policy, so other writes pay nothing. The count
//! lives in memory; when a table is first watched (a new table, or any table after a
//! restart) its partitions' hot rows are counted once from the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus_domain::model::{TableDefinition, TableKind};
use calamus_domain::{ChangeBatch, ChangeListener, Partition, ScanRequest};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::cold::statement::flush_as_job;
use crate::engine::QueryEngine;

/// Counts new hot row versions per partition of the tables it watches.
#[derive(Debug, Default)]
pub struct HotRowCounter {
    watched: RwLock<HashSet<u64>>,
    counts: Mutex<HashMap<(u64, Partition), u64>>,
}

impl HotRowCounter {
    /// A counter watching nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches exactly the tables `uids`; gives the ones not watched before.
    fn watch(&self, uids: HashSet<u64>) -> Vec<u64> {
        let mut watched = self.watched.write();
        let new = uids.difference(&watched).copied().collect();
        *watched = uids;
        self.counts.lock().retain(|(uid, _), _| watched.contains(uid));
        new
    }

    /// Adds `n` hot rows to a partition's count.
    fn add(&self, uid: u64, partition: Partition, n: u64) {
        *self.counts.lock().entry((uid, partition)).or_default() += n;
    }

    /// The largest count of a partition of table `uid`.
    fn largest(&self, uid: u64) -> u64 {
        self.counts
            .lock()
            .iter()
            .filter(|((table, _), _)| *table == uid)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }

    /// Forgets the counts of table `uid` (it was flushed).
    fn reset(&self, uid: u64) {
        self.counts.lock().retain(|(table, _), _| *table != uid);
    }
}

impl ChangeListener for HotRowCounter {
    fn watches(&self, table_uid: u64, _partition: &Partition) -> bool {
        self.watched.read().contains(&table_uid)
    }

    fn committed(&self, batch: ChangeBatch) {
        self.add(batch.table_uid, batch.partition, batch.events.len() as u64);
    }
}

/// Flushes tables by their policies every `tick` until `shutdown` changes, then flushes
/// every table that has a policy once more.
pub async fn run(
    engine: Arc<QueryEngine>,
    counter: Arc<HotRowCounter>,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_flush: HashMap<u64, Instant> = HashMap::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        let tables = with_policy(&engine);
        let newly_watched = counter.watch(
            tables
                .iter()
                .filter(|t| t.options.flush_policy.as_ref().is_some_and(|p| p.rows.is_some()))
                .map(|t| t.uid)
                .collect(),
        );
        for table in tables.iter().filter(|t| newly_watched.contains(&t.uid)) {
            count_hot_rows(&engine, &counter, table).await;
        }
        for table in tables {
            let policy = table.options.flush_policy.expect("filtered on a policy");
            let since = *last_flush.entry(table.uid).or_insert_with(Instant::now);
            let rows_due = policy.rows.is_some_and(|n| counter.largest(table.uid) >= n);
            let interval_due = policy
                .interval_seconds
                .is_some_and(|s| since.elapsed() >= Duration::from_secs(s));
            if rows_due || interval_due {
                flush(&engine, &counter, &table).await;
                last_flush.insert(table.uid, Instant::now());
            }
        }
    }
    for table in with_policy(&engine) {
        flush(&engine, &counter, &table).await;
    }
}

/// Counts the hot rows already in a table's partitions (once, when it is first watched).
async fn count_hot_rows(engine: &QueryEngine, counter: &Arc<HotRowCounter>, table: &Arc<TableDefinition>) {
    let rows = Arc::clone(engine.rows());
    let (table, counter) = (Arc::clone(table), Arc::clone(counter));
    let counted = tokio::task::spawn_blocking(move || -> calamus_domain::DomainResult<()> {
        for partition in rows.hot_partitions(&table)? {
            let request = ScanRequest {
                include_deleted: true,
                ..ScanRequest::all()
            };
            let n = rows.scan(&table, &partition, request)?.count() as u64;
            counter.add(table.uid, partition, n);
        }
        Ok(())
    })
    .await;
    if !matches!(counted, Ok(Ok(()))) {
        tracing::warn!("counting the hot rows of a table with a flush policy failed; its next flush may come late");
    }
}

/// USER and SHARED tables with a `FLUSH_POLICY`.
fn with_policy(engine: &QueryEngine) -> Vec<Arc<TableDefinition>> {
    engine
        .catalog()
        .snapshot()
        .tables
        .values()
        .filter(|t| t.kind != TableKind::Stream && t.options.flush_policy.is_some())
        .cloned()
        .collect()
}

/// Flushes a table that has hot rows (an empty one is skipped: no job row for nothing).
async fn flush(engine: &QueryEngine, counter: &HotRowCounter, table: &Arc<TableDefinition>) {
    let has_hot_rows = engine.rows().hot_partitions(table).map(|p| !p.is_empty());
    match has_hot_rows {
        Ok(false) => {
            counter.reset(table.uid);
            return;
        }
        Ok(true) => {}
        Err(error) => {
            tracing::warn!(table = %table.id, %error, "could not tell whether a table has rows to flush");
            return;
        }
    }
    match flush_as_job(engine, table).await {
        Ok(_) => counter.reset(table.uid),
        Err(error) => {
            tracing::warn!(table = %table.id, %error, "a flush by policy failed; it is retried at the next tick");
        }
    }
}
