//! `FLUSH TABLE t`, `STORAGE FLUSH TABLE t` and `STORAGE FLUSH ALL [IN ns]`: each table
//! flushed is a row of `system.jobs`.

use std::sync::Arc;

use calamus_domain::ids::now_micros;
use calamus_domain::model::{JobRecord, JobStatus, TableDefinition, TableKind};
use calamus_domain::{DomainError, NamespaceId};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use super::flush::FlushOutcome;
use crate::authorization::rules::may_read;
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// Runs a flush statement: one table, or every USER and SHARED table (of a namespace).
pub async fn flush(
    engine: &QueryEngine,
    session: &Session,
    table: Option<&ObjectName>,
    namespace: Option<&Ident>,
) -> QueryResult<StatementOutput> {
    let snapshot = engine.catalog.snapshot();
    let tables: Vec<Arc<TableDefinition>> = match table {
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
    };
    let mut total = FlushOutcome::default();
    for table in &tables {
        total += flush_as_job(engine, table).await?;
    }
    let what = match table {
        Some(_) => format!("table {}", tables[0].id),
        None => format!("{} table(s)", tables.len()),
    };
    Ok(StatementOutput::affected(
        total.rows,
        format!(
            "Flushed {} row(s) of {what} into {} segment(s), {} bytes",
            total.rows, total.segments, total.bytes
        ),
    ))
}

/// Flushes one table, recorded as a `flush` job: `running`, then `completed` with its
/// rows and bytes, or `failed` with the error.
pub async fn flush_as_job(engine: &QueryEngine, table: &Arc<TableDefinition>) -> QueryResult<FlushOutcome> {
    let started = now_micros();
    let mut job = JobRecord {
        job_id: format!("flush-{}-{}-{started}", table.id.namespace, table.id.table),
        job_type: "flush".into(),
        status: JobStatus::Running,
        namespace_id: Some(table.id.namespace.to_string()),
        table_name: Some(table.id.table.to_string()),
        parameters: None,
        message: None,
        rows_affected: 0,
        bytes: 0,
        created_at: started,
        started_at: Some(started),
        finished_at: None,
    };
    let running = engine.running_jobs.start(&job.job_id);
    engine.catalog.put_job(job.clone()).await?;
    let outcome = engine.flush_table(table, &running).await;
    drop(running);
    job.finished_at = Some(now_micros());
    match &outcome {
        Ok(done) if done.cancelled => {
            job.status = JobStatus::Cancelled;
            job.rows_affected = done.rows as i64;
            job.bytes = done.bytes as i64;
            job.message = Some(format!(
                "cancelled by KILL JOB after {} row(s) of {} partition(s) were flushed; \
                 the table's other rows stay hot",
                done.rows, done.partitions
            ));
        }
        Ok(done) => {
            job.status = JobStatus::Completed;
            job.rows_affected = done.rows as i64;
            job.bytes = done.bytes as i64;
            job.message = Some(format!(
                "{} row(s) of {} partition(s) into {} segment(s)",
                done.rows, done.partitions, done.segments
            ));
        }
        Err(error) => {
            job.status = JobStatus::Failed;
            job.message = Some(error.to_string());
        }
    }
    let cancelled = matches!(&outcome, Ok(done) if done.cancelled);
    let message = job.message.clone().unwrap_or_default();
    let job_id = job.job_id.clone();
    engine.catalog.put_job(job).await?;
    if cancelled {
        return Err(QueryError::InvalidStatement(format!(
            "flush job {job_id} was {message}"
        )));
    }
    outcome
}
