//! The stream eviction job: every tick, STREAM rows past their table's `TTL_SECONDS` or
//! past its `MAX_ROWS` (per user) are removed for good.
//!
//! Reads never return expired rows (the row store starts its scans at the TTL floor), so
//! eviction is about space, not visibility. It is recorded in `system.jobs` in summary:
//! one `stream_eviction` row per table for each run of the server, whose `rows_affected`
//! grows as rows are removed (written at most every [`RECORD_EVERY`]), `running` while
//! the server runs and `completed` when it stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus_domain::model::{JobRecord, JobStatus, TableKind};
use calamus_domain::{Catalog, RowStore};
use tokio::sync::watch;

use calamus_domain::ids::now_micros;

/// How often a table's job row is rewritten while rows are being removed.
pub const RECORD_EVERY: Duration = Duration::from_secs(10);

/// The job row of one table in this run.
#[derive(Debug)]
struct Summary {
    record: JobRecord,
    ticks: u64,
    last_error: Option<String>,
    written_at: Option<Instant>,
    dirty: bool,
}

/// Evicts expired STREAM rows every `tick` until `shutdown` changes, then marks its job
/// rows completed.
pub async fn run(
    catalog: Arc<dyn Catalog>,
    rows: Arc<dyn RowStore>,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_at = now_micros();
    let mut summaries: HashMap<u64, Summary> = HashMap::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        let snapshot = catalog.snapshot();
        for table in snapshot.tables.values().filter(|t| t.kind == TableKind::Stream) {
            let outcome = rows.evict_stream_rows(table).await;
            let summary = summaries.entry(table.uid).or_insert_with(|| Summary {
                record: JobRecord {
                    job_id: format!("stream_eviction-{}-{}-{started_at}", table.id.namespace, table.id.table),
                    job_type: "stream_eviction".into(),
                    status: JobStatus::Running,
                    namespace_id: Some(table.id.namespace.to_string()),
                    table_name: Some(table.id.table.to_string()),
                    parameters: Some(
                        serde_json::json!({
                            "ttl_seconds": table.options.ttl_seconds,
                            "max_rows": table.options.max_rows,
                            "tick_ms": tick.as_millis() as u64,
                        })
                        .to_string(),
                    ),
                    message: None,
                    rows_affected: 0,
                    bytes: 0,
                    created_at: started_at,
                    started_at: Some(started_at),
                    finished_at: None,
                },
                ticks: 0,
                last_error: None,
                written_at: None,
                dirty: false,
            });
            summary.ticks += 1;
            match outcome {
                Ok(removed) => {
                    summary.record.rows_affected += removed as i64;
                    summary.dirty |= removed > 0 || summary.last_error.take().is_some();
                }
                Err(error) => {
                    tracing::warn!(table = %table.id, %error, "stream eviction failed; retrying next tick");
                    summary.last_error = Some(error.to_string());
                    summary.dirty = true;
                }
            }
            let due = summary.written_at.is_none_or(|at| at.elapsed() >= RECORD_EVERY);
            if summary.dirty && due {
                write(&*catalog, summary).await;
            }
        }
        // Tables dropped since: their rows are gone with them.
        summaries.retain(|uid, _| snapshot.tables.values().any(|t| t.uid == *uid));
    }
    for summary in summaries.values_mut().filter(|s| s.written_at.is_some() || s.dirty) {
        summary.record.status = JobStatus::Completed;
        summary.record.finished_at = Some(now_micros());
        write(&*catalog, summary).await;
    }
}

async fn write(catalog: &dyn Catalog, summary: &mut Summary) {
    let mut message = format!(
        "{} rows removed in {} ticks",
        summary.record.rows_affected, summary.ticks
    );
    if let Some(error) = &summary.last_error {
        message.push_str(&format!("; the last attempt failed: {error}"));
    }
    summary.record.message = Some(message);
    match catalog.put_job(summary.record.clone()).await {
        Ok(()) => {
            summary.written_at = Some(Instant::now());
            summary.dirty = false;
        }
        Err(error) => tracing::warn!(job = %summary.record.job_id, %error, "recording a job failed"),
    }
}
