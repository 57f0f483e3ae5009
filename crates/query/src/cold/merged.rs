//! Reading a partition that has flushed segments: one DataFusion plan over both tiers.
//!
//! ```text
//! hot versions (deleted ones too), then the segments the manifest lists once the hot
//! read is done (DataFusion's Parquet reader)
//!   -> ROW_NUMBER() OVER (PARTITION BY row id ORDER BY _seq DESC) = 1   (newest wins)
//!   -> NOT _deleted (unless the query asks about _deleted)
//!   -> columns renamed from c<id> to their current names
//! ```
//!
//! Reading the hot rows before the manifest makes the read see every row once a flush
//! runs meanwhile: a row flushed before the hot read passed it is in a segment the
//! manifest lists afterwards, and one flushed later was read hot (a copy also in a
//! segment is the same version, and the newest-wins step keeps one).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use calamus_domain::arrow_rows::build_array;
use calamus_domain::model::{DELETED_COLUMN, Manifest, SEQ_COLUMN, StorageDefinition, TableDefinition};
use calamus_domain::{Partition, RowStore, ScanRequest};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlanBuilder, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::prelude::Expr;
use futures::{StreamExt, TryStreamExt};

use super::{ColdStorage, SEGMENT_ROW_ID_COLUMN, segment_column, segment_schema};
use crate::providers::ROW_ID_COLUMN;
use crate::providers::kv_table::KvPartitionStream;

/// The row-number column of the plan.
const NEWEST: &str = "__calamus_newest";

/// What a merged scan needs to know.
pub struct MergedScan<'a> {
    /// The table.
    pub table: &'a Arc<TableDefinition>,
    /// The partition.
    pub partition: &'a Partition,
    /// The row store.
    pub rows: &'a Arc<dyn RowStore>,
    /// Where segments are.
    pub cold: &'a ColdStorage,
    /// The table's storage.
    pub storage: &'a StorageDefinition,
    /// The provider's schema (columns, `_seq`, `_deleted`, and the row id for DML).
    pub output: &'a SchemaRef,
    /// Whether soft-deleted rows are kept (the query filters on `_deleted`).
    pub include_deleted: bool,
}

impl MergedScan<'_> {
    /// The physical plan of the merged scan, projected to `projection` of the output.
    pub async fn plan(self, state: &dyn Session, projection: &[usize]) -> Result<Arc<dyn ExecutionPlan>> {
        let tiers = Tiers {
            table: Arc::clone(self.table),
            partition: self.partition.clone(),
            rows: Arc::clone(self.rows),
            cold: self.cold.clone(),
            storage: self.storage.clone(),
            schema: segment_schema(self.table),
        };
        let newest = row_number()
            .partition_by(vec![col(SEGMENT_ROW_ID_COLUMN)])
            .order_by(vec![col(SEQ_COLUMN).sort(false, false)])
            .build()?
            .alias(NEWEST);
        let mut keep = col(NEWEST).eq(lit(1u64));
        if !self.include_deleted {
            keep = keep.and(std::ops::Not::not(col(DELETED_COLUMN)));
        }
        let columns = &self.table.schema().columns;
        let outputs: Vec<Expr> = projection
            .iter()
            .map(|&i| {
                let name = self.output.field(i).name();
                if i < columns.len() {
                    col(segment_column(columns[i].id)).alias(name)
                } else if name == ROW_ID_COLUMN {
                    col(SEGMENT_ROW_ID_COLUMN).alias(name)
                } else {
                    col(name.as_str())
                }
            })
            .collect();
        let plan = LogicalPlanBuilder::scan("tiers", provider_as_source(Arc::new(tiers)), None)?
            .window(vec![newest])?
            .filter(keep)?
            .project(outputs)?
            .build()?;
        state.create_physical_plan(&plan).await
    }
}

/// Every version of a partition, hot ones first, named as in segments.
#[derive(Debug, Clone)]
struct Tiers {
    table: Arc<TableDefinition>,
    partition: Partition,
    rows: Arc<dyn RowStore>,
    cold: ColdStorage,
    storage: StorageDefinition,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for Tiers {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let projected = Arc::new(self.schema.project(&projection)?);
        let stream = TieredStream {
            tiers: self.clone(),
            projection,
            schema: Arc::clone(&projected),
        };
        let exec = StreamingTableExec::try_new(projected, vec![Arc::new(stream)], None, Vec::new(), false, None)?;
        Ok(Arc::new(exec))
    }
}

/// The hot versions, then the segments the manifest lists once they are read.
#[derive(Debug)]
struct TieredStream {
    tiers: Tiers,
    /// Positions in the segment schema (the row store's full layout: columns, `_seq`,
    /// `_deleted`, row id).
    projection: Vec<usize>,
    schema: SchemaRef,
}

impl PartitionStream for TieredStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let tiers = &self.tiers;
        let hot = KvPartitionStream {
            table: Arc::clone(&tiers.table),
            partition: tiers.partition.clone(),
            rows: Arc::clone(&tiers.rows),
            request: ScanRequest {
                include_deleted: true,
                ..ScanRequest::all()
            },
            projection: self.projection.clone(),
            schema: Arc::clone(&self.schema),
            expect_unflushed: false,
        }
        .execute(Arc::clone(&ctx));
        let (tiers, projection) = (tiers.clone(), self.projection.clone());
        let cold = futures::stream::once(async move {
            let manifest = tiers
                .rows
                .manifest(&tiers.table, &tiers.partition)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            segments(&tiers, &manifest, projection, ctx)
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), hot.chain(cold)))
    }
}

/// The rows of a manifest's segments, through DataFusion's Parquet reader. A column
/// added after a segment was written reads as the value the ALTER gave older rows (its
/// default, else NULL), as hot rows of older schema versions do.
fn segments(
    tiers: &Tiers,
    manifest: &Manifest,
    projection: Vec<usize>,
    ctx: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    let columns = &tiers.table.schema().columns;
    // Segments grouped by the columns they lack (positions in the projected output).
    let mut groups: Vec<(Vec<usize>, Vec<PartitionedFile>)> = Vec::new();
    for segment in &manifest.segments {
        let missing: Vec<usize> = projection
            .iter()
            .enumerate()
            .filter(|&(_, &i)| i < columns.len() && columns[i].added_in_version > segment.schema_version)
            .map(|(out, _)| out)
            .collect();
        let path = tiers.cold.segment_path(&tiers.storage, &segment.path);
        let file = PartitionedFile::new(path.to_string_lossy().trim_start_matches('/').to_owned(), segment.bytes);
        match groups.iter_mut().find(|(m, _)| *m == missing) {
            Some((_, files)) => files.push(file),
            None => groups.push((missing, vec![file])),
        }
    }
    let projected: SchemaRef = Arc::new(tiers.schema.project(&projection)?);
    let mut streams = Vec::with_capacity(groups.len());
    for (missing, files) in groups {
        let source = Arc::new(ParquetSource::new(Arc::clone(&tiers.schema)));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
            .with_file_group(FileGroup::new(files))
            .with_projection_indices(Some(projection.clone()))?
            .build();
        let stream = DataSourceExec::from_data_source(config).execute(0, Arc::clone(&ctx))?;
        if missing.is_empty() {
            streams.push(stream);
            continue;
        }
        let fills: Vec<(usize, calamus_domain::DataType, calamus_domain::Value)> = missing
            .iter()
            .map(|&out| {
                let column = &columns[projection[out]];
                let value = column
                    .missing_value
                    .as_ref()
                    .map_or(calamus_domain::Value::Null, |v| v.to_value(&column.data_type));
                (out, column.data_type, value)
            })
            .collect();
        let filled = stream.map(move |batch| {
            let batch = batch?;
            let mut arrays = batch.columns().to_vec();
            for (out, data_type, value) in &fills {
                arrays[*out] = build_array(data_type, batch.num_rows(), |_| value)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
            }
            Ok(RecordBatch::try_new(batch.schema(), arrays)?)
        });
        streams.push(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&projected), filled)));
    }
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        projected,
        futures::stream::iter(streams).flatten(),
    )))
}
