//! `BACKUP DATABASE TO '<path>'`: a consistent copy of the whole database (catalog, hot
//! rows and Parquet segments) taken while writes go on, recorded as a `backup` job.
//!
//! The copy itself is a port, [`DatabaseBackup`], implemented where the data directory's
//! layout is known (the composition root); this module authorises nothing (see
//! `authorization`), runs the port off the async threads and keeps segment files from being
//! removed while it copies them.

use std::path::PathBuf;
use std::sync::Arc;

use calamus_domain::ids::now_micros;
use calamus_domain::model::{JobRecord, JobStatus};
use calamus_domain::{DomainError, DomainResult};

use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The folder the backup was written to, absolute.
    pub path: PathBuf,
    /// Tables the backup holds (system tables aside).
    pub tables: usize,
    /// Parquet segment files copied.
    pub segments: usize,
    /// Bytes written, key-value store and segments.
    pub bytes: u64,
}

/// Writes a consistent copy of the whole database into a new folder.
pub trait DatabaseBackup: Send + Sync + 'static {
    /// Copies the database into `target`, a path as the statement wrote it (relative paths
    /// are under the data directory), for the job `job_id` (running in the copy, which a
    /// restore marks completed). Blocking: it copies files. A backup that fails leaves no
    /// folder behind.
    fn back_up(&self, target: &str, job_id: &str) -> DomainResult<BackupSummary>;
}

/// Runs `BACKUP DATABASE TO '<target>'` as a `backup` job of `system.jobs`.
pub async fn run(engine: &QueryEngine, target: &str) -> QueryResult<StatementOutput> {
    let Some(backups) = engine.backups.clone() else {
        return Err(QueryError::Unsupported(
            "BACKUP DATABASE needs a server over a data directory; this engine has none".into(),
        ));
    };
    let started = now_micros();
    let mut job = JobRecord {
        job_id: format!("backup-{started}"),
        job_type: "backup".into(),
        status: JobStatus::Running,
        namespace_id: None,
        table_name: None,
        parameters: Some(target.to_owned()),
        message: None,
        rows_affected: 0,
        bytes: 0,
        created_at: started,
        started_at: Some(started),
        finished_at: None,
    };
    engine.catalog.put_job(job.clone()).await?;
    // Taken before the store's checkpoint: every segment it names stays until copied.
    let no_removals = Arc::clone(&engine.segment_removal).read_owned().await;
    let (target_text, job_id) = (target.to_owned(), job.job_id.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let _no_removals = no_removals;
        backups.back_up(&target_text, &job_id)
    })
    .await
    .unwrap_or_else(|e| Err(DomainError::Storage(format!("the backup stopped: {e}"))));
    job.finished_at = Some(now_micros());
    match &outcome {
        Ok(summary) => {
            job.status = JobStatus::Completed;
            job.bytes = i64::try_from(summary.bytes).unwrap_or(i64::MAX);
            job.message = Some(format!(
                "{} table(s) and {} segment file(s) copied to {}",
                summary.tables,
                summary.segments,
                summary.path.display()
            ));
        }
        Err(error) => {
            job.status = JobStatus::Failed;
            job.message = Some(error.to_string());
        }
    }
    engine.catalog.put_job(job).await?;
    let summary = outcome?;
    Ok(StatementOutput::affected(
        0,
        format!(
            "Backed up {} table(s) and {} segment file(s), {} bytes, to {}",
            summary.tables,
            summary.segments,
            summary.bytes,
            summary.path.display()
        ),
    ))
}
