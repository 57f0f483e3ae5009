//! The `KvEngine` conformance suite: every guarantee of the port, written once as plain
//! functions over a way to open a backend, and expanded into one `#[test]` per guarantee
//! for each backend by [`kv_conformance_tests!`](crate::kv_conformance_tests).
//!
//! Every function takes an [`Opener`] and works in its own temporary directory, so the
//! tests run in parallel and reopen their store at the same path to check durability.

mod batches;
mod checkpoints;
mod compaction;
mod durability;
mod keyspaces;
mod ordering;
mod repeated_scans;
mod values;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use calamus_domain::{KeyRange, KvEngine, WriteBatch};
use tempfile::TempDir;

pub use batches::*;
pub use checkpoints::*;
pub use compaction::*;
pub use durability::*;
pub use keyspaces::*;
pub use ordering::*;
pub use repeated_scans::*;
pub use values::*;

/// Opens (creating it if needed) a store of the backend under test at a directory.
pub type Opener = fn(&Path) -> Arc<dyn KvEngine>;

/// Expands the whole suite for one backend: `kv_conformance_tests!(rocksdb, open_rocksdb)`
/// makes a module `rocksdb` with one `#[test]` per guarantee; `open_rocksdb` is an
/// [`Opener`]. The backend's `backend_name()` must be the module's name.
#[macro_export]
macro_rules! kv_conformance_tests {
    ($backend:ident, $open:expr) => {
        mod $backend {
            // `$open` is written at the call site, outside this module.
            #[allow(unused_imports)]
            use super::*;

            $crate::kv_conformance_tests!(@each $open;
                create_keyspace_is_idempotent_and_listing_is_sorted,
                drop_keyspace_removes_its_keys_and_recreating_it_is_empty,
                unknown_keyspace_is_an_error,
                keyspaces_are_isolated,
                get_absent_key_is_none,
                put_overwrite_delete,
                keys_are_ordered_bytewise,
                prefix_scans,
                range_scans_honour_every_bound,
                reverse_scans_are_descending,
                batch_is_atomic_across_keyspaces,
                batch_with_missing_keyspace_applies_nothing,
                later_op_on_a_key_wins_in_a_batch,
                delete_range_is_half_open,
                delete_range_and_puts_in_one_batch,
                empty_batch_is_a_no_op,
                scan_is_a_consistent_view,
                batch_is_atomic_to_concurrent_scans,
                empty_and_large_values,
                many_keys_scan_in_order,
                visited_scans_stop_where_asked,
                repeated_scans_follow_every_write,
                acknowledged_writes_survive_reopen,
                keyspaces_survive_reopen,
                sync_then_reopen,
                checkpoint_is_a_copy_as_of_one_moment,
                checkpoint_under_concurrent_writes_holds_whole_batches,
                checkpoint_into_an_existing_folder_is_refused,
                compaction_keeps_every_live_pair,
            );

            #[test]
            fn backend_name_is_stable() {
                $crate::kv_conformance::backend_name_is_stable($open, stringify!($backend));
            }

            #[test]
            fn acknowledged_writes_survive_a_killed_process() {
                // libtest names a test by its path without the crate: strip the crate.
                let path = module_path!();
                let test = path.split_once("::").map_or(path, |(_, rest)| rest);
                $crate::kv_conformance::acknowledged_writes_survive_a_killed_process(
                    $open,
                    &format!("{test}::acknowledged_writes_survive_a_killed_process"),
                );
            }
        }
    };
    (@each $open:expr; $($guarantee:ident),* $(,)?) => {
        $(
            #[test]
            fn $guarantee() {
                $crate::kv_conformance::$guarantee($open);
            }
        )*
    };
}

/// A store in its own temporary directory.
pub(crate) struct Fixture {
    // Declared first: the store is closed before its directory is deleted.
    pub kv: Arc<dyn KvEngine>,
    pub dir: TempDir,
    open: Opener,
}

impl Fixture {
    /// A new, empty store.
    pub fn new(open: Opener) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        Self {
            kv: open(dir.path()),
            dir,
            open,
        }
    }

    /// Closes the store (which must not be shared any more) and opens it again.
    pub fn reopen(self) -> Self {
        let Fixture { kv, dir, open } = self;
        assert_eq!(
            Arc::strong_count(&kv),
            1,
            "the store is still in use: it cannot be closed"
        );
        drop(kv);
        Self {
            kv: open(dir.path()),
            dir,
            open,
        }
    }

    /// A new store with keyspaces `names` created.
    pub fn with_keyspaces(open: Opener, names: &[&str]) -> Self {
        let fixture = Self::new(open);
        for name in names {
            fixture.kv.create_keyspace(name).expect("create keyspace");
        }
        fixture
    }

    /// Puts one pair in its own batch.
    pub fn put(&self, keyspace: &str, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::new();
        batch.put(keyspace, key.to_vec(), value.to_vec());
        self.kv.write(batch).expect("write a put");
    }

    /// Runs `batch`, which must succeed.
    pub fn write(&self, batch: WriteBatch) {
        self.kv.write(batch).expect("write a batch");
    }

    /// The value of `key`.
    pub fn get(&self, keyspace: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.kv.get(keyspace, key).expect("get")
    }

    /// Every pair of `range`, in the scan's order; the three ways of scanning (an
    /// iterator, a limited copy, borrowed pairs handed to a visitor) must agree.
    pub fn scan(&self, keyspace: &str, range: KeyRange, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let iter = self.kv.scan(keyspace, range.clone(), reverse).expect("start a scan");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = iter.collect::<Result<_, _>>().expect("scan");
        let limited = self
            .kv
            .scan_limited(keyspace, range.clone(), reverse, usize::MAX)
            .expect("limited scan");
        assert_eq!(limited, pairs, "scan_limited differs from scan");
        assert_eq!(
            self.visit(keyspace, range, reverse, usize::MAX),
            pairs,
            "scan_visit differs from scan"
        );
        pairs
    }

    /// The pairs `scan_visit` hands out, at most `limit`, checking the count it returns.
    pub fn visit(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut visited = Vec::new();
        let count = self
            .kv
            .scan_visit(keyspace, range, reverse, limit, &mut |key: &[u8], value: &[u8]| {
                visited.push((key.to_vec(), value.to_vec()));
                Ok(true)
            })
            .expect("visit a scan");
        assert_eq!(count, visited.len(), "scan_visit miscounted the pairs it visited");
        visited
    }

    /// Every key of `range`, in the scan's order.
    pub fn keys(&self, keyspace: &str, range: KeyRange, reverse: bool) -> Vec<Vec<u8>> {
        self.scan(keyspace, range, reverse)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }
}

/// A range from two bounds.
pub(crate) fn range(start: Bound<&[u8]>, end: Bound<&[u8]>) -> KeyRange {
    KeyRange {
        start: start.map(<[u8]>::to_vec),
        end: end.map(<[u8]>::to_vec),
    }
}
