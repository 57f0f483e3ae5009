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
}

impl Manifest {
    /// Whether the partition has no cold rows.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}
