//! Optimized plans of repeated queries, so that an app's `SELECT ... WHERE id = $1` is
//! parsed, resolved and optimized once and afterwards only bound to its parameters and
//! planned physically. Where its parameters are all in key comparisons its scans answer,
//! the physical plan is kept too, with its scans deferred, and each run only plans the
//! scans with the values bound (see [`crate::providers::deferred_scan`]).
//!
//! A plan is kept per (SQL text, user, role, namespace) and is valid only for the catalog
//! snapshot it was planned against: any DDL, user or job change makes a new snapshot, and
//! the next run plans again. Plans are not kept when running them later could answer
//! differently from planning them again: plans reading system tables (their rows are read
//! at planning) and plans calling a function that is not immutable (`NOW()` is folded into
//! a constant by the optimizer, `RANDOM()` must not be).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use calamus_domain::model::Role;
use calamus_domain::{CatalogSnapshot, NamespaceId, TableId, UserId};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;

use crate::session::Session;

/// Plans kept at most; when full, the cache starts over (a server running more distinct
/// queries than this gains little from keeping them).
const CAPACITY: usize = 1024;

/// What a plan is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    sql: String,
    user: UserId,
    role: Role,
    namespace: NamespaceId,
    /// The table of the UPDATE or DELETE the query reads for (its provider shows row ids).
    dml_target: Option<TableId>,
}

impl PlanKey {
    /// The key of `sql` run by `session` (reading for an UPDATE or DELETE of `dml_target`).
    pub(crate) fn new(session: &Session, sql: String, dml_target: Option<TableId>) -> Self {
        Self {
            sql,
            user: session.user.clone(),
            role: session.role,
            namespace: session.namespace.clone(),
            dml_target,
        }
    }
}

struct CachedPlan {
    /// The snapshot the plan was resolved against (held, so its address is not reused).
    snapshot: Arc<CatalogSnapshot>,
    kept: KeptPlan,
}

/// What is kept of a query: its optimized plan, and the physical plan of a query whose
/// scans were all deferred until its parameters are bound.
#[derive(Clone)]
pub(crate) struct KeptPlan {
    /// The optimized logical plan, parameters unbound.
    pub(crate) logical: LogicalPlan,
    /// The physical plan with [`DeferredScanExec`](crate::providers::deferred_scan)s, and
    /// the schema of its rows.
    pub(crate) physical: Option<(Arc<dyn ExecutionPlan>, SchemaRef)>,
}

/// The cache of the plans of queries run before.
#[derive(Default)]
pub struct PlanCache {
    plans: Mutex<HashMap<PlanKey, CachedPlan>>,
    logical_reuses: AtomicU64,
    physical_reuses: AtomicU64,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache").field("reuse", &self.reuse()).finish()
    }
}

/// How much the kept plans are used, as `system.stats` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanReuse {
    /// Plans kept now.
    pub kept: u64,
    /// Runs since the start that reused a kept optimized plan, planning it physically.
    pub logical: u64,
    /// Runs since the start that reused a kept physical plan, planning only its scans.
    pub physical: u64,
}

impl PlanCache {
    /// The plan kept for `key`, if it was planned against `snapshot`.
    pub(crate) fn get(&self, key: &PlanKey, snapshot: &Arc<CatalogSnapshot>) -> Option<KeptPlan> {
        let plans = self.plans.lock();
        let cached = plans.get(key)?;
        Arc::ptr_eq(&cached.snapshot, snapshot).then(|| cached.kept.clone())
    }

    /// Keeps `plan` (optimized, parameters unbound) for `key`: only for a plan whose
    /// unoptimized form is [`reusable`] (the optimizer folds `NOW()` away).
    pub(crate) fn put(&self, key: PlanKey, snapshot: Arc<CatalogSnapshot>, plan: KeptPlan) {
        let mut plans = self.plans.lock();
        if plans.len() >= CAPACITY && !plans.contains_key(&key) {
            plans.clear();
        }
        plans.insert(key, CachedPlan { snapshot, kept: plan });
    }

    /// Stops offering the physical plan kept for `key` against `snapshot`: its scans no
    /// longer fit it, and trying each run would plan them twice. A plan kept since against
    /// another snapshot is left alone.
    pub(crate) fn forget_physical(&self, key: &PlanKey, snapshot: &Arc<CatalogSnapshot>) {
        if let Some(cached) = self.plans.lock().get_mut(key)
            && Arc::ptr_eq(&cached.snapshot, snapshot)
        {
            cached.kept.physical = None;
        }
    }

    /// Plans kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.plans.lock().len()
    }

    /// Counts a run that reused a kept plan: its physical plan when `physical`.
    pub(crate) fn count_reuse(&self, physical: bool) {
        let counter = if physical {
            &self.physical_reuses
        } else {
            &self.logical_reuses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// How much the kept plans are used.
    pub fn reuse(&self) -> PlanReuse {
        PlanReuse {
            kept: self.plans.lock().len() as u64,
            logical: self.logical_reuses.load(Ordering::Relaxed),
            physical: self.physical_reuses.load(Ordering::Relaxed),
        }
    }
}

/// Whether running `plan` (as planned from SQL, before optimizing) again gives what
/// planning its SQL again would.
pub(crate) fn reusable(plan: &LogicalPlan) -> bool {
    let mut reusable = true;
    let _ = plan.apply_with_subqueries(|node| {
        let reads_system = matches!(node, LogicalPlan::TableScan(scan) if scan.table_name.schema() == Some("system"));
        let not_immutable = node
            .expressions()
            .iter()
            .any(|e| e.exists(|e| Ok(is_not_immutable(e))).unwrap_or(true));
        if reads_system || not_immutable {
            reusable = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    reusable
}

fn is_not_immutable(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarFunction(f) => f.func.signature().volatility != Volatility::Immutable,
        Expr::AggregateFunction(f) => f.func.signature().volatility != Volatility::Immutable,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::StatementOutput;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::catalog::MemorySchemaProvider;
    use datafusion::common::ScalarValue;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::prelude::SessionContext;

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let table = Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap());
        let catalog = ctx.catalog("datafusion").unwrap();
        catalog
            .register_schema("system", Arc::new(MemorySchemaProvider::new()))
            .unwrap();
        ctx.register_table("t", Arc::clone(&table) as _).unwrap();
        ctx.register_table("system.jobs", table as _).unwrap();
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn plans_that_would_answer_differently_are_not_kept() {
        assert!(reusable(&plan("SELECT id FROM t WHERE id = $1").await));
        assert!(reusable(
            &plan("SELECT id, abs(id) FROM t WHERE id IN (SELECT id FROM t)").await
        ));
        assert!(!reusable(&plan("SELECT * FROM system.jobs").await));
        assert!(!reusable(
            &plan("SELECT id FROM t WHERE id IN (SELECT id FROM system.jobs)").await
        ));
        assert!(!reusable(&plan("SELECT id, random() FROM t").await));
        assert!(!reusable(&plan("SELECT id FROM t WHERE now() > to_timestamp(0)").await));
    }

    #[tokio::test]
    async fn the_engine_keeps_reusable_plans_and_runs_them_again() {
        use calamus_domain::ids::SnowflakeGenerator;
        use calamus_domain::{MockCatalog, MockRowStore};
        // One snapshot for every call: the catalog does not change.
        let snapshot = Arc::new(CatalogSnapshot::default());
        let mut catalog = MockCatalog::new();
        catalog.expect_snapshot().returning(move || Arc::clone(&snapshot));
        let engine = crate::engine::QueryEngine::new(
            Arc::new(catalog),
            Arc::new(MockRowStore::new()),
            Arc::new(SnowflakeGenerator::new(0, 0)),
            Arc::new(crate::live::LiveQueries::new()),
        );
        let mut root = Session::root();
        let mut alice = Session::new(UserId::new("alice").unwrap(), Role::User);
        let add = "SELECT 40 + $1";
        for (n, session) in [(1, &mut root), (2, &mut alice)] {
            let out = engine
                .execute(session, add, &[ScalarValue::Int64(Some(n))])
                .await
                .unwrap();
            assert_eq!(out[0].row_count(), 1);
        }
        let again = engine
            .execute(&mut root, add, &[ScalarValue::Int64(Some(2))])
            .await
            .unwrap();
        let StatementOutput::Rows { batches, .. } = &again[0] else {
            panic!("rows")
        };
        let sum = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(sum, 42, "the kept plan is bound to the new parameter");
        assert_eq!(engine.kept_plans(), 2, "one plan per session, reused by the third run");
        engine.execute(&mut root, "SELECT now()", &[]).await.unwrap();
        assert_eq!(engine.kept_plans(), 2, "a plan folding NOW() is not kept");
    }

    #[tokio::test]
    async fn a_plan_is_kept_per_session_and_snapshot() {
        let cache = PlanCache::default();
        let alice = Session::new(UserId::new("alice").unwrap(), Role::User);
        let bob = Session::new(UserId::new("bob").unwrap(), Role::User);
        let (one, two) = (
            Arc::new(CatalogSnapshot::default()),
            Arc::new(CatalogSnapshot::default()),
        );
        let sql = "SELECT id FROM t WHERE id = $1";
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        cache.put(
            PlanKey::new(&alice, sql.into(), None),
            Arc::clone(&one),
            KeptPlan {
                logical: plan(sql).await,
                physical: Some((Arc::new(EmptyExec::new(Arc::clone(&schema))), schema)),
            },
        );
        assert!(cache.get(&PlanKey::new(&alice, sql.into(), None), &one).is_some());
        assert!(
            cache.get(&PlanKey::new(&bob, sql.into(), None), &one).is_none(),
            "another user's plan"
        );
        assert!(
            cache.get(&PlanKey::new(&alice, sql.into(), None), &two).is_none(),
            "another catalog"
        );
        assert_eq!(cache.len(), 1);
        let key = PlanKey::new(&alice, sql.into(), None);
        assert!(cache.get(&key, &one).unwrap().physical.is_some());
        cache.forget_physical(&key, &two);
        assert!(
            cache.get(&key, &one).unwrap().physical.is_some(),
            "kept against another snapshot"
        );
        cache.forget_physical(&key, &one);
        let kept = cache.get(&key, &one).expect("the logical plan stays");
        assert!(kept.physical.is_none());
    }
}
