//! The system tables: read-only views of the catalog, built from the statement's snapshot.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use calamus_domain::{CatalogSnapshot, UserId};

use crate::live::LiveQueries;
use crate::plan_cache::PlanCache;
use datafusion::common::Result;
use datafusion::datasource::{MemTable, TableProvider};

/// The names of the system tables (`live` is an alias of `live_queries`).
pub const SYSTEM_TABLES: &[&str] = &[
    "columns",
    "jobs",
    "live",
    "live_queries",
    "namespaces",
    "stats",
    "storages",
    "tables",
    "users",
];

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn time(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}
fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn texts<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}
fn times<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values))
}
fn ints<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(Int64Array::from_iter(values))
}

/// The provider of system table `name`, if there is one; with `owner`, only the rows whose
/// `user_id` is `owner` (none, for a table without that column).
pub fn system_table(
    name: &str,
    snapshot: &CatalogSnapshot,
    live: &LiveQueries,
    plans: &PlanCache,
    owner: Option<&UserId>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    let Some(batch) = system_batch(name, snapshot, live, plans, owner)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)))
}

/// The rows of system table `name`, if there is one, as [`system_table`] serves them.
pub fn system_batch(
    name: &str,
    snapshot: &CatalogSnapshot,
    live: &LiveQueries,
    plans: &PlanCache,
    owner: Option<&UserId>,
) -> Result<Option<RecordBatch>> {
    let (fields, columns) = match name {
        "namespaces" => namespaces(snapshot),
        "tables" => tables(snapshot),
        "columns" => columns(snapshot),
        "users" => users(snapshot),
        "storages" => storages(snapshot),
        "jobs" => jobs(snapshot),
        "live_queries" | "live" => live_queries(live),
        "stats" => stats(snapshot, plans),
        _ => return Ok(None),
    };
    let schema = Arc::new(Schema::new(fields));
    let mut batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    if let Some(owner) = owner {
        batch = rows_of(&batch, owner)?;
    }
    Ok(Some(batch))
}

/// The rows of `batch` whose `user_id` column is `owner`.
fn rows_of(batch: &RecordBatch, owner: &UserId) -> Result<RecordBatch> {
    let Ok(index) = batch.schema().index_of("user_id") else {
        return Ok(batch.slice(0, 0));
    };
    let Some(users) = batch.column(index).as_any().downcast_ref::<StringArray>() else {
        return Ok(batch.slice(0, 0));
    };
    let mine: BooleanArray = users.iter().map(|u| Some(u == Some(owner.as_str()))).collect();
    Ok(filter_record_batch(batch, &mine)?)
}

type Table = (Vec<Field>, Vec<ArrayRef>);

fn namespaces(s: &CatalogSnapshot) -> Table {
    let ns: Vec<_> = s.namespaces.values().collect();
    (
        vec![
            text("namespace_id"),
            text("options"),
            int("table_count"),
            time("created_at"),
            time("updated_at"),
        ],
        vec![
            texts(ns.iter().map(|n| Some(n.id.to_string()))),
            texts(ns.iter().map(|n| Some(n.options_json()))),
            ints(ns.iter().map(|n| Some(s.tables_in(&n.id).count() as i64))),
            times(ns.iter().map(|n| Some(n.created_at))),
            times(ns.iter().map(|n| Some(n.updated_at))),
        ],
    )
}

fn tables(s: &CatalogSnapshot) -> Table {
    let t: Vec<_> = s.tables.values().collect();
    (
        vec![
            text("namespace_id"),
            text("table_name"),
            text("table_type"),
            Field::new("schema_version", DataType::Int32, true),
            text("storage_id"),
            text("options"),
            time("created_at"),
            time("updated_at"),
        ],
        vec![
            texts(t.iter().map(|t| Some(t.id.namespace.to_string()))),
            texts(t.iter().map(|t| Some(t.id.table.to_string()))),
            texts(t.iter().map(|t| Some(t.kind.as_str().to_owned()))),
            Arc::new(Int32Array::from_iter(t.iter().map(|t| Some(t.schema().version as i32)))),
            texts(
                t.iter()
                    .map(|t| (t.kind != calamus_domain::model::TableKind::Stream).then(|| t.storage_id().to_string())),
            ),
            texts(t.iter().map(|t| Some(t.options.to_json()))),
            times(t.iter().map(|t| Some(t.created_at))),
            times(t.iter().map(|t| Some(t.updated_at))),
        ],
    )
}

fn columns(s: &CatalogSnapshot) -> Table {
    let mut rows = Vec::new();
    for table in s.tables.values() {
        for schema in &table.schemas {
            for (ordinal, c) in schema.columns.iter().enumerate() {
                rows.push((table, schema, ordinal, c));
            }
        }
    }
    (
        vec![
            text("namespace_id"),
            text("table_name"),
            Field::new("schema_version", DataType::Int32, true),
            text("column_name"),
            Field::new("ordinal", DataType::Int32, true),
            text("data_type"),
            Field::new("is_nullable", DataType::Boolean, true),
            Field::new("is_primary_key", DataType::Boolean, true),
            text("default_value"),
        ],
        vec![
            texts(rows.iter().map(|(t, ..)| Some(t.id.namespace.to_string()))),
            texts(rows.iter().map(|(t, ..)| Some(t.id.table.to_string()))),
            Arc::new(Int32Array::from_iter(
                rows.iter().map(|(_, s, ..)| Some(s.version as i32)),
            )),
            texts(rows.iter().map(|(.., c)| Some(c.name.to_string()))),
            Arc::new(Int32Array::from_iter(
                rows.iter().map(|(_, _, o, _)| Some(*o as i32 + 1)),
            )),
            texts(rows.iter().map(|(.., c)| Some(c.data_type.sql_name()))),
            Arc::new(BooleanArray::from_iter(
                rows.iter()
                    .map(|(_, s, _, c)| Some(c.nullable && s.primary_key != Some(c.id))),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|(_, s, _, c)| Some(s.primary_key == Some(c.id))),
            )),
            texts(rows.iter().map(|(.., c)| c.default.as_ref().map(|d| d.sql()))),
        ],
    )
}

fn users(s: &CatalogSnapshot) -> Table {
    let u: Vec<_> = s.users.values().collect();
    (
        vec![
            text("user_id"),
            text("role"),
            text("email"),
            Field::new("has_password", DataType::Boolean, true),
            time("created_at"),
            time("updated_at"),
            time("deleted_at"),
        ],
        vec![
            texts(u.iter().map(|u| Some(u.id.to_string()))),
            texts(u.iter().map(|u| Some(u.role.as_str().to_owned()))),
            texts(u.iter().map(|u| u.email.clone())),
            Arc::new(BooleanArray::from_iter(
                u.iter().map(|u| Some(u.password_hash.is_some())),
            )),
            times(u.iter().map(|u| Some(u.created_at))),
            times(u.iter().map(|u| Some(u.updated_at))),
            times(u.iter().map(|u| u.deleted_at)),
        ],
    )
}

fn storages(s: &CatalogSnapshot) -> Table {
    let st: Vec<_> = s.storages.values().collect();
    (
        vec![
            text("storage_id"),
            text("storage_type"),
            text("base_directory"),
            text("shared_tables_template"),
            text("user_tables_template"),
            time("created_at"),
            time("updated_at"),
        ],
        vec![
            texts(st.iter().map(|s| Some(s.id.to_string()))),
            texts(st.iter().map(|s| Some(s.storage_type.clone()))),
            texts(st.iter().map(|s| Some(s.base_directory.clone()))),
            texts(st.iter().map(|s| Some(s.shared_tables_template.clone()))),
            texts(st.iter().map(|s| Some(s.user_tables_template.clone()))),
            times(st.iter().map(|s| Some(s.created_at))),
            times(st.iter().map(|s| Some(s.updated_at))),
        ],
    )
}

fn jobs(s: &CatalogSnapshot) -> Table {
    let j: Vec<_> = s.jobs.values().collect();
    (
        vec![
            text("job_id"),
            text("job_type"),
            text("status"),
            text("namespace_id"),
            text("table_name"),
            text("parameters"),
            text("message"),
            int("rows_affected"),
            int("bytes"),
            time("created_at"),
            time("started_at"),
            time("finished_at"),
            text("node_id"),
        ],
        vec![
            texts(j.iter().map(|j| Some(j.job_id.clone()))),
            texts(j.iter().map(|j| Some(j.job_type.clone()))),
            texts(j.iter().map(|j| Some(j.status.as_str().to_owned()))),
            texts(j.iter().map(|j| j.namespace_id.clone())),
            texts(j.iter().map(|j| j.table_name.clone())),
            texts(j.iter().map(|j| j.parameters.clone())),
            texts(j.iter().map(|j| j.message.clone())),
            ints(j.iter().map(|j| Some(j.rows_affected))),
            ints(j.iter().map(|j| Some(j.bytes))),
            times(j.iter().map(|j| Some(j.created_at))),
            times(j.iter().map(|j| j.started_at)),
            times(j.iter().map(|j| j.finished_at)),
            texts(j.iter().map(|_| Some("node-0".to_owned()))),
        ],
    )
}

/// The live subscriptions of WebSocket connections.
fn live_queries(live: &LiveQueries) -> Table {
    let q = live.rows();
    let fields = vec![
        text("live_id"),
        text("connection_id"),
        text("subscription_id"),
        text("namespace_id"),
        text("table_name"),
        text("user_id"),
        text("query"),
        text("options"),
        time("created_at"),
        time("last_update"),
        int("changes"),
        text("node_id"),
    ];
    let columns = vec![
        texts(q.iter().map(|r| Some(r.live_id.clone()))),
        texts(q.iter().map(|r| Some(r.connection_id.clone()))),
        texts(q.iter().map(|r| Some(r.subscription_id.clone()))),
        texts(q.iter().map(|r| Some(r.namespace_id.clone()))),
        texts(q.iter().map(|r| Some(r.table_name.clone()))),
        texts(q.iter().map(|r| Some(r.user_id.clone()))),
        texts(q.iter().map(|r| Some(r.query.clone()))),
        texts(q.iter().map(|r| Some(r.options.clone()))),
        times(q.iter().map(|r| Some(r.created_at))),
        times(q.iter().map(|r| Some(r.last_update))),
        ints(q.iter().map(|r| Some(r.changes))),
        texts(q.iter().map(|_| Some("node-0".to_owned()))),
    ];
    (fields, columns)
}

fn stats(s: &CatalogSnapshot, plans: &PlanCache) -> Table {
    let metrics = [
        ("namespaces", s.namespaces.len()),
        ("tables", s.tables.len()),
        (
            "user_tables",
            s.tables
                .values()
                .filter(|t| t.kind == calamus_domain::model::TableKind::User)
                .count(),
        ),
        (
            "shared_tables",
            s.tables
                .values()
                .filter(|t| t.kind == calamus_domain::model::TableKind::Shared)
                .count(),
        ),
        (
            "stream_tables",
            s.tables
                .values()
                .filter(|t| t.kind == calamus_domain::model::TableKind::Stream)
                .count(),
        ),
        ("users", s.users.len()),
        ("storages", s.storages.len()),
        ("jobs", s.jobs.len()),
    ];
    let mut metrics: Vec<(&str, u64)> = metrics.iter().map(|&(n, v)| (n, v as u64)).collect();
    let reuse = plans.reuse();
    metrics.extend([
        ("plans_kept", reuse.kept),
        ("plan_reuses", reuse.logical),
        ("physical_plan_reuses", reuse.physical),
    ]);
    if let Some(rss) = resident_memory_bytes() {
        metrics.push(("memory_rss_bytes", rss));
    }
    (
        vec![text("metric_name"), text("metric_value")],
        vec![
            texts(metrics.iter().map(|(n, _)| Some((*n).to_owned()))),
            texts(metrics.iter().map(|(_, v)| Some(v.to_string()))),
        ],
    )
}

/// The server process's resident memory (`VmRSS`), where the system tells it (Linux).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_rows_are_the_owner_s_only() {
        let schema = Arc::new(Schema::new(vec![text("live_id"), text("user_id")]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                texts(["l1", "l2", "l3"].map(|s| Some(s.to_owned()))),
                texts([Some("alice".to_owned()), Some("bob".to_owned()), None]),
            ],
        )
        .unwrap();
        let mine = rows_of(&batch, &UserId::new("alice").unwrap()).unwrap();
        assert_eq!(mine.num_rows(), 1);
        let ids = mine.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(ids.value(0), "l1");
        // A table without owners holds nothing of the caller's.
        let unowned = RecordBatch::try_new(
            Arc::new(Schema::new(vec![text("live_id")])),
            vec![texts([Some("l1".to_owned())])],
        )
        .unwrap();
        assert_eq!(rows_of(&unowned, &UserId::new("alice").unwrap()).unwrap().num_rows(), 0);
    }
}
