//! The cold tier: Parquet segments per partition, written by flushes and read together
//! with the hot rows.
//!
//! - [`flush`]: hot rows of a partition become one Parquet segment, written and synced
//!   under a temporary name, renamed, then handed over to the row store's manifest in one
//!   atomic write (see `RowStore::commit_flush`).
//! - [`compaction`]: a partition's segments rewritten as one, each row keeping its newest
//!   version, deleted versions past retention dropped; handed over the same way.
//! - [`merged`]: a scan of a partition with segments is a DataFusion plan over the hot rows
//!   and the segments (DataFusion's own Parquet reader), keeping each row's newest version.
//! - `segment_reader`: the Parquet reading of a partition's segments, filling the columns a
//!   segment does not hold (added after it, or `_deleted` where it holds no deletion).
//!
//! Segments name their columns by column id (`c<id>`), so a column renamed after a flush
//! keeps its values, a column added after it reads as NULL, and a dropped one is ignored.

pub mod compaction;
pub mod flush;
pub mod merged;
mod segment_reader;
pub mod statement;

use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use calamus_domain::arrow_rows::column_field;
use calamus_domain::model::{DELETED_COLUMN, SEQ_COLUMN, StorageDefinition, TableDefinition, TableKind};
use calamus_domain::{CatalogSnapshot, DomainError, DomainResult, StorageId};

/// The steps of a flush's hand-over at which a crash test can stop the process (with the
/// `crash-points` feature and `CALAMUS_CRASH_AT=<step>`).
pub const CRASH_POINTS: [&str; 3] = [
    // The segment is written and synced under its temporary name.
    "flush-segment-written",
    // The segment has its final name; the manifest does not list it yet.
    "flush-segment-renamed",
    // The manifest lists it and the hot rows are gone; the job is not marked done.
    "flush-committed",
];

/// The steps of a compaction's hand-over at which a crash test can stop the process, as
/// [`CRASH_POINTS`] for a flush.
pub const COMPACTION_CRASH_POINTS: [&str; 3] = [
    // The new segment is written and synced under its temporary name.
    "compaction-segment-written",
    // The new segment has its final name; the manifest still lists the old ones.
    "compaction-segment-renamed",
    // The manifest lists the new segment only; the old files are still there.
    "compaction-committed",
];

/// Aborts the process, as a crash would, when `CALAMUS_CRASH_AT` names `step` (crash tests
/// only: without the `crash-points` feature this does nothing).
pub(crate) fn crash_point(step: &str) {
    #[cfg(feature = "crash-points")]
    if std::env::var("CALAMUS_CRASH_AT").is_ok_and(|at| at == step) {
        std::process::abort();
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = step;
}

/// The column of a segment holding each version's row id.
pub const SEGMENT_ROW_ID_COLUMN: &str = "_row_id";

/// Where storages' files live: `local`, and relative base directories, are under the
/// data directory.
#[derive(Debug, Clone)]
pub struct ColdStorage {
    data_dir: PathBuf,
    /// Segments handed to the Parquet reader by reads (shared by clones).
    segments_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ColdStorage {
    /// Cold files of a server whose data directory is `data_dir`, made absolute and free
    /// of `.` and `..` (the Parquet reader's local file store resolves paths from the root
    /// and takes each component literally).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let data_dir = std::fs::canonicalize(&data_dir)
            .or_else(|_| std::path::absolute(&data_dir))
            .unwrap_or(data_dir);
        Self {
            data_dir,
            segments_read: std::sync::Arc::default(),
        }
    }

    /// How many segments reads have opened: with the segments the manifests list, it
    /// shows how many the queries' filters skipped.
    pub fn segments_read(&self) -> u64 {
        self.segments_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts segments a read opens.
    pub(crate) fn count_segments_read(&self, segments: usize) {
        self.segments_read
            .fetch_add(segments as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The folder a storage's templates are relative to.
    pub fn base(&self, storage: &StorageDefinition) -> PathBuf {
        match storage.base_directory.as_str() {
            "" => self.data_dir.join("storage"),
            base if Path::new(base).is_absolute() => PathBuf::from(base),
            base => self.data_dir.join(base),
        }
    }

    /// The storage a table flushes to.
    pub fn storage_of(snapshot: &CatalogSnapshot, table: &TableDefinition) -> DomainResult<StorageDefinition> {
        let id = table.options.storage_id.clone().unwrap_or_else(StorageId::local);
        snapshot
            .storages
            .get(&id)
            .cloned()
            .ok_or_else(|| DomainError::StorageNotFound {
                storage: id.to_string(),
            })
    }

    /// The absolute path of a segment whose manifest path is `relative`.
    pub fn segment_path(&self, storage: &StorageDefinition, relative: &str) -> PathBuf {
        self.base(storage).join(relative)
    }
}

/// The name of a column in a segment.
pub fn segment_column(column_id: u32) -> String {
    format!("c{column_id}")
}

/// The schema segments are read with: the table's current columns by id, `_seq`,
/// `_deleted`, and the row id.
pub fn segment_schema(table: &TableDefinition) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .schema()
        .columns
        .iter()
        .map(|c| column_field(c).with_name(segment_column(c.id)))
        .collect();
    fields.push(Field::new(SEQ_COLUMN, ArrowType::Int64, false));
    fields.push(Field::new(DELETED_COLUMN, ArrowType::Boolean, true));
    fields.push(Field::new(SEGMENT_ROW_ID_COLUMN, ArrowType::Binary, false));
    std::sync::Arc::new(Schema::new(fields))
}

/// Removes every row of a table the catalog no longer names: its hot rows, cold index and
/// manifests (through the row store), then its segment files and the folders they leave
/// empty. A failure is logged, not returned: the table is already gone for queries, and
/// the next start drops keyspaces no table names.
pub async fn drop_table_data(engine: &crate::engine::QueryEngine, table: &TableDefinition) {
    let manifests = engine.rows.manifests(table).unwrap_or_else(|e| {
        tracing::warn!(table = %table.id, error = %e, "could not read the manifests of a dropped table");
        Vec::new()
    });
    if let Err(e) = engine.rows.drop_table(table).await {
        tracing::warn!(table = %table.id, error = %e, "could not drop the rows of a dropped table");
    }
    let (Some(cold), false) = (engine.cold.as_ref(), manifests.is_empty()) else {
        return;
    };
    let Ok(storage) = ColdStorage::storage_of(&engine.catalog.snapshot(), table) else {
        tracing::warn!(table = %table.id, "the storage of a dropped table is gone; its files stay");
        return;
    };
    let base = cold.base(&storage);
    let _no_backup_copies = engine.segment_removal.write().await;
    for (_, manifest) in manifests {
        for segment in manifest.segments {
            let path = cold.segment_path(&storage, &segment.path);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a segment of a dropped table");
            }
            // Folders the table's files leave empty, up to the storage's base.
            let mut folder = path.parent();
            while let Some(dir) = folder {
                if dir == base || !dir.starts_with(&base) || std::fs::remove_dir(dir).is_err() {
                    break;
                }
                folder = dir.parent();
            }
        }
    }
}

/// Removes what flushes cut short by a crash left in the storages' folders: temporary
/// segment files (`batch-<n>.parquet.tmp`), and segment files no manifest names (renamed,
/// but the process died before the hand-over). Run at start, before any flush; only files
/// named like segments are touched. Gives how many files were removed.
pub fn remove_interrupted_flush_files(engine: &crate::engine::QueryEngine) -> DomainResult<usize> {
    let Some(cold) = engine.cold.as_ref() else {
        return Ok(0);
    };
    let snapshot = engine.catalog.snapshot();
    let mut removed = 0;
    for storage in snapshot.storages.values() {
        let base = cold.base(storage);
        if !base.is_dir() {
            continue;
        }
        let mut named = std::collections::HashSet::new();
        for table in snapshot.tables.values() {
            if table.kind == TableKind::Stream || ColdStorage::storage_of(&snapshot, table)?.id != storage.id {
                continue;
            }
            for (_, manifest) in engine.rows.manifests(table)? {
                named.extend(manifest.segments.iter().map(|s| cold.segment_path(storage, &s.path)));
            }
        }
        removed += remove_unnamed_segments(&base, &named);
    }
    Ok(removed)
}

/// Removes, under `folder`, temporary segment files and segment files not in `named`.
fn remove_unnamed_segments(folder: &Path, named: &std::collections::HashSet<PathBuf>) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_unnamed_segments(&path, named);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let temporary = is_segment_name(name.strip_suffix(".tmp").unwrap_or(""));
        let orphan = is_segment_name(&name) && !named.contains(&path);
        if temporary || orphan {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "removed a segment file left by an interrupted flush");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a file left by an interrupted flush")
                }
            }
        }
    }
    removed
}

/// Whether `name` is a segment's file name, `batch-<n>.parquet`.
fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("batch-")
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segment_file_names_are_segments() {
        assert!(is_segment_name("batch-0.parquet"));
        assert!(is_segment_name("batch-42.parquet"));
        for name in [
            "batch-.parquet",
            "batch-1.parquet.tmp",
            "notes.parquet",
            "batch-x.parquet",
            "batch-1.csv",
        ] {
            assert!(!is_segment_name(name), "{name}");
        }
    }

    #[test]
    fn a_relative_data_directory_gives_absolute_segment_paths() {
        let cold = ColdStorage::new("./data");
        let local = StorageDefinition::local(0);
        let path = cold.segment_path(&local, "app/t/alice/batch-0.parquet");
        assert!(path.is_absolute(), "{}", path.display());
        assert!(
            path.ends_with("data/storage/app/t/alice/batch-0.parquet"),
            "{}",
            path.display()
        );
        let archive = StorageDefinition {
            base_directory: "/mnt/archive".into(),
            ..StorageDefinition::local(0)
        };
        assert_eq!(cold.base(&archive), PathBuf::from("/mnt/archive"));
    }
}
