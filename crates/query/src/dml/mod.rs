//! Statements that write rows: INSERT, UPDATE, DELETE.
//!
//! Each runs its reading part (the VALUES or SELECT of an INSERT, the WHERE of an UPDATE or
//! DELETE) as a DataFusion query through the session's providers, so subqueries, joins and
//! functions behave as in any SELECT and isolation holds, and then hands every row it
//! writes to the row store in one atomic call: a statement applies entirely or not at all.
//! Writing happens when the statement executes, never while it is planned.

pub mod insert;
pub mod literal_insert;
mod literal_values;
pub mod modify;

use std::collections::HashSet;
use std::sync::Arc;

use calamus_domain::model::{TableDefinition, TableKind, TableSchema};
use calamus_domain::{ColumnName, DomainError, Partition, TableId};
use datafusion::sql::sqlparser::ast::{ObjectName, Statement as SqlStatement};

use crate::authorization::denied;
use crate::authorization::rules::{self, may_write};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::parser::parse_statements;
use crate::session::Session;
use crate::statement::Statement;

/// The table a DML statement writes, checked to be a user table that exists and that the
/// session's role may write (the definition checked is the one written).
pub(crate) fn target_table(
    engine: &QueryEngine,
    session: &Session,
    name: &ObjectName,
) -> QueryResult<(TableId, Arc<TableDefinition>)> {
    let id = engine.resolve_table(session, name)?;
    rules::writable(session.role, &id)?;
    let table = engine
        .catalog
        .snapshot()
        .table(&id)
        .cloned()
        .ok_or_else(|| DomainError::TableNotFound { table: id.to_string() })?;
    if !may_write(session.role, &table) {
        let role = session.role;
        return Err(denied(role, || format!("role {role} may not write {id}")));
    }
    Ok((id, table))
}

/// The partition a session writes in `table`.
pub(crate) fn partition_for(session: &Session, table: &TableDefinition) -> Partition {
    match table.kind {
        TableKind::User | TableKind::Stream => Partition::User(session.user.clone()),
        TableKind::Shared => Partition::Shared,
    }
}

/// Parses a template statement that is known to be valid SQL.
pub(crate) fn template(sql: &str) -> SqlStatement {
    match parse_statements(sql).ok().and_then(|mut s| s.pop()) {
        Some(Statement::Sql(statement)) => *statement,
        _ => unreachable!("the template '{sql}' is valid SQL"),
    }
}

/// The position of a column an INSERT or UPDATE writes: it must be a user column of the
/// table, named once per statement (`seen` collects the positions already written).
pub(crate) fn written_column(
    schema: &TableSchema,
    table: &TableId,
    name: &ObjectName,
    seen: &mut HashSet<usize>,
) -> QueryResult<usize> {
    let raw = name.0.last().map(|p| p.to_string()).unwrap_or_default();
    let column = ColumnName::new(raw.trim_matches('"'))?;
    if column.is_reserved() {
        return Err(QueryError::InvalidStatement(format!(
            "column '{column}' is a system column and cannot be written"
        )));
    }
    let position = schema
        .position(column.as_str())
        .ok_or_else(|| DomainError::ColumnNotFound {
            table: table.to_string(),
            column: column.to_string(),
        })?;
    if !seen.insert(position) {
        return Err(QueryError::InvalidStatement(format!(
            "column '{column}' is written twice in one statement"
        )));
    }
    Ok(position)
}
