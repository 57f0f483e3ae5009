//! Backups: `BACKUP DATABASE TO '<path>'` writes one while the server runs, `calamus
//! restore <path> --data-dir <dir>` brings it back into a new data directory.
//!
//! A backup is a folder:
//! - `store/`: a checkpoint of the key-value store (catalog, hot rows, manifests) as of one
//!   moment, taken while writes go on (`KvEngine::checkpoint`);
//! - `cold/<storage>/<path>`: every Parquet segment the checkpoint's manifests name (segments
//!   never change once written, and none is removed while a backup copies them);
//! - `BACKEND`: the backend that wrote the store;
//! - `BACKUP.json`: what the backup holds, written last, so a folder without it is a backup
//!   that did not finish and is refused by `restore`.

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use calamus_domain::ids::{SnowflakeGenerator, now_micros};
use calamus_domain::model::{JobStatus, StorageDefinition, TableKind};
use calamus_domain::{Catalog, DomainError, DomainResult, KvCatalog, KvEngine, KvRowStore, RowStore};
use calamus_query::backup::{BackupSummary, DatabaseBackup};
use calamus_query::cold::ColdStorage;
use serde::{Deserialize, Serialize};

use crate::database::{BACKEND_MARKER, Database, STORE_DIR, StorageBackend, open_store};
use crate::error::AppError;

/// The file listing what a backup holds; its presence marks a finished backup.
const LISTING_FILE: &str = "BACKUP.json";
/// The folder of a backup holding the segment files, by storage.
const COLD_DIR: &str = "cold";
/// The version of the backup layout this build writes and reads.
const FORMAT: u32 = 1;

/// What `BACKUP.json` says.
#[derive(Debug, Serialize, Deserialize)]
struct BackupListing {
    /// The backup layout's version.
    format: u32,
    /// The backend of `store/`.
    backend: String,
    /// The version of Calamus that wrote it.
    calamus_version: String,
    /// When it was taken (microseconds since the epoch).
    created_at: i64,
    /// The `backup` job that took it: `running` in the copy, marked completed on restore.
    job_id: String,
    /// Tables it holds.
    tables: usize,
    /// Every segment file, with its size.
    segments: Vec<SegmentFile>,
}

/// One segment file of a backup.
#[derive(Debug, Serialize, Deserialize)]
struct SegmentFile {
    /// The storage it belongs to.
    storage: String,
    /// Its path, relative to the storage's base directory (and to `cold/<storage>/`).
    path: String,
    /// Its size in bytes.
    bytes: u64,
}

/// `BACKUP DATABASE` over a data directory: the port the query engine runs it through.
pub struct DataDirectoryBackups {
    kv: Arc<dyn KvEngine>,
    backend: StorageBackend,
    data_dir: PathBuf,
}

impl DataDirectoryBackups {
    /// Backups of the store `kv` (of `backend`) in `data_dir`.
    pub fn new(kv: Arc<dyn KvEngine>, backend: StorageBackend, data_dir: &Path) -> Self {
        let data_dir = fs::canonicalize(data_dir)
            .or_else(|_| std::path::absolute(data_dir))
            .unwrap_or_else(|_| data_dir.to_path_buf());
        Self { kv, backend, data_dir }
    }

    /// The folder a backup statement names: relative paths are under the data directory.
    fn resolve(&self, target: &str) -> DomainResult<PathBuf> {
        if target.trim().is_empty() || target.contains('\0') {
            return Err(invalid("BACKUP DATABASE needs a folder: BACKUP DATABASE TO '<path>'"));
        }
        let path = Path::new(target);
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(invalid(format!("the backup path '{target}' may not contain '..'")));
        }
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        };
        if path.starts_with(self.data_dir.join(STORE_DIR)) || self.data_dir.starts_with(&path) {
            return Err(invalid(format!(
                "a backup cannot be written to {}: it holds or is inside the live store",
                path.display()
            )));
        }
        Ok(path)
    }

    /// Writes the backup into `target`, an empty folder.
    fn write_backup(&self, target: &Path, job_id: &str) -> DomainResult<BackupSummary> {
        let store = target.join(STORE_DIR);
        self.kv.checkpoint(&store)?;
        fs::write(target.join(BACKEND_MARKER), format!("{}\n", self.backend)).map_err(io_error(target))?;

        // The checkpoint's own catalog and manifests say which segments it needs.
        let copy = open_store(self.backend, &store, false).map_err(app_to_domain)?;
        let catalog = KvCatalog::open(Arc::clone(&copy))?;
        let rows = KvRowStore::new(copy, Arc::new(SnowflakeGenerator::new(0, 0)));
        let snapshot = catalog.snapshot();
        let cold = ColdStorage::new(&self.data_dir);
        for storage in snapshot.storages.values() {
            if target.starts_with(cold.base(storage)) {
                return Err(invalid(format!(
                    "a backup cannot be written to {}: it is inside storage '{}'",
                    target.display(),
                    storage.id.as_str()
                )));
            }
        }
        let mut segments = Vec::new();
        for table in snapshot.tables.values().filter(|t| t.kind != TableKind::Stream) {
            let storage = ColdStorage::storage_of(&snapshot, table)?;
            for (_, manifest) in rows.manifests(table)? {
                for segment in manifest.segments {
                    let relative = safe_relative(&segment.path)?;
                    let from = cold.segment_path(&storage, &segment.path);
                    let to = cold_copy_path(target, &storage, relative);
                    let bytes = copy_synced(&from, &to).map_err(io_error(&from))?;
                    segments.push(SegmentFile {
                        storage: storage.id.as_str().to_owned(),
                        path: segment.path.clone(),
                        bytes,
                    });
                }
            }
        }
        let listing = BackupListing {
            format: FORMAT,
            backend: self.backend.to_string(),
            calamus_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: now_micros(),
            job_id: job_id.to_owned(),
            tables: snapshot.tables.len(),
            segments,
        };
        drop((rows, catalog));
        let segment_bytes: u64 = listing.segments.iter().map(|s| s.bytes).sum();
        let summary = BackupSummary {
            path: target.to_path_buf(),
            tables: listing.tables,
            segments: listing.segments.len(),
            bytes: folder_size(&store).map_err(io_error(&store))? + segment_bytes,
        };
        let text = serde_json::to_vec_pretty(&listing).map_err(|e| DomainError::Storage(e.to_string()))?;
        write_synced(&target.join(LISTING_FILE), &text).map_err(io_error(target))?;
        Ok(summary)
    }
}

impl DatabaseBackup for DataDirectoryBackups {
    fn back_up(&self, target: &str, job_id: &str) -> DomainResult<BackupSummary> {
        let target = self.resolve(target)?;
        let created = prepare_empty_folder(&target).map_err(|e| match e {
            FolderError::NotEmpty => invalid(format!(
                "{} already exists and is not an empty folder: a backup goes into a new or empty one",
                target.display()
            )),
            FolderError::Io(e) => io_error(&target)(e),
        })?;
        let written = self.write_backup(&target, job_id);
        if written.is_err() {
            clear_folder(&target, created);
        }
        written
    }
}

/// What `calamus restore` brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The backend of the restored store.
    pub backend: StorageBackend,
    /// Tables restored.
    pub tables: usize,
    /// Segment files restored.
    pub segments: usize,
}

/// Restores the backup in `backup` into `data_dir`, which must be new or empty, then opens
/// it to check it. Nothing is left in `data_dir` when it fails.
pub fn restore(backup: &Path, data_dir: &Path) -> Result<RestoreSummary, AppError> {
    let listing = read_listing(backup)?;
    let backend: StorageBackend = listing.backend.parse()?;
    for segment in &listing.segments {
        let relative = safe_relative(&segment.path).map_err(|e| backup_error(backup, e.to_string()))?;
        let file = backup.join(COLD_DIR).join(&segment.storage).join(relative);
        let found = fs::metadata(&file).map(|m| m.len()).ok();
        if found != Some(segment.bytes) {
            return Err(backup_error(
                backup,
                format!(
                    "segment {} should hold {} bytes, found {}: the backup is damaged",
                    file.display(),
                    segment.bytes,
                    found.map_or_else(|| "no file".to_owned(), |n| format!("{n} bytes"))
                ),
            ));
        }
    }
    let created = prepare_empty_folder(data_dir).map_err(|e| match e {
        FolderError::NotEmpty => AppError::DataDirectory {
            path: data_dir.display().to_string(),
            reason: "it is not empty: a backup is restored into a new or empty data directory".into(),
        },
        FolderError::Io(e) => AppError::DataDirectory {
            path: data_dir.display().to_string(),
            reason: e.to_string(),
        },
    })?;
    let mut external = Vec::new();
    let restored = restore_into(backup, data_dir, backend, &listing, &mut external);
    if restored.is_err() {
        clear_folder(data_dir, created);
        for file in external {
            let _ = fs::remove_file(file);
        }
    }
    restored
}

/// The steps of [`restore`] that write; segment files written outside `data_dir` (storages
/// with an absolute base directory) are added to `external`.
fn restore_into(
    backup: &Path,
    data_dir: &Path,
    backend: StorageBackend,
    listing: &BackupListing,
    external: &mut Vec<PathBuf>,
) -> Result<RestoreSummary, AppError> {
    let data_dir_error = |e: io::Error| AppError::DataDirectory {
        path: data_dir.display().to_string(),
        reason: e.to_string(),
    };
    let data_dir = &fs::canonicalize(data_dir).map_err(data_dir_error)?;
    copy_folder(&backup.join(STORE_DIR), &data_dir.join(STORE_DIR)).map_err(data_dir_error)?;
    write_synced(&data_dir.join(BACKEND_MARKER), format!("{backend}\n").as_bytes()).map_err(data_dir_error)?;
    {
        let kv = open_store(backend, &data_dir.join(STORE_DIR), false)?;
        let catalog = KvCatalog::open(kv)?;
        mark_backup_job_completed(&catalog, backup, &listing.job_id)?;
        let snapshot = catalog.snapshot();
        let cold = ColdStorage::new(data_dir);
        for segment in &listing.segments {
            let storage = snapshot
                .storages
                .values()
                .find(|s| s.id.as_str() == segment.storage)
                .ok_or_else(|| {
                    backup_error(
                        backup,
                        format!(
                            "segment {} names storage '{}', which the catalog lacks",
                            segment.path, segment.storage
                        ),
                    )
                })?;
            let relative = safe_relative(&segment.path).map_err(|e| backup_error(backup, e.to_string()))?;
            let from = cold_copy_path(backup, storage, relative);
            let to = cold.segment_path(storage, &segment.path);
            if !to.starts_with(data_dir) {
                if to.exists() {
                    if fs::read(&to).map_err(data_dir_error)? == fs::read(&from).map_err(data_dir_error)? {
                        continue;
                    }
                    return Err(backup_error(
                        backup,
                        format!("{} exists with other contents: it is not overwritten", to.display()),
                    ));
                }
                external.push(to.clone());
            }
            copy_synced(&from, &to).map_err(data_dir_error)?;
        }
    }
    // The restored directory must open as a server would open it.
    let database = Database::open(backend, data_dir)?;
    let tables = database.engine.catalog().snapshot().tables.len();
    Ok(RestoreSummary {
        backend,
        tables,
        segments: listing.segments.len(),
    })
}

/// The backup's own job is `running` in the copy it took: it finished, so say so (any other
/// job left running is marked failed at start, as after a crash).
fn mark_backup_job_completed(catalog: &KvCatalog, backup: &Path, job_id: &str) -> Result<(), AppError> {
    let Some(mut job) = catalog.snapshot().jobs.get(job_id).cloned() else {
        return Ok(());
    };
    job.status = JobStatus::Completed;
    job.finished_at = Some(now_micros());
    job.message = Some("the backup this data directory was restored from".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| backup_error(backup, format!("cannot update its job: {e}")))?;
    runtime.block_on(catalog.put_job(job))?;
    Ok(())
}

/// Reads and checks `BACKUP.json`.
fn read_listing(backup: &Path) -> Result<BackupListing, AppError> {
    let file = backup.join(LISTING_FILE);
    let text = fs::read(&file).map_err(|e| {
        let reason = if e.kind() == io::ErrorKind::NotFound {
            format!("{LISTING_FILE} is missing: this is not a backup, or one that did not finish")
        } else {
            format!("cannot read {LISTING_FILE}: {e}")
        };
        backup_error(backup, reason)
    })?;
    let listing: BackupListing =
        serde_json::from_slice(&text).map_err(|e| backup_error(backup, format!("{LISTING_FILE} is not valid: {e}")))?;
    if listing.format != FORMAT {
        return Err(backup_error(
            backup,
            format!(
                "it has layout version {}; this build reads version {FORMAT}",
                listing.format
            ),
        ));
    }
    Ok(listing)
}

/// Where a backup keeps a segment of `storage`.
fn cold_copy_path(backup: &Path, storage: &StorageDefinition, relative: &Path) -> PathBuf {
    backup.join(COLD_DIR).join(storage.id.as_str()).join(relative)
}

/// `path` as a relative path with no `..`, `.` or root: a segment path from a manifest.
fn safe_relative(path: &str) -> DomainResult<&Path> {
    let relative = Path::new(path);
    if path.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(DomainError::Corrupt(format!(
            "segment path '{path}' is not a plain relative path"
        )));
    }
    Ok(relative)
}

/// Why a folder cannot take a backup or a restore.
enum FolderError {
    /// It holds something.
    NotEmpty,
    /// It cannot be read or created.
    Io(io::Error),
}

/// Makes sure `folder` is an empty folder, creating it (and its parents) when missing;
/// gives whether it was created.
fn prepare_empty_folder(folder: &Path) -> Result<bool, FolderError> {
    match fs::read_dir(folder) {
        Ok(mut entries) => match entries.next() {
            None => Ok(false),
            Some(_) => Err(FolderError::NotEmpty),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(folder).map_err(FolderError::Io)?;
            Ok(true)
        }
        Err(e) => Err(FolderError::Io(e)),
    }
}

/// Removes what a failed backup or restore wrote into `folder`: the folder itself when it
/// was `created`, its contents otherwise.
fn clear_folder(folder: &Path, created: bool) {
    let removed = if created {
        fs::remove_dir_all(folder)
    } else {
        fs::remove_dir_all(folder).and_then(|()| fs::create_dir(folder))
    };
    if let Err(e) = removed {
        tracing::warn!(folder = %folder.display(), error = %e, "could not remove what a failed backup or restore wrote");
    }
}

/// Copies `from` to `to` (creating its folder), synced, under a temporary name first;
/// gives its size.
fn copy_synced(from: &Path, to: &Path) -> io::Result<u64> {
    let folder = to.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder)?;
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let bytes = fs::copy(from, &partial)?;
    File::open(&partial)?.sync_all()?;
    fs::rename(&partial, to)?;
    File::open(folder)?.sync_all()?;
    Ok(bytes)
}

/// Writes `bytes` to `to`, synced, under a temporary name first.
fn write_synced(to: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = to.parent().unwrap_or(Path::new("."));
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    fs::write(&partial, bytes)?;
    File::open(&partial)?.sync_all()?;
    fs::rename(&partial, to)?;
    File::open(folder)?.sync_all()
}

/// Copies the folder `from` into the new folder `to`, every file synced.
fn copy_folder(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else if kind.is_file() {
            copy_synced(&entry.path(), &target)?;
        } else {
            return Err(io::Error::other(format!(
                "{} is neither a file nor a folder",
                entry.path().display()
            )));
        }
    }
    File::open(to)?.sync_all()
}

/// The bytes of every file under `folder`.
fn folder_size(folder: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            folder_size(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

fn invalid(reason: impl Into<String>) -> DomainError {
    DomainError::InvalidValue(reason.into())
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> DomainError + '_ {
    move |e| DomainError::Storage(format!("backup: {}: {e}", path.display()))
}

fn backup_error(backup: &Path, reason: impl Into<String>) -> AppError {
    AppError::Backup {
        path: backup.display().to_string(),
        reason: reason.into(),
    }
}

fn app_to_domain(error: AppError) -> DomainError {
    match error {
        AppError::Domain(e) => e,
        other => DomainError::Storage(other.to_string()),
    }
}
