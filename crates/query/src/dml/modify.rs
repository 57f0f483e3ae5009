//! UPDATE and DELETE: the WHERE runs as a DataFusion query over the target's provider
//! (which exposes each row's hidden row id), so a WHERE with subqueries or joins matches
//! exactly the rows a SELECT with that WHERE returns, and only those rows are written.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, BinaryArray, Int64Array};
use calamus_domain::model::{SEQ_COLUMN, TableDefinition};
use calamus_domain::{DomainError, RowChange, RowVersion, TableId, Value};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Ident, SelectItem, SetExpr, Statement as SqlStatement, TableFactor,
    TableWithJoins, Update,
};

use super::{partition_for, target_table, template, written_column};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult, retry_when_raced_by_flush};
use crate::output::StatementOutput;
use crate::providers::ROW_ID_COLUMN;
use crate::session::Session;
use crate::types::column_values;

/// The one plain table an UPDATE or DELETE names.
fn single_table(from: &TableWithJoins, verb: &str) -> QueryResult<TableFactor> {
    if !from.joins.is_empty() {
        return Err(QueryError::Unsupported(format!(
            "{verb} with a join; use a subquery in WHERE"
        )));
    }
    match &from.relation {
        relation @ TableFactor::Table { args: None, .. } => Ok(relation.clone()),
        other => Err(QueryError::Unsupported(format!("{verb} of '{other}'"))),
    }
}

fn table_name(relation: &TableFactor) -> &datafusion::sql::sqlparser::ast::ObjectName {
    match relation {
        TableFactor::Table { name, .. } => name,
        _ => unreachable!("single_table only gives plain tables"),
    }
}

/// Matched rows of one batch: each row's id and the version it was read from.
type ReadVersions = Vec<(Vec<u8>, RowVersion)>;

/// The rows an UPDATE or DELETE matched: `projection`'s values, and for each row the
/// version it was read from and its row id.
struct Matched {
    batches: Vec<arrow::record_batch::RecordBatch>,
    /// Columns of `projection` before the old values.
    projected: usize,
}

impl Matched {
    /// Each row's row id and the version it was read from, batch by batch.
    fn versions<'b>(
        &'b self,
        table: &'b TableDefinition,
    ) -> impl Iterator<Item = QueryResult<(&'b arrow::record_batch::RecordBatch, ReadVersions)>> + 'b {
        let columns = &table.schema().columns;
        self.batches.iter().map(move |batch| {
            let old: Vec<Vec<Value>> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| column_values(batch.column(self.projected + i), &c.data_type, c.name.as_str()))
                .collect::<QueryResult<_>>()?;
            let seqs = batch
                .column(self.projected + columns.len())
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| QueryError::Domain(DomainError::Corrupt("_seq is not BIGINT".into())))?;
            let ids = row_ids(batch)?;
            let rows = (0..batch.num_rows())
                .map(|row| {
                    let version = RowVersion {
                        seq: seqs.value(row),
                        deleted: false,
                        values: old.iter().map(|c| c[row].clone()).collect(),
                    };
                    (ids.value(row).to_vec(), version)
                })
                .collect();
            Ok((batch, rows))
        })
    }
}

/// Runs `SELECT <projection>, <every column>, _seq, row id FROM <relation> WHERE
/// <selection>` for the session: the new values, and the version each row was read from.
async fn matching_rows(
    engine: &QueryEngine,
    session: &Session,
    (id, table): (&TableId, &TableDefinition),
    relation: TableFactor,
    mut projection: Vec<SelectItem>,
    selection: Option<Expr>,
    params: &[ScalarValue],
) -> QueryResult<Matched> {
    let mut statement = template("SELECT NULL FROM t");
    let projected = projection.len();
    for (i, column) in table.schema().columns.iter().enumerate() {
        projection.push(SelectItem::ExprWithAlias {
            expr: Expr::Identifier(Ident::new(column.name.as_str())),
            alias: Ident::new(format!("__calamus_old_{i}")),
        });
    }
    projection.push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(SEQ_COLUMN))));
    projection.push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(ROW_ID_COLUMN))));
    if let SqlStatement::Query(query) = &mut statement
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        select.projection = projection;
        select.from = vec![TableWithJoins {
            relation,
            joins: Vec::new(),
        }];
        select.selection = selection;
    }
    let planned = engine
        .plan_session_query(session, &statement, params, Some(id.clone()))
        .await?;
    let batches = datafusion::physical_plan::collect(planned.physical, planned.task).await?;
    Ok(Matched { batches, projected })
}

fn row_ids(batch: &arrow::record_batch::RecordBatch) -> QueryResult<&BinaryArray> {
    batch
        .column(batch.num_columns() - 1)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .ok_or_else(|| QueryError::Domain(DomainError::Corrupt("the row id column has the wrong type".into())))
}

async fn write(
    engine: &QueryEngine,
    session: &Session,
    table: &TableDefinition,
    changes: Vec<RowChange>,
) -> QueryResult<u64> {
    if changes.is_empty() {
        return Ok(0);
    }
    let written = engine
        .rows
        .write_changes(table, &partition_for(session, table), changes)
        .await?;
    Ok(written.len() as u64)
}

/// `DELETE FROM t [WHERE ...]`: a soft delete for USER and SHARED tables.
pub async fn delete(
    engine: &QueryEngine,
    session: &Session,
    delete: Delete,
    params: &[ScalarValue],
) -> QueryResult<StatementOutput> {
    retry_when_raced_by_flush(|| delete_once(engine, session, delete.clone(), params)).await
}

async fn delete_once(
    engine: &QueryEngine,
    session: &Session,
    delete: Delete,
    params: &[ScalarValue],
) -> QueryResult<StatementOutput> {
    if delete.limit.is_some() {
        return Err(QueryError::InvalidStatement(
            "DELETE ... LIMIT is not supported: say which rows with WHERE (for example on the primary key)".into(),
        ));
    }
    if !delete.order_by.is_empty() || delete.using.is_some() || !delete.tables.is_empty() || delete.returning.is_some()
    {
        return Err(QueryError::Unsupported(
            "DELETE with ORDER BY, USING, RETURNING or several tables".into(),
        ));
    }
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    let [from] = from.as_slice() else {
        return Err(QueryError::Unsupported("DELETE from several tables".into()));
    };
    let relation = single_table(from, "DELETE")?;
    let (id, table) = target_table(engine, session, table_name(&relation))?;
    let matched = matching_rows(
        engine,
        session,
        (&id, &table),
        relation,
        Vec::new(),
        delete.selection,
        params,
    )
    .await?;
    let mut changes = Vec::new();
    for rows in matched.versions(&table) {
        for (row_id, old) in rows?.1 {
            changes.push(RowChange {
                row_id,
                values: Vec::new(),
                delete: true,
                old: Some(old),
            });
        }
    }
    let count = write(engine, session, &table, changes).await?;
    Ok(StatementOutput::affected(count, format!("Deleted {count} row(s)")))
}

/// `UPDATE t SET c = expr, ... [WHERE ...]`: a new version of every matched row.
pub async fn update(
    engine: &QueryEngine,
    session: &Session,
    update: Update,
    params: &[ScalarValue],
) -> QueryResult<StatementOutput> {
    retry_when_raced_by_flush(|| update_once(engine, session, update.clone(), params)).await
}

async fn update_once(
    engine: &QueryEngine,
    session: &Session,
    update: Update,
    params: &[ScalarValue],
) -> QueryResult<StatementOutput> {
    if update.from.is_some()
        || update.limit.is_some()
        || !update.order_by.is_empty()
        || update.returning.is_some()
        || update.or.is_some()
    {
        return Err(QueryError::Unsupported(
            "UPDATE with FROM, LIMIT, ORDER BY, RETURNING or OR".into(),
        ));
    }
    let relation = single_table(&update.table, "UPDATE")?;
    let (id, table) = target_table(engine, session, table_name(&relation))?;
    let schema = table.schema();
    let mut assigned: Vec<Option<Expr>> = vec![None; schema.columns.len()];
    let mut seen = HashSet::new();
    for assignment in update.assignments {
        let AssignmentTarget::ColumnName(target) = &assignment.target else {
            return Err(QueryError::Unsupported("UPDATE of a tuple of columns".into()));
        };
        let position = written_column(schema, &id, target, &mut seen)?;
        assigned[position] = Some(assignment.value);
    }
    let projection = schema
        .columns
        .iter()
        .zip(assigned)
        .map(|(column, expr)| {
            let name = Ident::new(column.name.as_str());
            match expr {
                Some(expr) => SelectItem::ExprWithAlias { expr, alias: name },
                None => SelectItem::UnnamedExpr(Expr::Identifier(name)),
            }
        })
        .collect();
    let matched = matching_rows(
        engine,
        session,
        (&id, &table),
        relation,
        projection,
        update.selection,
        params,
    )
    .await?;
    let mut changes = Vec::new();
    for rows in matched.versions(&table) {
        let (batch, rows) = rows?;
        let columns: Vec<Vec<Value>> = schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| column_values(batch.column(i), &c.data_type, c.name.as_str()))
            .collect::<QueryResult<_>>()?;
        for (row, (row_id, old)) in rows.into_iter().enumerate() {
            changes.push(RowChange {
                row_id,
                values: columns.iter().map(|c| c[row].clone()).collect(),
                delete: false,
                old: Some(old),
            });
        }
    }
    let count = write(engine, session, &table, changes).await?;
    let _ = Arc::clone(&table);
    Ok(StatementOutput::affected(count, format!("Updated {count} row(s)")))
}
