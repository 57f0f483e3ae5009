//! ALTER TABLE: every change makes a new schema version; rows written under older versions
//! read back under the new one (see the row codec).

use calamus_domain::ids::now_micros;
use calamus_domain::model::{ColumnDefault, StoredValue, TableDefinition, TableKind};
use calamus_domain::{ColumnName, DomainError};
use datafusion::sql::sqlparser::ast::{AlterColumnOperation, AlterTable, AlterTableOperation, SqlOption};

use super::create_table::{column_definition, evaluate_default, owned};
use super::options::apply_option;
use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// Runs ALTER TABLE.
pub async fn run(engine: &QueryEngine, session: &Session, alter: AlterTable) -> QueryResult<StatementOutput> {
    let id = engine.resolve_table(session, &alter.name)?;
    let snapshot = engine.catalog.snapshot();
    let Some(current) = snapshot.table(&id) else {
        if alter.if_exists {
            return Ok(StatementOutput::affected(0, format!("Table {id} does not exist")));
        }
        return Err(DomainError::TableNotFound { table: id.to_string() }.into());
    };
    let mut table = owned(current);
    let mut schema = table.schema().clone();
    schema.version += 1;
    schema.created_at = now_micros();
    let table_name = id.to_string();
    for operation in alter.operations {
        let options_only = matches!(
            operation,
            AlterTableOperation::SetOptionsParens { .. } | AlterTableOperation::SetTblProperties { .. }
        );
        if table.kind == TableKind::Stream && !options_only {
            return Err(QueryError::InvalidStatement(format!(
                "STREAM table {id} can only change its options (SET (...))"
            )));
        }
        match operation {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => {
                let (mut column, is_pk) = column_definition(engine, session, &column_def, table.next_column_id).await?;
                if schema.column(column.name.as_str()).is_some() {
                    if if_not_exists {
                        continue;
                    }
                    return Err(DomainError::ColumnExists {
                        table: table_name,
                        column: column.name.to_string(),
                    }
                    .into());
                }
                if is_pk {
                    return Err(QueryError::Unsupported(
                        "adding a primary key column to an existing table".into(),
                    ));
                }
                column.added_in_version = schema.version;
                column.missing_value = match &column.default {
                    Some(ColumnDefault::Literal { value, .. }) => Some(value.clone()),
                    _ => None,
                };
                if !column.nullable
                    && column.missing_value.as_ref().is_none_or(|v| *v == StoredValue::Null)
                    && engine.rows.has_live_rows(&table).await?
                {
                    return Err(QueryError::Domain(DomainError::Constraint(format!(
                        "cannot add NOT NULL column '{}' without a default to table {id}, which has rows",
                        column.name
                    ))));
                }
                table.next_column_id += 1;
                schema.columns.push(column);
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for name in column_names {
                    let name = user_column(&name.value, "dropped")?;
                    let Some(position) = schema.position(name.as_str()) else {
                        if if_exists {
                            continue;
                        }
                        return Err(column_not_found(&table_name, &name));
                    };
                    if schema.primary_key == Some(schema.columns[position].id) {
                        return Err(QueryError::InvalidStatement(format!(
                            "cannot drop primary key column '{name}' of table {id}"
                        )));
                    }
                    if schema.columns.len() == 1 {
                        return Err(QueryError::InvalidStatement(format!(
                            "cannot drop the last column of table {id}"
                        )));
                    }
                    schema.columns.remove(position);
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let old = user_column(&old_column_name.value, "renamed")?;
                let new = ColumnName::new_user_column(&new_column_name.value)?;
                if schema.column(new.as_str()).is_some() {
                    return Err(DomainError::ColumnExists {
                        table: table_name,
                        column: new.to_string(),
                    }
                    .into());
                }
                let position = schema
                    .position(old.as_str())
                    .ok_or_else(|| column_not_found(&table_name, &old))?;
                schema.columns[position].name = new;
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let name = user_column(&column_name.value, "altered")?;
                let position = schema
                    .position(name.as_str())
                    .ok_or_else(|| column_not_found(&table_name, &name))?;
                let data_type = schema.columns[position].data_type;
                match op {
                    AlterColumnOperation::SetDefault { value } => {
                        schema.columns[position].default =
                            Some(evaluate_default(engine, session, &value, &data_type, &name).await?);
                    }
                    AlterColumnOperation::DropDefault => schema.columns[position].default = None,
                    AlterColumnOperation::DropNotNull => {
                        if schema.primary_key == Some(schema.columns[position].id) {
                            return Err(QueryError::InvalidStatement(format!(
                                "primary key column '{name}' is always NOT NULL"
                            )));
                        }
                        schema.columns[position].nullable = true;
                    }
                    AlterColumnOperation::SetNotNull => {
                        // Rows are read under the current definition: find the column there by
                        // id (this ALTER may have renamed it, or added it).
                        let column = &schema.columns[position];
                        let current_position = table.schema().columns.iter().position(|c| c.id == column.id);
                        let holds_null = match current_position {
                            Some(current) => engine.rows.has_live_null(&table, current).await?,
                            // Added by this ALTER: existing rows read its missing value.
                            None => {
                                column.missing_value.as_ref().is_none_or(|v| *v == StoredValue::Null)
                                    && engine.rows.has_live_rows(&table).await?
                            }
                        };
                        if holds_null {
                            return Err(QueryError::Domain(DomainError::Constraint(format!(
                                "column '{name}' of table {id} holds NULLs; cannot SET NOT NULL \
                                 (UPDATE them to a value first, or SET DEFAULT before adding the column)"
                            ))));
                        }
                        schema.columns[position].nullable = false;
                    }
                    other => return Err(QueryError::Unsupported(format!("ALTER COLUMN ... {other}"))),
                }
            }
            AlterTableOperation::SetOptionsParens { options }
            | AlterTableOperation::SetTblProperties {
                table_properties: options,
            } => {
                let mut kind = None;
                let storage_before = table.options.storage_id.clone();
                for option in options {
                    let SqlOption::KeyValue { key, value } = option else {
                        return Err(QueryError::InvalidStatement(format!("unsupported option '{option}'")));
                    };
                    apply_option(&mut table.options, &mut kind, &key.value, &value)?;
                }
                if table.options.storage_id != storage_before {
                    check_storage_move(engine, &table)?;
                }
                if kind.is_some_and(|k| k != table.kind) {
                    return Err(QueryError::InvalidStatement(format!(
                        "the kind of table {id} cannot change"
                    )));
                }
                table.options.validate_for(table.kind)?;
            }
            other => return Err(QueryError::Unsupported(format!("ALTER TABLE ... {other}"))),
        }
    }
    let version = schema.version;
    table.schemas.push(schema);
    table.updated_at = now_micros();
    engine.catalog.update_table(table).await?;
    Ok(StatementOutput::affected(
        0,
        format!("Table {id} altered successfully (schema version {version})"),
    ))
}

/// A table may move to another storage only if it exists and the table has no flushed
/// segments (their paths are relative to the storage they were written to).
fn check_storage_move(engine: &QueryEngine, table: &TableDefinition) -> QueryResult<()> {
    if let Some(storage) = &table.options.storage_id
        && !engine.catalog.snapshot().storages.contains_key(storage)
    {
        return Err(DomainError::StorageNotFound {
            storage: storage.to_string(),
        }
        .into());
    }
    if engine.rows.manifests(table)?.iter().any(|(_, m)| !m.is_empty()) {
        return Err(QueryError::Domain(DomainError::Constraint(format!(
            "table {} has flushed rows in its storage; its STORAGE_ID cannot change",
            table.id
        ))));
    }
    Ok(())
}

/// A column an ALTER names: a user column (system columns cannot be changed).
fn user_column(raw: &str, verb: &str) -> QueryResult<ColumnName> {
    let name = ColumnName::new(raw)?;
    if name.is_reserved() {
        return Err(QueryError::InvalidStatement(format!(
            "column '{name}' is a system column and cannot be {verb}"
        )));
    }
    Ok(name)
}

fn column_not_found(table: &str, column: &ColumnName) -> QueryError {
    DomainError::ColumnNotFound {
        table: table.to_owned(),
        column: column.to_string(),
    }
    .into()
}
