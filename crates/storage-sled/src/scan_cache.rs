//! [`ScanCache`]: copies of the ranges recently scanned by [`KvEngine::scan_visit`], so a
//! range read again is not walked through sled's tree twice.
//!
//! sled 0.34's iterator does a lot for every pair: it pins an epoch, searches its node,
//! rebuilds and copies the key, and clones the whole node when it moves on to the next. A
//! 10,000-pair range costs about 0.5 µs a pair that way, where reading the same pairs from
//! one buffer costs a few nanoseconds. Queries over hot rows repeat the same scans (the
//! row store reads a partition in chunks of fixed sizes), so the next read of a chunk is
//! served from its copy.
//!
//! An entry always equals what sled would return for it: the engine looks entries up and
//! fills them only while it holds its lock shared, and a write merges its changes (rows
//! appended, updated or removed) into every entry whose answer it may change before the
//! engine releases the lock it holds exclusively (see [`crate::engine`]). An entry is
//! dropped instead where the merge cannot be exact or would cost too much, and with its
//! keyspace.
//!
//! The cache is bounded: by bytes (least recently used entries go first), by the size of one
//! entry (a fraction of the budget, so one long scan cannot empty it), and by the entries of
//! one keyspace (a write checks each entry of the keyspaces it touches).
//!
//! [`KvEngine::scan_visit`]: calamus_domain::KvEngine::scan_visit

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use calamus_domain::{DomainResult, KeyRange, PairVisitor};
use parking_lot::Mutex;

/// The largest share of the budget one entry may take.
const MAX_ENTRY_SHARE: usize = 4;

/// The most bytes of copies one write rewrites to bring them up to date; the others it
/// changes are dropped.
const MAX_REWRITE_PER_WRITE: usize = 4 * 1024 * 1024;

/// The most entries one keyspace keeps; beyond it, its least recently used one goes.
const MAX_ENTRIES_PER_KEYSPACE: usize = 64;

/// Bytes counted for an entry besides its pairs (its key, its bookkeeping).
const ENTRY_OVERHEAD: usize = 128;

/// One scan request of a keyspace: the range, the direction and the most pairs asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ScanKey {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
    limit: usize,
}

impl ScanKey {
    /// The request of `range` in this direction, for at most `limit` pairs.
    pub(crate) fn new(range: &KeyRange, reverse: bool, limit: usize) -> Self {
        Self {
            start: range.start.clone(),
            end: range.end.clone(),
            reverse,
            limit,
        }
    }

    /// The keys whose change may change the answer `pairs` to this request: its range, cut
    /// at the last pair returned when the limit was reached (keys past it are not in the
    /// answer, and a change there does not move any that are).
    fn depends_on(&self, pairs: &ScannedPairs) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        match pairs.last_key() {
            Some(last) if pairs.len() == self.limit => {
                let last = Bound::Included(last.to_vec());
                if self.reverse {
                    (last, self.end.clone())
                } else {
                    (self.start.clone(), last)
                }
            }
            _ => (self.start.clone(), self.end.clone()),
        }
    }

    /// Bytes of its bounds (an entry holds the request in its map, in the use order, and
    /// as the range it depends on: three times).
    fn size(&self) -> usize {
        let bytes = |bound: &Bound<Vec<u8>>| match bound {
            Bound::Included(key) | Bound::Excluded(key) => key.len(),
            Bound::Unbounded => 0,
        };
        bytes(&self.start) + bytes(&self.end)
    }
}

/// The final value of each key a write changed, in key order (`None`: removed).
pub(crate) type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The answer to `request` once `changed` is applied, from `pairs`, its answer before:
/// the two merged in scan order, removed keys taken out, and cut at the limit. `None` when
/// that is not the exact answer: a key of a copy that reached its limit was removed (the
/// answer would need the next stored key, which the copy does not hold).
///
/// A copy that did not reach its limit holds every key of its range, so a removal of a key
/// it does not hold removes nothing; in one that reached it, such a key is past its last
/// pair, or was not stored, and changes nothing either.
fn with_changes(request: &ScanKey, pairs: &ScannedPairs, changed: &Changes) -> Option<ScannedPairs> {
    let complete = pairs.len() < request.limit;
    let in_range = changed.range::<[u8], _>((as_slice(&request.start), as_slice(&request.end)));
    let changes: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = if request.reverse {
        in_range.rev().collect()
    } else {
        in_range.collect()
    };
    // Whether `a` comes before `b` in the scan's order.
    let before = |a: &[u8], b: &[u8]| if request.reverse { a > b } else { a < b };
    let mut merged = ScannedPairs::default();
    merged.bytes.reserve(pairs.bytes.len());
    merged.ends.reserve(pairs.len() + changes.len());
    let mut old = pairs.iter().peekable();
    for (key, value) in changes {
        while let Some(&(old_key, old_value)) = old.peek()
            && before(old_key, key)
        {
            merged.push(old_key, old_value);
            old.next();
        }
        let held = old.next_if(|&(old_key, _)| old_key == key.as_slice()).is_some();
        match value {
            Some(value) => merged.push(key, value),
            None if held && !complete => return None,
            None => {}
        }
    }
    for (old_key, old_value) in old {
        merged.push(old_key, old_value);
    }
    merged.truncate(request.limit);
    Some(merged)
}

/// Whether `changed` (the sorted keys a write changed) holds a key of `range`.
fn holds_a_key_of(changed: &Changes, range: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    // A kept range is never empty (the engine checks before it scans, and a cut one still
    // holds its last key), so its bounds are in order, as `BTreeMap::range` requires.
    changed
        .range::<[u8], _>((as_slice(&range.0), as_slice(&range.1)))
        .next()
        .is_some()
}

/// `bound` over a borrowed key.
fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

/// The pairs one scan returned, in order, in one buffer.
#[derive(Debug, Default)]
pub(crate) struct ScannedPairs {
    bytes: Vec<u8>,
    /// Where each pair's key ends and its value ends, in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl ScannedPairs {
    /// Appends one pair.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((key_end, self.bytes.len()));
    }

    /// How many pairs the copy holds.
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The key of the last pair.
    fn last_key(&self) -> Option<&[u8]> {
        let (key_end, _) = *self.ends.last()?;
        let key_start = match self.ends.len() {
            1 => 0,
            n => self.ends[n - 2].1,
        };
        Some(&self.bytes[key_start..key_end])
    }

    /// Bytes of memory the copy holds.
    pub(crate) fn size(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// The pairs, in order.
    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, value_end)| value_end));
        starts
            .zip(&self.ends)
            .map(|(start, &(key_end, value_end))| (&self.bytes[start..key_end], &self.bytes[key_end..value_end]))
    }

    /// Keeps the first `count` pairs.
    fn truncate(&mut self, count: usize) {
        if count < self.ends.len() {
            self.bytes
                .truncate(count.checked_sub(1).map_or(0, |last| self.ends[last].1));
            self.ends.truncate(count);
        }
    }

    /// Calls `visit` with each pair in order until it returns `false`; returns how many
    /// pairs it was called with (as [`calamus_domain::KvEngine::scan_visit`] does).
    pub(crate) fn visit(&self, visit: &mut dyn PairVisitor) -> DomainResult<usize> {
        for (visited, (key, value)) in self.iter().enumerate() {
            if !visit.visit(key, value)? {
                return Ok(visited + 1);
            }
        }
        Ok(self.ends.len())
    }

    /// Gives back spare capacity before the copy is kept.
    fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// A kept copy, and when it was last used.
struct Entry {
    pairs: Arc<ScannedPairs>,
    /// The range of keys a write must not change for the copy to stay exact.
    depends_on: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    size: usize,
    used_at: u64,
}

/// The entries and their use order.
#[derive(Default)]
struct Entries {
    by_keyspace: HashMap<String, HashMap<ScanKey, Entry>>,
    /// Every entry by when it was last used: the first is the next to go.
    by_use: BTreeMap<u64, (String, ScanKey)>,
    used_bytes: usize,
    clock: u64,
}

impl Entries {
    fn remove(&mut self, keyspace: &str, key: &ScanKey) {
        let Some(entries) = self.by_keyspace.get_mut(keyspace) else {
            return;
        };
        if let Some(entry) = entries.remove(key) {
            self.by_use.remove(&entry.used_at);
            self.used_bytes -= entry.size;
        }
        if entries.is_empty() {
            self.by_keyspace.remove(keyspace);
        }
    }

    /// Drops least recently used entries until at most `bytes` are used.
    fn evict_down_to(&mut self, bytes: usize) {
        while self.used_bytes > bytes {
            let Some((_, (owner, oldest))) = self.by_use.first_key_value() else {
                break;
            };
            let (owner, oldest) = (owner.clone(), oldest.clone());
            self.remove(&owner, &oldest);
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// Copies of recently scanned ranges (see the module documentation).
pub(crate) struct ScanCache {
    budget: usize,
    entries: Mutex<Entries>,
}

/// What the cache holds.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanCacheUsage {
    /// Entries kept.
    pub(crate) entries: usize,
    /// Bytes they take.
    pub(crate) bytes: usize,
}

impl ScanCache {
    /// A cache of at most `budget` bytes; `0` keeps nothing.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Whether the cache keeps anything at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.budget > 0
    }

    /// Whether a copy of `bytes` bytes is small enough to be kept.
    pub(crate) fn could_keep(&self, bytes: usize) -> bool {
        bytes <= self.budget / MAX_ENTRY_SHARE
    }

    /// The copy of `key`'s scan of `keyspace`, if one is kept.
    pub(crate) fn get(&self, keyspace: &str, key: &ScanKey) -> Option<Arc<ScannedPairs>> {
        let mut guard = self.entries.lock();
        let entries = &mut *guard;
        let tick = entries.clock + 1;
        let entry = entries.by_keyspace.get_mut(keyspace)?.get_mut(key)?;
        let previous = std::mem::replace(&mut entry.used_at, tick);
        let pairs = Arc::clone(&entry.pairs);
        entries.clock = tick;
        if let Some(owner) = entries.by_use.remove(&previous) {
            entries.by_use.insert(tick, owner);
        }
        Some(pairs)
    }

    /// Keeps `pairs` as the answer to `key`'s scan of `keyspace`, unless it is too large;
    /// least recently used entries make room.
    pub(crate) fn insert(&self, keyspace: &str, key: ScanKey, mut pairs: ScannedPairs) {
        pairs.shrink();
        let depends_on = key.depends_on(&pairs);
        let size = pairs.size() + 3 * key.size() + 2 * keyspace.len() + ENTRY_OVERHEAD;
        if !self.could_keep(size) {
            return;
        }
        let mut entries = self.entries.lock();
        entries.remove(keyspace, &key);
        let keyspace_full = entries
            .by_keyspace
            .get(keyspace)
            .is_some_and(|kept| kept.len() >= MAX_ENTRIES_PER_KEYSPACE);
        if keyspace_full {
            let oldest = entries.by_keyspace[keyspace]
                .iter()
                .min_by_key(|(_, entry)| entry.used_at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(keyspace, &oldest);
            }
        }
        entries.evict_down_to(self.budget.saturating_sub(size));
        let used_at = entries.tick();
        entries.by_use.insert(used_at, (keyspace.to_owned(), key.clone()));
        entries.used_bytes += size;
        entries.by_keyspace.entry(keyspace.to_owned()).or_default().insert(
            key,
            Entry {
                pairs: Arc::new(pairs),
                depends_on,
                size,
                used_at,
            },
        );
    }

    /// Brings the entries of `keyspace` up to date with a committed write of `changed` (the
    /// final value of each key it touched, `None` for a removal): each copy the write may
    /// change is rewritten with the changes merged in ([`with_changes`]), or dropped where
    /// that cannot be done exactly, or where it would copy more than
    /// [`MAX_REWRITE_PER_WRITE`] bytes for this write.
    pub(crate) fn apply_committed(&self, keyspace: &str, changed: &Changes) {
        if changed.is_empty() || !self.is_enabled() {
            return;
        }
        let mut guard = self.entries.lock();
        let Entries {
            by_keyspace,
            used_bytes,
            ..
        } = &mut *guard;
        let Some(kept) = by_keyspace.get_mut(keyspace) else {
            return;
        };
        let mut stale = Vec::new();
        let mut rewrite_allowance = MAX_REWRITE_PER_WRITE;
        for (request, entry) in kept.iter_mut() {
            if !holds_a_key_of(changed, &entry.depends_on) {
                continue;
            }
            let old_bytes = entry.pairs.size();
            let merged = (old_bytes <= rewrite_allowance)
                .then(|| with_changes(request, &entry.pairs, changed))
                .flatten();
            match merged {
                Some(mut pairs) => {
                    rewrite_allowance -= old_bytes;
                    pairs.shrink();
                    *used_bytes = *used_bytes - old_bytes + pairs.size();
                    entry.size = entry.size - old_bytes + pairs.size();
                    entry.depends_on = request.depends_on(&pairs);
                    entry.pairs = Arc::new(pairs);
                    if !self.could_keep(entry.size) {
                        stale.push(request.clone());
                    }
                }
                None => stale.push(request.clone()),
            }
        }
        for request in stale {
            guard.remove(keyspace, &request);
        }
        guard.evict_down_to(self.budget);
    }

    /// Drops the entries of `keyspace` whose range holds one of the `changed` keys (for a
    /// write that failed, and may have applied any part of itself).
    pub(crate) fn forget_changed(&self, keyspace: &str, changed: &Changes) {
        if changed.is_empty() || !self.is_enabled() {
            return;
        }
        let mut entries = self.entries.lock();
        let Some(kept) = entries.by_keyspace.get(keyspace) else {
            return;
        };
        let stale: Vec<ScanKey> = kept
            .iter()
            .filter(|(_, entry)| holds_a_key_of(changed, &entry.depends_on))
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            entries.remove(keyspace, &key);
        }
    }

    /// Drops every entry of `keyspace`.
    pub(crate) fn forget_keyspace(&self, keyspace: &str) {
        let mut entries = self.entries.lock();
        let keys: Vec<ScanKey> = match entries.by_keyspace.get(keyspace) {
            Some(kept) => kept.keys().cloned().collect(),
            None => return,
        };
        for key in keys {
            entries.remove(keyspace, &key);
        }
    }

    /// What the cache holds now.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> ScanCacheUsage {
        let entries = self.entries.lock();
        ScanCacheUsage {
            entries: entries.by_use.len(),
            bytes: entries.used_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(keys: &[&str]) -> ScannedPairs {
        let mut pairs = ScannedPairs::default();
        for key in keys {
            pairs.push(key.as_bytes(), format!("value of {key}").as_bytes());
        }
        pairs
    }

    fn collected(pairs: &ScannedPairs) -> Vec<(String, String)> {
        let mut out = Vec::new();
        pairs
            .visit(&mut |key: &[u8], value: &[u8]| {
                out.push((
                    String::from_utf8_lossy(key).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                ));
                Ok(true)
            })
            .expect("visit");
        out
    }

    fn prefix_key(prefix: &str) -> ScanKey {
        ScanKey::new(&KeyRange::prefix(prefix.as_bytes()), false, 1024)
    }

    fn changed(keys: &[&str]) -> Changes {
        keys.iter().map(|key| (key.as_bytes().to_vec(), None)).collect()
    }

    fn put(keys: &[&str]) -> Changes {
        keys.iter()
            .map(|key| (key.as_bytes().to_vec(), Some(format!("value of {key}").into_bytes())))
            .collect()
    }

    fn keys_of(pairs: &ScannedPairs) -> Vec<String> {
        collected(pairs).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn a_copy_lends_its_pairs_in_order_and_stops_when_asked() {
        let copy = pairs(&["a", "bb", ""]);
        assert_eq!(
            collected(&copy),
            [("a", "value of a"), ("bb", "value of bb"), ("", "value of ")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let mut seen = 0;
        let visited = copy
            .visit(&mut |_: &[u8], _: &[u8]| {
                seen += 1;
                Ok(seen < 2)
            })
            .expect("visit");
        assert_eq!((visited, seen), (2, 2));
    }

    #[test]
    fn a_write_drops_only_the_entries_whose_range_holds_a_changed_key() {
        let cache = ScanCache::new(1 << 20);
        cache.insert("t", prefix_key("u1/"), pairs(&["u1/a"]));
        cache.insert("t", prefix_key("u2/"), pairs(&["u2/a"]));
        cache.insert("other", prefix_key("u1/"), pairs(&["u1/a"]));
        cache.forget_changed("t", &changed(&["u0/z", "u1/new", "u3/a"]));
        assert!(cache.get("t", &prefix_key("u1/")).is_none());
        assert!(cache.get("t", &prefix_key("u2/")).is_some());
        assert!(cache.get("other", &prefix_key("u1/")).is_some());
        // The bounds themselves: the lower one is in the range, the upper one is not.
        cache.forget_changed("t", &changed(&["u20", "u3/"]));
        assert!(cache.get("t", &prefix_key("u2/")).is_some());
        cache.forget_changed("t", &changed(&["u2/"]));
        assert!(cache.get("t", &prefix_key("u2/")).is_none());
        cache.forget_keyspace("other");
        assert_eq!(cache.usage(), ScanCacheUsage { entries: 0, bytes: 0 });
    }

    #[test]
    fn a_copy_that_reached_its_limit_does_not_depend_on_keys_past_its_last_pair() {
        let cache = ScanCache::new(1 << 20);
        let range = KeyRange::prefix(b"p/");
        let forward = ScanKey::new(&range, false, 2);
        let backward = ScanKey::new(&range, true, 2);
        let whole = ScanKey::new(&range, false, 10);
        cache.insert("t", forward.clone(), pairs(&["p/1", "p/2"]));
        cache.insert("t", backward.clone(), pairs(&["p/8", "p/7"]));
        cache.insert("t", whole.clone(), pairs(&["p/1", "p/2", "p/7", "p/8"]));
        // Between the two limited answers: only the whole one changes.
        cache.forget_changed("t", &changed(&["p/5"]));
        assert!(cache.get("t", &forward).is_some() && cache.get("t", &backward).is_some());
        assert!(
            cache.get("t", &whole).is_none(),
            "the answer that did not reach its limit"
        );
        // The last pair of each limited answer is part of it.
        cache.forget_changed("t", &changed(&["p/2"]));
        assert!(cache.get("t", &forward).is_none());
        assert!(cache.get("t", &backward).is_some());
        cache.forget_changed("t", &changed(&["p/7"]));
        assert!(cache.get("t", &backward).is_none());
        assert_eq!(pairs(&["a", "bcd"]).last_key(), Some(b"bcd".as_slice()));
        assert_eq!(pairs(&["a"]).last_key(), Some(b"a".as_slice()));
        assert_eq!(pairs(&[]).last_key(), None);
    }

    #[test]
    fn writes_are_merged_into_the_copies_they_change() {
        let cache = ScanCache::new(1 << 20);
        let range = KeyRange::prefix(b"p/");
        let forward = ScanKey::new(&range, false, 4);
        let backward = ScanKey::new(&range, true, 4);
        let empty = ScanKey::new(&KeyRange::prefix(b"q/"), false, 2);
        cache.insert("t", forward.clone(), pairs(&["p/3", "p/5"]));
        cache.insert("t", backward.clone(), pairs(&["p/5", "p/3"]));
        cache.insert("t", empty.clone(), pairs(&[]));
        let keys = |request: &ScanKey| cache.get("t", request).map(|copy| keys_of(&copy));
        // Puts before, between, past and over the copy's pairs, in both directions.
        cache.apply_committed("t", &put(&["p/1", "p/4", "p/5", "p/9", "q/1"]));
        assert_eq!(
            keys(&forward).expect("kept"),
            ["p/1", "p/3", "p/4", "p/5"],
            "cut at the limit"
        );
        assert_eq!(keys(&backward).expect("kept"), ["p/9", "p/5", "p/4", "p/3"]);
        assert_eq!(keys(&empty).expect("kept"), ["q/1"]);
        let value_of = |request: &ScanKey, key: &str| {
            collected(&cache.get("t", request).expect("kept"))
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        };
        let mut update = Changes::new();
        update.insert(b"p/4".to_vec(), Some(b"new".to_vec()));
        cache.apply_committed("t", &update);
        assert_eq!(value_of(&forward, "p/4").as_deref(), Some("new"));
        assert_eq!(value_of(&backward, "p/4").as_deref(), Some("new"));
        // Both reached their limit: a key past their last pair changes nothing, one
        // before it pushes the last pair out.
        cache.apply_committed("t", &put(&["p/6", "p/2"]));
        assert_eq!(keys(&forward).expect("kept"), ["p/1", "p/2", "p/3", "p/4"]);
        assert_eq!(keys(&backward).expect("kept"), ["p/9", "p/6", "p/5", "p/4"]);
        // A removal of a key a full copy holds would need the next stored key: it goes.
        // A removal of a key it does not hold changes nothing.
        cache.apply_committed("t", &changed(&["p/3", "p/7"]));
        assert!(keys(&forward).is_none());
        assert_eq!(keys(&backward).expect("kept"), ["p/9", "p/6", "p/5", "p/4"]);
        // A copy short of its limit holds every key of its range: a removal takes one out,
        // more puts than the limit allows are cut.
        cache.apply_committed("t", &changed(&["q/1"]));
        assert_eq!(keys(&empty).expect("kept"), Vec::<String>::new());
        cache.apply_committed("t", &put(&["q/3", "q/2", "q/4"]));
        assert_eq!(keys(&empty).expect("kept"), ["q/2", "q/3"]);
        // The bytes used follow the copies' sizes.
        let usage = cache.usage();
        assert_eq!(usage.entries, 2);
        let sizes: usize = cache.entries.lock().by_keyspace["t"]
            .values()
            .map(|entry| entry.size)
            .sum();
        assert_eq!(usage.bytes, sizes);
    }

    #[test]
    fn a_write_rewrites_a_bounded_amount_of_copies() {
        let cache = ScanCache::new(1 << 30);
        let big: Vec<String> = (0..40_000).map(|i| format!("p/{i:06}")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        let requests: Vec<ScanKey> = (0..4)
            .map(|i| ScanKey::new(&KeyRange::prefix(b"p/"), false, usize::MAX - i))
            .collect();
        for request in &requests {
            cache.insert("t", request.clone(), pairs(&big));
        }
        assert!(cache.entries.lock().by_keyspace["t"][&requests[0]].pairs.size() > MAX_REWRITE_PER_WRITE / 4);
        cache.apply_committed("t", &put(&["p/1"]));
        let kept = requests
            .iter()
            .filter(|request| cache.get("t", request).is_some())
            .count();
        assert!((1..4).contains(&kept), "{kept} of 4 copies rewritten");
    }

    #[test]
    fn requests_differing_in_direction_or_limit_are_kept_apart() {
        let cache = ScanCache::new(1 << 20);
        let range = KeyRange::prefix(b"p");
        cache.insert("t", ScanKey::new(&range, false, 10), pairs(&["p1", "p2"]));
        assert!(cache.get("t", &ScanKey::new(&range, true, 10)).is_none());
        assert!(cache.get("t", &ScanKey::new(&range, false, 1)).is_none());
        assert_eq!(
            collected(&cache.get("t", &ScanKey::new(&range, false, 10)).expect("kept")).len(),
            2
        );
    }

    #[test]
    fn the_least_recently_used_entries_make_room_within_the_budget() {
        let one = pairs(&["k"]);
        let entry_size = {
            let mut sized = pairs(&["k"]);
            sized.shrink();
            sized.size() + 3 * prefix_key("a").size() + 2 + ENTRY_OVERHEAD
        };
        drop(one);
        let cache = ScanCache::new(entry_size * MAX_ENTRY_SHARE);
        for name in ["a", "b", "c", "d"] {
            cache.insert("t", prefix_key(name), pairs(&["k"]));
        }
        assert!(
            cache.get("t", &prefix_key("a")).is_some(),
            "a is now the most recently used"
        );
        cache.insert("t", prefix_key("e"), pairs(&["k"]));
        assert!(
            cache.get("t", &prefix_key("b")).is_none(),
            "b was the least recently used"
        );
        for kept in ["a", "c", "d", "e"] {
            assert!(cache.get("t", &prefix_key(kept)).is_some(), "{kept}");
        }
        let usage = cache.usage();
        assert_eq!(usage.entries, 4);
        assert!(usage.bytes <= entry_size * MAX_ENTRY_SHARE, "{usage:?}");
        // An entry larger than its share of the budget is not kept at all.
        cache.insert("t", prefix_key("big"), pairs(&["k"; 64]));
        assert!(cache.get("t", &prefix_key("big")).is_none());
        // A budget of zero keeps nothing.
        let off = ScanCache::new(0);
        off.insert("t", prefix_key("a"), pairs(&["k"]));
        assert!(!off.is_enabled() && off.get("t", &prefix_key("a")).is_none());
    }

    #[test]
    fn one_keyspace_keeps_a_bounded_number_of_entries() {
        let cache = ScanCache::new(1 << 30);
        for i in 0..MAX_ENTRIES_PER_KEYSPACE + 5 {
            cache.insert("t", prefix_key(&format!("u{i:03}/")), pairs(&["k"]));
        }
        assert_eq!(cache.usage().entries, MAX_ENTRIES_PER_KEYSPACE);
        assert!(cache.get("t", &prefix_key("u000/")).is_none());
        assert!(
            cache
                .get("t", &prefix_key(&format!("u{:03}/", MAX_ENTRIES_PER_KEYSPACE + 4)))
                .is_some()
        );
    }
}
