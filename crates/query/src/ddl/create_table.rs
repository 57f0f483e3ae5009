//! CREATE [USER | SHARED | STREAM] TABLE.

use std::sync::Arc;

use calamus_domain::ids::now_micros;
use calamus_domain::model::{
    ColumnDefault, ColumnDefinition, DefaultFunction, StoredValue, TableDefinition, TableKind, TableSchema,
};
use calamus_domain::{ColumnName, DataType, DomainError, NamespaceId};
use datafusion::sql::sqlparser::ast::{
    ColumnDef, ColumnOption, CreateTable, CreateTableOptions, Expr, GeneratedAs, Ident, SelectItem, SetExpr,
    Statement as SqlStatement, TableConstraint,
};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::options::{ParsedOptions, parse_options};
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::parser::parse_statements;
use crate::session::Session;
use crate::statement::Statement;
use crate::types::{column_type, column_values};

/// Runs CREATE TABLE.
pub async fn create(
    engine: &QueryEngine,
    session: &Session,
    prefix_kind: Option<TableKind>,
    create: CreateTable,
    legacy_options: Vec<(String, Expr)>,
) -> QueryResult<StatementOutput> {
    let id = engine.resolve_table(session, &create.name)?;
    if id.namespace.is_reserved() {
        return Err(DomainError::ReservedName {
            kind: "namespace",
            name: id.namespace.to_string(),
        }
        .into());
    }
    if create.query.is_some() || create.like.is_some() || create.clone.is_some() {
        return Err(QueryError::Unsupported("CREATE TABLE ... AS / LIKE / CLONE".into()));
    }
    let (kind, parsed) = declared_kind(prefix_kind, &create, &legacy_options)?;
    parsed.options.validate_for(kind)?;
    let snapshot = engine.catalog.snapshot();
    if let Some(storage) = &parsed.options.storage_id
        && !snapshot.storages.contains_key(storage)
    {
        return Err(DomainError::StorageNotFound {
            storage: storage.to_string(),
        }
        .into());
    }
    if !snapshot.has_namespace(&id.namespace) {
        return Err(DomainError::NamespaceNotFound {
            namespace: id.namespace.to_string(),
        }
        .into());
    }
    if snapshot.table(&id).is_some() {
        if create.if_not_exists {
            return Ok(StatementOutput::affected(0, format!("Table {id} already exists")));
        }
        return Err(DomainError::TableExists { table: id.to_string() }.into());
    }

    let mut columns = Vec::with_capacity(create.columns.len());
    let mut primary_key: Option<String> = None;
    for (i, def) in create.columns.iter().enumerate() {
        let (column, is_pk) = column_definition(engine, session, def, i as u32 + 1).await?;
        if columns.iter().any(|c: &ColumnDefinition| c.name == column.name) {
            return Err(DomainError::ColumnExists {
                table: id.to_string(),
                column: column.name.to_string(),
            }
            .into());
        }
        if is_pk {
            set_primary_key(&mut primary_key, column.name.as_str())?;
        }
        columns.push(column);
    }
    if columns.is_empty() {
        return Err(QueryError::InvalidStatement(format!(
            "table {id} needs at least one column"
        )));
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let [column] = pk.columns.as_slice() else {
                    return Err(QueryError::Unsupported(
                        "a primary key of several columns; a primary key is one column".into(),
                    ));
                };
                set_primary_key(&mut primary_key, &column.column.expr.to_string().to_ascii_lowercase())?;
            }
            other => {
                return Err(QueryError::Unsupported(format!(
                    "the table constraint '{other}'; only PRIMARY KEY (col) is"
                )));
            }
        }
    }
    let primary_key =
        match primary_key {
            Some(name) => {
                let column = columns.iter_mut().find(|c| c.name.as_str() == name).ok_or_else(|| {
                    DomainError::ColumnNotFound {
                        table: id.to_string(),
                        column: name.clone(),
                    }
                })?;
                if !column.data_type.can_be_primary_key() {
                    return Err(QueryError::InvalidStatement(format!(
                        "column '{}' of type {} cannot be a primary key",
                        column.name, column.data_type
                    )));
                }
                column.nullable = false;
                Some(column.id)
            }
            None => None,
        };

    let now = now_micros();
    let uid = engine.catalog.allocate_table_uid().await?;
    let next_column_id = columns.len() as u32 + 1;
    let schema = TableSchema {
        version: 1,
        columns,
        primary_key,
        created_at: now,
    };
    let table = TableDefinition {
        id: id.clone(),
        uid,
        kind,
        options: parsed.options,
        schemas: vec![schema],
        next_column_id,
        created_at: now,
        updated_at: now,
    };
    engine.rows.create_table(&table).await?;
    if let Err(e) = engine.catalog.create_table(table.clone()).await {
        // Nothing may stay half-created: the keyspace goes with the failed catalog write.
        if let Err(cleanup) = engine.rows.drop_table(&table).await {
            tracing::warn!(table = %id, error = %cleanup, "could not remove the keyspace of a table that failed to be created");
        }
        return Err(e.into());
    }
    Ok(StatementOutput::affected(0, format!("Table {id} created successfully")))
}

/// The kind a CREATE TABLE declares (its prefix, or `WITH (TYPE = ...)`, else SHARED) and
/// its parsed options.
pub fn declared_kind(
    prefix_kind: Option<TableKind>,
    create: &CreateTable,
    legacy_options: &[(String, Expr)],
) -> QueryResult<(TableKind, ParsedOptions)> {
    let with = match &create.table_options {
        CreateTableOptions::None => Vec::new(),
        CreateTableOptions::With(options) | CreateTableOptions::Options(options) => options.clone(),
        other => {
            return Err(QueryError::InvalidStatement(format!(
                "unsupported table options '{other}'; use WITH (...)"
            )));
        }
    };
    let parsed = parse_options(&with, legacy_options)?;
    let kind = match (prefix_kind, parsed.kind) {
        (Some(a), Some(b)) if a != b => {
            return Err(QueryError::InvalidStatement(format!(
                "the table is declared {a} but WITH (TYPE = '{b}') says otherwise; give one kind"
            )));
        }
        (Some(kind), _) | (None, Some(kind)) => kind,
        (None, None) => TableKind::Shared,
    };
    Ok((kind, parsed))
}

fn set_primary_key(slot: &mut Option<String>, name: &str) -> QueryResult<()> {
    if let Some(existing) = slot
        && existing != name
    {
        return Err(QueryError::Unsupported(format!(
            "a second primary key column ('{existing}' and '{name}'); a primary key is one column"
        )));
    }
    *slot = Some(name.to_owned());
    Ok(())
}

/// One column of CREATE TABLE or ALTER TABLE ADD COLUMN; also says whether it is declared
/// PRIMARY KEY.
pub async fn column_definition(
    engine: &QueryEngine,
    session: &Session,
    def: &ColumnDef,
    id: u32,
) -> QueryResult<(ColumnDefinition, bool)> {
    let name = ColumnName::new_user_column(&def.name.value)?;
    let (data_type, serial) = column_type(&def.data_type)?;
    let mut nullable = true;
    let mut default = serial.then_some(ColumnDefault::Function(DefaultFunction::SnowflakeId));
    let mut primary_key = false;
    for option in &def.options {
        match &option.option {
            ColumnOption::Null => nullable = true,
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Default(expr) => {
                default = Some(evaluate_default(engine, session, expr, &data_type, &name).await?)
            }
            ColumnOption::PrimaryKey(_) => primary_key = true,
            ColumnOption::DialectSpecific(tokens) if is_auto_increment(tokens) => {
                default = Some(ColumnDefault::Function(DefaultFunction::SnowflakeId))
            }
            ColumnOption::Generated {
                generated_as: GeneratedAs::Always | GeneratedAs::ByDefault,
                generation_expr: None,
                ..
            } => default = Some(ColumnDefault::Function(DefaultFunction::SnowflakeId)),
            ColumnOption::Comment(_) => {}
            other => {
                return Err(QueryError::Unsupported(format!(
                    "the column option '{other}' (column '{name}')"
                )));
            }
        }
    }
    if matches!(default, Some(ColumnDefault::Function(DefaultFunction::SnowflakeId))) && data_type != DataType::BigInt {
        return Err(QueryError::InvalidStatement(format!(
            "column '{name}': SNOWFLAKE_ID() / AUTO_INCREMENT needs a BIGINT column, not {data_type}"
        )));
    }
    let column = ColumnDefinition {
        id,
        name,
        data_type,
        nullable,
        default,
        added_in_version: 1,
        missing_value: None,
    };
    Ok((column, primary_key))
}

fn is_auto_increment(tokens: &[Token]) -> bool {
    matches!(tokens, [Token::Word(w)] if w.value.eq_ignore_ascii_case("AUTO_INCREMENT") || w.value.eq_ignore_ascii_case("AUTOINCREMENT"))
}

/// A function default by its SQL name, if it is one.
fn default_function(expr: &Expr) -> Option<DefaultFunction> {
    let name = match expr {
        Expr::Function(f) if f.args.to_string().trim_matches(|c| c == '(' || c == ')').is_empty() => f.name.to_string(),
        Expr::Identifier(ident) => ident.value.clone(),
        _ => return None,
    };
    match name.to_ascii_lowercase().as_str() {
        "snowflake_id" => Some(DefaultFunction::SnowflakeId),
        "uuid_v7" => Some(DefaultFunction::UuidV7),
        "ulid" => Some(DefaultFunction::Ulid),
        "now" | "current_timestamp" => Some(DefaultFunction::Now),
        "current_user" => Some(DefaultFunction::CurrentUser),
        _ => None,
    }
}

/// A column default: one of the per-row functions, or a constant expression evaluated now
/// and stored as a value of the column's type.
pub async fn evaluate_default(
    engine: &QueryEngine,
    session: &Session,
    expr: &Expr,
    data_type: &DataType,
    column: &ColumnName,
) -> QueryResult<ColumnDefault> {
    if let Some(function) = default_function(expr) {
        let fits = match function {
            DefaultFunction::SnowflakeId => *data_type == DataType::BigInt,
            DefaultFunction::UuidV7 => matches!(data_type, DataType::Uuid | DataType::Text),
            DefaultFunction::Ulid | DefaultFunction::CurrentUser => *data_type == DataType::Text,
            DefaultFunction::Now => *data_type == DataType::Timestamp,
        };
        if !fits {
            return Err(QueryError::InvalidStatement(format!(
                "column '{column}' of type {data_type} cannot default to {}",
                function.sql()
            )));
        }
        return Ok(ColumnDefault::Function(function));
    }
    let value = constant(engine, session, expr, data_type, column).await?;
    Ok(ColumnDefault::Literal {
        sql: expr.to_string(),
        value: StoredValue::from_value(&value),
    })
}

/// Evaluates a constant expression as a value of `data_type`.
async fn constant(
    engine: &QueryEngine,
    session: &Session,
    expr: &Expr,
    data_type: &DataType,
    column: &ColumnName,
) -> QueryResult<calamus_domain::Value> {
    let mut parsed = parse_statements("SELECT NULL")?;
    let Some(Statement::Sql(statement)) = parsed.pop() else {
        unreachable!("a SELECT parses as SQL")
    };
    let mut statement = *statement;
    if let SqlStatement::Query(query) = &mut statement
        && let SetExpr::Select(select) = query.body.as_mut()
    {
        select.projection = vec![SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::new("v"),
        }];
    }
    let state = engine.state_for(session, None);
    let (_, batches) = engine.query(&state, statement, &[]).await.map_err(|e| {
        QueryError::InvalidStatement(format!(
            "the default of column '{column}' must be a constant or a known function: {e}"
        ))
    })?;
    let batch = batches
        .into_iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| QueryError::InvalidStatement(format!("the default of column '{column}' gives no value")))?;
    let mut values = column_values(batch.column(0), data_type, column.as_str())?;
    Ok(values.swap_remove(0))
}

/// Ensures `namespace` may hold user tables.
pub fn check_user_namespace(namespace: &NamespaceId) -> QueryResult<()> {
    if namespace.is_reserved() {
        return Err(DomainError::ReservedName {
            kind: "namespace",
            name: namespace.to_string(),
        }
        .into());
    }
    Ok(())
}

/// Shared by ALTER TABLE: a table definition as an owned, changeable value.
pub fn owned(table: &Arc<TableDefinition>) -> TableDefinition {
    (**table).clone()
}
