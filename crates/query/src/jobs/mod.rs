//! Background jobs, each recorded in `system.jobs`.
//!
//! - [`stream_eviction`]: removes STREAM rows past their TTL or `MAX_ROWS`.
//! - [`flush_policy`]: flushes tables by their `FLUSH_POLICY`, and at shutdown.
//! - [`recover_interrupted`]: at start-up, a job the last run left `running` is marked
//!   `failed`, so no job row claims to run when nothing does.

pub mod flush_policy;
pub mod stream_eviction;

use calamus_domain::ids::now_micros;
use calamus_domain::model::JobStatus;
use calamus_domain::{Catalog, DomainResult};

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
