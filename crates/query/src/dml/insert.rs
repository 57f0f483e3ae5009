//! INSERT [INTO] t [(cols)] VALUES ... | SELECT ... [RETURNING ...].

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array};
use arrow::record_batch::RecordBatch;
use calamus_domain::arrow_rows::{build_array, table_schema};
use calamus_domain::ids::{new_ulid, new_uuid_v7, now_micros};
use calamus_domain::model::{ColumnDefault, DefaultFunction, TableDefinition};
use calamus_domain::{StoredRow, Value};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Insert, SelectItem, Statement as SqlStatement, TableObject};

use super::literal_values::literal_columns;
use super::{partition_for, target_table, written_column};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;
use crate::types::column_values;

/// Runs an INSERT.
pub async fn run(
    engine: &QueryEngine,
    session: &Session,
    insert: Insert,
    params: &[ScalarValue],
) -> QueryResult<StatementOutput> {
    if insert.or.is_some() || insert.replace_into || insert.ignore || insert.on.is_some() || insert.overwrite {
        return Err(QueryError::Unsupported(
            "INSERT OR REPLACE / REPLACE / IGNORE / ON CONFLICT / OVERWRITE".into(),
        ));
    }
    if insert.partitioned.is_some() || !insert.after_columns.is_empty() || !insert.assignments.is_empty() {
        return Err(QueryError::Unsupported(
            "this form of INSERT; use INSERT INTO t (cols) VALUES ... or SELECT ...".into(),
        ));
    }
    let TableObject::TableName(name) = &insert.table else {
        return Err(QueryError::Unsupported("INSERT INTO a table function".into()));
    };
    let (id, table) = target_table(engine, session, name)?;
    let schema = table.schema();

    // Which table column each source column fills.
    let targets: Vec<usize> = if insert.columns.is_empty() {
        (0..schema.columns.len()).collect()
    } else {
        let mut seen = HashSet::new();
        let mut targets = Vec::with_capacity(insert.columns.len());
        for column in &insert.columns {
            let position = written_column(schema, &id, column, &mut seen)?;
            targets.push(position);
        }
        targets
    };

    let Some(source) = insert.source else {
        return Err(QueryError::Unsupported("INSERT without VALUES or SELECT".into()));
    };
    // Each chunk: the source's columns, as arrays of equal length.
    let (width, chunks): (usize, Vec<Vec<ArrayRef>>) = match literal_columns(&source, params) {
        Some(columns) => (columns.len(), vec![columns]),
        None => {
            let state = engine.state_for(session, None);
            let (schema, batches) = engine.query(&state, SqlStatement::Query(source), params).await?;
            let chunks = batches.iter().map(|b| b.columns().to_vec()).collect();
            (schema.fields().len(), chunks)
        }
    };
    if width != targets.len() {
        return Err(QueryError::InvalidStatement(format!(
            "INSERT into {id} gives {width} value(s) per row for {} column(s)",
            targets.len()
        )));
    }

    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(chunks.iter().map(|c| c.first().map_or(0, |a| a.len())).sum());
    for chunk in &chunks {
        // Each given column's values, moved into the rows one by one.
        let mut given: Vec<Option<std::vec::IntoIter<Value>>> = (0..schema.columns.len()).map(|_| None).collect();
        for (source_index, &position) in targets.iter().enumerate() {
            let column = &schema.columns[position];
            let values = column_values(&chunk[source_index], &column.data_type, column.name.as_str())?;
            given[position] = Some(values.into_iter());
        }
        let chunk_rows = chunk.first().map_or(0, |c| c.len());
        for _ in 0..chunk_rows {
            let values = schema
                .columns
                .iter()
                .zip(given.iter_mut())
                .map(|(column, given)| {
                    given
                        .as_mut()
                        .and_then(Iterator::next)
                        .unwrap_or_else(|| default_value(engine, session, column.default.as_ref(), &column.data_type))
                })
                .collect();
            rows.push(values);
        }
    }
    let count = rows.len() as u64;
    let written = if rows.is_empty() {
        Vec::new()
    } else {
        engine
            .rows
            .insert(&table, &partition_for(session, &table), rows)
            .await?
    };
    match insert.returning {
        Some(items) => returning(&table, &written, &items).await,
        None => Ok(StatementOutput::affected(count, format!("Inserted {count} row(s)"))),
    }
}

/// The value a column takes when an INSERT gives none.
pub(crate) fn default_value(
    engine: &QueryEngine,
    session: &Session,
    default: Option<&ColumnDefault>,
    data_type: &calamus_domain::DataType,
) -> Value {
    match default {
        None => Value::Null,
        Some(ColumnDefault::Literal { value, .. }) => value.to_value(data_type),
        Some(ColumnDefault::Function(f)) => match f {
            DefaultFunction::SnowflakeId => Value::BigInt(engine.snowflake.next_id()),
            DefaultFunction::UuidV7 => Value::Text(new_uuid_v7()),
            DefaultFunction::Ulid => Value::Text(new_ulid()),
            DefaultFunction::Now => Value::Timestamp(now_micros()),
            DefaultFunction::CurrentUser => Value::Text(session.user.to_string()),
        },
    }
}

/// Evaluates `RETURNING items` over the rows just written (with their `_seq`).
pub(crate) async fn returning(
    table: &TableDefinition,
    written: &[StoredRow],
    items: &[SelectItem],
) -> QueryResult<StatementOutput> {
    let schema = table_schema(table);
    let columns = &table.schema().columns;
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for (i, column) in columns.iter().enumerate() {
        arrays.push(build_array(&column.data_type, written.len(), |r| {
            &written[r].version.values[i]
        })?);
    }
    arrays.push(Arc::new(Int64Array::from_iter_values(written.iter().map(|r| r.version.seq))) as _);
    if table.kind.has_soft_delete() {
        arrays.push(Arc::new(BooleanArray::from_iter(written.iter().map(|r| Some(r.version.deleted)))) as _);
    }
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    let context = SessionContext::new();
    let name = table.id.table.to_string();
    context.register_batch(&name, batch)?;
    let projection: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    // The items come from the parsed statement; printed back, they are the same SQL.
    let frame = context
        .sql(&format!("SELECT {} FROM \"{name}\"", projection.join(", ")))
        .await?;
    let out_schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(StatementOutput::Rows {
        schema: out_schema,
        batches,
    })
}
