//! A scan that can give only a few rows, known when it is planned (a primary-key lookup
//! gives at most one), and says so in its statistics: DataFusion then leaves it in one
//! partition instead of spreading its rows over threads (a round-robin repartition and a
//! task per partition), which costs a lookup more than the lookup itself.

use std::fmt;
use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream, StatisticsArgs,
};

/// `inner`, a leaf scan, with an upper bound on the rows it gives, reported as an
/// estimate of its row count (see [`crate::engine`]: estimates steer partitioning).
#[derive(Debug)]
pub(crate) struct BoundedScanExec {
    inner: Arc<dyn ExecutionPlan>,
    max_rows: usize,
}

impl BoundedScanExec {
    /// `inner` (a plan without children), giving at most `max_rows` rows.
    pub(crate) fn new(inner: Arc<dyn ExecutionPlan>, max_rows: usize) -> Self {
        Self { inner, max_rows }
    }

    fn wrap(&self, inner: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self::new(inner, self.max_rows))
    }
}

/// `with_new_children` of a plan without children: itself, given none.
pub(crate) fn leaf_with_new_children(
    plan: Arc<dyn ExecutionPlan>,
    children: &[Arc<dyn ExecutionPlan>],
) -> Result<Arc<dyn ExecutionPlan>> {
    if children.is_empty() {
        Ok(plan)
    } else {
        internal_err!("{} has no children to replace", plan.name())
    }
}

impl DisplayAs for BoundedScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "BoundedScanExec: max_rows={}, ", self.max_rows)?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for BoundedScanExec {
    fn name(&self) -> &str {
        "BoundedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
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

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn statistics_from_inputs(&self, _inputs: &[Arc<Statistics>], _args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        Ok(Arc::new(
            Statistics::new_unknown(&self.schema()).with_num_rows(Precision::Inexact(self.max_rows)),
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    fn fetch(&self) -> Option<usize> {
        self.inner.fetch()
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        self.inner.with_fetch(limit).map(|inner| self.wrap(inner))
    }

    fn try_swapping_with_projection(&self, projection: &ProjectionExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self
            .inner
            .try_swapping_with_projection(projection)?
            .map(|inner| self.wrap(inner)))
    }
}
