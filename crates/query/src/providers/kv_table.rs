//! The table provider of USER, SHARED and STREAM tables: one scan of one partition.
//!
//! Isolation is enforced here, where rows are read: a provider is built per statement for
//! the session's partition, and its scan reads that partition's key range and nothing else,
//! whatever the SQL around it (joins, subqueries, UNION, CTEs all scan through here).

use std::ops::Bound;
use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use calamus_domain::arrow_rows::table_schema;
use calamus_domain::model::{DELETED_COLUMN, StorageDefinition, TableDefinition, TableKind};
use calamus_domain::row_batch::{BatchColumn, RowBatchBuilder};
use calamus_domain::{Partition, RowStore, ScanRequest};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, DataFusionError, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::bounded_scan::BoundedScanExec;
use super::deferred_scan::{DeferredScanExec, has_placeholder};
use super::key_range::{RowIdRange, compares_key, narrows_exactly, row_id_range};
use crate::cold::ColdStorage;
use crate::cold::merged::MergedScan;

/// The hidden column UPDATE and DELETE read to know which stored row a result row is.
pub const ROW_ID_COLUMN: &str = "__calamus_row_id";

/// One table's rows in one partition, as DataFusion sees them.
#[derive(Debug, Clone)]
pub struct KvTable {
    table: Arc<TableDefinition>,
    partition: Partition,
    rows: Arc<dyn RowStore>,
    schema: SchemaRef,
    /// Where the table's flushed segments are, if the engine has cold storage.
    cold: Option<(ColdStorage, StorageDefinition)>,
}

impl KvTable {
    /// A provider for `table` reading `partition`; with `with_row_id`, the schema ends with
    /// the hidden [`ROW_ID_COLUMN`] (only for the target of an UPDATE or DELETE).
    pub fn new(table: Arc<TableDefinition>, partition: Partition, rows: Arc<dyn RowStore>, with_row_id: bool) -> Self {
        let mut schema = table_schema(&table);
        if with_row_id {
            let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new(ROW_ID_COLUMN, ArrowType::Binary, false));
            schema = Arc::new(Schema::new(fields));
        }
        Self {
            table,
            partition,
            rows,
            schema,
            cold: None,
        }
    }

    /// The same provider, also reading the partition's flushed segments from `storage`.
    pub fn with_cold_tier(mut self, cold: ColdStorage, storage: StorageDefinition) -> Self {
        self.cold = Some((cold, storage));
        self
    }

    /// Whether rows are stored under their primary key, so a filter on it narrows the
    /// scan to a key range. STREAM rows are stored in arrival order, under their `_seq`.
    fn keyed_by_primary_key(&self) -> bool {
        self.table.kind != TableKind::Stream
    }

    /// The table read.
    pub fn definition(&self) -> &Arc<TableDefinition> {
        &self.table
    }

    /// The partition read.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }
}

fn mentions_deleted(filter: &Expr) -> bool {
    filter.column_refs().iter().any(|c| c.name == DELETED_COLUMN)
}

#[async_trait]
impl TableProvider for KvTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.answers_exactly(f) {
                    TableProviderFilterPushDown::Exact
                } else if mentions_deleted(f) || self.cold.is_some() {
                    // With a cold tier, any filter may skip segments (see `MergedScan`).
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if filters.iter().any(has_placeholder) {
            // Planned before its parameters are bound: planned again with their values.
            return Ok(Arc::new(DeferredScanExec::new(
                self.clone(),
                projection,
                filters,
                limit,
            )?));
        }
        // Soft-deleted rows are hidden unless the query asks about `_deleted` itself.
        let include_deleted = filters.iter().any(mentions_deleted);
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let manifest = match &self.cold {
            Some(_) => self
                .rows
                .manifest(&self.table, &self.partition)
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            None => Default::default(),
        };
        let flushed = !manifest.is_empty();
        // The key filters this scan answers exactly but its key range does not hold: all of
        // them where segments are read too (the range narrows the hot rows only).
        let schema = self.table.schema();
        let own_filters: Vec<&Expr> = filters
            .iter()
            .filter(|f| self.answers_exactly(f) && (flushed || !narrows_exactly(schema, f)))
            .collect();
        let mut read = wanted.clone();
        if !own_filters.is_empty()
            && let Some(key) = schema.primary_key_position()
            && !read.contains(&key)
        {
            read.push(key);
        }
        let plan = match &self.cold {
            Some((cold, storage)) if flushed => {
                let merged = MergedScan {
                    table: &self.table,
                    partition: &self.partition,
                    rows: &self.rows,
                    cold,
                    storage,
                    output: &self.schema,
                    include_deleted,
                    manifest: &manifest,
                    filters,
                };
                merged.plan(state, &read).await?
            }
            // A limit is pushed only when every filter is answered here, and so must not
            // cut the rows before this scan's own filters.
            _ => self.hot_scan(filters, include_deleted, read, limit.filter(|_| own_filters.is_empty()))?,
        };
        if own_filters.is_empty() {
            return Ok(plan);
        }
        filter_then_project(state, plan, &own_filters, wanted.len())
    }
}

impl KvTable {
    /// Whether the scan answers `filter` exactly, so DataFusion need not apply it again: a
    /// comparison of the primary key with a value, for tables stored by primary key.
    pub(crate) fn answers_exactly(&self, filter: &Expr) -> bool {
        self.keyed_by_primary_key() && compares_key(self.table.schema(), filter)
    }

    /// The scan of the hot rows: the key range the filters allow, the columns at `projection`
    /// (positions in the provider's schema).
    fn hot_scan(
        &self,
        filters: &[Expr],
        include_deleted: bool,
        projection: Vec<usize>,
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = if self.keyed_by_primary_key() {
            row_id_range(self.table.schema(), filters)
        } else {
            RowIdRange::all()
        };
        let projected = Arc::new(self.schema.project(&projection)?);
        let request = ScanRequest {
            start: range.start,
            end: range.end,
            include_deleted,
            reverse: false,
            limit: None,
        };
        let stream = KvPartitionStream {
            table: Arc::clone(&self.table),
            partition: self.partition.clone(),
            rows: Arc::clone(&self.rows),
            request,
            projection,
            schema: Arc::clone(&projected),
            expect_unflushed: self.cold.is_some(),
        };
        let one_key = stream.reads_one_key();
        let exec = Arc::new(StreamingTableExec::try_new(
            projected,
            vec![Arc::new(stream)],
            None,
            Vec::new(),
            false,
            limit,
        )?);
        Ok(if one_key {
            Arc::new(BoundedScanExec::new(exec, 1))
        } else {
            exec
        })
    }
}

/// `plan` with `filters` applied, then cut to its first `width` columns (the filters may
/// have needed one more).
fn filter_then_project(
    state: &dyn Session,
    plan: Arc<dyn ExecutionPlan>,
    filters: &[&Expr],
    width: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = plan.schema();
    // The filters name the table's columns, which are the plan's, unqualified.
    let predicate = filters
        .iter()
        .map(|&f| {
            f.clone()
                .transform(|e| match e {
                    Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.data)
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .reduce(Expr::and);
    let Some(predicate) = predicate else {
        return Ok(plan);
    };
    let predicate = state.create_physical_expr(predicate, &DFSchema::try_from(schema.as_ref().clone())?)?;
    let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(predicate, plan)?);
    if schema.fields().len() == width {
        return Ok(filtered);
    }
    let columns = schema.fields().iter().take(width).enumerate().map(|(i, field)| {
        (
            Arc::new(PhysicalColumn::new(field.name(), i)) as Arc<dyn PhysicalExpr>,
            field.name().clone(),
        )
    });
    Ok(Arc::new(ProjectionExec::try_new(columns, filtered)?))
}

/// The rows of one scan, read on a blocking thread and sent as Arrow batches.
#[derive(Debug, Clone)]
pub(crate) struct KvPartitionStream {
    pub(crate) table: Arc<TableDefinition>,
    pub(crate) partition: Partition,
    pub(crate) rows: Arc<dyn RowStore>,
    pub(crate) request: ScanRequest,
    /// Positions in the full schema: user columns, `_seq`, [`_deleted`], [row id].
    pub(crate) projection: Vec<usize>,
    pub(crate) schema: SchemaRef,
    /// Whether the partition had no segment when the scan was planned: if one appears
    /// before the scan ends, a flush may have moved rows the scan had not reached yet,
    /// and the scan fails (to be run again) rather than miss them.
    pub(crate) expect_unflushed: bool,
}

impl PartitionStream for KvPartitionStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batch_size = ctx.session_config().batch_size().max(1);
        if self.reads_one_key() {
            // A primary-key lookup reads at most one row: on this thread, without handing
            // the scan to the blocking pool and back.
            // No row gives no batch, as DataFusion's own operators do.
            let batch = self.read_one_key().transpose();
            return Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::iter(batch),
            ));
        }
        let mut builder = RecordBatchReceiverStream::builder(Arc::clone(&self.schema), 2);
        let tx = builder.tx();
        let scan = self.clone();
        builder.spawn_blocking(move || {
            let mut batch = scan.batch_builder()?;
            let mut consumer_gone = false;
            scan.rows
                .visit_encoded(
                    &scan.table,
                    &scan.partition,
                    scan.request.clone(),
                    &mut |row_id: &[u8], value: &[u8]| {
                        batch.append(row_id, value)?;
                        if batch.len() < batch_size {
                            return Ok(true);
                        }
                        consumer_gone = tx.blocking_send(Ok(batch.finish()?)).is_err();
                        Ok(!consumer_gone)
                    },
                )
                .map_err(external)?;
            if consumer_gone {
                return Ok(());
            }
            if !batch.is_empty() && tx.blocking_send(Ok(batch.finish().map_err(external)?)).is_err() {
                return Ok(());
            }
            scan.check_not_flushed()
        });
        builder.build()
    }
}

impl KvPartitionStream {
    /// Whether the scan's key range is a single key (`pk = value`).
    fn reads_one_key(&self) -> bool {
        matches!((&self.request.start, &self.request.end), (Bound::Included(a), Bound::Included(b)) if a == b)
    }

    /// A builder of the scan's batches: the projection's positions in the full schema are
    /// the user columns, `_seq`, `_deleted` (USER and SHARED tables), then the row id.
    fn batch_builder(&self) -> Result<RowBatchBuilder> {
        let columns = self.table.schema().columns.len();
        let deleted = self.table.kind.has_soft_delete().then_some(columns + 1);
        let batch_columns = self
            .projection
            .iter()
            .map(|&i| match i {
                i if i < columns => BatchColumn::User(i),
                i if i == columns => BatchColumn::Seq,
                i if Some(i) == deleted => BatchColumn::Deleted,
                _ => BatchColumn::RowId,
            })
            .collect();
        RowBatchBuilder::new(self.table.schema(), batch_columns, Arc::clone(&self.schema)).map_err(external)
    }

    /// The row of a single-key scan as one batch (none without a row), read on the
    /// calling thread.
    fn read_one_key(&self) -> Result<Option<RecordBatch>> {
        let mut batch = self.batch_builder()?;
        self.rows
            .visit_encoded(
                &self.table,
                &self.partition,
                self.request.clone(),
                &mut |row_id: &[u8], value: &[u8]| batch.append(row_id, value).map(|()| true),
            )
            .map_err(external)?;
        if batch.is_empty() {
            // The row may have been flushed since the scan was planned: only then is the
            // answer in doubt. A hot row found is the key's newest version whatever a
            // flush did meanwhile (a flush removes the hot rows it moves, and later writes
            // are hot again).
            self.check_not_flushed()?;
            return Ok(None);
        }
        batch.finish().map(Some).map_err(external)
    }

    /// Fails the scan if a flush moved rows to the cold tier while it read (the statement
    /// is then run again).
    fn check_not_flushed(&self) -> Result<()> {
        if self.expect_unflushed
            && !self
                .rows
                .manifest(&self.table, &self.partition)
                .map_err(external)?
                .is_empty()
        {
            return Err(raced_flush(&self.table));
        }
        Ok(())
    }
}

fn external(e: calamus_domain::DomainError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The error of a scan that a flush overlapped (the statement is run again).
fn raced_flush(table: &TableDefinition) -> DataFusionError {
    DataFusionError::External(Box::new(calamus_domain::DomainError::ReadRacedFlush(format!(
        "table {} was flushed while this statement read it; run it again",
        table.id
    ))))
}
