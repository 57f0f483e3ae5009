//! Flushing: a partition's hot rows become one Parquet segment.
//!
//! Every version the partition holds is written, deleted ones included (a flushed delete
//! keeps older flushed versions of its row hidden). The file is written and fsynced under
//! a temporary name, renamed, and its folder synced, before the row store hands the rows
//! over in one atomic write. A crash before the hand-over leaves a file no manifest names,
//! which the next flush of the partition overwrites: no row is lost or doubled.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, BooleanArray, Int64Array};
use arrow::record_batch::RecordBatch;
use calamus_domain::arrow_rows::build_array;
use calamus_domain::model::{ColumnStats, Segment, TableDefinition, TableKind};
use calamus_domain::{DomainError, Partition, ScanRequest, StoredRow};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::{ColdStorage, crash_point, segment_schema};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::jobs::running::RunningJob;

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Partitions that had hot rows.
    pub partitions: u64,
    /// Segments written.
    pub segments: u64,
    /// Row versions written.
    pub rows: u64,
    /// Bytes of Parquet written.
    pub bytes: u64,
    /// Whether `KILL JOB` stopped the flush before every partition was visited.
    pub cancelled: bool,
}

impl std::ops::AddAssign for FlushOutcome {
    fn add_assign(&mut self, other: Self) {
        self.partitions += other.partitions;
        self.segments += other.segments;
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.cancelled |= other.cancelled;
    }
}

impl QueryEngine {
    /// Flushes every partition of `table` that holds hot rows, one after the other, until
    /// `job` is cancelled.
    pub async fn flush_table(&self, table: &Arc<TableDefinition>, job: &RunningJob) -> QueryResult<FlushOutcome> {
        if table.kind == TableKind::Stream {
            return Err(QueryError::InvalidStatement(format!(
                "STREAM table {} is never flushed: its rows expire by TTL_SECONDS and MAX_ROWS",
                table.id
            )));
        }
        let cold = self.cold_storage()?;
        let _one_flush_at_a_time = self.lock_segments_of(table).await;
        let storage = ColdStorage::storage_of(&self.catalog.snapshot(), table)?;
        let rows = Arc::clone(&self.rows);
        let visited = Arc::clone(table);
        let partitions = tokio::task::spawn_blocking(move || rows.hot_partitions(&visited))
            .await
            .map_err(|e| QueryError::InvalidStatement(format!("listing partitions failed: {e}")))??;
        let mut outcome = FlushOutcome::default();
        for partition in partitions {
            if job.is_cancelled() {
                outcome.cancelled = true;
                break;
            }
            outcome += self.flush_partition(cold, &storage, table, &partition).await?;
        }
        if outcome.segments > 0 {
            // The flushed rows left the hot tier as deletes: without a compaction, every
            // later scan of the hot rows would step over them.
            crate::jobs::compact_hot_rows(&self.rows, table, "a flush").await;
        }
        Ok(outcome)
    }

    /// Held while a flush or a compaction of `table` changes its segments: one at a time.
    pub(super) async fn lock_segments_of(&self, table: &TableDefinition) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.flush_locks.lock().entry(table.uid).or_default());
        lock.lock_owned().await
    }

    async fn flush_partition(
        &self,
        cold: &ColdStorage,
        storage: &calamus_domain::model::StorageDefinition,
        table: &Arc<TableDefinition>,
        partition: &Partition,
    ) -> QueryResult<FlushOutcome> {
        let store = Arc::clone(&self.rows);
        let (read_table, read_partition) = (Arc::clone(table), partition.clone());
        let versions: Vec<StoredRow> = tokio::task::spawn_blocking(move || {
            let request = ScanRequest {
                include_deleted: true,
                ..ScanRequest::all()
            };
            store
                .scan(&read_table, &read_partition, request)?
                .collect::<Result<Vec<StoredRow>, _>>()
        })
        .await
        .map_err(|e| QueryError::InvalidStatement(format!("reading rows to flush failed: {e}")))??;
        if versions.is_empty() {
            return Ok(FlushOutcome::default());
        }
        let manifest = self.rows.manifest(table, partition)?;
        let batch_number = manifest.next_batch;
        let relative = segment_relative_path(storage, table, partition, batch_number);
        let path = cold.segment_path(storage, &relative.to_string_lossy());
        let batch = segment_batch(table, &versions)?;
        let columns = column_stats(table, &batch)?;
        let written = batch.clone();
        let bytes = tokio::task::spawn_blocking(move || write_segment(&path, &written, "flush-segment-written"))
            .await
            .map_err(|e| QueryError::InvalidStatement(format!("writing a segment failed: {e}")))??;
        let segment = Segment {
            batch: batch_number,
            path: relative.to_string_lossy().into_owned(),
            min_seq: versions.iter().map(|r| r.version.seq).min().unwrap_or_default(),
            max_seq: versions.iter().map(|r| r.version.seq).max().unwrap_or_default(),
            rows: versions.len() as u64,
            bytes,
            schema_version: table.schema().version,
            columns,
            superseding: None,
            deleted: Some(versions.iter().filter(|r| r.version.deleted).count() as u64),
            oldest_deleted_seq: versions
                .iter()
                .filter(|r| r.version.deleted)
                .map(|r| r.version.seq)
                .min(),
            row_ids: versions
                .iter()
                .map(|r| &r.row_id)
                .min()
                .zip(versions.iter().map(|r| &r.row_id).max())
                .map(|(min, max)| (min.clone(), max.clone())),
        };
        let flushed = versions
            .into_iter()
            .map(|r| (r.row_id, r.version.seq, r.version.deleted))
            .collect::<Vec<_>>();
        let rows = flushed.len() as u64;
        crash_point("flush-segment-renamed");
        self.rows.commit_flush(table, partition, segment, flushed).await?;
        crash_point("flush-committed");
        Ok(FlushOutcome {
            partitions: 1,
            segments: 1,
            rows,
            bytes,
            cancelled: false,
        })
    }

    /// The cold storage, if this engine has a data directory.
    pub(crate) fn cold_storage(&self) -> QueryResult<&ColdStorage> {
        self.cold
            .as_ref()
            .ok_or_else(|| QueryError::Unsupported("this engine has no data directory for cold storage".into()))
    }
}

/// Where segment `batch` of a partition goes, relative to its storage's base directory.
pub(super) fn segment_relative_path(
    storage: &calamus_domain::model::StorageDefinition,
    table: &TableDefinition,
    partition: &Partition,
    batch: u64,
) -> std::path::PathBuf {
    storage
        .table_folder(
            table.id.namespace.as_str(),
            table.id.table.as_str(),
            partition.user().map(|u| u.as_str()),
        )
        .join(format!("batch-{batch}.parquet"))
}

/// The versions as a segment's batch: columns by id, `_seq`, `_deleted`, row id.
fn segment_batch(table: &TableDefinition, versions: &[StoredRow]) -> QueryResult<RecordBatch> {
    let columns = &table.schema().columns;
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len() + 3);
    for (i, column) in columns.iter().enumerate() {
        arrays.push(build_array(&column.data_type, versions.len(), |r| {
            &versions[r].version.values[i]
        })?);
    }
    arrays.push(std::sync::Arc::new(Int64Array::from_iter_values(
        versions.iter().map(|r| r.version.seq),
    )));
    arrays.push(std::sync::Arc::new(BooleanArray::from_iter(
        versions.iter().map(|r| Some(r.version.deleted)),
    )));
    let mut ids = BinaryBuilder::with_capacity(versions.len(), versions.len() * 8);
    for row in versions {
        ids.append_value(&row.row_id);
    }
    arrays.push(std::sync::Arc::new(ids.finish()));
    Ok(RecordBatch::try_new(segment_schema(table), arrays)?)
}

/// Per user column: smallest and largest value (as SQL text) and NULL count.
pub(super) fn column_stats(table: &TableDefinition, batch: &RecordBatch) -> QueryResult<Vec<ColumnStats>> {
    table
        .schema()
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let array = batch.column(i);
            // A type the accumulators do not order has no bounds: nothing is pruned by it.
            let bounds = || -> datafusion::common::Result<(ScalarValue, ScalarValue)> {
                let mut min = MinAccumulator::try_new(array.data_type())?;
                let mut max = MaxAccumulator::try_new(array.data_type())?;
                min.update_batch(std::slice::from_ref(array))?;
                max.update_batch(std::slice::from_ref(array))?;
                Ok((min.evaluate()?, max.evaluate()?))
            };
            let (min, max) = match bounds() {
                Ok((min, max)) => ((!min.is_null()).then_some(min), (!max.is_null()).then_some(max)),
                Err(_) => (None, None),
            };
            Ok(ColumnStats {
                column_id: column.id,
                min: min.map(|v| v.to_string()),
                max: max.map(|v| v.to_string()),
                nulls: array.null_count() as u64,
            })
        })
        .collect()
}

/// Writes `batch` as Parquet at `path`: to a temporary file, fsynced, renamed, and the
/// folder fsynced. Gives the file's size. A failure removes the temporary file; a full
/// disk is `DiskFull`, so the caller hears the cause and can retry later. `synced_step` is
/// the crash point between the fsync and the rename.
pub(super) fn write_segment(path: &Path, batch: &RecordBatch, synced_step: &str) -> QueryResult<u64> {
    let temporary = path.with_extension("parquet.tmp");
    let written = write_segment_file(path, &temporary, batch, synced_step);
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn write_segment_file(path: &Path, temporary: &Path, batch: &RecordBatch, synced_step: &str) -> QueryResult<u64> {
    let io = |e: std::io::Error| segment_io_error(path, e);
    let parquet = |e: datafusion::parquet::errors::ParquetError| match e {
        datafusion::parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(e) => segment_io_error(path, *e),
            Err(other) => DomainError::Storage(format!("writing {}: {other}", path.display())).into(),
        },
        other => DomainError::Storage(format!("writing {}: {other}", path.display())).into(),
    };
    let folder = path.parent().expect("a segment path has a folder");
    std::fs::create_dir_all(folder).map_err(io)?;
    let file = File::create(temporary).map_err(io)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    let file = writer.into_inner().map_err(parquet)?;
    file.sync_all().map_err(io)?;
    drop(file);
    crash_point(synced_step);
    std::fs::rename(temporary, path).map_err(io)?;
    File::open(folder).and_then(|f| f.sync_all()).map_err(io)?;
    Ok(std::fs::metadata(path).map_err(io)?.len())
}

/// A file-system failure while writing the segment at `path`.
fn segment_io_error(path: &Path, error: std::io::Error) -> QueryError {
    let message = format!("writing {}: {error}", path.display());
    match error.kind() {
        std::io::ErrorKind::StorageFull => DomainError::DiskFull(message),
        std::io::ErrorKind::ReadOnlyFilesystem => DomainError::DiskReadOnly(message),
        _ => DomainError::Storage(message),
    }
    .into()
}
