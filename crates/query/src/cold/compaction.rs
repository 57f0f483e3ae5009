//! Compaction: a partition's segments rewritten as one.
//!
//! Each row keeps only its newest flushed version, so a partition whose rows were updated
//! after a flush is read again without sorting its versions (see [`super::merged`]), and a
//! deleted version older than the table's `DELETED_RETENTION_HOURS` is dropped for good
//! together with every older version of its row.
//!
//! The hand-over is the flush's: the new segment is written and synced under a temporary
//! name and renamed, then one atomic write of the row store puts it in the place of the
//! segments it was made from and records their files as retired. The files are removed
//! after that write, and again by the next compaction of the partition: a crash at any
//! point leaves the old segments or the new one listed, and no file behind for good. A
//! read that still planned with the old segments and finds a file gone runs again.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use calamus_domain::Partition;
use calamus_domain::model::{Manifest, Segment, StorageDefinition, TableDefinition, TableKind};
use futures::TryStreamExt;

use super::flush::{column_stats, segment_relative_path, write_segment};
use super::segment_reader::SegmentRead;
use super::{ColdStorage, crash_point, segment_schema};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::jobs::running::RunningJob;

/// A partition is compacted once it has more segments than this, even with no version to
/// drop: each segment is a file opened by every read of the partition.
pub const MAX_SEGMENTS: usize = 32;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Partitions compacted.
    pub partitions: u64,
    /// Segments replaced.
    pub segments: u64,
    /// Versions dropped: superseded by a newer flushed one, or deleted past retention.
    pub versions_dropped: u64,
    /// Bytes of Parquet written.
    pub bytes: u64,
    /// Whether `KILL JOB` stopped it before every partition was visited.
    pub cancelled: bool,
}

impl std::ops::AddAssign for CompactionOutcome {
    fn add_assign(&mut self, other: Self) {
        self.partitions += other.partitions;
        self.segments += other.segments;
        self.versions_dropped += other.versions_dropped;
        self.bytes += other.bytes;
        self.cancelled |= other.cancelled;
    }
}

/// Which partitions a compaction rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionScope {
    /// Every partition with more than one segment, or a version to drop.
    All,
    /// Partitions that need it: a row with two flushed versions (its reads sort every
    /// version), more than [`MAX_SEGMENTS`] segments, or a deleted version to drop (what
    /// the clean-up job compacts).
    Needed,
}

impl CompactionScope {
    /// Whether a partition with `manifest` is rewritten, deleted versions with a `_seq`
    /// below `purge_before` being dropped.
    pub fn wants(self, manifest: &Manifest, purge_before: Option<i64>) -> bool {
        let purgeable =
            purge_before.is_some_and(|cutoff| manifest.segments.iter().any(|s| s.may_hold_deleted_before(cutoff)));
        match self {
            CompactionScope::All => manifest.segments.len() > 1 || purgeable || manifest.may_hold_superseded_versions(),
            CompactionScope::Needed => {
                purgeable || manifest.may_hold_superseded_versions() || manifest.segments.len() > MAX_SEGMENTS
            }
        }
    }
}

impl QueryEngine {
    /// Compacts the partitions of `table` that `scope` picks, one after the other, until
    /// `job` is cancelled; deleted versions with a `_seq` below `purge_before` are dropped.
    pub async fn compact_table(
        &self,
        table: &Arc<TableDefinition>,
        scope: CompactionScope,
        purge_before: Option<i64>,
        job: &RunningJob,
    ) -> QueryResult<CompactionOutcome> {
        if table.kind == TableKind::Stream {
            return Err(QueryError::InvalidStatement(format!(
                "STREAM table {} has no segments to compact: its rows expire by TTL_SECONDS and MAX_ROWS",
                table.id
            )));
        }
        let cold = self.cold_storage()?;
        let _no_flush_meanwhile = self.lock_segments_of(table).await;
        let storage = ColdStorage::storage_of(&self.catalog.snapshot(), table)?;
        let mut outcome = CompactionOutcome::default();
        for (partition, manifest) in self.rows.manifests(table)? {
            if job.is_cancelled() {
                outcome.cancelled = true;
                break;
            }
            if scope.wants(&manifest, purge_before) {
                outcome += self
                    .compact_partition(cold, &storage, table, &partition, &manifest, purge_before)
                    .await?;
            }
        }
        Ok(outcome)
    }

    /// Rewrites the segments of one partition as one (the caller holds the table's flush
    /// lock, so `manifest` is current).
    async fn compact_partition(
        &self,
        cold: &ColdStorage,
        storage: &StorageDefinition,
        table: &Arc<TableDefinition>,
        partition: &Partition,
        manifest: &Manifest,
        purge_before: Option<i64>,
    ) -> QueryResult<CompactionOutcome> {
        self.remove_segment_files(cold, storage, &manifest.retired).await;
        let schema = segment_schema(table);
        let segments: Vec<&Segment> = manifest.segments.iter().collect();
        let read = SegmentRead {
            table,
            cold,
            storage,
            schema: &schema,
            projection: (0..schema.fields().len()).collect(),
            predicate: None,
        };
        let batches: Vec<RecordBatch> = read
            .stream(&segments, Arc::clone(&self.base_task))?
            .try_collect()
            .await?;
        let versions = concat_batches(&schema, &batches)?;
        let columns = table.schema().columns.len();
        let (kept, purged) = newest_versions(&versions, columns, purge_before)?;
        let replaced: Vec<u64> = manifest.segments.iter().map(|s| s.batch).collect();
        let dropped = (versions.num_rows() - kept.num_rows()) as u64;
        let mut bytes = 0;
        let segment = if kept.num_rows() == 0 {
            None
        } else {
            let batch_number = manifest.next_batch;
            let relative = segment_relative_path(storage, table, partition, batch_number);
            let path = cold.segment_path(storage, &relative.to_string_lossy());
            let stats = column_stats(table, &kept)?;
            let written = kept.clone();
            bytes = tokio::task::spawn_blocking(move || write_segment(&path, &written, "compaction-segment-written"))
                .await
                .map_err(|e| QueryError::InvalidStatement(format!("writing a segment failed: {e}")))??;
            let seqs = kept.column(columns).as_primitive::<Int64Type>();
            let deleted = kept.column(columns + 1).as_boolean();
            let row_ids = kept.column(columns + 2).as_binary::<i32>();
            Some(Segment {
                batch: batch_number,
                path: relative.to_string_lossy().into_owned(),
                min_seq: arrow::compute::min(seqs).unwrap_or_default(),
                max_seq: arrow::compute::max(seqs).unwrap_or_default(),
                rows: kept.num_rows() as u64,
                bytes,
                schema_version: table.schema().version,
                columns: stats,
                superseding: Some(0),
                deleted: Some(deleted.true_count() as u64),
                oldest_deleted_seq: (0..kept.num_rows())
                    .filter(|&row| deleted.value(row))
                    .map(|row| seqs.value(row))
                    .min(),
                // Sorted by row id: the first and the last.
                row_ids: Some((row_ids.value(0).to_vec(), row_ids.value(row_ids.len() - 1).to_vec())),
            })
        };
        crash_point("compaction-segment-renamed");
        self.rows
            .commit_compaction(table, partition, replaced, segment, purged)
            .await?;
        crash_point("compaction-committed");
        self.remove_segment_files(
            cold,
            storage,
            &manifest.segments.iter().map(|s| s.path.clone()).collect::<Vec<_>>(),
        )
        .await;
        Ok(CompactionOutcome {
            partitions: 1,
            segments: manifest.segments.len() as u64,
            versions_dropped: dropped,
            bytes,
            cancelled: false,
        })
    }

    /// Removes segment files no manifest lists any more (a file already gone is fine; a
    /// failure is logged and tried again by the next compaction), never while a backup
    /// copies segments.
    async fn remove_segment_files(&self, cold: &ColdStorage, storage: &StorageDefinition, paths: &[String]) {
        if paths.is_empty() {
            return;
        }
        let _no_backup_copies = self.segment_removal.write().await;
        for relative in paths {
            let path = cold.segment_path(storage, relative);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(path = %path.display(), %error, "a replaced segment file was not removed"),
            }
        }
    }
}

/// A deleted version dropped for good: its row id and `_seq`.
type PurgedVersion = (Vec<u8>, i64);

/// Each row's newest version of `versions` (the full segment layout: `columns` columns,
/// `_seq`, `_deleted`, row id), in row-id order, less the deleted ones with a `_seq` below
/// `purge_before`; and those dropped deleted versions as `(row id, _seq)`.
fn newest_versions(
    versions: &RecordBatch,
    columns: usize,
    purge_before: Option<i64>,
) -> QueryResult<(RecordBatch, Vec<PurgedVersion>)> {
    let seqs = versions.column(columns).as_primitive::<Int64Type>();
    let deleted: &BooleanArray = versions.column(columns + 1).as_boolean();
    let row_ids = versions.column(columns + 2).as_binary::<i32>();
    let order = lexsort_to_indices(
        &[
            SortColumn {
                values: Arc::clone(versions.column(columns + 2)),
                options: Some(SortOptions::default()),
            },
            SortColumn {
                values: Arc::clone(versions.column(columns)),
                options: Some(SortOptions {
                    descending: true,
                    nulls_first: false,
                }),
            },
        ],
        None,
    )?;
    let mut kept = Vec::with_capacity(order.len());
    let mut purged = Vec::new();
    let mut previous: Option<&[u8]> = None;
    for at in order.values().iter().map(|&i| i as usize) {
        let id = row_ids.value(at);
        if previous == Some(id) {
            continue;
        }
        previous = Some(id);
        let seq = seqs.value(at);
        if deleted.value(at) && purge_before.is_some_and(|cutoff| seq < cutoff) {
            purged.push((id.to_vec(), seq));
        } else {
            kept.push(at as u32);
        }
    }
    let kept = take_record_batch(versions, &UInt32Array::from(kept))?;
    Ok((kept, purged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    fn versions(rows: &[(&[u8], i64, bool, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("c1", DataType::Int64, true),
            Field::new("_seq", DataType::Int64, false),
            Field::new("_deleted", DataType::Boolean, false),
            Field::new("_row_id", DataType::Binary, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.2)))),
                Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| r.0))),
            ],
        )
        .unwrap()
    }

    fn rows_of(batch: &RecordBatch) -> Vec<(Vec<u8>, i64, bool, i64)> {
        let values = batch.column(0).as_primitive::<Int64Type>();
        let seqs = batch.column(1).as_primitive::<Int64Type>();
        let deleted = batch.column(2).as_boolean();
        let ids = batch.column(3).as_binary::<i32>();
        (0..batch.num_rows())
            .map(|i| (ids.value(i).to_vec(), seqs.value(i), deleted.value(i), values.value(i)))
            .collect()
    }

    #[test]
    fn each_row_keeps_its_newest_version_in_row_id_order() {
        let all = versions(&[
            (b"b", 5, false, 50),
            (b"a", 1, false, 10),
            (b"b", 7, false, 70),
            (b"a", 3, false, 30),
        ]);
        let (kept, purged) = newest_versions(&all, 1, None).unwrap();
        assert_eq!(
            rows_of(&kept),
            vec![(b"a".to_vec(), 3, false, 30), (b"b".to_vec(), 7, false, 70)]
        );
        assert!(purged.is_empty());
    }

    #[test]
    fn deleted_versions_go_only_past_the_cutoff_and_take_older_versions_along() {
        let all = versions(&[
            (b"a", 1, false, 10),
            (b"a", 4, true, 10),
            (b"b", 2, false, 20),
            (b"b", 9, true, 20),
            (b"c", 6, false, 60),
        ]);
        let (kept, purged) = newest_versions(&all, 1, None).unwrap();
        assert_eq!(
            kept.num_rows(),
            3,
            "without a cutoff deleted versions stay, hiding older ones"
        );
        assert!(purged.is_empty());
        let (kept, purged) = newest_versions(&all, 1, Some(5)).unwrap();
        assert_eq!(
            rows_of(&kept),
            vec![(b"b".to_vec(), 9, true, 20), (b"c".to_vec(), 6, false, 60)],
            "a's delete (seq 4) is past the cutoff; b's (seq 9) is not"
        );
        assert_eq!(purged, vec![(b"a".to_vec(), 4)]);
    }
}
