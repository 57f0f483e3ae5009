//! The clean-up, at start and every [`CLEANUP_EVERY`]:
//! - in a USER or SHARED table created with `DELETED_RETENTION_HOURS = n`, rows deleted
//!   more than `n` hours ago are removed for good (until then `WHERE _deleted = true` still
//!   finds them): from the hot tier, each table a `deleted_cleanup` row of `system.jobs`;
//!   from the segments by compacting the partitions holding such a deleted version;
//! - partitions that need it are compacted (a row with two flushed versions, or too many
//!   segments), each table a `compact` row of `system.jobs`.
//!
//! A hot deleted row whose flushed version is live stays hot (removing it would show that
//! version again); the next flush moves it to a segment, where the next run drops both.

use std::sync::Arc;
use std::time::Duration;

use calamus_domain::ids::{now_micros, now_millis, snowflake_floor_for_millis};
use calamus_domain::model::TableKind;
use calamus_domain::model::{JobRecord, JobStatus};
use tokio::sync::watch;

use crate::cold::compaction::CompactionScope;
use crate::cold::statement::compact_as_job;
use crate::engine::QueryEngine;
use crate::error::QueryResult;

/// How often the clean-up runs (and once at start).
pub const CLEANUP_EVERY: Duration = Duration::from_secs(600);

/// Removes, in every table with a `DELETED_RETENTION_HOURS`, the hot rows deleted longer
/// than that before `now_millis`; each table with rows removed (or a failure) is recorded
/// as a finished `deleted_cleanup` job. Gives how many rows were removed.
pub async fn purge_expired(engine: &QueryEngine, now_millis: u64) -> QueryResult<u64> {
    let (catalog, rows) = (&engine.catalog, &engine.rows);
    let snapshot = catalog.snapshot();
    let mut total = 0;
    for table in snapshot.tables.values() {
        let Some(hours) = table.options.deleted_retention_hours else {
            continue;
        };
        let cutoff = retention_cutoff(hours, now_millis);
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

/// The smallest `_seq` a deleted version kept `hours` before `now_millis` has.
fn retention_cutoff(hours: u64, now_millis: u64) -> i64 {
    snowflake_floor_for_millis(now_millis.saturating_sub(hours.saturating_mul(3_600_000)))
}

/// Compacts, in every USER and SHARED table, the partitions that need it (see
/// [`CompactionScope::Needed`]), dropping the flushed deleted versions older than the
/// table's `DELETED_RETENTION_HOURS`. Gives how many versions were dropped.
pub async fn compact_segments(engine: &QueryEngine, now_millis: u64) -> QueryResult<u64> {
    if engine.cold.is_none() {
        return Ok(0);
    }
    let snapshot = engine.catalog.snapshot();
    let mut dropped = 0;
    for table in snapshot.tables.values().filter(|t| t.kind != TableKind::Stream) {
        let purge_before = table
            .options
            .deleted_retention_hours
            .map(|hours| retention_cutoff(hours, now_millis));
        let manifests = engine.rows.manifests(table)?;
        if !manifests
            .iter()
            .any(|(_, manifest)| CompactionScope::Needed.wants(manifest, purge_before))
        {
            continue;
        }
        match compact_as_job(engine, table, CompactionScope::Needed, purge_before).await {
            Ok(outcome) => dropped += outcome.versions_dropped,
            Err(error) => tracing::warn!(table = %table.id, %error, "compacting segments failed"),
        }
    }
    Ok(dropped)
}

/// Runs [`purge_expired`] and [`compact_segments`] at start and every `every` until
/// `shutdown` changes.
pub async fn run(engine: Arc<QueryEngine>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match purge_expired(&engine, now_millis()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "deleted rows past their retention removed"),
            Err(error) => tracing::warn!(%error, "the clean-up of deleted rows failed"),
        }
        match compact_segments(&engine, now_millis()).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "segments compacted"),
            Err(error) => tracing::warn!(%error, "compacting segments failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
