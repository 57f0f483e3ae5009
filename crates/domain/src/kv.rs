//! The `KvEngine` port: the small, synchronous bottom port every storage backend implements.
//!
//! Everything above it (the key layout, row versions, soft deletes, stream eviction, the
//! catalog) is written once in this crate over this trait, so two backends that honour the
//! guarantees documented here behave identically.

use std::ops::Bound;

use crate::error::DomainResult;

/// One key and its value, as stored.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// An ordered iterator over stored pairs; an `Err` item ends the iteration.
pub type KvIter<'a> = Box<dyn Iterator<Item = DomainResult<KvPair>> + Send + 'a>;

/// What [`KvEngine::scan_visit`] calls with each pair, borrowed from the engine for the
/// call. Any `FnMut(&[u8], &[u8]) -> DomainResult<bool>` closure is one.
pub trait PairVisitor {
    /// Takes one pair (key, value); returns whether the scan should go on.
    fn visit(&mut self, key: &[u8], value: &[u8]) -> DomainResult<bool>;
}

impl<F: FnMut(&[u8], &[u8]) -> DomainResult<bool>> PairVisitor for F {
    fn visit(&mut self, key: &[u8], value: &[u8]) -> DomainResult<bool> {
        self(key, value)
    }
}

/// A range of keys in one keyspace: start and end bounds compared bytewise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key of the keyspace.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match prefix_successor(prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        };
        Self {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    /// Keys in `[start, end)`.
    pub fn half_open(start: Vec<u8>, end: Vec<u8>) -> Self {
        Self {
            start: Bound::Included(start),
            end: Bound::Excluded(end),
        }
    }

    /// Whether `key` lies inside this range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// The smallest key greater than every key that starts with `prefix`, if one exists
/// (a prefix of only `0xFF` bytes has none).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value` in `keyspace`, replacing any previous value.
    Put {
        keyspace: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove `key` from `keyspace`; removing an absent key is not an error.
    Delete { keyspace: String, key: Vec<u8> },
    /// Remove every key in `[start, end)` of `keyspace`.
    DeleteRange {
        keyspace: String,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// Operations applied all together or not at all, in order (a later op on the same key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, keyspace: &str, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Put {
            keyspace: keyspace.to_owned(),
            key,
            value,
        });
    }

    /// Adds a point delete.
    pub fn delete(&mut self, keyspace: &str, key: Vec<u8>) {
        self.ops.push(WriteOp::Delete {
            keyspace: keyspace.to_owned(),
            key,
        });
    }

    /// Adds a delete of every key in `[start, end)`.
    pub fn delete_range(&mut self, keyspace: &str, start: Vec<u8>, end: Vec<u8>) {
        self.ops.push(WriteOp::DeleteRange {
            keyspace: keyspace.to_owned(),
            start,
            end,
        });
    }

    /// The operations, in the order they were added.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Consumes the batch, giving its operations.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An ordered key-value engine with named keyspaces.
///
/// Guarantees every implementation must keep (checked by the conformance suite in `tests/`):
/// - keys are ordered bytewise, in every scan;
/// - a [`WriteBatch`] is atomic: after [`KvEngine::write`] returns `Ok`, every op is visible
///   to every later read; if it returns `Err`, none is;
/// - acknowledged means durable against a killed process: once `write` returned `Ok`, the
///   data survives the process being killed and the store reopened (what an operating-system
///   crash may lose depends on the backend's sync setting, documented there);
/// - a keyspace must be created before it is written; reading or writing a keyspace that
///   does not exist is [`crate::DomainError::KeyspaceNotFound`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KvEngine: Send + Sync + 'static {
    /// A short name of the backend (`rocksdb`, `sled`), recorded in the data directory.
    fn backend_name(&self) -> &'static str;

    /// Creates `keyspace` if it does not exist; creating an existing keyspace is a no-op.
    fn create_keyspace(&self, keyspace: &str) -> DomainResult<()>;

    /// Drops `keyspace` with all its keys; dropping an absent keyspace is a no-op.
    fn drop_keyspace(&self, keyspace: &str) -> DomainResult<()>;

    /// The names of all keyspaces, sorted.
    fn keyspaces(&self) -> DomainResult<Vec<String>>;

    /// The value of `key`, or `None` when it is absent.
    fn get(&self, keyspace: &str, key: &[u8]) -> DomainResult<Option<Vec<u8>>>;

    /// Applies `batch` atomically (see the trait's guarantees).
    fn write(&self, batch: WriteBatch) -> DomainResult<()>;

    /// The pairs of `range` in ascending key order (`reverse = false`) or descending.
    /// The iterator reads a consistent view taken when it was created.
    fn scan<'a>(&'a self, keyspace: &str, range: KeyRange, reverse: bool) -> DomainResult<KvIter<'a>>;

    /// The first `limit` pairs of `range` (a consistent read, like [`KvEngine::scan`]).
    /// Backends that copy a scan's range up front override it to copy only `limit` pairs.
    fn scan_limited(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> DomainResult<Vec<KvPair>> {
        self.scan(keyspace, range, reverse)?.take(limit).collect()
    }

    /// Calls `visit` with the first `limit` pairs of `range`, in order, each borrowed
    /// from the engine for the call, until `visit` returns `false` or fails; returns how
    /// many pairs it was called with. A consistent read, like [`KvEngine::scan`].
    /// Backends that can lend their pairs override it: a scan then copies nothing.
    fn scan_visit(
        &self,
        keyspace: &str,
        range: KeyRange,
        reverse: bool,
        limit: usize,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<usize> {
        let mut visited = 0;
        for pair in self.scan(keyspace, range, reverse)?.take(limit) {
            let (key, value) = pair?;
            visited += 1;
            if !visit.visit(&key, &value)? {
                break;
            }
        }
        Ok(visited)
    }

    /// Makes every acknowledged write durable against an operating-system crash too.
    fn sync(&self) -> DomainResult<()>;

    /// Drops what deleted keys of `range` left behind, so later scans of it step over
    /// nothing but live keys. No key or value changes. An engine whose deletes leave
    /// nothing behind does nothing; RocksDB keeps a tombstone per deleted key until a
    /// compaction drops it, and a scan reads every one it meets.
    fn compact_range(&self, keyspace: &str, range: KeyRange) -> DomainResult<()>;

    /// Writes a copy of every keyspace, as of one moment, into a new store at `target` (a
    /// folder that must not exist yet), synced to disk, which this backend opens like its
    /// own. Writes may go on meanwhile; each backend documents what they wait for.
    fn checkpoint(&self, target: &std::path::Path) -> DomainResult<()>;
}
