//! Compaction: dropping what deleted keys left behind changes no key or value, now or
//! after a reopen, and the store takes writes afterwards.

use calamus_domain::{DomainError, KeyRange, WriteBatch};

use super::{Fixture, Opener};

fn key(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// 3,000 keys, two in three deleted, then compacted in part and in whole: every live
/// pair reads back, in order and after a reopen; no deleted key comes back; a range
/// holding no key and an unknown keyspace behave like a scan of them.
pub fn compaction_keeps_every_live_pair(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["rows"]);
    for chunk in (0u32..3000).collect::<Vec<_>>().chunks(500) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            batch.put("rows", key(i), format!("value {i}").into_bytes());
        }
        store.write(batch);
    }
    for chunk in (0u32..3000).filter(|i| i % 3 != 0).collect::<Vec<_>>().chunks(500) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            batch.delete("rows", key(i));
        }
        store.write(batch);
    }
    let live: Vec<(Vec<u8>, Vec<u8>)> = (0u32..3000)
        .filter(|i| i % 3 == 0)
        .map(|i| (key(i), format!("value {i}").into_bytes()))
        .collect();

    store
        .kv
        .compact_range("rows", KeyRange::half_open(key(1000), key(2000)))
        .expect("compact a range");
    assert_eq!(store.scan("rows", KeyRange::all(), false), live);
    store
        .kv
        .compact_range("rows", KeyRange::all())
        .expect("compact everything");
    assert_eq!(store.scan("rows", KeyRange::all(), false), live);
    assert_eq!(store.get("rows", &key(1)), None);
    assert_eq!(store.get("rows", &key(3)), Some(b"value 3".to_vec()));
    store
        .kv
        .compact_range("rows", KeyRange::half_open(key(5), key(5)))
        .expect("an empty range");
    let error = store.kv.compact_range("absent", KeyRange::all()).unwrap_err();
    assert!(matches!(error, DomainError::KeyspaceNotFound { .. }), "{error}");

    store.put("rows", &key(1), b"again");
    let store = store.reopen();
    let mut expected = live;
    expected.insert(1, (key(1), b"again".to_vec()));
    assert_eq!(store.scan("rows", KeyRange::all(), false), expected);
}
