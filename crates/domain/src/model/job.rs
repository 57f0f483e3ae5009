//! Background jobs (flush, clean-up, eviction), as `system.jobs` shows them.

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting to run.
    Queued,
    /// Running now.
    Running,
    /// Finished without error.
    Completed,
    /// Finished with an error, or interrupted.
    Failed,
    /// Stopped by `KILL JOB`.
    Cancelled,
}

impl JobStatus {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// One job run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Unique id.
    pub job_id: String,
    /// `flush`, `cleanup`, `stream_eviction`, ...
    pub job_type: String,
    /// Status.
    pub status: JobStatus,
    /// The namespace it works on, if one.
    pub namespace_id: Option<String>,
    /// The table it works on, if one.
    pub table_name: Option<String>,
    /// Parameters as JSON text.
    pub parameters: Option<String>,
    /// Result or error message.
    pub message: Option<String>,
    /// Rows written or removed.
    pub rows_affected: i64,
    /// Bytes written or removed.
    pub bytes: i64,
    /// Timestamps (microseconds since the epoch).
    pub created_at: i64,
    /// When it started running.
    pub started_at: Option<i64>,
    /// When it finished.
    pub finished_at: Option<i64>,
}
