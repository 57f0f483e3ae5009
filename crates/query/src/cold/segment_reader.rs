//! Reading segments through DataFusion's Parquet reader, for both plans of a merged scan.
//!
//! A segment is read for the columns it can answer. The others are filled per batch with
//! one value:
//! - a column added after the segment was written reads as the value the ALTER gave older
//!   rows (its default, else NULL), as hot rows of older schema versions do;
//! - `_deleted` of a segment the manifest records as holding no deleted version reads as
//!   `false`, without decoding the column.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use calamus_domain::arrow_rows::build_array;
use calamus_domain::model::{Segment, StorageDefinition, TableDefinition};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use super::ColdStorage;

/// The segments of one partition to read, and how.
pub(super) struct SegmentRead<'a> {
    /// The table.
    pub table: &'a TableDefinition,
    /// Where segments are.
    pub cold: &'a ColdStorage,
    /// The table's storage.
    pub storage: &'a StorageDefinition,
    /// The full layout of a segment (columns, `_seq`, `_deleted`, row id).
    pub schema: &'a SchemaRef,
    /// Positions of the full layout to read, in output order.
    pub projection: Vec<usize>,
    /// Skips row groups by their statistics (where the file holds every column it names).
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
}

/// A column of the output that is not read from a group's files.
#[derive(Debug, Clone, PartialEq)]
enum Fill {
    /// Added after the segments were written: the value older rows read as.
    AddedLater(usize),
    /// `_deleted` of segments holding no deleted version.
    NeverDeleted(usize),
}

impl Fill {
    fn position(&self) -> usize {
        match self {
            Fill::AddedLater(at) | Fill::NeverDeleted(at) => *at,
        }
    }
}

impl SegmentRead<'_> {
    /// The rows of `segments`, their files spread over the session's target partitions and
    /// read concurrently.
    pub fn stream(self, segments: &[&Segment], ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.cold.count_segments_read(segments.len());
        let partitions = ctx.session_config().target_partitions().max(1);
        let mut groups: Vec<(Vec<Fill>, Vec<PartitionedFile>)> = Vec::new();
        for segment in segments {
            let fills = self.fills_of(segment);
            let file = self.file_of(segment);
            match groups.iter_mut().find(|(f, _)| *f == fills) {
                Some((_, files)) => files.push(file),
                None => groups.push((fills, vec![file])),
            }
        }
        let projected: SchemaRef = Arc::new(self.schema.project(&self.projection)?);
        let runtime = ctx.runtime_env();
        let readers: Arc<dyn ParquetFileReaderFactory> = Arc::new(CachedParquetFileReaderFactory::new(
            runtime.object_store(ObjectStoreUrl::local_filesystem())?,
            runtime.cache_manager.get_file_metadata_cache(),
        ));
        let mut streams = Vec::with_capacity(groups.len());
        for (fills, files) in groups {
            let mut source =
                ParquetSource::new(Arc::clone(self.schema)).with_parquet_file_reader_factory(Arc::clone(&readers));
            // Row groups are skipped by their statistics only where the file holds every
            // column: a column added later reads as its fill value, which they do not know.
            // (The predicate never names `_deleted`.)
            let complete = !fills.iter().any(|f| matches!(f, Fill::AddedLater(_)));
            if let Some(predicate) = self.predicate.as_ref().filter(|_| complete) {
                source = source.with_predicate(Arc::clone(predicate));
            }
            let read = self.columns_read(&fills);
            let mut config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source));
            let per_group = files.len().div_ceil(partitions);
            for group in files.chunks(per_group) {
                config = config.with_file_group(FileGroup::new(group.to_vec()));
            }
            let exec: Arc<dyn ExecutionPlan> =
                DataSourceExec::from_data_source(config.with_projection_indices(Some(read))?.build());
            let stream = if per_group < files.len() {
                CoalescePartitionsExec::new(exec).execute(0, Arc::clone(&ctx))?
            } else {
                exec.execute(0, Arc::clone(&ctx))?
            };
            if fills.is_empty() {
                streams.push(stream);
                continue;
            }
            let values = self.fill_values(&fills)?;
            let schema = Arc::clone(&projected);
            let filled = stream.map(move |batch| with_fills(&batch?, &schema, &values));
            streams.push(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&projected), filled)));
        }
        let batches = futures::stream::iter(streams)
            .flatten()
            .map(|batch| batch.map_err(raced_when_a_file_is_gone));
        Ok(Box::pin(RecordBatchStreamAdapter::new(projected, batches)))
    }

    /// The output columns `segment` does not give.
    fn fills_of(&self, segment: &Segment) -> Vec<Fill> {
        let columns = &self.table.schema().columns;
        let deleted_at = columns.len() + 1;
        self.projection
            .iter()
            .enumerate()
            .filter_map(|(out, &i)| {
                if i < columns.len() && columns[i].added_in_version > segment.schema_version {
                    Some(Fill::AddedLater(out))
                } else if i == deleted_at && segment.holds_no_deleted_rows() {
                    Some(Fill::NeverDeleted(out))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The positions of the full layout read from files, for a group with `fills`.
    fn columns_read(&self, fills: &[Fill]) -> Vec<usize> {
        (0..self.projection.len())
            .filter(|out| !fills.iter().any(|f| f.position() == *out))
            .map(|out| self.projection[out])
            .collect()
    }

    fn file_of(&self, segment: &Segment) -> PartitionedFile {
        let path = self.cold.segment_path(self.storage, &segment.path);
        let mut file = PartitionedFile::new(path.to_string_lossy().trim_start_matches('/').to_owned(), segment.bytes);
        // The session caches a file's Parquet metadata under its path while its size and
        // modification time match. A segment's file is never rewritten (a compaction
        // writes a new one), but a path can name
        // another segment later (a table dropped and created again), so the time given is
        // the segment's newest `_seq`, which no other segment has.
        file.object_meta.last_modified = chrono::DateTime::from_timestamp_nanos(segment.max_seq);
        file
    }

    /// Each fill's position and value.
    fn fill_values(&self, fills: &[Fill]) -> Result<Vec<(usize, ScalarValue)>> {
        let columns = &self.table.schema().columns;
        fills
            .iter()
            .map(|fill| match *fill {
                Fill::NeverDeleted(out) => Ok((out, ScalarValue::Boolean(Some(false)))),
                Fill::AddedLater(out) => {
                    let column = &columns[self.projection[out]];
                    let value = column
                        .missing_value
                        .as_ref()
                        .map_or(calamus_domain::Value::Null, |v| v.to_value(&column.data_type));
                    let one = build_array(&column.data_type, 1, |_| &value)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    Ok((out, ScalarValue::try_from_array(&one, 0)?))
                }
            })
            .collect()
    }
}

/// `batch` (the columns read) with the filled ones put in their places.
fn with_fills(batch: &RecordBatch, schema: &SchemaRef, fills: &[(usize, ScalarValue)]) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let mut read = batch.columns().iter();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for out in 0..schema.fields().len() {
        // A constant boolean is built as a bitmap, without a value per row.
        let array = match fills.iter().find(|(at, _)| *at == out) {
            Some((_, value)) => value.to_array_of_size(rows)?,
            None => Arc::clone(read.next().expect("a column read for each one not filled")),
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// A segment file missing while it is read was removed by a compaction that replaced it
/// after the read's manifest was taken: the statement runs again, with the new manifest.
fn raced_when_a_file_is_gone(error: DataFusionError) -> DataFusionError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        {
            return DataFusionError::External(Box::new(calamus_domain::DomainError::ReadRacedFlush(format!(
                "a segment was compacted while it was read ({error}); run the statement again"
            ))));
        }
        cause = e.source();
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamus_domain::model::{ColumnDefinition, TableKind, TableOptions, TableSchema};
    use calamus_domain::{ColumnName, DataType, NamespaceId, TableId, TableName};

    /// `id`, and `note` added in version 2.
    fn table() -> TableDefinition {
        let column = |id, name: &str, added_in_version| ColumnDefinition {
            id,
            name: ColumnName::new(name).unwrap(),
            data_type: DataType::BigInt,
            nullable: true,
            default: None,
            added_in_version,
            missing_value: None,
        };
        TableDefinition {
            id: TableId::new(NamespaceId::new("app").unwrap(), TableName::new("t").unwrap()),
            uid: 7,
            kind: TableKind::Shared,
            options: TableOptions::default(),
            schemas: vec![TableSchema {
                version: 2,
                columns: vec![column(1, "id", 1), column(2, "note", 2)],
                primary_key: Some(1),
                created_at: 0,
            }],
            next_column_id: 3,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn segment(schema_version: u32, deleted: Option<u64>) -> Segment {
        Segment {
            batch: 0,
            path: "app/t/batch-0.parquet".into(),
            min_seq: 1,
            max_seq: 2,
            rows: 2,
            bytes: 100,
            schema_version,
            columns: Vec::new(),
            superseding: Some(0),
            row_ids: None,
            deleted,
            oldest_deleted_seq: None,
        }
    }

    #[test]
    fn deleted_is_decoded_only_from_segments_that_may_hold_a_delete() {
        let table = table();
        let schema = super::super::segment_schema(&table);
        let (cold, storage) = (ColdStorage::new("/data"), StorageDefinition::local(0));
        // id, note, _deleted.
        let read = SegmentRead {
            table: &table,
            cold: &cold,
            storage: &storage,
            schema: &schema,
            projection: vec![0, 1, 3],
            predicate: None,
        };
        let clean = read.fills_of(&segment(2, Some(0)));
        assert_eq!(clean, [Fill::NeverDeleted(2)]);
        assert_eq!(read.columns_read(&clean), [0, 1]);
        for unclean in [segment(2, Some(1)), segment(2, None)] {
            let fills = read.fills_of(&unclean);
            assert!(fills.is_empty(), "{fills:?}");
            assert_eq!(read.columns_read(&fills), [0, 1, 3]);
        }
        let older = read.fills_of(&segment(1, Some(0)));
        assert_eq!(older, [Fill::AddedLater(1), Fill::NeverDeleted(2)]);
        assert_eq!(read.columns_read(&older), [0]);
    }

    #[test]
    fn a_missing_file_reads_as_a_race_and_other_errors_stay() {
        let gone = DataFusionError::External(Box::new(std::io::Error::new(std::io::ErrorKind::NotFound, "batch-3")));
        let gone = DataFusionError::Context("reading".into(), Box::new(gone));
        assert!(matches!(
            raced_when_a_file_is_gone(gone),
            DataFusionError::External(e)
                if matches!(e.downcast_ref(), Some(calamus_domain::DomainError::ReadRacedFlush(_)))
        ));
        let denied = DataFusionError::External(Box::new(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "batch-3",
        )));
        assert!(
            matches!(raced_when_a_file_is_gone(denied), DataFusionError::External(e) if e.downcast_ref::<std::io::Error>().is_some())
        );
    }
}
