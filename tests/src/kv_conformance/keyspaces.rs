//! Keyspaces: creating, listing, dropping, and what a missing one looks like.

use calamus_domain::{DomainError, DomainResult, KeyRange, WriteBatch};

use super::{Fixture, Opener};

/// Asserts that `result` is `KeyspaceNotFound` naming `keyspace`.
pub(crate) fn assert_keyspace_not_found<T>(result: DomainResult<T>, keyspace: &str) {
    match result {
        Err(DomainError::KeyspaceNotFound { keyspace: named }) => assert_eq!(named, keyspace),
        Err(other) => panic!("expected KeyspaceNotFound for '{keyspace}', got {other:?}"),
        Ok(_) => panic!("expected KeyspaceNotFound for '{keyspace}', got Ok"),
    }
}

/// `backend_name()` is the name the backend is registered under.
pub fn backend_name_is_stable(open: Opener, backend: &str) {
    let store = Fixture::new(open);
    assert_eq!(store.kv.backend_name(), backend);
}

/// Creating twice is a no-op that keeps the keys; the listing is sorted and holds only the
/// keyspaces created through the port (no engine-internal one such as RocksDB's "default").
pub fn create_keyspace_is_idempotent_and_listing_is_sorted(open: Opener) {
    let store = Fixture::new(open);
    assert_eq!(store.kv.keyspaces().expect("list"), Vec::<String>::new());
    for name in ["rows", "catalog", "rows", "a.b", "catalog"] {
        store.kv.create_keyspace(name).expect("create keyspace");
    }
    assert_eq!(store.kv.keyspaces().expect("list"), ["a.b", "catalog", "rows"]);

    store.put("rows", b"k", b"v");
    store.kv.create_keyspace("rows").expect("create an existing keyspace");
    assert_eq!(store.get("rows", b"k"), Some(b"v".to_vec()));
}

/// Dropping removes the keyspace and its keys; dropping again is a no-op; a keyspace
/// recreated under the same name starts empty.
pub fn drop_keyspace_removes_its_keys_and_recreating_it_is_empty(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t1", "t2"]);
    for i in 0u8..100 {
        store.put("t1", &[i], b"value");
    }
    store.put("t2", b"kept", b"value");

    store.kv.drop_keyspace("t1").expect("drop");
    store.kv.drop_keyspace("t1").expect("drop an absent keyspace");
    store
        .kv
        .drop_keyspace("never-created")
        .expect("drop a never-created keyspace");
    assert_eq!(store.kv.keyspaces().expect("list"), ["t2"]);
    assert_keyspace_not_found(store.kv.get("t1", &[0]), "t1");

    store.kv.create_keyspace("t1").expect("recreate");
    assert_eq!(store.get("t1", &[0]), None);
    assert!(store.scan("t1", KeyRange::all(), false).is_empty());
    assert_eq!(store.get("t2", b"kept"), Some(b"value".to_vec()));
}

/// Reading, scanning or writing a keyspace that was never created (or was dropped) fails
/// with `KeyspaceNotFound`, and does not create it.
pub fn unknown_keyspace_is_an_error(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["gone"]);
    store.kv.drop_keyspace("gone").expect("drop");
    for keyspace in ["missing", "gone"] {
        assert_keyspace_not_found(store.kv.get(keyspace, b"k"), keyspace);
        assert_keyspace_not_found(store.kv.scan(keyspace, KeyRange::all(), false), keyspace);
        assert_keyspace_not_found(store.kv.scan(keyspace, KeyRange::prefix(b"k"), true), keyspace);
        let mut batch = WriteBatch::new();
        batch.put(keyspace, b"k".to_vec(), b"v".to_vec());
        assert_keyspace_not_found(store.kv.write(batch), keyspace);
        let mut batch = WriteBatch::new();
        batch.delete(keyspace, b"k".to_vec());
        assert_keyspace_not_found(store.kv.write(batch), keyspace);
        let mut batch = WriteBatch::new();
        batch.delete_range(keyspace, b"a".to_vec(), b"z".to_vec());
        assert_keyspace_not_found(store.kv.write(batch), keyspace);
    }
    assert_eq!(store.kv.keyspaces().expect("list"), Vec::<String>::new());
}

/// The same key in two keyspaces is two independent pairs; scans never cross keyspaces.
pub fn keyspaces_are_isolated(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["a", "b"]);
    store.put("a", b"k", b"in a");
    store.put("b", b"k", b"in b");
    store.put("b", b"only-b", b"");
    assert_eq!(store.get("a", b"k"), Some(b"in a".to_vec()));
    assert_eq!(store.get("b", b"k"), Some(b"in b".to_vec()));
    assert_eq!(store.keys("a", KeyRange::all(), false), [b"k".to_vec()]);

    let mut batch = WriteBatch::new();
    batch.delete("a", b"k".to_vec());
    batch.delete_range("a", Vec::new(), vec![0xFF; 4]);
    store.write(batch);
    assert_eq!(store.get("a", b"k"), None);
    assert_eq!(
        store.keys("b", KeyRange::all(), false),
        [b"k".to_vec(), b"only-b".to_vec()]
    );
}
