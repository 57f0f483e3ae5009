//! Write batches: all or nothing, in order, with half-open range deletes; scans see a
//! consistent view.

use std::cmp::Ordering;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};

use calamus_domain::{KeyRange, WriteBatch};

use super::keyspaces::assert_keyspace_not_found;
use super::{Fixture, Opener};

/// Keys `[i]` for `i` in `0..count`, each with value `[i]`, in one batch.
fn put_bytes(store: &Fixture, keyspace: &str, count: u8) {
    let mut batch = WriteBatch::new();
    for i in 0..count {
        batch.put(keyspace, vec![i], vec![i]);
    }
    store.write(batch);
}

/// One batch puts and deletes in two keyspaces; afterwards every op is visible.
pub fn batch_is_atomic_across_keyspaces(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["rows", "index"]);
    store.put("rows", b"old", b"x");
    let mut batch = WriteBatch::new();
    batch.put("rows", b"r1".to_vec(), b"row one".to_vec());
    batch.put("index", b"one->r1".to_vec(), Vec::new());
    batch.delete("rows", b"old".to_vec());
    batch.put("rows", b"r2".to_vec(), b"row two".to_vec());
    store.write(batch);
    assert_eq!(
        store.keys("rows", KeyRange::all(), false),
        [b"r1".to_vec(), b"r2".to_vec()]
    );
    assert_eq!(store.get("index", b"one->r1"), Some(Vec::new()));
}

/// A batch with an op on a missing keyspace fails as a whole, wherever that op is.
pub fn batch_with_missing_keyspace_applies_nothing(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["a", "b"]);
    store.put("a", b"k", b"before");
    for position in 0..3 {
        let mut batch = WriteBatch::new();
        for slot in 0..3 {
            match slot.cmp(&position) {
                Ordering::Equal => batch.delete_range("missing", Vec::new(), vec![0xFF]),
                Ordering::Less => batch.put("a", b"k".to_vec(), b"after".to_vec()),
                Ordering::Greater => batch.put("b", b"new".to_vec(), b"v".to_vec()),
            }
        }
        assert_keyspace_not_found(store.kv.write(batch), "missing");
        assert_eq!(
            store.get("a", b"k"),
            Some(b"before".to_vec()),
            "missing op at {position}"
        );
        assert_eq!(store.get("b", b"new"), None, "missing op at {position}");
    }
}

/// Ops apply in order: the last op on a key decides its value, range deletes included.
pub fn later_op_on_a_key_wins_in_a_batch(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    store.put("t", b"stored", b"v0");
    let mut batch = WriteBatch::new();
    batch.put("t", b"twice".to_vec(), b"v1".to_vec());
    batch.put("t", b"twice".to_vec(), b"v2".to_vec());
    batch.put("t", b"put-then-delete".to_vec(), b"v1".to_vec());
    batch.delete("t", b"put-then-delete".to_vec());
    batch.delete("t", b"stored".to_vec());
    batch.put("t", b"stored".to_vec(), b"v1".to_vec());
    batch.put("t", b"range-1".to_vec(), b"v1".to_vec());
    batch.delete_range("t", b"range-".to_vec(), b"range.".to_vec());
    batch.delete_range("t", b"range-".to_vec(), b"range.".to_vec());
    batch.put("t", b"range-2".to_vec(), b"v1".to_vec());
    store.write(batch);
    assert_eq!(store.get("t", b"twice"), Some(b"v2".to_vec()));
    assert_eq!(store.get("t", b"put-then-delete"), None);
    assert_eq!(store.get("t", b"stored"), Some(b"v1".to_vec()));
    assert_eq!(
        store.keys("t", KeyRange::prefix(b"range-"), false),
        [b"range-2".to_vec()]
    );
}

/// `delete_range(start, end)` removes `start` and keys after it, up to but not including
/// `end`, and nothing in other keyspaces; an empty or inverted range removes nothing.
pub fn delete_range_is_half_open(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t", "other"]);
    put_bytes(&store, "t", 10);
    put_bytes(&store, "other", 10);
    store.put("t", &[6, 0xFF], b"");
    store.put("t", &[7, 0x00], b"");

    let mut batch = WriteBatch::new();
    batch.delete_range("t", vec![3], vec![7]);
    batch.delete_range("t", vec![9], vec![9]);
    batch.delete_range("t", vec![9], vec![8]);
    store.write(batch);
    let expected: Vec<Vec<u8>> = vec![vec![0], vec![1], vec![2], vec![7], vec![7, 0], vec![8], vec![9]];
    assert_eq!(store.keys("t", KeyRange::all(), false), expected);
    assert_eq!(store.keys("other", KeyRange::all(), false).len(), 10);

    // A range with no stored key, and one covering everything (keys are all below 0xFF).
    let mut batch = WriteBatch::new();
    batch.delete_range("t", vec![3], vec![6]);
    store.write(batch);
    assert_eq!(store.keys("t", KeyRange::all(), false), expected);
    let mut batch = WriteBatch::new();
    batch.delete_range("t", Vec::new(), vec![0xFF]);
    store.write(batch);
    assert!(store.scan("t", KeyRange::all(), false).is_empty());
}

/// Range deletes and puts mix in one batch, as when a partition is replaced.
pub fn delete_range_and_puts_in_one_batch(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t", "meta"]);
    put_bytes(&store, "t", 10);
    let mut batch = WriteBatch::new();
    batch.put("t", vec![20], vec![20]);
    batch.delete_range("t", vec![0], vec![5]);
    batch.put("t", vec![3], b"new".to_vec());
    batch.delete_range("t", vec![8], vec![30]);
    batch.put("meta", b"replaced".to_vec(), b"yes".to_vec());
    store.write(batch);
    let pairs = store.scan("t", KeyRange::all(), false);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![3], b"new".to_vec()),
        (vec![5], vec![5]),
        (vec![6], vec![6]),
        (vec![7], vec![7]),
    ];
    assert_eq!(pairs, expected);
    assert_eq!(store.get("meta", b"replaced"), Some(b"yes".to_vec()));
}

/// An empty batch succeeds and changes nothing.
pub fn empty_batch_is_a_no_op(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    store.put("t", b"k", b"v");
    store.write(WriteBatch::new());
    assert_eq!(
        store.scan("t", KeyRange::all(), false),
        [(b"k".to_vec(), b"v".to_vec())]
    );
}

/// A scan reads the store as it was when the scan was created: later puts, overwrites,
/// deletes and range deletes are invisible to it, even when it is partly consumed.
pub fn scan_is_a_consistent_view(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    put_bytes(&store, "t", 10);
    let before: Vec<(Vec<u8>, Vec<u8>)> = (0u8..10).map(|i| (vec![i], vec![i])).collect();
    for reverse in [false, true] {
        let mut untouched = store.kv.scan("t", KeyRange::all(), reverse).expect("scan");
        let mut started = store.kv.scan("t", KeyRange::all(), reverse).expect("scan");
        let first = started.next().expect("an item").expect("no error");

        let mut batch = WriteBatch::new();
        batch.put("t", vec![4, 0], b"new".to_vec());
        batch.put("t", vec![9], b"overwritten".to_vec());
        batch.put("t", vec![0], b"overwritten".to_vec());
        batch.delete("t", vec![5]);
        batch.delete_range("t", vec![1], vec![3]);
        store.write(batch);

        let mut expected = before.clone();
        if reverse {
            expected.reverse();
        }
        let rest: Vec<_> = started.collect::<Result<_, _>>().expect("scan");
        assert_eq!(std::iter::once(first).chain(rest).collect::<Vec<_>>(), expected);
        assert_eq!(
            untouched.by_ref().collect::<Result<Vec<_>, _>>().expect("scan"),
            expected
        );

        // Undo, so the second round starts from the same state.
        let mut batch = WriteBatch::new();
        batch.delete("t", vec![4, 0]);
        for (key, value) in &before {
            batch.put("t", key.clone(), value.clone());
        }
        store.write(batch);
    }
}

/// Concurrent scans never see part of a batch: every batch writes a pair of keys, so every
/// scan holds as many `a/` keys as `b/` keys. The writer goes on (in whole decades of
/// batches) until the reader has scanned at least `SCANS_WHILE_WRITING` times while it
/// was writing, so the scans really overlap the writes. Nor is a scan ever older than a
/// write acknowledged before it started: the newest key written is always kept, so a scan
/// holds it or a newer one.
pub fn batch_is_atomic_to_concurrent_scans(open: Opener) {
    const BATCHES: u32 = 300;
    const SCANS_WHILE_WRITING: usize = 20;
    let store = Fixture::with_keyspaces(open, &["t"]);
    let scans = AtomicUsize::new(0);
    let writing = AtomicBool::new(true);
    // How many batches were acknowledged.
    let acknowledged = AtomicU32::new(0);
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut i: u32 = 0;
            while i < BATCHES || !i.is_multiple_of(10) || scans.load(SeqCst) < SCANS_WHILE_WRITING {
                let mut batch = WriteBatch::new();
                batch.put("t", [b"a/".as_slice(), &i.to_be_bytes()].concat(), vec![1; 100]);
                batch.put("t", [b"b/".as_slice(), &i.to_be_bytes()].concat(), vec![2; 100]);
                if i % 10 == 9 {
                    // Remove the nine earlier pairs of this decade in one go.
                    let from = (i - 9).to_be_bytes();
                    batch.delete_range(
                        "t",
                        [b"a/".as_slice(), &from].concat(),
                        [b"a/".as_slice(), &i.to_be_bytes()].concat(),
                    );
                    batch.delete_range(
                        "t",
                        [b"b/".as_slice(), &from].concat(),
                        [b"b/".as_slice(), &i.to_be_bytes()].concat(),
                    );
                }
                store.write(batch);
                i += 1;
                acknowledged.store(i, SeqCst);
            }
            writing.store(false, SeqCst);
            i
        });
        while writing.load(SeqCst) {
            let n = scans.load(SeqCst);
            let acknowledged_before = acknowledged.load(SeqCst);
            // Each way of scanning in turn, forwards and backwards; each is one read.
            let reverse = n % 2 == 1;
            let keys: Vec<Vec<u8>> = match n % 3 {
                0 => store
                    .kv
                    .scan("t", KeyRange::all(), reverse)
                    .expect("scan")
                    .map(|pair| pair.expect("scan").0)
                    .collect(),
                1 => store
                    .kv
                    .scan_limited("t", KeyRange::all(), reverse, usize::MAX)
                    .expect("scan")
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect(),
                _ => store
                    .visit("t", KeyRange::all(), reverse, usize::MAX)
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect(),
            };
            let a = keys.iter().filter(|key| key.starts_with(b"a/")).count();
            assert_eq!(a * 2, keys.len(), "a scan saw part of a batch");
            if let Some(newest) = acknowledged_before.checked_sub(1) {
                let newest_key = [b"b/".as_slice(), &newest.to_be_bytes()].concat();
                assert!(
                    keys.iter().any(|key| key >= &newest_key),
                    "a scan missed batch {newest}, acknowledged before it started"
                );
            }
            scans.fetch_add(1, SeqCst);
        }
        writer.join().expect("writer thread")
    });
    assert!(scans.load(SeqCst) >= SCANS_WHILE_WRITING);
    assert_eq!(
        store.keys("t", KeyRange::all(), false).len(),
        2 * (written as usize / 10)
    );
}
