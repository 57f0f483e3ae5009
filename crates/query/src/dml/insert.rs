//! INSERT [INTO] t [(cols)] VALUES ... | SELECT ... [RETURNING ...].

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array};
use arrow::record_batch::RecordBatch;
use calamus_domain::TableId;
use calamus_domain::arrow_rows::{build_array, table_schema};
use calamus_domain::ids::{new_ulid, new_uuid_v7, now_micros};
use calamus_domain::model::{ColumnDefault, DefaultFunction, TableDefinition};
use calamus_domain::{StoredRow, Value};
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Insert, ObjectName, SelectItem, Statement as SqlStatement, TableObject};

use super::literal_insert::LiteralInsert;
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
        return Err(QueryError::Unsupported("INSERT into a table function".into()));
    };
    let target = Target::resolve(engine, session, name, &insert.columns)?;
    let Some(source) = insert.source else {
        return Err(QueryError::Unsupported("INSERT without VALUES or SELECT".into()));
    };
    // Each chunk: the source's columns, as arrays of equal length.
    let chunks: Vec<Vec<ArrayRef>> = match literal_columns(&source, params) {
        Some(columns) => vec![columns],
        None => {
            let state = engine.state_for(session, None);
            let (schema, batches) = engine.query(&state, SqlStatement::Query(source), params).await?;
            target.check_width(schema.fields().len())?;
            batches.iter().map(|b| b.columns().to_vec()).collect()
        }
    };
    let written = target.write(engine, session, &chunks).await?;
    match insert.returning {
        Some(items) => returning(&target.table, &written, &items).await,
        None => Ok(inserted(written.len())),
    }
}

/// Runs an INSERT of literal rows read straight from its tokens.
pub async fn run_literal(
    engine: &QueryEngine,
    session: &Session,
    insert: LiteralInsert,
) -> QueryResult<StatementOutput> {
    let target = Target::resolve(engine, session, &insert.table, &insert.columns)?;
    let written = target
        .write(engine, session, std::slice::from_ref(&insert.values))
        .await?;
    Ok(inserted(written.len()))
}

fn inserted(count: usize) -> StatementOutput {
    StatementOutput::affected(count as u64, format!("Inserted {count} row(s)"))
}

/// The table an INSERT writes and the table column each of its source columns fills.
struct Target {
    id: TableId,
    table: Arc<TableDefinition>,
    positions: Vec<usize>,
}

impl Target {
    /// Checks the table and the columns `columns` names (all of the table's when empty).
    fn resolve(
        engine: &QueryEngine,
        session: &Session,
        name: &ObjectName,
        columns: &[ObjectName],
    ) -> QueryResult<Self> {
        let (id, table) = target_table(engine, session, name)?;
        let schema = table.schema();
        let positions = if columns.is_empty() {
            (0..schema.columns.len()).collect()
        } else {
            let mut seen = HashSet::new();
            columns
                .iter()
                .map(|column| written_column(schema, &id, column, &mut seen))
                .collect::<QueryResult<_>>()?
        };
        Ok(Self { id, table, positions })
    }

    /// Fails unless rows of `width` values fill exactly the target's columns.
    fn check_width(&self, width: usize) -> QueryResult<()> {
        if width == self.positions.len() {
            return Ok(());
        }
        Err(QueryError::InvalidStatement(format!(
            "INSERT into {} gives {width} value(s) per row for {} column(s)",
            self.id,
            self.positions.len()
        )))
    }

    /// Stores the rows of `chunks` (each chunk: the source's columns, as arrays of equal
    /// length), the columns they do not give taking their defaults, in one atomic write.
    async fn write(
        &self,
        engine: &QueryEngine,
        session: &Session,
        chunks: &[Vec<ArrayRef>],
    ) -> QueryResult<Vec<StoredRow>> {
        let schema = self.table.schema();
        let mut rows: Vec<Vec<Value>> =
            Vec::with_capacity(chunks.iter().map(|c| c.first().map_or(0, |a| a.len())).sum());
        for chunk in chunks {
            self.check_width(chunk.len())?;
            // Each given column's values, moved into the rows one by one.
            let mut given: Vec<Option<std::vec::IntoIter<Value>>> = (0..schema.columns.len()).map(|_| None).collect();
            for (source_index, &position) in self.positions.iter().enumerate() {
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
                        given.as_mut().and_then(Iterator::next).unwrap_or_else(|| {
                            default_value(engine, session, column.default.as_ref(), &column.data_type)
                        })
                    })
                    .collect();
                rows.push(values);
            }
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        Ok(engine
            .rows
            .insert(&self.table, &partition_for(session, &self.table), rows)
            .await?)
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
