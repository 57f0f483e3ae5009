//! The change feed: what each committed write did to its rows, told to a listener (the
//! live-query matcher) after the write is durable.
//!
//! The row store calls [`ChangeListener::committed`] while it still holds the table's
//! writers, so a listener sees the writes of one table in commit order. A listener must
//! therefore never block: it hands the batch on (a bounded queue, a `try_send`) and
//! returns. Writes to a partition nobody watches cost one [`ChangeListener::watches`]
//! call and build nothing.

use std::fmt::Debug;

use crate::codec::RowVersion;
use crate::keys::Partition;

/// What one write did to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowEvent {
    /// A new row.
    Insert {
        /// Its row id.
        row_id: Vec<u8>,
        /// The row as written.
        new: RowVersion,
    },
    /// A new version of an existing row; if its primary key changed, the row moved from
    /// `old_row_id` to `row_id`.
    Update {
        /// Where the row was.
        old_row_id: Vec<u8>,
        /// The version it replaced.
        old: RowVersion,
        /// Where the row is now.
        row_id: Vec<u8>,
        /// The new version.
        new: RowVersion,
    },
    /// The row's removal (a soft delete for USER and SHARED tables, for good for STREAM
    /// tables).
    Delete {
        /// Its row id.
        row_id: Vec<u8>,
        /// The version it removed.
        old: RowVersion,
        /// The `_seq` of the removal: newer than every version the row had.
        seq: i64,
    },
}

impl RowEvent {
    /// The `_seq` the write gave the row: the new version's, or the removal's.
    pub fn seq(&self) -> i64 {
        match self {
            RowEvent::Insert { new, .. } | RowEvent::Update { new, .. } => new.seq,
            RowEvent::Delete { seq, .. } => *seq,
        }
    }
}

/// One committed write to one partition of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBatch {
    /// The table's `uid` (unique over the server's life).
    pub table_uid: u64,
    /// The schema version the values are in.
    pub schema_version: u32,
    /// The partition written.
    pub partition: Partition,
    /// What happened to each row, in the write's order.
    pub events: Vec<RowEvent>,
}

/// Told of every committed write to the partitions it watches.
pub trait ChangeListener: Debug + Send + Sync + 'static {
    /// Whether anyone may want the writes to `partition` of table `table_uid`. Called
    /// for every write: it must be cheap.
    fn watches(&self, table_uid: u64, partition: &Partition) -> bool;

    /// A write was made durable. Called with the table's writers held, in commit order;
    /// must not block or fail.
    fn committed(&self, batch: ChangeBatch);
}
