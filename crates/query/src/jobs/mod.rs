//! Background jobs, each recorded in `system.jobs`.
//!
//! - [`stream_eviction`]: removes STREAM rows past their TTL or `MAX_ROWS`.
//! - [`deleted_cleanup`]: removes rows deleted longer ago than `DELETED_RETENTION_HOURS`.
//! - [`flush_policy`]: flushes tables by their `FLUSH_POLICY`, and at shutdown.
//! - [`recover_interrupted`]: at start-up, a job the last run left `running` is marked
//!   `failed`, so no job row claims to run when nothing does.
//! - [`kill`]: `KILL JOB`, through the registry of [`running`] jobs.

pub mod deleted_cleanup;
pub mod flush_policy;
pub mod running;
pub mod stream_eviction;

use std::sync::Arc;

use calamus_domain::ids::now_micros;
use calamus_domain::model::{JobStatus, TableDefinition};
use calamus_domain::{Catalog, DomainResult, RowStore};

use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;

/// `KILL JOB '<id>'`: asks a running job to stop. A flush stops before its next partition;
/// the partitions it flushed stay flushed (each hand-over is atomic) and the job's row
/// ends `cancelled`. A job that is not running is an error that says what it is.
pub fn kill(engine: &QueryEngine, job_id: &str) -> QueryResult<StatementOutput> {
    if engine.running_jobs.cancel(job_id) {
        return Ok(StatementOutput::affected(
            1,
            format!("Job {job_id} is being cancelled: it stops before its next unit of work"),
        ));
    }
    match engine.catalog.snapshot().jobs.get(job_id) {
        None => Err(QueryError::NotFound(format!("job '{job_id}' does not exist"))),
        Some(job) if job.status == JobStatus::Running => Err(QueryError::InvalidStatement(format!(
            "job '{job_id}' ({}) cannot be cancelled: it runs until it finishes",
            job.job_type
        ))),
        Some(job) => Err(QueryError::InvalidStatement(format!(
            "job '{job_id}' is not running: it is {}",
            job.status.as_str()
        ))),
    }
}

/// Removes the records of jobs that finished more than `retention` ago (running and
/// queued ones stay); gives how many.
pub async fn prune_finished(catalog: &dyn Catalog, retention: std::time::Duration) -> DomainResult<usize> {
    let cutoff = now_micros() - i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    let old: Vec<String> = catalog
        .snapshot()
        .jobs
        .values()
        .filter(|job| !matches!(job.status, JobStatus::Running | JobStatus::Queued))
        .filter(|job| job.finished_at.unwrap_or(job.created_at) < cutoff)
        .map(|job| job.job_id.clone())
        .collect();
    catalog.delete_jobs(&old).await?;
    Ok(old.len())
}

/// Marks every job left `running` or `queued` by a previous run as failed; gives how many.
pub async fn recover_interrupted(catalog: &dyn Catalog) -> DomainResult<usize> {
    let snapshot = catalog.snapshot();
    let interrupted: Vec<_> = snapshot
        .jobs
        .values()
        .filter(|job| matches!(job.status, JobStatus::Running | JobStatus::Queued))
        .cloned()
        .collect();
    for mut job in interrupted.iter().cloned() {
        job.status = JobStatus::Failed;
        job.finished_at = Some(now_micros());
        let before = job.message.take().map(|m| format!(" ({m})")).unwrap_or_default();
        job.message = Some(format!(
            "interrupted: the server stopped before the job finished{before}"
        ));
        catalog.put_job(job).await?;
    }
    Ok(interrupted.len())
}

/// Compacts `table`'s hot rows on the blocking pool (a RocksDB compaction may take long),
/// after a job removed many of them; a failure is logged, as the rows are intact either way.
pub(crate) async fn compact_hot_rows(rows: &Arc<dyn RowStore>, table: &Arc<TableDefinition>, after: &str) {
    let (rows, compacted) = (Arc::clone(rows), Arc::clone(table));
    let compaction = tokio::task::spawn_blocking(move || rows.compact_hot(&compacted))
        .await
        .map_err(|error| error.to_string())
        .and_then(|compacted| compacted.map_err(|error| error.to_string()));
    if let Err(error) = compaction {
        tracing::warn!(table = %table.id, %error, "compacting the hot rows after {after} failed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use calamus_domain::model::JobRecord;
    use calamus_domain::{CatalogSnapshot, MockCatalog};

    use super::*;

    fn job(id: &str, status: JobStatus, finished_hours_ago: Option<i64>) -> JobRecord {
        let hour = 3_600_000_000;
        JobRecord {
            job_id: id.into(),
            job_type: "flush".into(),
            status,
            namespace_id: None,
            table_name: None,
            parameters: None,
            message: None,
            rows_affected: 0,
            bytes: 0,
            created_at: now_micros() - 100 * hour,
            started_at: None,
            finished_at: finished_hours_ago.map(|h| now_micros() - h * hour),
        }
    }

    #[tokio::test]
    async fn only_jobs_finished_before_the_retention_are_pruned() {
        let mut snapshot = CatalogSnapshot::default();
        for record in [
            job("old-done", JobStatus::Completed, Some(48)),
            job("old-failed", JobStatus::Failed, Some(30)),
            job("recent", JobStatus::Completed, Some(1)),
            job("still-running", JobStatus::Running, None),
        ] {
            snapshot.jobs.insert(record.job_id.clone(), record);
        }
        let snapshot = Arc::new(snapshot);
        let mut catalog = MockCatalog::new();
        catalog.expect_snapshot().returning(move || Arc::clone(&snapshot));
        catalog
            .expect_delete_jobs()
            .withf(|ids| {
                let mut ids = ids.to_vec();
                ids.sort();
                ids == ["old-done", "old-failed"]
            })
            .times(1)
            .returning(|_| Ok(()));
        let pruned = prune_finished(&catalog, Duration::from_secs(24 * 3600)).await.unwrap();
        assert_eq!(pruned, 2);
    }
}
