//! Scans planned before their parameters are known, so that a repeated query such as
//! `SELECT ... FROM t WHERE id = $1` is planned physically once and afterwards only has
//! its scans planned, with the values bound.
//!
//! When a query's only parameters are in primary-key comparisons its scan answers itself,
//! DataFusion can plan the query with the parameters unbound: [`KvTable`] then plans a
//! [`DeferredScanExec`] standing for the scan it would plan once the values are known.
//! Binding ([`bind_deferred_scans`]) asks the provider for that scan with the values in
//! its filters, exactly as planning the bound query from scratch would, and rebuilds the
//! operators above it. It gives up (the caller plans the bound query as usual) when the
//! scan it gets does not fit where the deferred one stood: another schema or another
//! number of partitions.

use std::fmt;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, Result, Statistics, internal_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Operator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
    StatisticsArgs,
};

use super::bounded_scan::leaf_with_new_children;
use super::kv_table::KvTable;

/// Whether `expr` holds a parameter (`$1`).
pub(crate) fn has_placeholder(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::Placeholder(_)))).unwrap_or(true)
}

/// The scan of a [`KvTable`] whose filters hold parameters: what the table's `scan` was
/// asked for, kept to ask again once the values are bound. It cannot run itself.
#[derive(Debug)]
pub(crate) struct DeferredScanExec {
    table: KvTable,
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
    limit: Option<usize>,
    /// Whether a filter is `pk = value`: the bound scan reads one key at most.
    one_key: bool,
    properties: Arc<PlanProperties>,
}

impl DeferredScanExec {
    /// The scan of `table` for `projection`, `filters` (with parameters) and `limit`. It
    /// says what a hot scan of one partition says: one partition, no ordering, and at most
    /// one row when a filter compares the key for equality.
    pub(crate) fn new(
        table: KvTable,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Self> {
        let schema = match projection {
            Some(columns) => Arc::new(table.schema().project(columns)?),
            None => table.schema(),
        };
        let one_key = filters
            .iter()
            .any(|f| matches!(f, Expr::BinaryExpr(b) if b.op == Operator::Eq) && table.answers_exactly(f));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            table,
            projection: projection.cloned(),
            filters: filters.to_vec(),
            limit,
            one_key,
            properties: Arc::new(properties),
        })
    }

    /// The scan the table plans with `params` bound in the filters, if it fits where this
    /// one stands (same schema, one partition).
    async fn bind(&self, state: &dyn Session, params: &ParamValues) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let filters = self
            .filters
            .iter()
            .map(|filter| bind_expr(filter.clone(), params))
            .collect::<Result<Vec<_>>>()?;
        let scan = self
            .table
            .scan(state, self.projection.as_ref(), &filters, self.limit)
            .await?;
        let fits = scan.schema() == self.schema() && scan.properties().partitioning.partition_count() == 1;
        Ok(fits.then_some(scan))
    }
}

/// `expr` with its parameters replaced by their values, as DataFusion binds a plan's.
fn bind_expr(expr: Expr, params: &ParamValues) -> Result<Expr> {
    expr.transform_up(|e| match e {
        Expr::Placeholder(placeholder) => {
            let (value, metadata) = params.get_placeholders_with_values(&placeholder.id)?.into_inner();
            Ok(Transformed::yes(Expr::Literal(value, metadata)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

impl DisplayAs for DeferredScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeferredScanExec: table={}", self.table.definition().id)
    }
}

impl ExecutionPlan for DeferredScanExec {
    fn name(&self) -> &str {
        "DeferredScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        leaf_with_new_children(self, &children)
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        internal_err!(
            "a scan of {} runs only once its parameters are bound",
            self.table.definition().id
        )
    }

    fn statistics_from_inputs(&self, _inputs: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        let statistics = Statistics::new_unknown(&self.schema());
        Ok(Arc::new(if self.one_key {
            statistics.with_num_rows(Precision::Inexact(1))
        } else {
            statistics
        }))
    }
}

/// Whether every scan of `plan` is a [`DeferredScanExec`]: the plan reads nothing when it
/// is planned, so it can be kept and bound again for each run.
pub(crate) fn only_deferred_scans(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut deferred = true;
    let _ = plan.apply(|node| {
        if node.children().is_empty() && !node.is::<DeferredScanExec>() {
            deferred = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    deferred
}

/// `plan` (see [`only_deferred_scans`]) with each deferred scan replaced by the scan its
/// table plans with `params` bound, and the operators above rebuilt: `None` when a scan
/// does not fit where its deferred one stood.
pub(crate) async fn bind_deferred_scans(
    plan: &Arc<dyn ExecutionPlan>,
    state: &dyn Session,
    params: &ParamValues,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let mut deferred = Vec::new();
    plan.apply(|node| {
        if node.is::<DeferredScanExec>() {
            deferred.push(Arc::clone(node));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut bound: Vec<(Arc<dyn ExecutionPlan>, Arc<dyn ExecutionPlan>)> = Vec::with_capacity(deferred.len());
    for node in deferred {
        let Some(scan) = node.downcast_ref::<DeferredScanExec>() else {
            continue;
        };
        match scan.bind(state, params).await? {
            Some(plan) => bound.push((node, plan)),
            None => return Ok(None),
        }
    }
    let rebuilt = Arc::clone(plan).transform_up(|node| {
        if !node.is::<DeferredScanExec>() {
            return Ok(Transformed::no(node));
        }
        match bound.iter().find(|(deferred, _)| Arc::ptr_eq(deferred, &node)) {
            Some((_, plan)) => Ok(Transformed::yes(Arc::clone(plan))),
            None => internal_err!("a deferred scan was not bound"),
        }
    })?;
    Ok(Some(rebuilt.data))
}
