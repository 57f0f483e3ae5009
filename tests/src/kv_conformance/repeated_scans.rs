//! Repeated scans: the same scan asked again after any mix of writes sees exactly the
//! store as it is then (a backend may keep copies of scans it served; none may go stale).

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use calamus_domain::{KeyRange, WriteBatch};

use super::{Fixture, Opener, range};

/// Steps of the random walk.
const STEPS: usize = 4_000;

/// A small, seeded generator: the walk is the same on every run and every backend.
struct Walk(u64);

impl Walk {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One of 3 prefixes ("a", "b", "c") and 12 suffixes: keys of a few partitions.
fn key(walk: &mut Walk) -> Vec<u8> {
    let prefix = [b'a', b'b', b'c'][walk.below(3)];
    vec![prefix, b'/', b'0' + walk.below(12) as u8]
}

/// The ranges scanned: few, so the same scan comes back often.
fn ranges() -> Vec<KeyRange> {
    let bound = |b: Bound<&'static [u8]>| b;
    vec![
        KeyRange::all(),
        KeyRange::prefix(b"a/"),
        KeyRange::prefix(b"b/"),
        range(bound(Included(b"a/5")), bound(Excluded(b"b/3"))),
        range(bound(Excluded(b"b/0")), bound(Included(b"c/9"))),
        range(bound(Unbounded), bound(Excluded(b"b/"))),
        // The last four keys at most: answers short of their limit, that writes extend.
        range(bound(Included(b"c/8")), bound(Unbounded)),
    ]
}

/// The pairs of `range` in the model, in the scan's order, at most `limit`.
fn expected(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    reverse: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let in_range = model
        .iter()
        .filter(|(key, _)| range.contains(key))
        .map(|(key, value)| (key.clone(), value.clone()));
    if reverse {
        in_range.rev().take(limit).collect()
    } else {
        in_range.take(limit).collect()
    }
}

/// A seeded random walk of puts, deletes, range deletes, batches over two keyspaces, and
/// dropping and recreating a keyspace, with the same few scans (whole, limited, or stopped
/// by the visitor) asked again and again, each compared with a model of the store.
pub fn repeated_scans_follow_every_write(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["t", "u"]);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut other: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let ranges = ranges();
    let mut walk = Walk(0x9E37_79B9_7F4A_7C15);
    for step in 0..STEPS {
        match walk.below(10) {
            0..=2 => {
                let (key, value) = (key(&mut walk), format!("v{step}").into_bytes());
                store.put("t", &key, &value);
                model.insert(key, value);
            }
            3 => {
                let key = key(&mut walk);
                let mut batch = WriteBatch::new();
                batch.delete("t", key.clone());
                store.write(batch);
                model.remove(&key);
            }
            4 => {
                let (mut start, mut end) = (key(&mut walk), key(&mut walk));
                if start > end {
                    std::mem::swap(&mut start, &mut end);
                }
                let mut batch = WriteBatch::new();
                batch.delete_range("t", start.clone(), end.clone());
                store.write(batch);
                model.retain(|key, _| key < &start || key >= &end);
            }
            5 => {
                // One batch over both keyspaces: a put in the other one, one to three here
                // (several keys at once past the end of a scan, beyond its limit too).
                let (key, value) = (key(&mut walk), format!("w{step}").into_bytes());
                let mut batch = WriteBatch::new();
                batch.put("u", key.clone(), value.clone());
                other.insert(key.clone(), value.clone());
                for _ in 0..=walk.below(3) {
                    let key = self::key(&mut walk);
                    batch.put("t", key.clone(), value.clone());
                    model.insert(key, value.clone());
                }
                store.write(batch);
            }
            6 if step % 50 == 0 => {
                store.kv.drop_keyspace("t").expect("drop keyspace");
                store.kv.create_keyspace("t").expect("create keyspace");
                model.clear();
            }
            _ => {}
        }
        // Every step scans: the same requests come back with nothing changed in between
        // as often as after a change.
        let range = &ranges[walk.below(ranges.len())];
        let reverse = walk.below(2) == 1;
        let limit = [1, 2, 5, usize::MAX][walk.below(4)];
        let context = format!("step {step}: {range:?}, reverse {reverse}, limit {limit}");
        let want = expected(&model, range, reverse, limit);
        assert_eq!(store.visit("t", range.clone(), reverse, limit), want, "{context}");
        if walk.below(4) == 0 {
            // A visitor that stops after its second pair.
            let mut seen = Vec::new();
            store
                .kv
                .scan_visit("t", range.clone(), reverse, limit, &mut |key: &[u8], value: &[u8]| {
                    seen.push((key.to_vec(), value.to_vec()));
                    Ok(seen.len() < 2)
                })
                .expect("visit");
            assert_eq!(seen, want[..want.len().min(2)], "stopped early, {context}");
            assert_eq!(
                store.visit("t", range.clone(), reverse, limit),
                want,
                "after an early stop, {context}"
            );
        }
        if step % 10 == 0 {
            assert_eq!(
                store.visit("u", KeyRange::all(), false, usize::MAX),
                expected(&other, &KeyRange::all(), false, usize::MAX),
                "the other keyspace, {context}"
            );
        }
    }
}
