//! A DataFusion catalog built per statement from a [`CatalogSnapshot`]: a namespace is a
//! schema, a table a provider, and nothing is ever registered: a table exists for queries
//! exactly when it is in the catalog.
//!
//! The role rules for reading are enforced here, where the planner resolves every table
//! name of a statement (subqueries, joins, CTEs and UNION included): a table the session's
//! role may not read is refused with `PermissionDenied`, and the system tables whose rows
//! belong to users show a user or service only their own rows.

use std::sync::Arc;

use async_trait::async_trait;
use calamus_domain::model::{Role, TableKind};
use calamus_domain::{CatalogSnapshot, NamespaceId, Partition, RowStore, TableId, TableName, UserId};
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableProvider;

use super::kv_table::KvTable;
use super::system::{SYSTEM_TABLES, system_table};
use crate::authorization::denied;
use crate::authorization::rules::{SystemTableAccess, may_read, system_table_access};
use crate::cold::ColdStorage;
use crate::live::LiveQueries;
use crate::plan_cache::PlanCache;

/// What one statement may read, and as whom.
#[derive(Debug, Clone)]
pub struct TableAccess {
    /// The catalog the statement sees.
    pub snapshot: Arc<CatalogSnapshot>,
    /// The rows.
    pub rows: Arc<dyn RowStore>,
    /// The live subscriptions (`system.live_queries`).
    pub live: Arc<LiveQueries>,
    /// The engine's kept plans (their reuse counts are in `system.stats`).
    pub plans: Arc<PlanCache>,
    /// Where flushed segments are (none: the engine has no data directory).
    pub cold: Option<ColdStorage>,
    /// Whose partitions USER and STREAM tables read.
    pub user: UserId,
    /// The session's role: which tables it may read.
    pub role: Role,
    /// The table an UPDATE or DELETE targets: its provider exposes the hidden row id.
    pub dml_target: Option<TableId>,
}

/// The catalog of one statement.
#[derive(Debug)]
pub struct SessionCatalog {
    access: Arc<TableAccess>,
}

impl SessionCatalog {
    /// A catalog over `access`.
    pub fn new(access: TableAccess) -> Self {
        Self {
            access: Arc::new(access),
        }
    }
}

impl CatalogProvider for SessionCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.access.snapshot.namespaces.keys().map(|n| n.to_string()).collect();
        names.push(NamespaceId::system().to_string());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let namespace = NamespaceId::new(name).ok()?;
        if namespace == NamespaceId::system() || self.access.snapshot.has_namespace(&namespace) {
            Some(Arc::new(NamespaceSchema {
                namespace,
                access: Arc::clone(&self.access),
            }))
        } else {
            None
        }
    }
}

/// One namespace as a DataFusion schema.
#[derive(Debug)]
struct NamespaceSchema {
    namespace: NamespaceId,
    access: Arc<TableAccess>,
}

#[async_trait]
impl SchemaProvider for NamespaceSchema {
    fn table_names(&self) -> Vec<String> {
        let role = self.access.role;
        if self.namespace == NamespaceId::system() {
            return SYSTEM_TABLES
                .iter()
                .filter(|t| system_table_access(role, t) != SystemTableAccess::Nothing)
                .map(|t| (*t).to_owned())
                .collect();
        }
        self.access
            .snapshot
            .tables_in(&self.namespace)
            .filter(|t| may_read(role, t))
            .map(|t| t.id.table.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let role = self.access.role;
        if self.namespace == NamespaceId::system() {
            return match system_table_access(role, name) {
                SystemTableAccess::All => {
                    system_table(name, &self.access.snapshot, &self.access.live, &self.access.plans, None)
                }
                SystemTableAccess::OwnRows => system_table(
                    name,
                    &self.access.snapshot,
                    &self.access.live,
                    &self.access.plans,
                    Some(&self.access.user),
                ),
                SystemTableAccess::Nothing => Err(refused(role, || format!("role {role} may not read system.{name}"))),
            };
        }
        let Ok(table_name) = TableName::new(name) else {
            return Ok(None);
        };
        let id = TableId::new(self.namespace.clone(), table_name);
        let Some(table) = self.access.snapshot.table(&id) else {
            return Ok(None);
        };
        if !may_read(role, table) {
            return Err(refused(role, || format!("role {role} may not read {id}")));
        }
        let partition = match table.kind {
            TableKind::User | TableKind::Stream => Partition::User(self.access.user.clone()),
            TableKind::Shared => Partition::Shared,
        };
        let with_row_id = self.access.dml_target.as_ref() == Some(&id);
        let mut provider = KvTable::new(Arc::clone(table), partition, Arc::clone(&self.access.rows), with_row_id);
        if let Some(cold) = &self.access.cold
            && table.kind != TableKind::Stream
        {
            let storage = ColdStorage::storage_of(&self.access.snapshot, table)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            provider = provider.with_cold_tier(cold.clone(), storage);
        }
        Ok(Some(Arc::new(provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        let role = self.access.role;
        if self.namespace == NamespaceId::system() {
            return SYSTEM_TABLES.contains(&name) && system_table_access(role, name) != SystemTableAccess::Nothing;
        }
        TableName::new(name)
            .ok()
            .and_then(|t| self.access.snapshot.table(&TableId::new(self.namespace.clone(), t)))
            .is_some_and(|t| may_read(role, t))
    }

    fn register_table(&self, name: String, _table: Arc<dyn TableProvider>) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "tables are created with CREATE TABLE, not registered ('{name}')"
        )))
    }
}

/// A refusal raised while planning: DataFusion carries it to the engine, which gives it
/// back as the `PermissionDenied` it is.
fn refused(role: Role, detail: impl FnOnce() -> String) -> DataFusionError {
    DataFusionError::External(Box::new(denied(role, detail)))
}
