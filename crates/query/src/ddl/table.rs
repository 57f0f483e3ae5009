//! DROP TABLE, and CREATE/DROP INDEX (accepted, builds nothing).

use calamus_domain::DomainError;
use calamus_domain::model::TableKind;
use datafusion::sql::sqlparser::ast::ObjectName;

use crate::authorization::rules;
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// `DROP [USER | SHARED | STREAM] TABLE [IF EXISTS] t`: forgets the table in one catalog
/// write, then removes its rows.
pub async fn drop(
    engine: &QueryEngine,
    session: &Session,
    kind: Option<TableKind>,
    name: &ObjectName,
    if_exists: bool,
) -> QueryResult<StatementOutput> {
    let id = engine.resolve_table(session, name)?;
    rules::writable(session.role, &id)?;
    let snapshot = engine.catalog.snapshot();
    let Some(table) = snapshot.table(&id) else {
        if if_exists {
            return Ok(StatementOutput::affected(0, format!("Table {id} does not exist")));
        }
        return Err(DomainError::TableNotFound { table: id.to_string() }.into());
    };
    if let Some(kind) = kind
        && kind != table.kind
    {
        return Err(QueryError::InvalidStatement(format!(
            "table {id} is a {} table, not a {kind} table",
            table.kind
        )));
    }
    let dropped = engine.catalog.drop_table(&id).await?;
    crate::cold::drop_table_data(engine, &dropped).await;
    Ok(StatementOutput::affected(0, format!("Table {id} dropped successfully")))
}

/// `CREATE INDEX ... ON t (...)` / `DROP INDEX ...`: Calamus keeps no secondary indexes
/// (rows are ordered by primary key within each partition); the statement is accepted so
/// schema scripts run, checks that the table exists, and says it built nothing.
pub fn index(
    engine: &QueryEngine,
    session: &Session,
    table: Option<&ObjectName>,
    create: bool,
) -> QueryResult<StatementOutput> {
    if let Some(name) = table {
        let id = engine.resolve_table(session, name)?;
        if engine.catalog.snapshot().table(&id).is_none() {
            return Err(DomainError::TableNotFound { table: id.to_string() }.into());
        }
    }
    let verb = if create { "CREATE" } else { "DROP" };
    Ok(StatementOutput::affected(
        0,
        format!("{verb} INDEX accepted: Calamus keeps no secondary indexes, nothing was built or dropped"),
    ))
}
