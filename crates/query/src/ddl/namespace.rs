//! CREATE / ALTER / DROP NAMESPACE and USE.

use calamus_domain::ids::now_micros;
use calamus_domain::model::Namespace;
use calamus_domain::{DomainError, NamespaceId};
use datafusion::sql::sqlparser::ast::Ident;

use crate::engine::QueryEngine;
use crate::error::{QueryError, QueryResult};
use crate::output::StatementOutput;
use crate::session::Session;

/// `CREATE NAMESPACE [IF NOT EXISTS] ns`.
pub async fn create(engine: &QueryEngine, name: &Ident, if_not_exists: bool) -> QueryResult<StatementOutput> {
    let id = NamespaceId::new_user_namespace(&name.value)?;
    let now = now_micros();
    let namespace = Namespace {
        id: id.clone(),
        options: Default::default(),
        created_at: now,
        updated_at: now,
    };
    match engine.catalog.create_namespace(namespace).await {
        Ok(()) => Ok(StatementOutput::affected(
            0,
            format!("Namespace '{id}' created successfully"),
        )),
        Err(DomainError::NamespaceExists { .. }) if if_not_exists => {
            Ok(StatementOutput::affected(0, format!("Namespace '{id}' already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ALTER NAMESPACE ns SET OPTIONS (...)`.
pub async fn alter(engine: &QueryEngine, name: &Ident, options: Vec<(String, String)>) -> QueryResult<StatementOutput> {
    let id = NamespaceId::new_user_namespace(&name.value)?;
    let snapshot = engine.catalog.snapshot();
    let mut namespace = snapshot
        .namespaces
        .get(&id)
        .cloned()
        .ok_or_else(|| DomainError::NamespaceNotFound {
            namespace: id.to_string(),
        })?;
    for (key, value) in options {
        namespace.options.insert(key.to_ascii_lowercase(), value);
    }
    namespace.updated_at = now_micros();
    engine.catalog.update_namespace(namespace).await?;
    Ok(StatementOutput::affected(
        0,
        format!("Namespace '{id}' altered successfully"),
    ))
}

/// `DROP NAMESPACE [IF EXISTS] ns [RESTRICT | CASCADE]`: refuses while the namespace holds
/// tables unless CASCADE, which drops them in the same catalog write.
pub async fn drop(engine: &QueryEngine, name: &Ident, if_exists: bool, cascade: bool) -> QueryResult<StatementOutput> {
    let id = NamespaceId::new_user_namespace(&name.value)?;
    if id == NamespaceId::default_namespace() {
        return Err(QueryError::InvalidStatement(
            "namespace 'default' cannot be dropped".into(),
        ));
    }
    let snapshot = engine.catalog.snapshot();
    if !snapshot.has_namespace(&id) {
        if if_exists {
            return Ok(StatementOutput::affected(0, format!("Namespace '{id}' does not exist")));
        }
        return Err(DomainError::NamespaceNotFound {
            namespace: id.to_string(),
        }
        .into());
    }
    let tables: Vec<_> = if cascade {
        snapshot.tables_in(&id).cloned().collect()
    } else {
        Vec::new()
    };
    engine
        .catalog
        .drop_namespace(&id, tables.iter().map(|t| t.id.clone()).collect())
        .await?;
    for table in &tables {
        crate::cold::drop_table_data(engine, table).await;
    }
    Ok(StatementOutput::affected(
        0,
        format!("Namespace '{id}' dropped successfully"),
    ))
}

/// `USE ns`.
pub fn use_namespace(engine: &QueryEngine, session: &mut Session, name: &Ident) -> QueryResult<StatementOutput> {
    let id = NamespaceId::new(&name.value)?;
    if id != NamespaceId::system() && !engine.catalog.snapshot().has_namespace(&id) {
        return Err(DomainError::NamespaceNotFound {
            namespace: id.to_string(),
        }
        .into());
    }
    session.namespace = id.clone();
    Ok(StatementOutput::affected(0, format!("Using namespace '{id}'")))
}
