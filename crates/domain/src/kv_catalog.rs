//! [`KvCatalog`]: the [`Catalog`] port kept in the `system` keyspace of a [`KvEngine`].
//!
//! Records are small serde-encoded values under typed key prefixes; the whole catalog is
//! loaded once at open and kept in memory as an immutable [`CatalogSnapshot`] that every
//! write replaces after its atomic batch succeeded. Catalog writes are rare, reads are on
//! every statement: readers never lock more than a pointer copy.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::catalog::{Catalog, CatalogSnapshot};
use crate::error::{DomainError, DomainResult};
use crate::ident::{NamespaceId, StorageId, TableId, UserId};
use crate::ids::now_micros;
use crate::kv::{KeyRange, KvEngine, WriteBatch};
use crate::model::{JobRecord, Namespace, Role, StorageDefinition, TableDefinition, User};

/// The keyspace holding the catalog.
pub const SYSTEM_KEYSPACE: &str = "system";

const NAMESPACE_PREFIX: &str = "ns/";
const TABLE_PREFIX: &str = "tb/";
const USER_PREFIX: &str = "us/";
const STORAGE_PREFIX: &str = "st/";
const JOB_PREFIX: &str = "jb/";
const NEXT_UID_KEY: &str = "meta/next_table_uid";

/// The catalog over a key-value engine.
pub struct KvCatalog {
    kv: Arc<dyn KvEngine>,
    current: RwLock<Arc<CatalogSnapshot>>,
    /// Serialises writers: each computes its change from the latest snapshot.
    writer: Mutex<()>,
}

impl std::fmt::Debug for KvCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCatalog").finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(value: &T) -> DomainResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| DomainError::Corrupt(format!("cannot encode a catalog record: {e}")))
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> DomainResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        DomainError::Corrupt(format!(
            "catalog record '{}' cannot be read: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

fn table_key(id: &TableId) -> Vec<u8> {
    format!("{TABLE_PREFIX}{}/{}", id.namespace, id.table).into_bytes()
}

fn key(prefix: &str, id: &str) -> Vec<u8> {
    format!("{prefix}{id}").into_bytes()
}

impl KvCatalog {
    /// Opens the catalog of `kv`, creating the system keyspace and the built-in records
    /// (namespace `default`, user `root` without a password, storage `local`) on first use.
    pub fn open(kv: Arc<dyn KvEngine>) -> DomainResult<Self> {
        kv.create_keyspace(SYSTEM_KEYSPACE)?;
        let snapshot = Self::load(kv.as_ref())?;
        let catalog = Self {
            kv,
            current: RwLock::new(Arc::new(snapshot)),
            writer: Mutex::new(()),
        };
        catalog.bootstrap()?;
        Ok(catalog)
    }

    fn load(kv: &dyn KvEngine) -> DomainResult<CatalogSnapshot> {
        let mut snapshot = CatalogSnapshot::default();
        for pair in kv.scan(SYSTEM_KEYSPACE, KeyRange::all(), false)? {
            let (k, v) = pair?;
            let text = String::from_utf8_lossy(&k);
            if text.starts_with(NAMESPACE_PREFIX) {
                let ns: Namespace = decode(&k, &v)?;
                snapshot.namespaces.insert(ns.id.clone(), ns);
            } else if text.starts_with(TABLE_PREFIX) {
                let table: TableDefinition = decode(&k, &v)?;
                snapshot.tables.insert(table.id.clone(), Arc::new(table));
            } else if text.starts_with(USER_PREFIX) {
                let user: User = decode(&k, &v)?;
                snapshot.users.insert(user.id.clone(), user);
            } else if text.starts_with(STORAGE_PREFIX) {
                let storage: StorageDefinition = decode(&k, &v)?;
                snapshot.storages.insert(storage.id.clone(), storage);
            } else if text.starts_with(JOB_PREFIX) {
                let job: JobRecord = decode(&k, &v)?;
                snapshot.jobs.insert(job.job_id.clone(), job);
            }
        }
        Ok(snapshot)
    }

    fn bootstrap(&self) -> DomainResult<()> {
        let now = now_micros();
        let snapshot = self.snapshot();
        let mut batch = WriteBatch::new();
        let default_ns = NamespaceId::default_namespace();
        if !snapshot.namespaces.contains_key(&default_ns) {
            let ns = Namespace {
                id: default_ns.clone(),
                options: Default::default(),
                created_at: now,
                updated_at: now,
            };
            batch.put(
                SYSTEM_KEYSPACE,
                key(NAMESPACE_PREFIX, default_ns.as_str()),
                encode(&ns)?,
            );
        }
        if !snapshot.users.contains_key(&UserId::root()) {
            let root = User {
                id: UserId::root(),
                role: Role::System,
                email: None,
                password_hash: None,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            };
            batch.put(SYSTEM_KEYSPACE, key(USER_PREFIX, "root"), encode(&root)?);
        }
        if !snapshot.storages.contains_key(&StorageId::local()) {
            let local = StorageDefinition::local(now);
            batch.put(SYSTEM_KEYSPACE, key(STORAGE_PREFIX, "local"), encode(&local)?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let _guard = self.writer.lock();
        self.kv.write(batch)?;
        *self.current.write() = Arc::new(Self::load(self.kv.as_ref())?);
        Ok(())
    }

    /// Applies `change` to a copy of the latest snapshot; if it succeeds, writes its batch
    /// atomically and publishes the new snapshot.
    fn apply<F>(&self, change: F) -> DomainResult<()>
    where
        F: FnOnce(&mut CatalogSnapshot, &mut WriteBatch) -> DomainResult<()>,
    {
        let _guard = self.writer.lock();
        let mut next = (*self.snapshot()).clone();
        let mut batch = WriteBatch::new();
        change(&mut next, &mut batch)?;
        self.kv.write(batch)?;
        *self.current.write() = Arc::new(next);
        Ok(())
    }

    /// The table uids every keyspace of a live table uses (`t<uid>`), for clean-up of
    /// keyspaces a crash left behind.
    pub fn live_table_keyspaces(&self) -> Vec<String> {
        self.snapshot().tables.values().map(|t| t.keyspace()).collect()
    }
}

#[async_trait]
impl Catalog for KvCatalog {
    fn snapshot(&self) -> Arc<CatalogSnapshot> {
        Arc::clone(&self.current.read())
    }

    async fn create_namespace(&self, namespace: Namespace) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if snap.namespaces.contains_key(&namespace.id) {
                return Err(DomainError::NamespaceExists {
                    namespace: namespace.id.to_string(),
                });
            }
            batch.put(
                SYSTEM_KEYSPACE,
                key(NAMESPACE_PREFIX, namespace.id.as_str()),
                encode(&namespace)?,
            );
            snap.namespaces.insert(namespace.id.clone(), namespace);
            Ok(())
        })
    }

    async fn update_namespace(&self, namespace: Namespace) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if !snap.namespaces.contains_key(&namespace.id) {
                return Err(DomainError::NamespaceNotFound {
                    namespace: namespace.id.to_string(),
                });
            }
            batch.put(
                SYSTEM_KEYSPACE,
                key(NAMESPACE_PREFIX, namespace.id.as_str()),
                encode(&namespace)?,
            );
            snap.namespaces.insert(namespace.id.clone(), namespace);
            Ok(())
        })
    }

    async fn drop_namespace(&self, namespace: &NamespaceId, tables: Vec<TableId>) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if !snap.namespaces.contains_key(namespace) {
                return Err(DomainError::NamespaceNotFound {
                    namespace: namespace.to_string(),
                });
            }
            let remaining: Vec<String> = snap
                .tables_in(namespace)
                .filter(|t| !tables.contains(&t.id))
                .map(|t| t.id.table.to_string())
                .collect();
            if !remaining.is_empty() {
                return Err(DomainError::NamespaceNotEmpty {
                    namespace: namespace.to_string(),
                    tables: remaining.join(", "),
                });
            }
            for table in &tables {
                batch.delete(SYSTEM_KEYSPACE, table_key(table));
                snap.tables.remove(table);
            }
            batch.delete(SYSTEM_KEYSPACE, key(NAMESPACE_PREFIX, namespace.as_str()));
            snap.namespaces.remove(namespace);
            Ok(())
        })
    }

    async fn allocate_table_uid(&self) -> DomainResult<u64> {
        let _guard = self.writer.lock();
        let current = match self.kv.get(SYSTEM_KEYSPACE, NEXT_UID_KEY.as_bytes())? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| DomainError::Corrupt("the table uid counter is malformed".into()))?,
            ),
            None => 1,
        };
        let mut batch = WriteBatch::new();
        batch.put(
            SYSTEM_KEYSPACE,
            NEXT_UID_KEY.as_bytes().to_vec(),
            (current + 1).to_be_bytes().to_vec(),
        );
        self.kv.write(batch)?;
        Ok(current)
    }

    async fn create_table(&self, table: TableDefinition) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if !snap.namespaces.contains_key(&table.id.namespace) {
                return Err(DomainError::NamespaceNotFound {
                    namespace: table.id.namespace.to_string(),
                });
            }
            if snap.tables.contains_key(&table.id) {
                return Err(DomainError::TableExists {
                    table: table.id.to_string(),
                });
            }
            batch.put(SYSTEM_KEYSPACE, table_key(&table.id), encode(&table)?);
            snap.tables.insert(table.id.clone(), Arc::new(table));
            Ok(())
        })
    }

    async fn update_table(&self, table: TableDefinition) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if !snap.tables.contains_key(&table.id) {
                return Err(DomainError::TableNotFound {
                    table: table.id.to_string(),
                });
            }
            batch.put(SYSTEM_KEYSPACE, table_key(&table.id), encode(&table)?);
            snap.tables.insert(table.id.clone(), Arc::new(table));
            Ok(())
        })
    }

    async fn drop_table(&self, table: &TableId) -> DomainResult<TableDefinition> {
        let mut dropped = None;
        self.apply(|snap, batch| {
            let def = snap.tables.remove(table).ok_or_else(|| DomainError::TableNotFound {
                table: table.to_string(),
            })?;
            batch.delete(SYSTEM_KEYSPACE, table_key(table));
            dropped = Some((*def).clone());
            Ok(())
        })?;
        Ok(dropped.expect("set by a successful change"))
    }

    async fn put_user(&self, user: User, replace: bool) -> DomainResult<()> {
        self.apply(|snap, batch| {
            match (snap.users.contains_key(&user.id), replace) {
                (true, false) => {
                    return Err(DomainError::UserExists {
                        user: user.id.to_string(),
                    });
                }
                (false, true) => {
                    return Err(DomainError::UserNotFound {
                        user: user.id.to_string(),
                    });
                }
                _ => {}
            }
            batch.put(SYSTEM_KEYSPACE, key(USER_PREFIX, user.id.as_str()), encode(&user)?);
            snap.users.insert(user.id.clone(), user);
            Ok(())
        })
    }

    async fn drop_user(&self, user: &UserId) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if snap.users.remove(user).is_none() {
                return Err(DomainError::UserNotFound { user: user.to_string() });
            }
            batch.delete(SYSTEM_KEYSPACE, key(USER_PREFIX, user.as_str()));
            Ok(())
        })
    }

    async fn put_storage(&self, storage: StorageDefinition) -> DomainResult<()> {
        self.apply(|snap, batch| {
            batch.put(
                SYSTEM_KEYSPACE,
                key(STORAGE_PREFIX, storage.id.as_str()),
                encode(&storage)?,
            );
            snap.storages.insert(storage.id.clone(), storage);
            Ok(())
        })
    }

    async fn drop_storage(&self, storage: &StorageId) -> DomainResult<()> {
        self.apply(|snap, batch| {
            if snap.storages.remove(storage).is_none() {
                return Err(DomainError::StorageNotFound {
                    storage: storage.to_string(),
                });
            }
            batch.delete(SYSTEM_KEYSPACE, key(STORAGE_PREFIX, storage.as_str()));
            Ok(())
        })
    }

    async fn put_job(&self, job: JobRecord) -> DomainResult<()> {
        self.apply(|snap, batch| {
            batch.put(SYSTEM_KEYSPACE, key(JOB_PREFIX, &job.job_id), encode(&job)?);
            snap.jobs.insert(job.job_id.clone(), job);
            Ok(())
        })
    }

    async fn delete_jobs(&self, job_ids: &[String]) -> DomainResult<()> {
        if job_ids.is_empty() {
            return Ok(());
        }
        self.apply(|snap, batch| {
            for id in job_ids {
                if snap.jobs.remove(id).is_some() {
                    batch.delete(SYSTEM_KEYSPACE, key(JOB_PREFIX, id));
                }
            }
            Ok(())
        })
    }
}
