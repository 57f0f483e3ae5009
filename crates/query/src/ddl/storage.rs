//! CREATE / ALTER / DROP STORAGE.

use calamus_domain::ids::now_micros;
use calamus_domain::model::StorageDefinition;
use calamus_domain::{DomainError, StorageId};
use datafusion::sql::sqlparser::ast::Ident;

use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;

/// `CREATE STORAGE [IF NOT EXISTS] id TYPE '...' BASE_DIRECTORY '...' [templates]`; the
/// templates default to those of `local`.
pub async fn create(
    engine: &QueryEngine,
    name: &Ident,
    if_not_exists: bool,
    options: Vec<(String, String)>,
) -> QueryResult<StatementOutput> {
    let id = StorageId::new(&name.value)?;
    let now = now_micros();
    let mut storage = StorageDefinition {
        id: id.clone(),
        storage_type: String::new(),
        base_directory: String::new(),
        ..StorageDefinition::local(now)
    };
    let mut has_base = false;
    for (option, value) in options {
        has_base |= option == "BASE_DIRECTORY";
        set(&mut storage, &option, value)?;
    }
    if storage.storage_type.is_empty() || !has_base || storage.base_directory.is_empty() {
        return Err(QueryError::InvalidStatement(
            "CREATE STORAGE needs TYPE 'filesystem' and a non-empty BASE_DIRECTORY '...'".into(),
        ));
    }
    storage.validate()?;
    if engine.catalog.snapshot().storages.contains_key(&id) {
        return if if_not_exists {
            Ok(StatementOutput::affected(0, format!("Storage '{id}' already exists")))
        } else {
            Err(QueryError::Domain(DomainError::Constraint(format!(
                "storage '{id}' already exists"
            ))))
        };
    }
    engine.catalog.put_storage(storage).await?;
    Ok(StatementOutput::affected(
        0,
        format!("Storage '{id}' created successfully"),
    ))
}

/// `ALTER STORAGE id SET ...`: the type never changes, and the paths of a storage only while
/// no table uses it (flushed files would be left behind at the old place).
pub async fn alter(engine: &QueryEngine, name: &Ident, options: Vec<(String, String)>) -> QueryResult<StatementOutput> {
    let id = StorageId::new(&name.value)?;
    let snapshot = engine.catalog.snapshot();
    let mut storage = snapshot
        .storages
        .get(&id)
        .cloned()
        .ok_or_else(|| DomainError::StorageNotFound {
            storage: id.to_string(),
        })?;
    if id == StorageId::local() {
        return Err(QueryError::InvalidStatement(
            "the local storage cannot be altered; create another storage for other paths".into(),
        ));
    }
    for (option, value) in options {
        if option == "TYPE" {
            return Err(QueryError::InvalidStatement(
                "a storage's TYPE cannot change; create another storage".into(),
            ));
        }
        set(&mut storage, &option, value)?;
    }
    storage.validate()?;
    let users = tables_using(engine, &id);
    if !users.is_empty() {
        return Err(QueryError::Domain(DomainError::Constraint(format!(
            "storage '{id}' is used by {}; its paths cannot change while tables use it",
            users.join(", ")
        ))));
    }
    storage.updated_at = now_micros();
    engine.catalog.put_storage(storage).await?;
    Ok(StatementOutput::affected(
        0,
        format!("Storage '{id}' altered successfully"),
    ))
}

/// `DROP STORAGE [IF EXISTS] id`: refused for `local` and for a storage a table uses.
pub async fn drop(engine: &QueryEngine, name: &Ident, if_exists: bool) -> QueryResult<StatementOutput> {
    let id = StorageId::new(&name.value)?;
    if id == StorageId::local() {
        return Err(QueryError::InvalidStatement(
            "the local storage cannot be dropped".into(),
        ));
    }
    if !engine.catalog.snapshot().storages.contains_key(&id) {
        return if if_exists {
            Ok(StatementOutput::affected(0, format!("Storage '{id}' does not exist")))
        } else {
            Err(DomainError::StorageNotFound {
                storage: id.to_string(),
            }
            .into())
        };
    }
    let users = tables_using(engine, &id);
    if !users.is_empty() {
        return Err(QueryError::Domain(DomainError::Constraint(format!(
            "storage '{id}' is used by {}; drop those tables or move them to another storage first",
            users.join(", ")
        ))));
    }
    engine.catalog.drop_storage(&id).await?;
    Ok(StatementOutput::affected(
        0,
        format!("Storage '{id}' dropped successfully"),
    ))
}

fn set(storage: &mut StorageDefinition, option: &str, value: String) -> QueryResult<()> {
    match option {
        "TYPE" => storage.storage_type = value.to_ascii_lowercase(),
        "BASE_DIRECTORY" => storage.base_directory = value,
        "SHARED_TABLES_TEMPLATE" => storage.shared_tables_template = value,
        "USER_TABLES_TEMPLATE" => storage.user_tables_template = value,
        other => {
            return Err(QueryError::InvalidStatement(format!("unknown storage option {other}")));
        }
    }
    Ok(())
}

/// The tables (`ns.t`) whose rows go to storage `id` (no `STORAGE_ID` means `local`).
fn tables_using(engine: &QueryEngine, id: &StorageId) -> Vec<String> {
    engine
        .catalog
        .snapshot()
        .tables
        .values()
        .filter(|t| t.options.storage_id.as_ref().unwrap_or(&StorageId::local()) == id)
        .map(|t| t.id.to_string())
        .collect()
}
