//! The manifest of a partition's cold tier: the Parquet segments flushed from it.

use serde::{Deserialize, Serialize};

/// One Parquet file of a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its number in the partition (`batch-<n>.parquet`).
    pub batch: u64,
    /// Its path, relative to its storage's base directory.
    pub path: String,
    /// The smallest `_seq` it holds.
    pub min_seq: i64,
    /// The largest `_seq` it holds.
    pub max_seq: i64,
    /// Rows (versions, deleted ones included) it holds.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// The schema version its rows were written with.
    pub schema_version: u32,
    /// Per column (by column id): smallest and largest value as text, and NULL count.
    pub columns: Vec<ColumnStats>,
    /// How many of its rows already had a flushed version when it was handed over (rows
    /// updated or deleted after an earlier flush); set by the row store. While no segment
    /// of a partition has any, no row has two flushed versions. `None`: not counted.
    #[serde(default)]
    pub superseding: Option<u64>,
    /// The smallest and largest row id it holds (`None`: not recorded).
    #[serde(default)]
    pub row_ids: Option<(Vec<u8>, Vec<u8>)>,
    /// How many of its rows are deleted versions (`None`: not recorded). A segment with
    /// none is read without its `_deleted` column.
    #[serde(default)]
    pub deleted: Option<u64>,
    /// The smallest `_seq` of its deleted versions (`None`: it has none, or not recorded).
    #[serde(default)]
    pub oldest_deleted_seq: Option<i64>,
}

impl Segment {
    /// Whether none of its rows is a deleted version, as recorded when it was written.
    pub fn holds_no_deleted_rows(&self) -> bool {
        self.deleted == Some(0)
    }

    /// Whether it may hold a deleted version with a `_seq` below `cutoff` (one that a
    /// retention ending at `cutoff` drops).
    pub fn may_hold_deleted_before(&self, cutoff: i64) -> bool {
        match (self.deleted, self.oldest_deleted_seq) {
            (Some(0), _) => false,
            (Some(_), Some(oldest)) => oldest < cutoff,
            _ => self.min_seq < cutoff,
        }
    }
}

/// Statistics of one column of a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The column's id.
    pub column_id: u32,
    /// The smallest non-NULL value, as the SQL text of the value, if any.
    pub min: Option<String>,
    /// The largest non-NULL value, as the SQL text of the value, if any.
    pub max: Option<String>,
    /// How many NULLs.
    pub nulls: u64,
}

/// A partition's segments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The segments.
    pub segments: Vec<Segment>,
    /// The number the next segment gets.
    pub next_batch: u64,
    /// The files of the segments the last compaction replaced (relative paths). They are
    /// removed once it is handed over, and again by the next compaction of the partition,
    /// so a crash in between leaves none behind for good.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

impl Manifest {
    /// Whether the partition has no cold rows.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether a row may have more than one flushed version (or whether that is unknown):
    /// then a read must keep only the newest of them.
    pub fn may_hold_superseded_versions(&self) -> bool {
        self.segments.iter().any(|s| s.superseding != Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(min_seq: i64, deleted: Option<u64>, oldest_deleted_seq: Option<i64>) -> Segment {
        Segment {
            batch: 0,
            path: "batch-0.parquet".into(),
            min_seq,
            max_seq: 100,
            rows: 10,
            bytes: 1,
            schema_version: 1,
            columns: Vec::new(),
            superseding: Some(0),
            row_ids: None,
            deleted,
            oldest_deleted_seq,
        }
    }

    #[test]
    fn a_retention_cutoff_reaches_a_segment_only_through_an_older_delete() {
        assert!(!segment(1, Some(0), None).may_hold_deleted_before(50), "no delete");
        assert!(
            !segment(1, Some(2), Some(60)).may_hold_deleted_before(50),
            "deletes newer than the cutoff"
        );
        assert!(segment(1, Some(2), Some(40)).may_hold_deleted_before(50));
        // Not recorded (written before the counts were): its oldest row decides.
        assert!(segment(1, None, None).may_hold_deleted_before(50));
        assert!(!segment(60, None, None).may_hold_deleted_before(50));
    }
}
