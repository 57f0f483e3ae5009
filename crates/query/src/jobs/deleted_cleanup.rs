//! The clean-up of soft-deleted rows: in a USER or SHARED table created with
//! `DELETED_RETENTION_HOURS = n`, rows deleted more than `n` hours ago are removed for good
//! from the hot tier (until then `WHERE _deleted = true` still finds them). Each table that
//! had rows removed in a run is a `deleted_cleanup` row of `system.jobs`.
//!
//! Not removed yet: deleted versions already flushed to Parquet, and a deleted row whose
//! flushed version is live (removing it would show that version again). Both need the
//! table's segments rewritten, which this version does not do.

use std::sync::Arc;
use std::time::Duration;

use calamus_domain::ids::{now_micros, now_millis, snowflake_floor_for_millis};
use calamus_domain::model::{JobRecord, JobStatus};
use calamus_domain::{Catalog, DomainResult, RowStore};
use tokio::sync::watch;

/// How often the clean-up runs (and once at start).
pub const CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// Removes, in every table with a `DELETED_RETENTION_HOURS`, the hot rows deleted longer
/// than that before `now_millis`; each table with rows removed (or a failure) is recorded
/// as a finished `deleted_cleanup` job. Gives how many rows were removed.
pub async fn purge_expired(catalog: &dyn Catalog, rows: &Arc<dyn RowStore>, now_millis: u64) -> DomainResult<u64> {
    let snapshot = catalog.snapshot();
    let mut total = 0;
    for table in snapshot.tables.values() {
        let Some(hours) = table.options.deleted_retention_hours else {
            continue;
        };
        let cutoff = snowflake_floor_for_millis(now_millis.saturating_sub(hours.saturating_mul(3_600_000)));
        let started = now_micros();
        let (status, removed, message) = match rows.purge_deleted(table, cutoff).await {
            Ok(0) => continue,
            Ok(removed) => {
                super::compact_hot_rows(rows, table, "the clean-up of deleted rows").await;
                (
                    JobStatus::Completed,
                    removed,
                    format!("{removed} row(s) deleted more than {hours} hour(s) ago removed for good"),
                )
            }
            Err(error) => {
                tracing::warn!(table = %table.id, %error, "the clean-up of deleted rows failed");
                (JobStatus::Failed, 0, error.to_string())
            }
        };
        catalog
            .put_job(JobRecord {
                job_id: format!("deleted_cleanup-{}-{}-{started}", table.id.namespace, table.id.table),
                job_type: "deleted_cleanup".into(),
                status,
                namespace_id: Some(table.id.namespace.to_string()),
                table_name: Some(table.id.table.to_string()),
                parameters: Some(format!("{{\"deleted_retention_hours\": {hours}}}")),
                message: Some(message),
                rows_affected: i64::try_from(removed).unwrap_or(i64::MAX),
                bytes: 0,
                created_at: started,
                started_at: Some(started),
                finished_at: Some(now_micros()),
            })
            .await?;
        total += removed;
    }
    Ok(total)
}

/// Runs [`purge_expired`] at start and every `every` until `shutdown` changes.
pub async fn run(
    catalog: Arc<dyn Catalog>,
    rows: Arc<dyn RowStore>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match purge_expired(catalog.as_ref(), &rows, now_millis()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "deleted rows past their retention removed"),
            Err(error) => tracing::warn!(%error, "the clean-up of deleted rows failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
