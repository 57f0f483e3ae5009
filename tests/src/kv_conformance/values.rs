//! Values: put, overwrite, delete; empty and large values.

use calamus_domain::{KeyRange, WriteBatch};

use super::{Fixture, Opener};

/// A put is read back; a second put replaces it; a delete removes it; deleting an absent
/// key succeeds.
pub fn put_overwrite_delete(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    store.put("t", b"k", b"first");
    assert_eq!(store.get("t", b"k"), Some(b"first".to_vec()));
    store.put("t", b"k", b"second, longer than the first");
    assert_eq!(store.get("t", b"k"), Some(b"second, longer than the first".to_vec()));
    store.put("t", b"k", b"3");
    assert_eq!(
        store.scan("t", KeyRange::all(), false),
        [(b"k".to_vec(), b"3".to_vec())]
    );

    let mut batch = WriteBatch::new();
    batch.delete("t", b"k".to_vec());
    batch.delete("t", b"never-written".to_vec());
    store.write(batch);
    assert_eq!(store.get("t", b"k"), None);
    assert!(store.scan("t", KeyRange::all(), false).is_empty());
}

/// An empty value is present (not `None`); a 1 MiB value round-trips through get and scan.
pub fn empty_and_large_values(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    let large: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    store.put("t", b"empty", b"");
    store.put("t", b"large", &large);
    assert_eq!(store.get("t", b"empty"), Some(Vec::new()));
    assert_eq!(store.get("t", b"large").as_ref(), Some(&large));
    let pairs = store.scan("t", KeyRange::all(), true);
    assert_eq!(
        pairs,
        [(b"large".to_vec(), large.clone()), (b"empty".to_vec(), Vec::new())]
    );

    let store = store.reopen();
    assert_eq!(store.get("t", b"empty"), Some(Vec::new()));
    assert_eq!(store.get("t", b"large"), Some(large));
}
