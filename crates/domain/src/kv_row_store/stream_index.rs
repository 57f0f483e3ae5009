//! The live rows of STREAM partitions, kept in memory between inserts.
//!
//! An insert into a STREAM table with a primary key or `MAX_ROWS` must know the partition's
//! live rows: their primary keys (to refuse a duplicate) and their order (to trim the
//! oldest past `MAX_ROWS`). Reading them from the store on every insert made each insert
//! cost as much as the partition is large. Instead, the first insert into a partition reads
//! them once and later inserts keep the list current. Every change made by anything other
//! than an insert (UPDATE, DELETE, the eviction job, dropping the table) forgets the
//! table's lists, and they are read again when next needed. All of this happens under the
//! table's write lock, so a list always matches the store.

use std::collections::{HashMap, HashSet, VecDeque};

use parking_lot::Mutex;

use super::StreamKey;
use crate::keys::{Partition, row_id_of};

/// Row keys kept at most over every partition: past it, the lists start over (they are
/// read again from the store where inserts continue).
const MAX_KEPT_KEYS: usize = 2_000_000;

/// One partition's live rows, oldest first.
#[derive(Debug, Default)]
pub(super) struct PartitionRows {
    /// Row keys, each with its primary key's encoded value.
    rows: VecDeque<StreamKey>,
    /// The primary keys of `rows`.
    primary_keys: HashSet<Vec<u8>>,
}

impl PartitionRows {
    /// The list of `rows` (oldest first).
    pub(super) fn new(rows: Vec<StreamKey>) -> Self {
        let primary_keys = rows.iter().filter_map(|(_, pk)| pk.clone()).collect();
        Self {
            rows: rows.into(),
            primary_keys,
        }
    }

    /// Forgets the rows older than `floor` (past their TTL: no longer live).
    pub(super) fn forget_expired(&mut self, partition: &Partition, floor: Option<[u8; 8]>) {
        let Some(floor) = floor else { return };
        while let Some((key, _)) = self.rows.front() {
            if row_id_of(partition, key) >= floor.as_slice() {
                break;
            }
            if let Some((_, Some(pk))) = self.rows.pop_front() {
                self.primary_keys.remove(&pk);
            }
        }
    }

    /// Whether a live row has this primary key.
    pub(super) fn has_primary_key(&self, pk: &[u8]) -> bool {
        self.primary_keys.contains(pk)
    }

    /// Live rows.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row written after every row listed.
    pub(super) fn push(&mut self, row: StreamKey) {
        if let Some(pk) = &row.1 {
            self.primary_keys.insert(pk.clone());
        }
        self.rows.push_back(row);
    }

    /// Removes and returns the oldest row's key.
    pub(super) fn pop_oldest(&mut self) -> Option<Vec<u8>> {
        let (key, pk) = self.rows.pop_front()?;
        if let Some(pk) = pk {
            self.primary_keys.remove(&pk);
        }
        Some(key)
    }
}

/// The lists of every partition inserted into lately, by table uid and partition prefix.
#[derive(Debug, Default)]
pub(super) struct StreamIndexes {
    inner: Mutex<Lists>,
}

#[derive(Debug, Default)]
struct Lists {
    by_partition: HashMap<(u64, Vec<u8>), PartitionRows>,
    /// Row keys over every list in `by_partition`.
    kept: usize,
}

impl StreamIndexes {
    /// Takes the list of a partition out, if one is kept.
    pub(super) fn take(&self, table: u64, partition: &Partition) -> Option<PartitionRows> {
        let mut lists = self.inner.lock();
        let rows = lists.by_partition.remove(&(table, partition.key_prefix()))?;
        lists.kept -= rows.len();
        Some(rows)
    }

    /// Keeps a partition's list (current as of the write just made).
    pub(super) fn put(&self, table: u64, partition: &Partition, rows: PartitionRows) {
        let mut lists = self.inner.lock();
        if lists.kept + rows.len() > MAX_KEPT_KEYS {
            *lists = Lists::default();
        }
        lists.kept += rows.len();
        if let Some(replaced) = lists.by_partition.insert((table, partition.key_prefix()), rows) {
            lists.kept -= replaced.len();
        }
    }

    /// Forgets every list of a table.
    pub(super) fn forget_table(&self, table: u64) {
        let mut lists = self.inner.lock();
        let mut forgotten = 0;
        lists.by_partition.retain(|(uid, _), rows| {
            let keep = *uid != table;
            if !keep {
                forgotten += rows.len();
            }
            keep
        });
        lists.kept -= forgotten;
    }

    /// Row keys kept over every partition.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.inner.lock().kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::UserId;
    use crate::keys::encode_internal_row_id;

    #[test]
    fn a_list_follows_inserts_trims_and_expiry() {
        let partition = Partition::User(UserId::new("alice").unwrap());
        let key = |seq: u64| partition.row_key(&encode_internal_row_id(seq));
        let mut rows = PartitionRows::new(vec![(key(1), Some(b"a".to_vec())), (key(2), Some(b"b".to_vec()))]);
        assert!(rows.has_primary_key(b"a"));
        rows.push((key(3), Some(b"c".to_vec())));
        assert_eq!(rows.pop_oldest(), Some(key(1)));
        assert!(!rows.has_primary_key(b"a"));
        rows.forget_expired(&partition, Some(encode_internal_row_id(3)));
        assert_eq!(rows.len(), 1);
        assert!(!rows.has_primary_key(b"b") && rows.has_primary_key(b"c"));

        let indexes = StreamIndexes::default();
        indexes.put(7, &partition, rows);
        indexes.forget_table(8);
        assert_eq!(indexes.kept(), 1);
        let rows = indexes.take(7, &partition).expect("kept");
        assert!(indexes.take(7, &partition).is_none(), "taken out");
        assert_eq!(indexes.kept(), 0);
        indexes.put(7, &partition, rows);
        indexes.forget_table(7);
        assert_eq!(indexes.kept(), 0);
        assert!(indexes.take(7, &partition).is_none(), "forgotten with its table");
    }
}
