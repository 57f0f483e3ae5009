//! `FLUSH TABLE t`, `STORAGE FLUSH TABLE t`, `STORAGE FLUSH ALL [IN ns]`, and
//! `STORAGE COMPACT TABLE t` / `STORAGE COMPACT ALL [IN ns]`: each table flushed or
//! compacted is a row of `system.jobs`.

use std::sync::Arc;

use calamus_domain::ids::now_micros;
use calamus_domain::model::{JobRecord, JobStatus, TableDefinition, TableKind};
use calamus_domain::{DomainError, NamespaceId};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use super::compaction::{CompactionOutcome, CompactionScope};
use super::flush::FlushOutcome;
use crate::authorization::rules::may_read;
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// The tables a flush or compaction statement names: one table, or every USER and SHARED
/// table (of a namespace) the session may read.
fn tables_named(
    engine: &QueryEngine,
    session: &Session,
    table: Option<&ObjectName>,
    namespace: Option<&Ident>,
) -> QueryResult<Vec<Arc<TableDefinition>>> {
    let snapshot = engine.catalog.snapshot();
    Ok(match table {
        Some(name) => {
            let id = engine.resolve_table(session, name)?;
            let table = snapshot
                .table(&id)
                .filter(|t| may_read(session.role, t))
                .ok_or_else(|| DomainError::TableNotFound { table: id.to_string() })?;
            vec![Arc::clone(table)]
        }
        None => {
            let namespace = namespace.map(|n| NamespaceId::new(&n.value)).transpose()?;
            if let Some(ns) = &namespace
                && !snapshot.has_namespace(ns)
            {
                return Err(DomainError::NamespaceNotFound {
                    namespace: ns.to_string(),
                }
                .into());
            }
            snapshot
                .tables
                .values()
                .filter(|t| t.kind != TableKind::Stream)
                .filter(|t| namespace.as_ref().is_none_or(|ns| &t.id.namespace == ns))
                .filter(|t| may_read(session.role, t))
                .cloned()
                .collect()
        }
    })
}

/// What the statement says about the tables it named.
fn what_was_named(table: Option<&ObjectName>, tables: &[Arc<TableDefinition>]) -> String {
    match (table, tables.first()) {
        (Some(_), Some(first)) => format!("table {}", first.id),
        _ => format!("{} table(s)", tables.len()),
    }
}

/// Runs a flush statement: one table, or every USER and SHARED table (of a namespace).
pub async fn flush(
    engine: &QueryEngine,
    session: &Session,
    table: Option<&ObjectName>,
    namespace: Option<&Ident>,
) -> QueryResult<StatementOutput> {
    let tables = tables_named(engine, session, table, namespace)?;
    let mut total = FlushOutcome::default();
    for table in &tables {
        total += flush_as_job(engine, table).await?;
    }
    Ok(StatementOutput::affected(
        total.rows,
        format!(
            "Flushed {} row(s) of {} into {} segment(s), {} bytes",
            total.rows,
            what_was_named(table, &tables),
            total.segments,
            total.bytes
        ),
    ))
}

/// Runs a compaction statement: every partition of the tables named with more than one
/// segment (or a version to drop) is rewritten as one segment.
pub async fn compact(
    engine: &QueryEngine,
    session: &Session,
    table: Option<&ObjectName>,
    namespace: Option<&Ident>,
) -> QueryResult<StatementOutput> {
    let tables = tables_named(engine, session, table, namespace)?;
    let mut total = CompactionOutcome::default();
    for table in &tables {
        total += compact_as_job(engine, table, CompactionScope::All, None).await?;
    }
    Ok(StatementOutput::affected(
        total.versions_dropped,
        format!(
            "Compacted {} segment(s) of {} partition(s) of {}: {} version(s) dropped, {} bytes written",
            total.segments,
            total.partitions,
            what_was_named(table, &tables),
            total.versions_dropped,
            total.bytes
        ),
    ))
}

/// What a job's row of `system.jobs` says once it ends.
struct JobReport {
    /// Rows it affected.
    rows: u64,
    /// Bytes it wrote.
    bytes: u64,
    /// Whether `KILL JOB` stopped it.
    cancelled: bool,
    /// What it did, for the job's message.
    summary: String,
}

/// The outcome of a job's work, as its row of `system.jobs` reports it.
trait JobOutcome {
    fn report(&self) -> JobReport;
}

impl JobOutcome for FlushOutcome {
    fn report(&self) -> JobReport {
        JobReport {
            rows: self.rows,
            bytes: self.bytes,
            cancelled: self.cancelled,
            summary: format!(
                "{} row(s) of {} partition(s) into {} segment(s)",
                self.rows, self.partitions, self.segments
            ),
        }
    }
}

impl JobOutcome for CompactionOutcome {
    fn report(&self) -> JobReport {
        JobReport {
            rows: self.versions_dropped,
            bytes: self.bytes,
            cancelled: self.cancelled,
            summary: format!(
                "{} segment(s) of {} partition(s) compacted, {} version(s) dropped",
                self.segments, self.partitions, self.versions_dropped
            ),
        }
    }
}

/// Flushes one table, recorded as a `flush` job: `running`, then `completed` with its
/// rows and bytes, or `failed` with the error.
pub async fn flush_as_job(engine: &QueryEngine, table: &Arc<TableDefinition>) -> QueryResult<FlushOutcome> {
    run_as_job(engine, table, "flush", None, |running| async move {
        engine.flush_table(table, &running).await
    })
    .await
}

/// Compacts one table's partitions that `scope` picks, recorded as a `compact` job;
/// deleted versions with a `_seq` below `purge_before` are dropped for good.
pub async fn compact_as_job(
    engine: &QueryEngine,
    table: &Arc<TableDefinition>,
    scope: CompactionScope,
    purge_before: Option<i64>,
) -> QueryResult<CompactionOutcome> {
    let parameters = purge_before.map(|seq| format!("{{\"purge_deleted_before_seq\": {seq}}}"));
    run_as_job(engine, table, "compact", parameters, |running| async move {
        engine.compact_table(table, scope, purge_before, &running).await
    })
    .await
}

/// Runs `work` on `table` as a job of `job_type`: a `running` row of `system.jobs`, then
/// `completed` with its rows and bytes, `cancelled`, or `failed` with the error.
async fn run_as_job<T, F, Fut>(
    engine: &QueryEngine,
    table: &Arc<TableDefinition>,
    job_type: &str,
    parameters: Option<String>,
    work: F,
) -> QueryResult<T>
where
    T: JobOutcome,
    F: FnOnce(crate::jobs::running::RunningJob) -> Fut,
    Fut: std::future::Future<Output = QueryResult<T>>,
{
    let started = now_micros();
    let mut job = JobRecord {
        job_id: format!("{job_type}-{}-{}-{started}", table.id.namespace, table.id.table),
        job_type: job_type.into(),
        status: JobStatus::Running,
        namespace_id: Some(table.id.namespace.to_string()),
        table_name: Some(table.id.table.to_string()),
        parameters,
        message: None,
        rows_affected: 0,
        bytes: 0,
        created_at: started,
        started_at: Some(started),
        finished_at: None,
    };
    let running = engine.running_jobs.start(&job.job_id);
    engine.catalog.put_job(job.clone()).await?;
    // The job is registered (and `KILL JOB` can reach it) until `work` ends.
    let outcome = work(running).await;
    job.finished_at = Some(now_micros());
    match &outcome {
        Ok(done) => {
            let done = done.report();
            job.rows_affected = i64::try_from(done.rows).unwrap_or(i64::MAX);
            job.bytes = i64::try_from(done.bytes).unwrap_or(i64::MAX);
            if done.cancelled {
                job.status = JobStatus::Cancelled;
                job.message = Some(format!(
                    "cancelled by KILL JOB after {}; the table's other partitions are left as they were",
                    done.summary
                ));
            } else {
                job.status = JobStatus::Completed;
                job.message = Some(done.summary);
            }
        }
        Err(error) => {
            job.status = JobStatus::Failed;
            job.message = Some(error.to_string());
        }
    }
    let cancelled = matches!(job.status, JobStatus::Cancelled);
    let message = job.message.clone().unwrap_or_default();
    let job_id = job.job_id.clone();
    engine.catalog.put_job(job).await?;
    if cancelled {
        return Err(QueryError::InvalidStatement(format!(
            "{job_type} job {job_id} was {message}"
        )));
    }
    outcome
}
