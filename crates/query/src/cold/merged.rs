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
//!
//! That plan sorts every version. Most partitions need no sort: while no row has two
//! flushed versions (each segment counts the rows it holds that were flushed before,
//! [`Segment::superseding`]), a row's newest version is its hot one, else its only
//! flushed one. Then the hot versions are read first, their row ids kept, and the
//! segments are read concurrently, dropping the rows read hot (only segments whose row-id
//! range meets the hot rows' are checked row by row). A flush that writes a second version
//! of a row while such a read runs makes the read fail as raced, and the engine runs the
//! statement again with the sorting plan.
//!
//! The segments a probe of the hot row ids (first and last hot key) puts apart from the
//! hot rows are read while the hot rows are ([`EarlyRead`]), and used if the guess holds.

use std::sync::Arc;

use std::collections::HashSet;
use std::sync::Mutex;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array, UInt64Array};
use arrow::datatypes::{DataType as ArrowType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use async_trait::async_trait;
use calamus_domain::model::{
    ColumnStats, DELETED_COLUMN, Manifest, SEQ_COLUMN, Segment, StorageDefinition, TableDefinition,
};
use calamus_domain::{DomainError, Partition, RowStore, ScanRequest};
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{ExprFunctionExt, LogicalPlanBuilder, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::prelude::Expr;
use futures::{StreamExt, TryStreamExt};

use super::segment_reader::SegmentRead;
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
    /// The partition's manifest when the scan is planned.
    pub manifest: &'a Manifest,
    /// The query's filters on the table (DataFusion applies them again above the scan).
    pub filters: &'a [Expr],
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
        if !self.manifest.may_hold_superseded_versions() {
            let predicate = self.segment_predicate(state, &tiers.schema);
            return self.disjoint_plan(tiers, projection, predicate);
        }
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

    /// The plan when no row has two flushed versions: each row's newest version is its
    /// hot one if it has one, else its only flushed one, so the tiers are read one after
    /// the other and no sort is needed.
    /// The query's filters that name only stored columns, over the segments' column names:
    /// with no row having two flushed versions, a segment or row group none of whose rows
    /// can match holds no row of the result, so they are skipped. `None` when no filter
    /// applies (or one cannot be planned: then nothing is skipped).
    fn segment_predicate(&self, state: &dyn Session, segment_schema: &SchemaRef) -> Option<SegmentPredicate> {
        let columns = &self.table.schema().columns;
        let stored = |name: &str| -> Option<String> {
            columns
                .iter()
                .find(|c| c.name.as_str() == name)
                .map(|c| segment_column(c.id))
                .or_else(|| (name == SEQ_COLUMN).then(|| SEQ_COLUMN.to_owned()))
        };
        let mut usable = Vec::new();
        for filter in self.filters {
            let names = filter.column_refs();
            if names.is_empty() || !names.iter().all(|c| stored(c.name.as_str()).is_some()) {
                continue;
            }
            let renamed = filter.clone().transform(|expr| {
                Ok(match expr {
                    Expr::Column(column) => Transformed::yes(col(stored(column.name.as_str()).expect("checked above"))),
                    other => Transformed::no(other),
                })
            });
            if let Ok(renamed) = renamed {
                usable.push(renamed.data);
            }
        }
        let predicate = conjunction(usable)?;
        let df_schema = DFSchema::try_from(Arc::clone(segment_schema)).ok()?;
        let physical = state.create_physical_expr(predicate, &df_schema).ok()?;
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(segment_schema))
            .build(Arc::clone(&physical));
        Some(SegmentPredicate { physical, pruning })
    }

    fn disjoint_plan(
        &self,
        tiers: Tiers,
        projection: &[usize],
        predicate: Option<SegmentPredicate>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns = self.table.schema().columns.len();
        // Positions of the full layout, in the provider's output and in segments alike.
        let (deleted_at, row_id_at) = (columns + 1, columns + 2);
        let mut read = projection.to_vec();
        for needed in [deleted_at, row_id_at] {
            if !read.contains(&needed) {
                read.push(needed);
            }
        }
        let position = |wanted: usize| read.iter().position(|&i| i == wanted).expect("added above");
        let output = Arc::new(self.output.project(projection)?);
        let stream = DisjointTiers {
            read_schema: Arc::new(tiers.schema.project(&read)?),
            tiers,
            predicate,
            shape: Arc::new(RowSelection {
                deleted: position(deleted_at),
                row_id: position(row_id_at),
                include_deleted: self.include_deleted,
                output: Arc::clone(&output),
            }),
            // Segments no hot row id can be in need no row ids, unless the output has them.
            read_apart: read
                .iter()
                .copied()
                .filter(|&i| i != row_id_at || projection.contains(&i))
                .collect(),
            read,
        };
        let exec = StreamingTableExec::try_new(output, vec![Arc::new(stream)], None, Vec::new(), false, None)?;
        Ok(Arc::new(exec))
    }
}

/// The tiers of a partition where no row has two flushed versions: the hot versions (each
/// the newest of its row), then the segments' rows except those of rows read hot.
#[derive(Debug)]
struct DisjointTiers {
    tiers: Tiers,
    /// Positions read, in the full layout: the output's, then `_deleted` and the row id.
    read: Vec<usize>,
    /// Positions read from segments whose row ids no hot row id falls between: `read`
    /// without the row id, when only the check against hot row ids needs it.
    read_apart: Vec<usize>,
    read_schema: SchemaRef,
    /// The query's filters over stored columns, which skip segments and row groups.
    predicate: Option<SegmentPredicate>,
    shape: Arc<RowSelection>,
}

/// A predicate over segment columns: to prune segments by their manifest statistics, and
/// row groups by their Parquet statistics.
#[derive(Debug, Clone)]
struct SegmentPredicate {
    physical: Arc<dyn PhysicalExpr>,
    /// `None` when the statistics cannot rule a segment out.
    pruning: Option<Arc<PruningPredicate>>,
}

/// The manifest's statistics of some segments, as DataFusion's pruning reads them.
struct SegmentStatistics<'a> {
    segments: &'a [&'a Segment],
    table: &'a TableDefinition,
    schema: &'a SchemaRef,
}

impl SegmentStatistics<'_> {
    /// Per segment, the bound `pick` chooses of a column, parsed back from its text; NULL
    /// where unknown (a type whose text is not parsed back, a column added later).
    fn bounds(&self, column: &Column, pick: impl Fn(&ColumnStats) -> Option<&String>) -> Option<ArrayRef> {
        if column.name == SEQ_COLUMN {
            return None;
        }
        let id = self
            .table
            .schema()
            .columns
            .iter()
            .find(|c| segment_column(c.id) == column.name)?
            .id;
        let data_type = self.schema.field_with_name(&column.name).ok()?.data_type().clone();
        if !matches!(
            data_type,
            ArrowType::Boolean
                | ArrowType::Int16
                | ArrowType::Int32
                | ArrowType::Int64
                | ArrowType::Utf8
                | ArrowType::Date32
        ) {
            return None;
        }
        let unknown = ScalarValue::try_from(&data_type).ok()?;
        let values = self.segments.iter().map(|segment| {
            segment
                .columns
                .iter()
                .find(|stats| stats.column_id == id)
                .and_then(&pick)
                .and_then(|text| ScalarValue::try_from_string(text.clone(), &data_type).ok())
                .unwrap_or_else(|| unknown.clone())
        });
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for SegmentStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        if column.name == SEQ_COLUMN {
            return Some(Arc::new(Int64Array::from_iter_values(
                self.segments.iter().map(|s| s.min_seq),
            )));
        }
        self.bounds(column, |stats| stats.min.as_ref())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        if column.name == SEQ_COLUMN {
            return Some(Arc::new(Int64Array::from_iter_values(
                self.segments.iter().map(|s| s.max_seq),
            )));
        }
        self.bounds(column, |stats| stats.max.as_ref())
    }

    fn num_containers(&self) -> usize {
        self.segments.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let id = self
            .table
            .schema()
            .columns
            .iter()
            .find(|c| segment_column(c.id) == column.name)?
            .id;
        let counts = self.segments.iter().map(|segment| {
            segment
                .columns
                .iter()
                .find(|stats| stats.column_id == id)
                .map(|stats| stats.nulls)
        });
        Some(Arc::new(UInt64Array::from_iter(counts)))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.segments.iter().map(|s| s.rows),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// The row ids read hot, in ascending order: the row-id columns of the hot batches as read
/// (a scan returns a partition's rows in row-id order), kept without copying them.
#[derive(Debug, Default)]
struct HotRowIds {
    /// Each batch's row ids; every id of one is smaller than every id of the next.
    batches: Vec<BinaryArray>,
}

impl HotRowIds {
    /// Adds the row ids of the next hot batch.
    fn push(&mut self, ids: BinaryArray) {
        if !ids.is_empty() {
            self.batches.push(ids);
        }
    }

    /// The smallest and the largest id, if any was read.
    fn range(&self) -> Option<(&[u8], &[u8])> {
        let first = self.batches.first()?;
        let last = self.batches.last()?;
        Some((first.value(0), last.value(last.len() - 1)))
    }

    /// Whether `id` was read hot: a binary search for the batch, then within it.
    fn contains(&self, id: &[u8]) -> bool {
        let at = self.batches.partition_point(|ids| ids.value(ids.len() - 1) < id);
        self.batches.get(at).is_some_and(|ids| {
            let (mut low, mut high) = (0, ids.len());
            while low < high {
                let middle = (low + high) / 2;
                match ids.value(middle).cmp(id) {
                    std::cmp::Ordering::Less => low = middle + 1,
                    std::cmp::Ordering::Greater => high = middle,
                    std::cmp::Ordering::Equal => return true,
                }
            }
            false
        })
    }
}

/// Which rows of a batch read with [`DisjointTiers::read`] are output, and how.
#[derive(Debug)]
struct RowSelection {
    /// Where `_deleted` is in a read batch.
    deleted: usize,
    /// Where the row id is in a read batch.
    row_id: usize,
    include_deleted: bool,
    output: SchemaRef,
}

impl RowSelection {
    /// The rows of `batch` to output (not deleted unless asked for, and not among
    /// `superseded` row ids), with the output's columns and names.
    fn select(&self, batch: &RecordBatch, superseded: Option<&HotRowIds>) -> Result<RecordBatch> {
        let deleted = batch.column(self.deleted).as_boolean();
        let mut keep: Option<BooleanArray> = None;
        if !self.include_deleted && deleted.true_count() > 0 {
            keep = Some(arrow::compute::not(deleted)?);
        }
        if let Some(superseded) = superseded.filter(|ids| ids.range().is_some()) {
            let ids = batch.column(self.row_id).as_binary::<i32>();
            let fresh: BooleanArray = ids
                .iter()
                .map(|id| Some(!id.is_some_and(|id| superseded.contains(id))))
                .collect();
            keep = Some(match keep {
                Some(keep) => arrow::compute::and(&keep, &fresh)?,
                None => fresh,
            });
        }
        let batch = match keep {
            Some(keep) if keep.true_count() < batch.num_rows() => arrow::compute::filter_record_batch(batch, &keep)?,
            _ => batch.clone(),
        };
        let width = self.output.fields().len();
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.output),
            batch.columns()[..width].to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?)
    }
}

impl PartitionStream for DisjointTiers {
    fn schema(&self) -> &SchemaRef {
        &self.shape.output
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let tiers = &self.tiers;
        // Before the hot read: segments that can be read meanwhile.
        let early_slot: Arc<Mutex<Option<EarlyRead>>> = Arc::default();
        let early_start = {
            let (tiers, slot, ctx) = (tiers.clone(), Arc::clone(&early_slot), Arc::clone(&ctx));
            let (predicate, columns) = (self.predicate.clone(), self.read_apart.clone());
            futures::stream::once(async move {
                let early = EarlyRead::start(&tiers, predicate.as_ref(), columns, ctx);
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = early;
            })
            .filter_map(|()| futures::future::ready(None::<Result<RecordBatch>>))
        };
        let hot_ids: Arc<Mutex<HotRowIds>> = Arc::default();
        let (shape, ids) = (Arc::clone(&self.shape), Arc::clone(&hot_ids));
        let hot = tiers
            .hot_versions(self.read.clone(), Arc::clone(&self.read_schema), Arc::clone(&ctx))
            .map(move |batch| {
                let batch = batch?;
                let row_ids = batch.column(shape.row_id).as_binary::<i32>().clone();
                ids.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(row_ids);
                shape.select(&batch, None)
            });
        let (tiers, shape) = (tiers.clone(), Arc::clone(&self.shape));
        let (read, read_apart) = (self.read.clone(), self.read_apart.clone());
        let predicate = self.predicate.clone();
        let cold = futures::stream::once(async move {
            let hot_ids = Arc::new(std::mem::take(&mut *hot_ids.lock().unwrap_or_else(|p| p.into_inner())));
            let early = early_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            let manifest = tiers
                .rows
                .manifest(&tiers.table, &tiers.partition)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            if manifest.may_hold_superseded_versions() {
                // A flush since the plan was made wrote a second version of some row: the
                // statement runs again, with the plan that keeps the newest.
                return Err(DataFusionError::External(Box::new(DomainError::ReadRacedFlush(
                    format!(
                        "a flush of {} ran while it was read; run the statement again",
                        tiers.table.id
                    ),
                ))));
            }
            // Only a segment whose row ids overlap those read hot can hold an older
            // version of one of them.
            let hot_range = hot_ids.range();
            let segments = tiers.prune(manifest.segments.iter().collect(), predicate.as_ref())?;
            let (overlapping, mut apart): (Vec<&Segment>, Vec<&Segment>) = segments
                .into_iter()
                .partition(|segment| overlaps_hot_rows(segment, hot_range));
            let mut streams: Vec<BatchStream> = Vec::with_capacity(3);
            // The segments read early serve when the manifest read now is the one they
            // came from and the hot rows read lie apart from them all.
            if let Some(early) = early.filter(|early| {
                early.next_batch == manifest.next_batch
                    && early.segments.iter().all(|b| apart.iter().any(|s| s.batch == *b))
            }) {
                apart.retain(|segment| !early.segments.contains(&segment.batch));
                let shape = Arc::clone(&shape);
                streams.push(Box::pin(
                    early.into_stream().map(move |batch| shape.select(&batch?, None)),
                ));
            }
            for (segments, superseded) in [(overlapping, Some(hot_ids)), (apart, None)] {
                if segments.is_empty() {
                    continue;
                }
                let shape = Arc::clone(&shape);
                let predicate = predicate.as_ref().map(|p| Arc::clone(&p.physical));
                let columns = if superseded.is_some() { &read } else { &read_apart };
                let stream = read_segments(&tiers, &segments, columns.clone(), predicate, Arc::clone(&ctx))?;
                streams.push(Box::pin(
                    stream.map(move |batch| shape.select(&batch?, superseded.as_deref())),
                ));
            }
            Ok(futures::stream::iter(streams).flatten())
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.shape.output),
            early_start.chain(hot).chain(cold),
        ))
    }
}

/// A stream of batches that can be boxed next to others.
type BatchStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch>> + Send>>;

/// Whether a segment's row ids can meet hot row ids in `hot` (smallest, largest); a
/// segment of unknown row ids can.
fn overlaps_hot_rows(segment: &Segment, hot: Option<(&[u8], &[u8])>) -> bool {
    match (&segment.row_ids, hot) {
        (_, None) => false,
        (Some((low, high)), Some((hot_low, hot_high))) => low.as_slice() <= hot_high && hot_low <= high.as_slice(),
        (None, Some(_)) => true,
    }
}

/// How much of the segments read early may wait for the hot read to end, in KiB.
const EARLY_READ_KIB: usize = 32 * 1024;

/// Segments read while the hot versions are: those the query's filters keep and whose
/// row ids lie apart from the hot row ids as probed before the hot read. Their batches
/// wait (up to [`EARLY_READ_KIB`]; the reading pauses beyond) until the hot read ends.
/// They serve only if the manifest is unchanged then and the hot rows read lie apart
/// from them; otherwise they are dropped, which stops the reading, and the segments are
/// read again the usual way. The probe is a guess: nothing read relies on it.
struct EarlyRead {
    /// The manifest's next batch number when the segments were chosen.
    next_batch: u64,
    /// The batch numbers of the segments being read.
    segments: Vec<u64>,
    batches: tokio::sync::mpsc::Receiver<(Result<RecordBatch>, tokio::sync::OwnedSemaphorePermit)>,
    _reading: SpawnedTask<()>,
}

impl EarlyRead {
    /// Starts reading the segments that can be read before the hot rows are, if any (none
    /// where a row may have two flushed versions, or a read of the store fails: then the
    /// usual path reads and reports).
    fn start(
        tiers: &Tiers,
        predicate: Option<&SegmentPredicate>,
        columns: Vec<usize>,
        ctx: Arc<TaskContext>,
    ) -> Option<EarlyRead> {
        let manifest = tiers.rows.manifest(&tiers.table, &tiers.partition).ok()?;
        if manifest.segments.is_empty() || manifest.may_hold_superseded_versions() {
            return None;
        }
        let probed = tiers.rows.hot_row_id_range(&tiers.table, &tiers.partition).ok()?;
        let probed = probed.as_ref().map(|(low, high)| (low.as_slice(), high.as_slice()));
        let segments: Vec<&Segment> = tiers
            .prune(manifest.segments.iter().collect(), predicate)
            .ok()?
            .into_iter()
            .filter(|segment| !overlaps_hot_rows(segment, probed))
            .collect();
        if segments.is_empty() {
            return None;
        }
        let physical = predicate.map(|p| Arc::clone(&p.physical));
        let mut stream = read_segments(tiers, &segments, columns, physical, ctx).ok()?;
        let (sender, batches) = tokio::sync::mpsc::channel(64);
        let budget = Arc::new(tokio::sync::Semaphore::new(EARLY_READ_KIB));
        let reading = SpawnedTask::spawn(async move {
            while let Some(batch) = stream.next().await {
                let kib = batch.as_ref().map_or(0, |b| b.get_array_memory_size() / 1024);
                let Ok(permit) = Arc::clone(&budget)
                    .acquire_many_owned(kib.clamp(1, EARLY_READ_KIB) as u32)
                    .await
                else {
                    break;
                };
                if sender.send((batch, permit)).await.is_err() {
                    break;
                }
            }
        });
        Some(EarlyRead {
            next_batch: manifest.next_batch,
            segments: segments.iter().map(|s| s.batch).collect(),
            batches,
            _reading: reading,
        })
    }

    /// The batches read, those waiting first.
    fn into_stream(self) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
        futures::stream::unfold(self, |mut early| async move {
            let (batch, _permit) = early.batches.recv().await?;
            Some((batch, early))
        })
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

impl Tiers {
    /// `segments` less those whose manifest statistics rule out every row the query's
    /// filters keep.
    fn prune<'a>(
        &self,
        mut segments: Vec<&'a Segment>,
        predicate: Option<&SegmentPredicate>,
    ) -> Result<Vec<&'a Segment>> {
        if let Some(pruning) = predicate.and_then(|p| p.pruning.as_ref()) {
            let statistics = SegmentStatistics {
                segments: &segments,
                table: &self.table,
                schema: &self.schema,
            };
            let keep = pruning.prune(&statistics)?;
            let mut keep = keep.into_iter();
            segments.retain(|_| keep.next().unwrap_or(true));
        }
        Ok(segments)
    }

    /// Every hot version of the partition (deleted ones too), `projection` of the full
    /// layout, with `schema`.
    fn hot_versions(
        &self,
        projection: Vec<usize>,
        schema: SchemaRef,
        ctx: Arc<TaskContext>,
    ) -> SendableRecordBatchStream {
        KvPartitionStream {
            table: Arc::clone(&self.table),
            partition: self.partition.clone(),
            rows: Arc::clone(&self.rows),
            request: ScanRequest {
                include_deleted: true,
                ..ScanRequest::all()
            },
            projection,
            schema,
            expect_unflushed: false,
        }
        .execute(ctx)
    }
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
        let hot = tiers.hot_versions(self.projection.clone(), Arc::clone(&self.schema), Arc::clone(&ctx));
        let (tiers, projection) = (tiers.clone(), self.projection.clone());
        let cold = futures::stream::once(async move {
            let manifest = tiers
                .rows
                .manifest(&tiers.table, &tiers.partition)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let segments: Vec<&Segment> = manifest.segments.iter().collect();
            read_segments(&tiers, &segments, projection, None, ctx)
        })
        .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), hot.chain(cold)))
    }
}

/// The rows of `segments`, `projection` of the full layout (see [`SegmentRead`]).
fn read_segments(
    tiers: &Tiers,
    segments: &[&Segment],
    projection: Vec<usize>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    ctx: Arc<TaskContext>,
) -> Result<SendableRecordBatchStream> {
    SegmentRead {
        table: &tiers.table,
        cold: &tiers.cold,
        storage: &tiers.storage,
        schema: &tiers.schema,
        projection,
        predicate,
    }
    .stream(segments, ctx)
}
