//! The query engine: runs statements for a session.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::Role;
use calamus_domain::{Catalog, CatalogSnapshot, DomainError, NamespaceId, RowStore, TableId, TableName, UserId};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement as SqlStatement};

use crate::authorization::{authorize, denied, rules};
use crate::cold::ColdStorage;
use crate::error::{QueryError, QueryResult, retry_when_raced_by_flush};
use crate::functions::{id_functions, session_functions};
use crate::jobs::{self, running::RunningJobs};
use crate::live::{self, LiveQueries};
use crate::output::StatementOutput;
use crate::parser::parse_statements_with_text;
use crate::plan_cache::{self, KeptPlan, PlanCache, PlanKey};
use crate::providers::{SessionCatalog, TableAccess, deferred_scan};
use crate::session::Session;
use crate::statement::{Statement, UnavailableFeature};
use crate::{ddl, dml, show};

/// DataFusion's catalog name for Calamus's namespaces.
pub const CATALOG_NAME: &str = "calamus";

/// Runs SQL for sessions over a catalog and a row store.
pub struct QueryEngine {
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) rows: Arc<dyn RowStore>,
    pub(crate) snowflake: Arc<SnowflakeGenerator>,
    pub(crate) live: Arc<LiveQueries>,
    pub(crate) cold: Option<ColdStorage>,
    /// Optimized plans of queries run before.
    pub(crate) plans: Arc<PlanCache>,
    /// One flush at a time per table (by uid): two would write the same segment file.
    pub(crate) flush_locks: parking_lot::Mutex<std::collections::HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Jobs running now, for `KILL JOB`.
    pub(crate) running_jobs: Arc<RunningJobs>,
    /// Takes `BACKUP DATABASE`'s copies, when the engine stands on a data directory.
    pub(crate) backups: Option<Arc<dyn crate::backup::DatabaseBackup>>,
    /// Held shared while a backup copies segment files, exclusively while a dropped table's
    /// segments are removed: a backup never misses a file its checkpoint names.
    pub(crate) segment_removal: Arc<tokio::sync::RwLock<()>>,
    base_state: SessionState,
    /// The context kept plans run in: made once from `base_state` (making one copies every
    /// function registry of the state).
    pub(crate) base_task: Arc<TaskContext>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// An engine over `catalog` and `rows`; `snowflake` makes `SNOWFLAKE_ID()` values (the
    /// row store's `_seq` generator, so the two never collide); `live` is the registry of
    /// subscriptions, which must be the row store's change listener.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        rows: Arc<dyn RowStore>,
        snowflake: Arc<SnowflakeGenerator>,
        live: Arc<LiveQueries>,
    ) -> Self {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, NamespaceId::default_namespace().as_str())
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false);
        // Scans that know they give few rows (a primary-key lookup) estimate so, and such a
        // scan stays in one partition (see `providers::bounded_scan`).
        config
            .options_mut()
            .execution
            .use_row_number_estimates_to_optimize_partitioning = true;
        let mut builder = SessionStateBuilder::new().with_config(config).with_default_features();
        builder
            .scalar_functions()
            .get_or_insert_with(Vec::new)
            .extend(id_functions(&snowflake).into_iter().map(Arc::new));
        let base_state = builder.build();
        let base_task = Arc::new(TaskContext::from(&base_state));
        Self {
            catalog,
            rows,
            snowflake,
            live,
            cold: None,
            plans: Default::default(),
            flush_locks: Default::default(),
            running_jobs: Default::default(),
            backups: None,
            segment_removal: Default::default(),
            base_state,
            base_task,
        }
    }

    /// The same engine, flushing to and reading cold segments from storages whose
    /// relative paths are under `data_dir`.
    pub fn with_cold_storage(mut self, data_dir: impl Into<std::path::PathBuf>) -> Self {
        self.cold = Some(ColdStorage::new(data_dir));
        self
    }

    /// The same engine, running `BACKUP DATABASE` through `backups`.
    pub fn with_backups(mut self, backups: Arc<dyn crate::backup::DatabaseBackup>) -> Self {
        self.backups = Some(backups);
        self
    }

    /// Optimized plans kept for reuse.
    #[cfg(test)]
    pub(crate) fn kept_plans(&self) -> usize {
        self.plans.len()
    }

    /// The row store port.
    pub fn rows(&self) -> &Arc<dyn RowStore> {
        &self.rows
    }

    /// The registry of live subscriptions.
    pub fn live_queries(&self) -> &Arc<LiveQueries> {
        &self.live
    }

    /// How many Parquet segments reads have opened (0 without cold storage).
    pub fn segments_read(&self) -> u64 {
        self.cold.as_ref().map_or(0, ColdStorage::segments_read)
    }

    /// The catalog port.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// A session for the existing user `user`, with the role the catalog gives it.
    pub fn session_for(&self, user: &str) -> QueryResult<Session> {
        let id = UserId::new(user)?;
        let snapshot = self.catalog.snapshot();
        let record = snapshot
            .users
            .get(&id)
            .ok_or_else(|| DomainError::UserNotFound { user: id.to_string() })?;
        Ok(Session::new(id, record.role))
    }

    /// Runs every statement of `sql` in order, giving each one's output: [`Self::prepare`],
    /// then [`Self::run`] for each statement. A forbidden statement fails the batch before
    /// any statement runs; otherwise the first failure stops the batch (earlier statements
    /// stay applied). `params` fill `$1..$n`.
    pub async fn execute(
        &self,
        session: &mut Session,
        sql: &str,
        params: &[ScalarValue],
    ) -> QueryResult<Vec<StatementOutput>> {
        let statements = self.prepare(session, sql)?;
        if statements.is_empty() {
            return Err(QueryError::InvalidStatement("the SQL holds no statement".into()));
        }
        let mut outputs = Vec::with_capacity(statements.len());
        for statement in statements {
            outputs.push(self.run(session, statement, params).await?);
        }
        Ok(outputs)
    }

    /// Parses `sql` and authorises every statement of it for `session`, before any runs:
    /// the statements, or the first error (a syntax error, or `PermissionDenied` for the
    /// first statement the session's role may not run). `USE ns` statements of the batch
    /// are followed, so later unqualified names are checked in the namespace they will
    /// resolve in; tables and users the batch creates are checked when their statements
    /// run. A text of only comments and semicolons gives no statement.
    pub fn prepare(&self, session: &Session, sql: &str) -> QueryResult<Vec<Statement>> {
        Ok(self
            .prepare_with_text(session, sql)?
            .into_iter()
            .map(|(statement, _)| statement)
            .collect())
    }

    /// [`Self::prepare`], each statement with its own text in `sql` (see
    /// [`parse_statements_with_text`]).
    pub fn prepare_with_text<'s>(&self, session: &Session, sql: &'s str) -> QueryResult<Vec<(Statement, &'s str)>> {
        let statements = parse_statements_with_text(sql)?;
        let snapshot = self.catalog.snapshot();
        let mut simulated = session.clone();
        for (statement, _) in &statements {
            authorize(&snapshot, &simulated, statement)?;
            if let Statement::Use { namespace } = statement
                && let Ok(namespace) = NamespaceId::new(&namespace.value)
            {
                simulated.namespace = namespace;
            }
        }
        Ok(statements)
    }

    /// Whether `session` may run `statement` now: `Ok`, or `PermissionDenied`.
    pub(crate) fn authorize(&self, session: &Session, statement: &Statement) -> QueryResult<()> {
        authorize(&self.catalog.snapshot(), session, statement)
    }

    /// Runs one parsed statement, after checking that the session's role allows it (again:
    /// the catalog may have changed since [`Self::prepare`], by an earlier statement of the
    /// batch or another session).
    pub async fn run(
        &self,
        session: &mut Session,
        statement: Statement,
        params: &[ScalarValue],
    ) -> QueryResult<StatementOutput> {
        self.authorize(session, &statement)?;
        self.dispatch(session, statement, params).await
    }

    /// Runs one statement that [`Self::authorize`] has allowed (for `EXECUTE AS USER`, the
    /// check covered the inner statement as the target user).
    pub(crate) async fn dispatch(
        &self,
        session: &mut Session,
        statement: Statement,
        params: &[ScalarValue],
    ) -> QueryResult<StatementOutput> {
        match statement {
            Statement::CreateNamespace { name, if_not_exists } => {
                ddl::namespace::create(self, &name, if_not_exists).await
            }
            Statement::AlterNamespace { name, options } => ddl::namespace::alter(self, &name, options).await,
            Statement::DropNamespace {
                name,
                if_exists,
                cascade,
            } => ddl::namespace::drop(self, &name, if_exists, cascade).await,
            Statement::ShowNamespaces => show::namespaces(self, session),
            Statement::KillLiveQuery { live_id } => live::kill(self, session, &live_id),
            Statement::KillJob { job_id } => jobs::kill(self, &job_id),
            Statement::BackupDatabase { path } => crate::backup::run(self, &path).await,
            Statement::CreateStorage {
                name,
                if_not_exists,
                options,
            } => ddl::storage::create(self, &name, if_not_exists, options).await,
            Statement::AlterStorage { name, options } => ddl::storage::alter(self, &name, options).await,
            Statement::DropStorage { name, if_exists } => ddl::storage::drop(self, &name, if_exists).await,
            Statement::ShowStorages => show::storages(self),
            Statement::Flush { table, namespace } => {
                crate::cold::statement::flush(self, session, table.as_ref(), namespace.as_ref()).await
            }
            Statement::Compact { table, namespace } => {
                crate::cold::statement::compact(self, session, table.as_ref(), namespace.as_ref()).await
            }
            Statement::Use { namespace } => ddl::namespace::use_namespace(self, session, &namespace),
            Statement::CreateTable {
                kind,
                create,
                legacy_options,
            } => ddl::create_table::create(self, session, kind, *create, legacy_options).await,
            Statement::DropTable { kind, name, if_exists } => {
                ddl::table::drop(self, session, kind, &name, if_exists).await
            }
            Statement::ShowTables { namespace } => show::tables(self, session, namespace.as_ref()),
            Statement::DescribeTable { name, history } => show::describe(self, session, &name, history),
            Statement::ShowStats { name } => show::stats(self, session, &name).await,
            Statement::CreateUser {
                name,
                if_not_exists,
                password,
                role,
                email,
            } => ddl::user::create(self, &name, if_not_exists, password, role, email).await,
            Statement::AlterUser { name, change } => ddl::user::alter(self, &name, change).await,
            Statement::DropUser { name, if_exists } => ddl::user::drop(self, &name, if_exists).await,
            Statement::ExecuteAs { user, statement } => {
                let mut as_user = self.execute_as_session(session, &user)?;
                Box::pin(self.dispatch(&mut as_user, *statement, params)).await
            }
            Statement::Index { table, create } => ddl::table::index(self, session, table.as_ref(), create),
            Statement::NotAvailable {
                feature: UnavailableFeature::Subscribe,
            } => Err(QueryError::InvalidStatement(
                "SUBSCRIBE TO is served over WebSocket, not HTTP: open GET /v1/ws, authenticate, and send \
                 {\"type\": \"subscribe\", \"subscription\": {\"id\": \"s1\", \"sql\": \"SELECT * FROM ns.t WHERE ...\"}}"
                    .into(),
            )),
            Statement::InsertLiteralRows(insert) => dml::insert::run_literal(self, session, *insert).await,
            Statement::Sql(statement) => self.run_sql(session, *statement, params).await,
        }
    }

    async fn run_sql(
        &self,
        session: &mut Session,
        statement: SqlStatement,
        params: &[ScalarValue],
    ) -> QueryResult<StatementOutput> {
        match statement {
            statement if is_query(&statement) => {
                // A query that overlapped a flush moving rows it had not read yet fails
                // rather than miss them; it runs again (it has sent nothing yet).
                let (session, statement): (&Session, &SqlStatement) = (session, &statement);
                retry_when_raced_by_flush(|| async move {
                    let planned = self.plan_session_query(session, statement, params, None).await?;
                    let batches = collect(planned.physical, planned.task).await?;
                    Ok(StatementOutput::Rows {
                        schema: planned.schema,
                        batches,
                    })
                })
                .await
            }
            SqlStatement::Insert(insert) => dml::insert::run(self, session, insert, params).await,
            SqlStatement::Update(update) => dml::modify::update(self, session, update, params).await,
            SqlStatement::Delete(delete) => dml::modify::delete(self, session, delete, params).await,
            SqlStatement::AlterTable(alter) => ddl::alter_table::run(self, session, alter).await,
            other => Err(QueryError::Unsupported(format!(
                "the statement '{}' is not supported",
                first_words(&other)
            ))),
        }
    }

    /// The session `EXECUTE AS USER` runs its statement in, if the caller's role allows it.
    pub(crate) fn execute_as_session(&self, caller: &Session, user: &str) -> QueryResult<Session> {
        if caller.role == Role::User {
            return Err(denied(caller.role, String::new));
        }
        let target = self.session_for(user)?;
        if !rules::may_execute_as(caller.role, target.role) {
            return Err(denied(caller.role, || {
                format!("role {} may not EXECUTE AS USER with role {}", caller.role, target.role)
            }));
        }
        Ok(Session {
            namespace: caller.namespace.clone(),
            ..target
        })
    }

    /// A DataFusion state for one statement of `session`; `dml_target`'s provider exposes
    /// the hidden row id.
    pub(crate) fn state_for(&self, session: &Session, dml_target: Option<TableId>) -> SessionState {
        self.state_with(session, self.catalog.snapshot(), dml_target)
    }

    /// [`Self::state_for`] resolving names in `snapshot`.
    fn state_with(
        &self,
        session: &Session,
        snapshot: Arc<CatalogSnapshot>,
        dml_target: Option<TableId>,
    ) -> SessionState {
        let access = TableAccess {
            snapshot,
            rows: Arc::clone(&self.rows),
            live: Arc::clone(&self.live),
            plans: Arc::clone(&self.plans),
            cold: self.cold.clone(),
            user: session.user.clone(),
            role: session.role,
            dml_target,
        };
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(CATALOG_NAME.to_owned(), Arc::new(SessionCatalog::new(access)));
        let mut config = self.base_state.config().clone();
        config.options_mut().catalog.default_schema = session.namespace.to_string();
        let mut builder = SessionStateBuilder::new_from_existing(self.base_state.clone())
            .with_config(config)
            .with_catalog_list(Arc::new(catalogs) as Arc<dyn CatalogProviderList>);
        for udf in session_functions(session.user.as_str(), session.role.as_str()) {
            builder
                .scalar_functions()
                .get_or_insert_with(Vec::new)
                .push(Arc::new(udf));
        }
        let mut state = builder.build();
        // Fixes `now()` for the statement (DataFusion folds it to this instant).
        state.mark_start_execution();
        state
    }

    /// Plans and runs a query statement, binding `params` to its placeholders.
    pub(crate) async fn query(
        &self,
        state: &SessionState,
        statement: SqlStatement,
        params: &[ScalarValue],
    ) -> QueryResult<(SchemaRef, Vec<RecordBatch>)> {
        let frame = self.plan_query(state, statement, params).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok((schema, batches))
    }

    /// Plans a query of `session` and binds `params`: the physical plan, its schema and
    /// the context to run it in. A query run before by the same session against the same
    /// catalog reuses its optimized plan (see [`crate::plan_cache`]).
    pub(crate) async fn plan_session_query(
        &self,
        session: &Session,
        statement: &SqlStatement,
        params: &[ScalarValue],
        dml_target: Option<TableId>,
    ) -> QueryResult<PlannedQuery> {
        let snapshot = self.catalog.snapshot();
        let key = PlanKey::new(session, statement.to_string(), dml_target.clone());
        if let Some(kept) = self.plans.get(&key, &snapshot) {
            if let Some((physical, schema)) = &kept.physical {
                match self.bind_kept(physical, params).await {
                    Ok(Some(physical)) => {
                        self.plans.count_reuse(true);
                        let task = Arc::clone(&self.base_task);
                        return Ok(PlannedQuery {
                            schema: Arc::clone(schema),
                            physical,
                            task,
                        });
                    }
                    Ok(None) => self.plans.forget_physical(&key, &snapshot),
                    Err(_) => {}
                }
            }
            self.plans.count_reuse(false);
            let task = Arc::clone(&self.base_task);
            return self.plan_physical(&self.base_state, task, kept.logical, params).await;
        }
        let state = self.state_with(session, Arc::clone(&snapshot), dml_target);
        let plan = self.logical_query_plan(&state, statement.clone()).await?;
        let reusable =
            !matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) && plan_cache::reusable(&plan);
        match state.optimize(&plan) {
            Ok(optimized) => {
                if reusable {
                    let physical = if params.is_empty() {
                        None
                    } else {
                        Self::deferred_physical(&state, &optimized).await
                    };
                    let kept = KeptPlan {
                        logical: optimized.clone(),
                        physical,
                    };
                    self.plans.put(key, snapshot, kept);
                }
                let task = Arc::new(TaskContext::from(&state));
                self.plan_physical(&state, task, optimized, params).await
            }
            // A plan the optimizer needs the parameters' values for (an untyped
            // `SELECT $1`): bound first, then planned as usual.
            Err(_) => {
                let plan = if params.is_empty() {
                    plan
                } else {
                    plan.with_param_values(params.to_vec())?
                };
                let frame = DataFrame::new(state, plan);
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let task = Arc::new(frame.task_ctx());
                let physical = frame.create_physical_plan().await?;
                Ok(PlannedQuery { schema, physical, task })
            }
        }
    }

    /// The physical plan of `optimized` with its parameters unbound, when DataFusion can
    /// plan it so: every parameter is in a key comparison a scan answers, and every scan
    /// is deferred (see [`deferred_scan`]).
    async fn deferred_physical(
        state: &SessionState,
        optimized: &LogicalPlan,
    ) -> Option<(Arc<dyn ExecutionPlan>, SchemaRef)> {
        let physical = state
            .query_planner()
            .create_physical_plan(optimized, state)
            .await
            .ok()?;
        let schema: SchemaRef = Arc::new(optimized.schema().as_arrow().clone());
        deferred_scan::only_deferred_scans(&physical).then_some((physical, schema))
    }

    /// A kept physical plan with its scans planned for `params`: `Ok(None)` when a scan
    /// no longer fits the kept plan. An error (a missing parameter, say) is left for
    /// planning from the logical plan to report in its own words.
    async fn bind_kept(
        &self,
        physical: &Arc<dyn ExecutionPlan>,
        params: &[ScalarValue],
    ) -> datafusion::common::Result<Option<Arc<dyn ExecutionPlan>>> {
        let params = ParamValues::List(params.iter().cloned().map(Into::into).collect());
        deferred_scan::bind_deferred_scans(physical, &self.base_state, &params).await
    }

    /// Binds `params` to an optimized plan and plans it physically in `state`, to run in
    /// `task` (made from `state`).
    async fn plan_physical(
        &self,
        state: &SessionState,
        task: Arc<TaskContext>,
        optimized: LogicalPlan,
        params: &[ScalarValue],
    ) -> QueryResult<PlannedQuery> {
        let bound = if params.is_empty() {
            optimized
        } else {
            optimized.with_param_values(params.to_vec())?
        };
        let schema: SchemaRef = Arc::new(bound.schema().as_arrow().clone());
        let physical = state.query_planner().create_physical_plan(&bound, state).await?;
        Ok(PlannedQuery { schema, physical, task })
    }

    /// The logical plan of a query statement (refusing anything that is not a query).
    async fn logical_query_plan(&self, state: &SessionState, statement: SqlStatement) -> QueryResult<LogicalPlan> {
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await?;
        if matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) | LogicalPlan::Statement(_)
        ) {
            return Err(QueryError::Unsupported("only queries run through this path".into()));
        }
        Ok(plan)
    }

    /// Plans a query statement, binding `params` to its placeholders.
    pub(crate) async fn plan_query(
        &self,
        state: &SessionState,
        statement: SqlStatement,
        params: &[ScalarValue],
    ) -> QueryResult<DataFrame> {
        let plan = self.logical_query_plan(state, statement).await?;
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params.to_vec())?
        };
        Ok(DataFrame::new(state.clone(), plan))
    }

    /// Resolves a table name of a statement: `t` in the session's namespace, or `ns.t`.
    pub(crate) fn resolve_table(&self, session: &Session, name: &ObjectName) -> QueryResult<TableId> {
        table_id(&session.namespace, name)
    }
}

/// The table `name` names: `t` in `namespace`, or `ns.t`.
pub(crate) fn table_id(namespace: &NamespaceId, name: &ObjectName) -> QueryResult<TableId> {
    let parts: Vec<String> = name.0.iter().map(|p| p.to_string()).collect();
    let unquote = |s: &str| s.trim_matches('"').trim_matches('`').to_owned();
    let (namespace, table) = match parts.as_slice() {
        [table] => (namespace.clone(), TableName::new(&unquote(table))?),
        [ns, table] => (NamespaceId::new(&unquote(ns))?, TableName::new(&unquote(table))?),
        _ => {
            return Err(QueryError::InvalidStatement(format!(
                "table name '{name}' must be 'table' or 'namespace.table'"
            )));
        }
    };
    Ok(TableId::new(namespace, table))
}

/// Whether a standard statement is a query (or the EXPLAIN of one): it gives rows.
pub(crate) fn is_query(statement: &SqlStatement) -> bool {
    match statement {
        SqlStatement::Query(_) => true,
        SqlStatement::Explain { statement, .. } => matches!(statement.as_ref(), SqlStatement::Query(_)),
        _ => false,
    }
}

/// The first words of a statement, to name it in an error without echoing all of it.
fn first_words(statement: &SqlStatement) -> String {
    statement
        .to_string()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A query ready to run: its physical plan, the schema of its rows, and its context.
pub(crate) struct PlannedQuery {
    /// The schema of the rows.
    pub(crate) schema: SchemaRef,
    /// The physical plan.
    pub(crate) physical: Arc<dyn ExecutionPlan>,
    /// The context to execute it in.
    pub(crate) task: Arc<TaskContext>,
}
