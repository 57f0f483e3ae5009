//! SHOW NAMESPACES, SHOW TABLES, DESCRIBE TABLE, SHOW STATS.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use calamus_domain::model::TableKind;
use calamus_domain::{DomainError, NamespaceId, Partition, ScanRequest};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use crate::authorization::rules::may_read;
use crate::engine::QueryEngine;
use crate::error::QueryResult;
use crate::output::StatementOutput;
use crate::session::Session;

/// Rows of text-like columns: (name, array) pairs in order.
fn rows(columns: Vec<(&str, ArrayRef)>) -> QueryResult<StatementOutput> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect())?;
    Ok(StatementOutput::Rows {
        schema,
        batches: vec![batch],
    })
}

fn text<I: IntoIterator<Item = Option<String>>>(values: I) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

/// `SHOW NAMESPACES`: every namespace (any role may create USER tables in any of them), with
/// the number of its tables the session may read.
pub fn namespaces(engine: &QueryEngine, session: &Session) -> QueryResult<StatementOutput> {
    let snapshot = engine.catalog.snapshot();
    let ns: Vec<_> = snapshot.namespaces.values().collect();
    rows(vec![
        ("namespace_id", text(ns.iter().map(|n| Some(n.id.to_string())))),
        (
            "table_count",
            Arc::new(Int64Array::from_iter_values(ns.iter().map(|n| {
                snapshot.tables_in(&n.id).filter(|t| may_read(session.role, t)).count() as i64
            }))),
        ),
    ])
}

/// `SHOW STORAGES`: the rows of `system.storages`.
pub fn storages(engine: &QueryEngine) -> QueryResult<StatementOutput> {
    let snapshot = engine.catalog.snapshot();
    let batch = crate::providers::system::system_batch("storages", &snapshot, &engine.live, &engine.plans, None)?
        .expect("system.storages exists");
    Ok(StatementOutput::Rows {
        schema: batch.schema(),
        batches: vec![batch],
    })
}

/// `SHOW TABLES [IN ns]`: every table the session may read, or those of one namespace.
pub fn tables(engine: &QueryEngine, session: &Session, namespace: Option<&Ident>) -> QueryResult<StatementOutput> {
    let snapshot = engine.catalog.snapshot();
    let filter = namespace.map(|n| NamespaceId::new(&n.value)).transpose()?;
    if let Some(ns) = &filter
        && !snapshot.has_namespace(ns)
    {
        return Err(DomainError::NamespaceNotFound {
            namespace: ns.to_string(),
        }
        .into());
    }
    let t: Vec<_> = snapshot
        .tables
        .values()
        .filter(|t| filter.as_ref().is_none_or(|ns| &t.id.namespace == ns) && may_read(session.role, t))
        .collect();
    rows(vec![
        ("namespace_id", text(t.iter().map(|t| Some(t.id.namespace.to_string())))),
        ("table_name", text(t.iter().map(|t| Some(t.id.table.to_string())))),
        ("table_type", text(t.iter().map(|t| Some(t.kind.as_str().to_owned())))),
    ])
}

/// `DESCRIBE TABLE t [HISTORY]`.
pub fn describe(
    engine: &QueryEngine,
    session: &Session,
    name: &ObjectName,
    history: bool,
) -> QueryResult<StatementOutput> {
    let id = engine.resolve_table(session, name)?;
    let snapshot = engine.catalog.snapshot();
    let table = snapshot
        .table(&id)
        .ok_or_else(|| DomainError::TableNotFound { table: id.to_string() })?;
    let schemas: Vec<_> = if history {
        table.schemas.iter().collect()
    } else {
        vec![table.schema()]
    };
    let mut entries = Vec::new();
    for schema in schemas {
        for (i, c) in schema.columns.iter().enumerate() {
            entries.push((schema, i, c));
        }
    }
    let mut columns = vec![
        (
            "column_name",
            text(entries.iter().map(|(.., c)| Some(c.name.to_string()))),
        ),
        (
            "data_type",
            text(entries.iter().map(|(.., c)| Some(c.data_type.sql_name()))),
        ),
        (
            "is_nullable",
            Arc::new(BooleanArray::from_iter(
                entries
                    .iter()
                    .map(|(s, _, c)| Some(c.nullable && s.primary_key != Some(c.id))),
            )) as ArrayRef,
        ),
        (
            "is_primary_key",
            Arc::new(BooleanArray::from_iter(
                entries.iter().map(|(s, _, c)| Some(s.primary_key == Some(c.id))),
            )),
        ),
        (
            "default_value",
            text(entries.iter().map(|(.., c)| c.default.as_ref().map(|d| d.sql()))),
        ),
        (
            "ordinal",
            Arc::new(Int64Array::from_iter_values(
                entries.iter().map(|(_, i, _)| *i as i64 + 1),
            )),
        ),
    ];
    if history {
        columns.insert(
            0,
            (
                "schema_version",
                Arc::new(Int64Array::from_iter_values(
                    entries.iter().map(|(s, ..)| s.version as i64),
                )),
            ),
        );
    }
    rows(columns)
}

/// `SHOW STATS FOR TABLE t`: the table's kind, schema version, columns and the rows the
/// caller's partition holds.
pub async fn stats(engine: &QueryEngine, session: &Session, name: &ObjectName) -> QueryResult<StatementOutput> {
    let id = engine.resolve_table(session, name)?;
    let snapshot = engine.catalog.snapshot();
    let table = Arc::clone(
        snapshot
            .table(&id)
            .ok_or_else(|| DomainError::TableNotFound { table: id.to_string() })?,
    );
    let partition = match table.kind {
        TableKind::Shared => Partition::Shared,
        _ => Partition::User(session.user.clone()),
    };
    let rows_store = Arc::clone(&engine.rows);
    let scanned = Arc::clone(&table);
    let count = tokio::task::spawn_blocking(move || -> QueryResult<usize> {
        let mut n = 0;
        for row in rows_store.scan(&scanned, &partition, ScanRequest::all())? {
            row?;
            n += 1;
        }
        Ok(n)
    })
    .await
    .map_err(|e| crate::error::QueryError::Domain(DomainError::Storage(e.to_string())))??;
    let metrics = [
        ("table_type", table.kind.as_str().to_owned()),
        ("schema_version", table.schema().version.to_string()),
        ("column_count", table.schema().columns.len().to_string()),
        ("hot_rows", count.to_string()),
        ("options", table.options.to_json()),
    ];
    let _ = DataType::Utf8;
    rows(vec![
        ("metric_name", text(metrics.iter().map(|(n, _)| Some((*n).to_owned())))),
        ("metric_value", text(metrics.iter().map(|(_, v)| Some(v.clone())))),
    ])
}
