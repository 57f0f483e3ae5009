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
