//! [`SledEngine`]: the `KvEngine` port over one sled database, one tree per keyspace.
//!
//! sled has neither snapshots nor range deletes, and its transactions cannot iterate, so
//! two port guarantees are built here on one lock over the engine (`keyspaces`):
//! - a scan copies its whole range while holding the lock shared, and writes hold it
//!   exclusively, so a scan is a consistent view taken when it was created (sled's own
//!   iterators may see writes made after their creation, and half of a batch);
//! - a range delete is resolved to the keys it covers while the lock is held exclusively,
//!   so no other write can slip a key into the range before the transaction commits.
//!
//! The price is that a scan's range is held in memory and delays writers while it is
//! copied; the domain scans bounded ranges of the hot store (one partition, one table).
//!
//! The same lock keeps the [`ScanCache`] exact: `scan_visit` looks up and fills copies of
//! the ranges it reads while holding it shared, and a write brings up to date (or drops)
//! the copies whose range holds a key it changed while still holding it exclusively.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

use calamus_domain::{DomainError, DomainResult, KeyRange, KvEngine, KvIter, KvPair, PairVisitor, WriteBatch, WriteOp};
use parking_lot::RwLock;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionResult, TransactionError};
use sled::{Db, Tree};

use crate::config::SledConfig;
use crate::scan_cache::{ScanCache, ScanKey, ScannedPairs};

/// sled's own tree, always present; it holds no keyspace and is never listed.
const DEFAULT_TREE: &[u8] = b"__sled__default";

/// A sled database serving the `KvEngine` port; keyspaces are sled trees.
pub struct SledEngine {
    db: Db,
    flush_on_write: bool,
    /// The open tree of every keyspace. Shared by reads and scans, exclusive for writes and
    /// keyspace changes (see the module documentation).
    keyspaces: RwLock<BTreeMap<String, Tree>>,
    /// Copies of recently visited ranges, kept exact under `keyspaces` (module documentation).
    scan_cache: ScanCache,
}

/// Pending changes of one tree: the final value of every key a batch touches (`None`: removed).
type TreeChanges = crate::scan_cache::Changes;

/// How long opening waits for the store's lock, held by an instance being dropped.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Whether opening failed because another instance holds the store's lock. sled 0.34
/// reports it as an error of kind `Other` whose text starts "could not acquire lock" (the
/// system's `WouldBlock` only inside that text), so the text is what tells it apart.
fn is_lock_held(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock || error.to_string().starts_with("could not acquire lock")
}

/// Opens (creating it if needed) the sled store at `path`, with every keyspace it holds.
pub fn open(path: &Path, config: &SledConfig) -> DomainResult<SledEngine> {
    let started = Instant::now();
    let db = loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .open();
        match opened {
            Ok(db) => break db,
            // An instance of this process that was just dropped still holds the lock until
            // its background flusher ends: wait for it a little.
            Err(sled::Error::Io(e)) if is_lock_held(&e) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(storage_error(
                    format_args!("opening the store at {}", path.display()),
                    e,
                ));
            }
        }
    };
    let mut keyspaces = BTreeMap::new();
    for name in db.tree_names() {
        if name == DEFAULT_TREE {
            continue;
        }
        let keyspace = String::from_utf8(name.to_vec())
            .map_err(|_| DomainError::Corrupt(format!("sled tree name {name:?} is not UTF-8")))?;
        let tree = db
            .open_tree(&name)
            .map_err(|e| storage_error(format_args!("opening keyspace '{keyspace}'"), e))?;
        keyspaces.insert(keyspace, tree);
    }
    Ok(SledEngine {
        db,
        flush_on_write: config.flush_on_write,
        keyspaces: RwLock::new(keyspaces),
        scan_cache: ScanCache::new(config.scan_cache_bytes),
    })
}

impl SledEngine {
    /// Flushes sled's buffers when the configuration asks for it after every write.
    fn flush_if_configured(&self) -> DomainResult<()> {
        if self.flush_on_write { self.sync() } else { Ok(()) }
    }

    /// The tree of `keyspace`.
    fn tree(&self, keyspace: &str) -> DomainResult<Tree> {
        self.keyspaces
            .read()
            .get(keyspace)
            .cloned()
            .ok_or_else(|| not_found(keyspace))
    }
}

impl KvEngine for SledEngine {
    fn backend_name(&self) -> &'static str {
        "sled"
    }

    fn create_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        if keyspace.as_bytes() == DEFAULT_TREE {
            return Err(DomainError::ReservedName {
                kind: "keyspace",
                name: keyspace.to_owned(),
            });
        }
        {
            let mut keyspaces = self.keyspaces.write();
            if keyspaces.contains_key(keyspace) {
                return Ok(());
            }
            let tree = self
                .db
                .open_tree(keyspace)
                .map_err(|e| storage_error(format_args!("creating keyspace '{keyspace}'"), e))?;
            keyspaces.insert(keyspace.to_owned(), tree);
        }
        self.flush_if_configured()
    }

    fn drop_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        {
            let mut keyspaces = self.keyspaces.write();
            if keyspaces.remove(keyspace).is_none() {
                return Ok(());
            }
            self.scan_cache.forget_keyspace(keyspace);
            self.db
                .drop_tree(keyspace)
                .map_err(|e| storage_error(format_args!("dropping keyspace '{keyspace}'"), e))?;
        }
        self.flush_if_configured()
    }

    fn keyspaces(&self) -> DomainResult<Vec<String>> {
        Ok(self.keyspaces.read().keys().cloned().collect())
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> DomainResult<Option<Vec<u8>>> {
        // One sled read is atomic against transactions: it sees a batch whole or not at all.
        let value = self
            .tree(keyspace)?
            .get(key)
            .map_err(|e| storage_error(format_args!("reading a key of keyspace '{keyspace}'"), e))?;
        Ok(value.map(|value| value.to_vec()))
    }

    fn write(&self, batch: WriteBatch) -> DomainResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        {
            let keyspaces = self.keyspaces.write();
            let (names, trees, changes) = resolve(&keyspaces, batch)?;
            let result: Result<(), TransactionError<()>> = trees.as_slice().transaction(|views| {
                for (view, changes) in views.iter().zip(&changes) {
                    apply(view, changes)?;
                }
                Ok(())
            });
            // Copies of the ranges it touched follow a committed batch, or are dropped (a
            // failed commit may have applied any part of the batch in memory).
            for (name, changes) in names.iter().zip(&changes) {
                if result.is_ok() {
                    self.scan_cache.apply_committed(name, changes);
                } else {
                    self.scan_cache.forget_changed(name, changes);
                }
            }
            result.map_err(|e| match e {
                TransactionError::Abort(()) => DomainError::Storage("sled: a write batch was aborted".to_owned()),
                TransactionError::Storage(e) => storage_error("writing a batch", e),
            })?;
        }
        // Outside the lock: concurrent writers then share one flush instead of queueing.
        self.flush_if_configured()
    }

    fn scan<'a>(&'a self, keyspace: &str, range: KeyRange, reverse: bool) -> DomainResult<KvIter<'a>> {
        let pairs = self.copy_range(keyspace, range, reverse, usize::MAX)?;
        Ok(Box::new(pairs.into_iter().map(Ok)))
    }

    fn scan_limited(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> DomainResult<Vec<KvPair>> {
        self.copy_range(keyspace, range, reverse, limit)
    }

    /// Lends each pair as sled hands it out (values shared with its cache, not copied), or
    /// from the copy kept of the same request if nothing in its range changed since; a
    /// request visited to its end is copied for the next time.
    fn scan_visit(
        &self,
        keyspace: &str,
        range: KeyRange,
        reverse: bool,
        limit: usize,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<usize> {
        let keyspaces = self.keyspaces.read();
        let tree = keyspaces.get(keyspace).ok_or_else(|| not_found(keyspace))?;
        if is_empty(&range) {
            return Ok(0);
        }
        let request = self
            .scan_cache
            .is_enabled()
            .then(|| ScanKey::new(&range, reverse, limit));
        if let Some(request) = &request
            && let Some(copy) = self.scan_cache.get(keyspace, request)
        {
            return copy.visit(visit);
        }
        let iter = tree.range((range.start, range.end));
        let pairs: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if reverse { Box::new(iter.rev()) } else { Box::new(iter) };
        let mut copy = request.as_ref().map(|_| ScannedPairs::default());
        let mut visited = 0;
        for pair in pairs.take(limit) {
            let (key, value) = pair.map_err(|e| storage_error(format_args!("scanning keyspace '{keyspace}'"), e))?;
            visited += 1;
            if let Some(pairs) = &mut copy {
                pairs.push(&key, &value);
                if !self.scan_cache.could_keep(pairs.size()) {
                    // Too long to be kept: stop copying it.
                    copy = None;
                }
            }
            if !visit.visit(&key, &value)? {
                // Stopped early: the copy is not the whole answer to the request.
                return Ok(visited);
            }
        }
        if let (Some(request), Some(copy)) = (request, copy) {
            self.scan_cache.insert(keyspace, request, copy);
        }
        Ok(visited)
    }

    fn sync(&self) -> DomainResult<()> {
        self.db.flush().map_err(|e| storage_error("flushing to disk", e))?;
        Ok(())
    }

    /// Nothing to do: sled takes a deleted key out of its tree at once.
    fn compact_range(&self, keyspace: &str, _range: KeyRange) -> DomainResult<()> {
        self.tree(keyspace).map(|_| ())
    }

    /// sled has no snapshots: every tree is copied into a new sled database under the
    /// shared lock, so reads go on and writes wait until the copy is made (see the module
    /// documentation).
    fn checkpoint(&self, target: &Path) -> DomainResult<()> {
        if target.exists() {
            return Err(DomainError::InvalidValue(format!(
                "a checkpoint's folder must not exist yet: {}",
                target.display()
            )));
        }
        let keyspaces = self.keyspaces.read();
        // No background flusher: the copy is flushed once at the end, and its lock is free
        // for whoever opens it as soon as it is dropped.
        let copy = sled::Config::new()
            .path(target)
            .flush_every_ms(None)
            .open()
            .map_err(|e| storage_error(format_args!("creating a checkpoint at {}", target.display()), e))?;
        for (keyspace, tree) in keyspaces.iter() {
            let copied = copy
                .open_tree(keyspace)
                .map_err(|e| storage_error(format_args!("creating keyspace '{keyspace}' in a checkpoint"), e))?;
            let mut batch = sled::Batch::default();
            let mut pending = 0usize;
            for pair in tree.iter() {
                let (key, value) = pair.map_err(|e| storage_error(format_args!("reading keyspace '{keyspace}'"), e))?;
                batch.insert(key, value);
                pending += 1;
                if pending == CHECKPOINT_BATCH {
                    copied
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(|e| storage_error("writing a checkpoint", e))?;
                    pending = 0;
                }
            }
            copied
                .apply_batch(batch)
                .map_err(|e| storage_error("writing a checkpoint", e))?;
        }
        copy.flush().map_err(|e| storage_error("syncing a checkpoint", e))?;
        Ok(())
    }
}

/// Pairs copied per sled batch by a checkpoint.
const CHECKPOINT_BATCH: usize = 10_000;

/// The distinct keyspaces `batch` writes, their trees, and the final change of every key in
/// each of them.
///
/// Ops are folded in order, so a later op on a key wins. A range delete covers the stored
/// keys in its range (read now: the caller holds the engine lock exclusively, so none can be
/// added before the commit) and the keys earlier ops of the batch put there.
fn resolve(
    keyspaces: &BTreeMap<String, Tree>,
    batch: WriteBatch,
) -> DomainResult<(Vec<String>, Vec<Tree>, Vec<TreeChanges>)> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut trees: Vec<Tree> = Vec::new();
    let mut changes: Vec<TreeChanges> = Vec::new();
    for op in batch.into_ops() {
        let keyspace = match &op {
            WriteOp::Put { keyspace, .. }
            | WriteOp::Delete { keyspace, .. }
            | WriteOp::DeleteRange { keyspace, .. } => keyspace,
        };
        let i = match index.get(keyspace) {
            Some(&i) => i,
            None => {
                let tree = keyspaces.get(keyspace).ok_or_else(|| not_found(keyspace))?;
                names.push(keyspace.clone());
                trees.push(tree.clone());
                changes.push(TreeChanges::new());
                index.insert(keyspace.clone(), trees.len() - 1);
                trees.len() - 1
            }
        };
        match op {
            WriteOp::Put { key, value, .. } => {
                changes[i].insert(key, Some(value));
            }
            WriteOp::Delete { key, .. } => {
                changes[i].insert(key, None);
            }
            WriteOp::DeleteRange { keyspace, start, end } => {
                if start >= end {
                    continue;
                }
                for key in trees[i].range(start.as_slice()..end.as_slice()).keys() {
                    let key = key.map_err(|e| storage_error(format_args!("reading keyspace '{keyspace}'"), e))?;
                    changes[i].insert(key.to_vec(), None);
                }
                for (_, value) in changes[i].range_mut(start..end) {
                    *value = None;
                }
            }
        }
    }
    Ok((names, trees, changes))
}

/// Stages `changes` in one tree of a transaction.
fn apply(view: &sled::transaction::TransactionalTree, changes: &TreeChanges) -> ConflictableTransactionResult<()> {
    for (key, value) in changes {
        match value {
            Some(value) => view.insert(key.as_slice(), value.as_slice())?,
            None => view.remove(key.as_slice())?,
        };
    }
    Ok(())
}

/// Whether `range` holds no key at all (sled must not be asked for an inverted range).
fn is_empty(range: &KeyRange) -> bool {
    // In bytewise order `key ++ [0]` is the smallest key after `key`; with that, compare an
    // inclusive lower bound against an exclusive upper one.
    let with_zero = |key: &Vec<u8>| {
        let mut next = key.clone();
        next.push(0);
        next
    };
    let lower = match &range.start {
        Bound::Included(key) => key.clone(),
        Bound::Excluded(key) => with_zero(key),
        Bound::Unbounded => Vec::new(),
    };
    let upper = match &range.end {
        Bound::Included(key) => with_zero(key),
        Bound::Excluded(key) => key.clone(),
        Bound::Unbounded => return false,
    };
    lower >= upper
}

/// The error of a keyspace that does not exist.
fn not_found(keyspace: &str) -> DomainError {
    DomainError::KeyspaceNotFound {
        keyspace: keyspace.to_owned(),
    }
}

/// A sled failure, with what was being done; a full or read-only disk is told apart.
fn storage_error(context: impl Display, error: sled::Error) -> DomainError {
    if let sled::Error::Io(io) = &error
        && io.kind() == std::io::ErrorKind::StorageFull
    {
        return DomainError::DiskFull(format!(
            "sled: {context}: {io}; the last write may be applied in memory without being durable: \
             free some space, then restart the server"
        ));
    }
    if let sled::Error::Io(io) = &error
        && io.kind() == std::io::ErrorKind::ReadOnlyFilesystem
    {
        return DomainError::DiskReadOnly(format!(
            "sled: {context}: {io}; make the file system writable, then restart the server"
        ));
    }
    DomainError::Storage(format!("sled: {context}: {error}"))
}

impl SledEngine {
    /// Copies at most `limit` pairs of `range` under the shared lock: no write can
    /// interleave (module documentation), and a bounded scan copies only what it returns.
    fn copy_range(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> DomainResult<Vec<KvPair>> {
        let keyspaces = self.keyspaces.read();
        let tree = keyspaces.get(keyspace).ok_or_else(|| not_found(keyspace))?;
        if is_empty(&range) {
            return Ok(Vec::new());
        }
        let iter = tree.range((range.start, range.end));
        let pairs: Result<Vec<KvPair>, sled::Error> = if reverse {
            iter.rev()
                .take(limit)
                .map(|pair| pair.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect()
        } else {
            iter.take(limit)
                .map(|pair| pair.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect()
        };
        pairs.map_err(|e| storage_error(format_args!("scanning keyspace '{keyspace}'"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys `scan_visit` hands out for every key of keyspace `t`.
    fn visited_keys(engine: &SledEngine) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        engine
            .scan_visit("t", KeyRange::all(), false, usize::MAX, &mut |key: &[u8], _: &[u8]| {
                keys.push(key.to_vec());
                Ok(true)
            })
            .expect("visit");
        keys
    }

    #[test]
    fn a_repeated_scan_is_served_from_its_copy_and_follows_the_engines_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = open(dir.path(), &SledConfig::default()).expect("open");
        engine.create_keyspace("t").expect("keyspace");
        let mut batch = WriteBatch::new();
        batch.put("t", b"a".to_vec(), b"1".to_vec());
        engine.write(batch).expect("write");
        assert_eq!(visited_keys(&engine), [b"a".to_vec()]);
        assert_eq!(engine.scan_cache.usage().entries, 1, "the scan was copied");
        // A key put in sled's tree behind the engine's back is not seen: the second scan
        // is the copy's.
        engine
            .tree("t")
            .expect("tree")
            .insert(b"b", b"2".as_slice())
            .expect("raw insert");
        assert_eq!(visited_keys(&engine), [b"a".to_vec()]);
        // A write through the engine is merged into the copy.
        let mut batch = WriteBatch::new();
        batch.put("t", b"c".to_vec(), b"3".to_vec());
        engine.write(batch).expect("write");
        assert_eq!(visited_keys(&engine), [b"a".to_vec(), b"c".to_vec()]);
        // With no cache, every scan reads sled.
        drop(engine);
        let config = SledConfig {
            scan_cache_bytes: 0,
            ..SledConfig::default()
        };
        let engine = open(dir.path(), &config).expect("reopen");
        assert_eq!(visited_keys(&engine), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(engine.scan_cache.usage().entries, 0);
    }

    /// The lock of a store whose instance is still open, as sled reports it.
    fn lock_error(path: &Path) -> std::io::Error {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e)) => e,
            other => panic!("a second open of a held store: {other:?}"),
        }
    }

    #[test]
    fn opening_waits_for_an_instance_being_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = open(dir.path(), &SledConfig::default()).expect("first open");
        assert!(is_lock_held(&lock_error(dir.path())), "{}", lock_error(dir.path()));
        let dropping = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = open(dir.path(), &SledConfig::default());
        dropping.join().expect("the first instance dropped");
        assert!(second.is_ok(), "{:?}", second.err());
    }

    #[test]
    fn other_open_errors_are_not_waited_for() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let started = Instant::now();
        assert!(open(file.path(), &SledConfig::default()).is_err());
        assert!(started.elapsed() < LOCK_WAIT);
    }
}
