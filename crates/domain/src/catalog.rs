//! The `Catalog` port: the single source of truth for namespaces, tables (with their schema
//! history), users, storages and jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::DomainResult;
use crate::ident::{NamespaceId, StorageId, TableId, UserId};
use crate::model::{JobRecord, Namespace, StorageDefinition, TableDefinition, User};

/// An immutable view of the whole catalog at one moment.
///
/// The query layer takes one per statement, so a statement sees one consistent catalog
/// and a table exists for queries exactly when it exists here.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    /// Namespaces by id.
    pub namespaces: BTreeMap<NamespaceId, Namespace>,
    /// Tables by id.
    pub tables: BTreeMap<TableId, Arc<TableDefinition>>,
    /// Users by id, dropped ones excluded.
    pub users: BTreeMap<UserId, User>,
    /// Storages by id.
    pub storages: BTreeMap<StorageId, StorageDefinition>,
    /// Jobs by id.
    pub jobs: BTreeMap<String, JobRecord>,
}

impl CatalogSnapshot {
    /// The table `id`, if it exists.
    pub fn table(&self, id: &TableId) -> Option<&Arc<TableDefinition>> {
        self.tables.get(id)
    }

    /// The tables of namespace `ns`, by name.
    pub fn tables_in<'a>(&'a self, ns: &'a NamespaceId) -> impl Iterator<Item = &'a Arc<TableDefinition>> + 'a {
        self.tables.values().filter(move |t| &t.id.namespace == ns)
    }

    /// Whether namespace `ns` exists.
    pub fn has_namespace(&self, ns: &NamespaceId) -> bool {
        self.namespaces.contains_key(ns)
    }
}

/// The catalog port. Every change is one atomic write: it is fully applied or not at all,
/// and a snapshot taken after it returns `Ok` shows it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Catalog: std::fmt::Debug + Send + Sync + 'static {
    /// The current catalog (cheap: a shared immutable value).
    fn snapshot(&self) -> Arc<CatalogSnapshot>;

    /// Adds a namespace; `NamespaceExists` if its id is taken.
    async fn create_namespace(&self, namespace: Namespace) -> DomainResult<()>;

    /// Replaces an existing namespace's record; `NamespaceNotFound` if absent.
    async fn update_namespace(&self, namespace: Namespace) -> DomainResult<()>;

    /// Removes a namespace and, in the same atomic write, the given tables of it.
    /// `NamespaceNotFound` if absent; `NamespaceNotEmpty` if it holds tables not listed.
    async fn drop_namespace(&self, namespace: &NamespaceId, tables: Vec<TableId>) -> DomainResult<()>;

    /// A number never handed out before on this server, for a new table's `uid`.
    async fn allocate_table_uid(&self) -> DomainResult<u64>;

    /// Adds a table; `NamespaceNotFound` if its namespace is absent, `TableExists` if taken.
    async fn create_table(&self, table: TableDefinition) -> DomainResult<()>;

    /// Replaces an existing table's definition (ALTER); `TableNotFound` if absent.
    async fn update_table(&self, table: TableDefinition) -> DomainResult<()>;

    /// Removes a table, giving its last definition; `TableNotFound` if absent.
    async fn drop_table(&self, table: &TableId) -> DomainResult<TableDefinition>;

    /// Adds a user (`UserExists` if taken) or, with `replace`, replaces an existing one
    /// (`UserNotFound` if absent).
    async fn put_user(&self, user: User, replace: bool) -> DomainResult<()>;

    /// Removes a user; `UserNotFound` if absent.
    async fn drop_user(&self, user: &UserId) -> DomainResult<()>;

    /// Adds or replaces a storage.
    async fn put_storage(&self, storage: StorageDefinition) -> DomainResult<()>;

    /// Removes a storage; `StorageNotFound` if absent.
    async fn drop_storage(&self, storage: &StorageId) -> DomainResult<()>;

    /// Adds or replaces a job record.
    async fn put_job(&self, job: JobRecord) -> DomainResult<()>;

    /// Removes job records (ids that are not there are ignored).
    async fn delete_jobs(&self, job_ids: &[String]) -> DomainResult<()>;
}
