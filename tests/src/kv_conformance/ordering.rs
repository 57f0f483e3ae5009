//! Order: every scan is in bytewise key order, honours its bounds, and runs backwards on demand.

use std::ops::Bound::{self, Excluded, Included, Unbounded};

use calamus_domain::{KeyRange, WriteBatch};

use super::{Fixture, Opener, range};

/// Keys that trip up a non-bytewise order: empty, `0x00` and `0xFF` bytes, prefixes of
/// one another, and bytes above `0x7F` (negative as `i8`).
fn tricky_keys() -> Vec<Vec<u8>> {
    let keys: [&[u8]; 18] = [
        b"",
        &[0x00],
        &[0x00, 0x00],
        &[0x00, 0xFF],
        &[0x01],
        &[0x7F],
        &[0x80],
        &[0xFE, 0xFF],
        &[0xFF],
        &[0xFF, 0x00],
        &[0xFF, 0xFF],
        &[0xFF, 0xFF, 0xFF],
        b"a",
        b"a\x00",
        b"ab",
        b"ab\xFF",
        b"abc",
        b"b",
    ];
    keys.iter().map(|key| key.to_vec()).collect()
}

/// Stores `keys` in a scrambled order, each with its own key as value.
fn store_scrambled(store: &Fixture, keyspace: &str, keys: &[Vec<u8>]) {
    // 7 is coprime with the key counts used here, so `i * 7 % n` visits every index once.
    assert!(!keys.len().is_multiple_of(7));
    for i in 0..keys.len() {
        let key = &keys[i * 7 % keys.len()];
        store.put(keyspace, key, key);
    }
}

/// A key that was never written reads as `None`.
pub fn get_absent_key_is_none(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    assert_eq!(store.get("t", b"absent"), None);
    store.put("t", b"present", b"v");
    assert_eq!(store.get("t", b"absent"), None);
    assert_eq!(store.get("t", b"presen"), None);
    assert_eq!(store.get("t", b"present\x00"), None);
}

/// A full scan returns every key once, in bytewise order, with its value.
pub fn keys_are_ordered_bytewise(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    let mut keys = tricky_keys();
    store_scrambled(&store, "t", &keys);
    keys.sort();
    let pairs = store.scan("t", KeyRange::all(), false);
    assert_eq!(
        pairs,
        keys.iter().map(|key| (key.clone(), key.clone())).collect::<Vec<_>>()
    );
    for key in &keys {
        assert_eq!(store.get("t", key).as_ref(), Some(key));
    }
}

/// A prefix scan returns exactly the keys starting with the prefix, including the prefix
/// itself, for prefixes ending in `0xFF` and made only of `0xFF` (no successor key).
pub fn prefix_scans(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    let mut keys = tricky_keys();
    store_scrambled(&store, "t", &keys);
    keys.sort();
    let prefixes: [&[u8]; 9] = [
        b"",
        b"a",
        b"ab",
        b"abc",
        b"abcd",
        &[0x00],
        &[0xFF],
        &[0xFF, 0xFF],
        &[0xFE],
    ];
    for prefix in prefixes {
        let expected: Vec<Vec<u8>> = keys.iter().filter(|key| key.starts_with(prefix)).cloned().collect();
        assert_eq!(
            store.keys("t", KeyRange::prefix(prefix), false),
            expected,
            "prefix {prefix:?}"
        );
        let reversed: Vec<Vec<u8>> = expected.into_iter().rev().collect();
        assert_eq!(
            store.keys("t", KeyRange::prefix(prefix), true),
            reversed,
            "prefix {prefix:?} reversed"
        );
    }
}

/// Every combination of included, excluded and absent bounds, at keys that are stored and
/// keys that are not, forwards and backwards, matches `KeyRange::contains`.
pub fn range_scans_honour_every_bound(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    // Keys 0, 2, ..., 20 (one byte) and 10 followed by 0x00 and 0xFF.
    let mut keys: Vec<Vec<u8>> = (0u8..=10).map(|i| vec![i * 2]).collect();
    keys.extend([vec![10, 0x00], vec![10, 0xFF]]);
    store_scrambled(&store, "t", &keys);
    keys.sort();

    let bound_keys: [&[u8]; 8] = [&[], &[4], &[5], &[10], &[10, 0x00], &[11], &[16], &[0xFF]];
    let bounds = |key: &'static [u8]| [Included(key), Excluded(key)];
    let mut starts: Vec<Bound<&[u8]>> = vec![Unbounded];
    let mut ends: Vec<Bound<&[u8]>> = vec![Unbounded];
    for key in bound_keys {
        starts.extend(bounds(key));
        ends.extend(bounds(key));
    }
    for &start in &starts {
        for &end in &ends {
            let range = range(start, end);
            let expected: Vec<Vec<u8>> = keys.iter().filter(|key| range.contains(key)).cloned().collect();
            assert_eq!(store.keys("t", range.clone(), false), expected, "{range:?}");
            let reversed: Vec<Vec<u8>> = expected.into_iter().rev().collect();
            assert_eq!(store.keys("t", range.clone(), true), reversed, "{range:?} reversed");
        }
    }
    // Inverted and empty ranges hold nothing, and are not an error.
    for range in [
        range(Included(&[8]), Excluded(&[8])),
        range(Included(&[12]), Included(&[4])),
    ] {
        assert!(store.keys("t", range.clone(), false).is_empty(), "{range:?}");
        assert!(store.keys("t", range, true).is_empty());
    }
    assert_eq!(store.keys("t", range(Included(&[8]), Included(&[8])), true), [vec![8]]);
}

/// A reverse scan yields the same pairs as a forward one, last key first, and can stop early.
pub fn reverse_scans_are_descending(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    let mut keys = tricky_keys();
    store_scrambled(&store, "t", &keys);
    keys.sort();
    let mut forward = store.scan("t", KeyRange::all(), false);
    forward.reverse();
    assert_eq!(store.scan("t", KeyRange::all(), true), forward);

    // The newest row of a partition: the first item of a reverse prefix scan.
    let mut newest = store.kv.scan("t", KeyRange::prefix(b"a"), true).expect("scan");
    let first = newest.next().expect("one item").expect("no error");
    assert_eq!(first.0, b"ab\xFF".to_vec());
}

/// 10,000 keys written in batches and one by one scan back complete and in order.
pub fn many_keys_scan_in_order(open: Opener) {
    const COUNT: u32 = 10_000;
    let store = Fixture::with_keyspaces(open, &["t"]);
    // Big-endian, so numeric and bytewise order agree; scrambled by a coprime stride.
    let key = |i: u32| (i * 7_919 % COUNT).to_be_bytes().to_vec();
    for chunk in 0..9 {
        let mut batch = WriteBatch::new();
        for i in chunk * 1_000..(chunk + 1) * 1_000 {
            batch.put("t", key(i), key(i).repeat(4));
        }
        store.write(batch);
    }
    for i in 9_000..COUNT {
        store.put("t", &key(i), &key(i).repeat(4));
    }

    let pairs = store.scan("t", KeyRange::all(), false);
    assert_eq!(pairs.len(), COUNT as usize);
    for (i, (key, value)) in (0..COUNT).zip(&pairs) {
        assert_eq!(key, &i.to_be_bytes().to_vec());
        assert_eq!(value, &key.repeat(4));
    }
    let reversed = store.keys("t", KeyRange::all(), true);
    assert!(reversed.iter().rev().eq(pairs.iter().map(|(key, _)| key)));
    // Keys 0x0000_1Fxx: 256 keys from 7936 to 8191.
    let prefix = store.keys("t", KeyRange::prefix(&[0, 0, 0x1F]), false);
    assert_eq!(prefix.len(), 256);
    assert_eq!(prefix.first(), Some(&7_936u32.to_be_bytes().to_vec()));
}

/// A visited scan stops after `limit` pairs, or at the pair its visitor declines (that
/// pair counted), in either direction; a visitor's error ends the scan and is returned.
pub fn visited_scans_stop_where_asked(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t"]);
    let mut keys = tricky_keys();
    store_scrambled(&store, "t", &keys);
    keys.sort();
    for reverse in [false, true] {
        let all = store.scan("t", KeyRange::all(), reverse);
        for limit in [0, 1, 5, all.len(), all.len() + 1] {
            let visited = store.visit("t", KeyRange::all(), reverse, limit);
            assert_eq!(visited, all[..limit.min(all.len())], "limit {limit}, reverse {reverse}");
        }

        let mut seen = Vec::new();
        let count = store
            .kv
            .scan_visit(
                "t",
                KeyRange::all(),
                reverse,
                usize::MAX,
                &mut |key: &[u8], _: &[u8]| {
                    seen.push(key.to_vec());
                    Ok(seen.len() < 3)
                },
            )
            .expect("visit");
        assert_eq!(count, 3, "the declined pair counts, reverse {reverse}");
        let first_three: Vec<Vec<u8>> = all[..3].iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(seen, first_three);

        let mut calls = 0;
        let err = store
            .kv
            .scan_visit("t", KeyRange::all(), reverse, usize::MAX, &mut |_: &[u8], _: &[u8]| {
                calls += 1;
                Err(calamus_domain::DomainError::Corrupt("bad value".into()))
            })
            .expect_err("the visitor's error ends the scan");
        assert!(err.to_string().contains("bad value"), "{err}");
        assert_eq!(calls, 1);
    }
    assert_eq!(
        store.visit("t", range(Excluded(b"b"), Included(b"a")), false, usize::MAX),
        Vec::new()
    );
    assert!(matches!(
        store
            .kv
            .scan_visit("absent", KeyRange::all(), false, 1, &mut |_: &[u8], _: &[u8]| Ok(true)),
        Err(calamus_domain::DomainError::KeyspaceNotFound { .. })
    ));
}
