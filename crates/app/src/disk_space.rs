//! A floor of free disk space under the store: below it (or on a read-only file system)
//! every write is refused with a clear `disk full` error, before the disk is so full that the engine's own log write
//! fails. That matters because such a failure is worse than a refusal: RocksDB takes no
//! write after a failed log write until it is reopened, and sled may hold in memory a
//! write it could not make durable. Above the floor again (space freed), writes simply
//! work: nothing to restart.

use std::path::Path;
use std::sync::Arc;

use calamus_domain::{DomainError, DomainResult, KeyRange, KvEngine, KvIter, KvPair, PairVisitor, WriteBatch};

/// Whether a write may go ahead; an `Err` is what it is refused with.
pub type WriteCheck = Box<dyn Fn() -> DomainResult<()> + Send + Sync>;

/// The `KvEngine` port over another one, asking a check before every write (a batch, a
/// new keyspace). Reads, drops (they free space), syncs and checkpoints pass unasked.
pub struct WriteGate {
    inner: Arc<dyn KvEngine>,
    check: WriteCheck,
}

impl WriteGate {
    /// Asks `check` before each write to `inner`.
    pub fn new(inner: Arc<dyn KvEngine>, check: WriteCheck) -> Self {
        Self { inner, check }
    }

    /// Refuses writes to `inner`, whose files are under `path`, while that file system is
    /// read-only or has less than `min_free_bytes` available; a floor of 0 checks nothing.
    /// A disk whose state cannot be read is not refused: the engine's own error then says
    /// what is wrong.
    pub fn free_space(inner: Arc<dyn KvEngine>, path: &Path, min_free_bytes: u64) -> Self {
        let path = path.to_path_buf();
        Self::new(inner, Box::new(move || check_free_space(&path, min_free_bytes)))
    }
}

/// The free-space floor's check (see [`WriteGate::free_space`]).
fn check_free_space(path: &Path, min_free_bytes: u64) -> DomainResult<()> {
    if min_free_bytes == 0 {
        return Ok(());
    }
    match disk_state(path) {
        Some(DiskState { read_only: true, .. }) => Err(DomainError::DiskReadOnly(format!(
            "the file system holding {} is mounted read-only; writes are refused until it is writable",
            path.display()
        ))),
        Some(DiskState {
            available_bytes: free, ..
        }) if free < min_free_bytes => Err(DomainError::DiskFull(format!(
            "{free} bytes are free on the disk of {}, below the floor of {min_free_bytes} bytes \
             (storage.min_free_bytes); writes are refused until space is freed",
            path.display(),
        ))),
        _ => Ok(()),
    }
}

/// What a write needs to know of the file system holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskState {
    /// The bytes an unprivileged process may still write.
    pub available_bytes: u64,
    /// Whether it is mounted read-only.
    pub read_only: bool,
}

/// The state of the file system holding `path`, if it can be read.
#[cfg(unix)]
pub fn disk_state(path: &Path) -> Option<DiskState> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is memory for one `statvfs`,
    // which the call fills in entirely when it returns 0.
    let status = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so it initialised `stats`.
    let stats = unsafe { stats.assume_init() };
    // The fields are narrower than u64 on some platforms.
    #[allow(clippy::useless_conversion)]
    let available_bytes = u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize));
    #[allow(clippy::useless_conversion)]
    let read_only = u64::from(stats.f_flag) & u64::from(libc::ST_RDONLY) != 0;
    Some(DiskState {
        available_bytes,
        read_only,
    })
}

/// The disk's state is not read on this platform: nothing is refused.
#[cfg(not(unix))]
pub fn disk_state(_path: &Path) -> Option<DiskState> {
    None
}

impl KvEngine for WriteGate {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    fn create_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        (self.check)()?;
        self.inner.create_keyspace(keyspace)
    }

    fn drop_keyspace(&self, keyspace: &str) -> DomainResult<()> {
        // Dropping frees space: never refused.
        self.inner.drop_keyspace(keyspace)
    }

    fn keyspaces(&self) -> DomainResult<Vec<String>> {
        self.inner.keyspaces()
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> DomainResult<Option<Vec<u8>>> {
        self.inner.get(keyspace, key)
    }

    fn write(&self, batch: WriteBatch) -> DomainResult<()> {
        (self.check)()?;
        self.inner.write(batch)
    }

    fn scan<'a>(&'a self, keyspace: &str, range: KeyRange, reverse: bool) -> DomainResult<KvIter<'a>> {
        self.inner.scan(keyspace, range, reverse)
    }

    fn scan_limited(&self, keyspace: &str, range: KeyRange, reverse: bool, limit: usize) -> DomainResult<Vec<KvPair>> {
        self.inner.scan_limited(keyspace, range, reverse, limit)
    }

    fn scan_visit(
        &self,
        keyspace: &str,
        range: KeyRange,
        reverse: bool,
        limit: usize,
        visit: &mut dyn PairVisitor,
    ) -> DomainResult<usize> {
        self.inner.scan_visit(keyspace, range, reverse, limit, visit)
    }

    fn sync(&self) -> DomainResult<()> {
        self.inner.sync()
    }

    fn compact_range(&self, keyspace: &str, range: KeyRange) -> DomainResult<()> {
        // A compaction writes new files before it frees the old ones.
        (self.check)()?;
        self.inner.compact_range(keyspace, range)
    }

    fn checkpoint(&self, target: &Path) -> DomainResult<()> {
        self.inner.checkpoint(target)
    }
}

#[cfg(test)]
mod tests {
    use calamus_domain::MockKvEngine;

    use super::*;

    #[test]
    fn writes_are_refused_below_the_floor_and_reads_are_not() {
        let mut inner = MockKvEngine::new();
        inner.expect_write().never();
        inner.expect_get().returning(|_, _| Ok(Some(b"v".to_vec())));
        let guard = WriteGate::free_space(Arc::new(inner), Path::new("."), u64::MAX);
        let error = guard.write(WriteBatch::new()).unwrap_err();
        assert!(matches!(error, DomainError::DiskFull(_)), "{error}");
        assert!(error.to_string().contains("storage.min_free_bytes"), "{error}");
        assert_eq!(guard.get("k", b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn writes_pass_above_the_floor() {
        let mut inner = MockKvEngine::new();
        inner.expect_write().times(1).returning(|_| Ok(()));
        let guard = WriteGate::free_space(Arc::new(inner), Path::new("."), 1);
        guard.write(WriteBatch::new()).unwrap();
        assert!(disk_state(Path::new(".")).is_some_and(|disk| disk.available_bytes > 0 && !disk.read_only));
    }
}
