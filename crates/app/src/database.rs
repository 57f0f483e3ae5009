//! Opening a data directory: the storage backend, the catalog, the row store, the engine.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::{Catalog, KvCatalog, KvEngine, KvRowStore};
use calamus_query::QueryEngine;
use calamus_query::jobs::flush_policy::HotRowCounter;
use calamus_query::live::LiveQueries;

use crate::backup::DataDirectoryBackups;
use crate::config::StorageConfig;
use crate::disk_space::WriteGate;
use crate::error::AppError;

/// A layer put over the opened store before anything else uses it, under the free-space
/// floor: the server puts none; a test puts an engine there that injects faults.
pub type StoreLayer = Box<dyn FnOnce(Arc<dyn KvEngine>) -> Arc<dyn KvEngine> + Send>;

/// The key-value engine holding hot rows and the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageBackend {
    /// RocksDB (the default).
    #[default]
    RocksDb,
    /// sled.
    Sled,
}

impl StorageBackend {
    /// Every backend, for tests that run on each.
    pub const ALL: [StorageBackend; 2] = [StorageBackend::RocksDb, StorageBackend::Sled];

    /// `rocksdb` or `sled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageBackend::RocksDb => "rocksdb",
            StorageBackend::Sled => "sled",
        }
    }
}

impl fmt::Display for StorageBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for StorageBackend {
    /// Accepts the names `FromStr` accepts, so the config file and the flags agree.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for StorageBackend {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, AppError> {
        match s.to_ascii_lowercase().as_str() {
            "rocksdb" => Ok(StorageBackend::RocksDb),
            "sled" => Ok(StorageBackend::Sled),
            _ => Err(AppError::UnknownBackend(s.to_owned())),
        }
    }
}

/// An open database: the engine and what it stands on.
pub struct Database {
    /// The query engine.
    pub engine: Arc<QueryEngine>,
    /// The key-value engine, for durability points and shutdown.
    pub kv: Arc<dyn KvEngine>,
    /// New hot rows per partition of tables with a `rows:N` flush policy.
    pub hot_rows: Arc<HotRowCounter>,
    /// Which backend it is.
    pub backend: StorageBackend,
    /// The data directory.
    pub data_dir: PathBuf,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// The folder inside the data directory that holds the key-value store.
pub(crate) const STORE_DIR: &str = "store";
/// The file recording which backend wrote the store.
pub(crate) const BACKEND_MARKER: &str = "BACKEND";

/// Opens (creating it if needed) the key-value store at `path` with `backend`.
pub(crate) fn open_store(
    backend: StorageBackend,
    path: &Path,
    sync_writes: bool,
) -> Result<Arc<dyn KvEngine>, AppError> {
    Ok(match backend {
        StorageBackend::RocksDb => {
            let config = calamus_storage_rocksdb::RocksDbConfig {
                sync_writes,
                ..Default::default()
            };
            Arc::new(calamus_storage_rocksdb::open(path, &config)?)
        }
        StorageBackend::Sled => Arc::new(calamus_storage_sled::open(path, &Default::default())?),
    })
}

fn data_dir_error(path: &Path, reason: impl Into<String>) -> AppError {
    AppError::DataDirectory {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Checks (or, for a new directory, writes) the marker naming the backend that owns the
/// store, so opening it with the other backend fails before either touches a file.
fn check_backend_marker(data_dir: &Path, backend: StorageBackend) -> Result<(), AppError> {
    let marker = data_dir.join(BACKEND_MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(found) if found.trim() == backend.as_str() => Ok(()),
        Ok(found) => Err(data_dir_error(
            data_dir,
            format!(
                "it holds a {} store, but the server was started with storage backend '{backend}'; \
                 start it with --storage {} or use another data directory",
                found.trim(),
                found.trim()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if data_dir.join(STORE_DIR).exists() {
                return Err(data_dir_error(
                    data_dir,
                    "it holds a store without a BACKEND marker; refusing to guess",
                ));
            }
            std::fs::write(&marker, format!("{backend}\n")).map_err(|e| data_dir_error(data_dir, e.to_string()))
        }
        Err(e) => Err(data_dir_error(data_dir, e.to_string())),
    }
}

impl Database {
    /// Opens (creating if needed) the database in `data_dir` with `backend` and the default
    /// settings: writes durable against a killed process, refused below the default floor
    /// of free disk space (see [`Self::open_configured`]).
    pub fn open(backend: StorageBackend, data_dir: &Path) -> Result<Self, AppError> {
        Self::open_configured(&StorageConfig {
            backend,
            data_dir: data_dir.to_path_buf(),
            ..StorageConfig::default()
        })
    }

    /// Opens the database `storage` describes. With `sync_writes`, every write is also
    /// fsynced before it is acknowledged (RocksDB's write-ahead log; sled syncs every write
    /// anyway), so an operating-system crash loses nothing acknowledged either; writes are
    /// refused while the disk has less than `min_free_bytes` free.
    pub fn open_configured(storage: &StorageConfig) -> Result<Self, AppError> {
        Self::open_layered(storage, Box::new(|store| store))
    }

    /// Opens the database `storage` describes, with `layer` over its store (see
    /// [`StoreLayer`]).
    pub fn open_layered(storage: &StorageConfig, layer: StoreLayer) -> Result<Self, AppError> {
        let (backend, data_dir) = (storage.backend, storage.data_dir.as_path());
        std::fs::create_dir_all(data_dir).map_err(|e| data_dir_error(data_dir, e.to_string()))?;
        check_backend_marker(data_dir, backend)?;
        let store = data_dir.join(STORE_DIR);
        let kv: Arc<dyn KvEngine> = Arc::new(WriteGate::free_space(
            layer(open_store(backend, &store, storage.sync_writes)?),
            &store,
            storage.min_free_bytes,
        ));
        let catalog = Arc::new(KvCatalog::open(Arc::clone(&kv))?);
        drop_orphan_keyspaces(kv.as_ref(), &catalog)?;
        let seq = Arc::new(SnowflakeGenerator::new(0, 0));
        let live = Arc::new(LiveQueries::new());
        let hot_rows = Arc::new(HotRowCounter::new());
        let rows = Arc::new(
            KvRowStore::new(Arc::clone(&kv), Arc::clone(&seq))
                .with_change_listener(Arc::clone(&live) as _)
                .with_change_listener(Arc::clone(&hot_rows) as _),
        );
        let backups = Arc::new(DataDirectoryBackups::new(Arc::clone(&kv), backend, data_dir));
        let engine = Arc::new(
            QueryEngine::new(catalog, rows, seq, live)
                .with_cold_storage(data_dir)
                .with_backups(backups),
        );
        Ok(Self {
            engine,
            kv,
            hot_rows,
            backend,
            data_dir: data_dir.to_path_buf(),
        })
    }
}

/// A crash between creating a table's keyspace and recording the table (or between
/// forgetting a table and dropping its keyspace) leaves a keyspace no table names:
/// drop those at open.
fn drop_orphan_keyspaces(kv: &dyn KvEngine, catalog: &KvCatalog) -> Result<(), AppError> {
    let live = catalog.live_table_keyspaces();
    for keyspace in kv.keyspaces()? {
        // `t<uid>` holds a table's hot rows, `t<uid>c` its cold key index.
        let table_keyspace = keyspace.strip_suffix('c').unwrap_or(&keyspace);
        let is_table_keyspace = table_keyspace.starts_with('t')
            && table_keyspace.len() > 1
            && table_keyspace[1..].chars().all(|c| c.is_ascii_digit());
        if is_table_keyspace && !live.contains(&table_keyspace.to_owned()) {
            kv.drop_keyspace(&keyspace)?;
        }
    }
    // Tables created before the cold tier existed have no cold key index yet.
    for table in catalog.snapshot().tables.values() {
        if table.kind != calamus_domain::model::TableKind::Stream {
            kv.create_keyspace(&table.cold_keyspace())?;
        }
    }
    Ok(())
}
