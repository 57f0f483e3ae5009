//! Faults of the disk: the data directory on a small tmpfs that fills up, or is mounted
//! read-only. A write fails with a clear error, nothing acknowledged is lost, the server
//! stays up and serves reads, and once space is freed writes work again, without a
//! restart (with the free-space floor; without it, after one). A disk turning read-only
//! under a running server is a tmpfs remounted read-only for a storage's Parquet files, and
//! a fault-injecting engine under the store (Linux refuses to remount a file system
//! read-only while the store holds files open for writing).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use calamus::StorageBackend;
use calamus::disk_space::{WriteCheck, WriteGate};
use calamus_domain::DomainError;
use calamus_tests::server::TestServer;

/// A tmpfs of `megabytes` mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let parent = tempfile::tempdir().expect("a temporary directory");
        let mount = parent.path().join("disk");
        std::fs::create_dir(&mount).expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests need root on Linux"
        );
        Self { mount, _parent: parent }
    }

    /// Fills the disk with a file until no byte is left; gives the file.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let balloon = self.mount.join("balloon");
        let mut file = std::fs::File::create(&balloon).expect("create the balloon");
        let chunk = vec![0u8; 64 * 1024];
        let mut small = false;
        loop {
            let written = if small {
                file.write(&chunk[..512])
            } else {
                file.write(&chunk)
            };
            match written {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) && !small => small = true,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = file.sync_all();
        balloon
    }
}

impl SmallDisk {
    /// Remounts the disk read-only (`true`) or read-write.
    fn set_read_only(&self, read_only: bool) {
        let options = if read_only { "remount,ro" } else { "remount,rw" };
        let status = Command::new("mount")
            .args(["-o", options])
            .arg(&self.mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "remounting the tmpfs {options} failed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Files a failed flush might leave behind.
fn leftover_temporary_files(folder: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(leftover_temporary_files(&path));
        } else if path.to_string_lossy().ends_with(".parquet.tmp") {
            found.push(path);
        }
    }
    found
}

/// A server over a data directory on `disk`, refusing writes below `min_free_bytes`.
fn start(backend: StorageBackend, disk: &SmallDisk, min_free_bytes: u64) -> TestServer {
    TestServer::start_in(backend, &disk.mount.join("data"), |config| {
        config.storage.min_free_bytes = min_free_bytes;
    })
}

/// The rows of `app.items`.
fn count(server: &TestServer, root: &str) -> i64 {
    let answer = server.sql(root, "SELECT count(*) AS n FROM app.items");
    answer
        .rows(0)
        .first()
        .and_then(|row| row[0].as_str().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("a count: {}", answer.text))
}

/// Inserts rows with ascending ids, one statement each, counting those acknowledged.
struct Writer {
    root: String,
    acknowledged: i64,
}

impl Writer {
    fn new(server: &TestServer) -> Self {
        let root = server.root();
        server.sql_ok(
            &root,
            "CREATE NAMESPACE app; CREATE SHARED TABLE app.items (id BIGINT PRIMARY KEY, body TEXT)",
        );
        Self { root, acknowledged: 0 }
    }

    /// Inserts the next row (three copies of a 2 kB text): its answer.
    fn insert(&mut self, server: &TestServer) -> calamus_tests::server::Answer {
        let id = self.acknowledged + 1;
        let answer = server.sql(
            &self.root,
            &format!("INSERT INTO app.items VALUES ({id}, '{}')", "x".repeat(2000)),
        );
        if answer.status == 200 {
            self.acknowledged = id;
        }
        answer
    }

    /// Inserts until `failures` inserts failed (at most 500 tries); gives the failures.
    fn insert_until_refused(&mut self, server: &TestServer, failures: usize) -> Vec<calamus_tests::server::Answer> {
        let mut refused = Vec::new();
        for _ in 0..500 {
            let answer = self.insert(server);
            if answer.status != 200 {
                refused.push(answer);
                if refused.len() == failures {
                    break;
                }
            }
        }
        refused
    }
}

/// With the default guard (a floor of free space), a full disk refuses writes with 507
/// before the engine's log write can fail: nothing of a refused write is applied, reads go
/// on, and once space is freed writes work again without a restart.
fn a_full_disk_refuses_writes_and_they_resume_when_space_is_freed(backend: StorageBackend) {
    let disk = SmallDisk::mount(48);
    let server = start(backend, &disk, 4 << 20);
    let mut writer = Writer::new(&server);
    for _ in 0..50 {
        assert_eq!(writer.insert(&server).status, 200);
    }
    let balloon = disk.fill();
    let refused = writer.insert_until_refused(&server, 3);
    assert_eq!(refused.len(), 3, "{backend}: writes kept succeeding on a full disk");
    for answer in &refused {
        assert_eq!(answer.status, 507, "{}", answer.text);
        assert_eq!(answer.code(), "INSUFFICIENT_STORAGE");
        assert!(answer.text.contains("disk full"), "{}", answer.text);
    }
    // Exactly the acknowledged rows: a refused write left nothing behind.
    assert_eq!(count(&server, &writer.root), writer.acknowledged);
    let flush = server.sql(&writer.root, "FLUSH TABLE app.items");
    assert_eq!(flush.status, 507, "a flush on a full disk: {}", flush.text);
    assert!(leftover_temporary_files(&disk.mount).is_empty());
    assert_eq!(count(&server, &writer.root), writer.acknowledged);

    std::fs::remove_file(&balloon).expect("remove the balloon");
    for _ in 0..20 {
        let answer = writer.insert(&server);
        assert_eq!(answer.status, 200, "{backend}: once space was freed: {}", answer.text);
    }
    server.sql_ok(&writer.root, "FLUSH TABLE app.items");
    assert_eq!(count(&server, &writer.root), writer.acknowledged);
    drop(server);
    let server = start(backend, &disk, 4 << 20);
    assert_eq!(count(&server, &server.root()), writer.acknowledged);
}

/// Without the guard, the engine's own write fails for want of space: the error says so
/// (507), the server stays up and serves reads, and after space is freed and the server
/// restarted every acknowledged row is there (the failed write whole or not at all).
fn an_engine_write_failing_for_space_is_a_clear_error_and_loses_nothing(backend: StorageBackend) {
    let disk = SmallDisk::mount(48);
    let server = start(backend, &disk, 0);
    let mut writer = Writer::new(&server);
    for _ in 0..50 {
        assert_eq!(writer.insert(&server).status, 200);
    }
    let balloon = disk.fill();
    let failed = writer.insert_until_refused(&server, 1);
    assert_eq!(failed.len(), 1, "{backend}: writes kept succeeding on a full disk");
    assert_eq!(failed[0].status, 507, "{}", failed[0].text);
    assert!(failed[0].text.contains("No space left on device"), "{}", failed[0].text);
    assert!(failed[0].text.contains("restart the server"), "{}", failed[0].text);
    let rows = count(&server, &writer.root);
    assert!(
        rows == writer.acknowledged || rows == writer.acknowledged + 1,
        "{rows} rows, {} acknowledged",
        writer.acknowledged
    );
    // Its graceful shutdown syncs the store, which may fail again: the process ends either way.
    if let Err(e) = server.stop_with_result() {
        eprintln!("{backend}: the shutdown after the failed write reported: {e}");
    }

    std::fs::remove_file(&balloon).expect("remove the balloon");
    let server = start(backend, &disk, 0);
    let rows = count(&server, &server.root());
    assert!(
        rows == writer.acknowledged || rows == writer.acknowledged + 1,
        "{rows} rows, {} acknowledged",
        writer.acknowledged
    );
    let mut writer = Writer {
        root: server.root(),
        acknowledged: rows,
    };
    for _ in 0..10 {
        assert_eq!(writer.insert(&server).status, 200);
    }
    assert_eq!(count(&server, &writer.root), rows + 10);
}

/// A data directory on a file system mounted read-only (Linux refuses to remount one
/// read-only while the server holds files open for writing, so the fault comes between two
/// runs): the server refuses to start, saying why, and starts with every row once the file
/// system is writable again.
fn a_read_only_disk_is_a_clear_start_error_and_nothing_is_lost(backend: StorageBackend) {
    let disk = SmallDisk::mount(48);
    let server = start(backend, &disk, 4 << 20);
    let mut writer = Writer::new(&server);
    for _ in 0..20 {
        assert_eq!(writer.insert(&server).status, 200);
    }
    drop(server);
    disk.set_read_only(true);
    let refused = TestServer::try_start_in(backend, &disk.mount.join("data"), |_| {});
    let error = refused.err().expect("a server on a read-only disk must not start");
    assert!(error.to_string().contains("Read-only file system"), "{error}");
    disk.set_read_only(false);
    let server = start(backend, &disk, 4 << 20);
    assert_eq!(count(&server, &server.root()), writer.acknowledged);
    let mut writer = Writer {
        root: server.root(),
        acknowledged: writer.acknowledged,
    };
    assert_eq!(writer.insert(&server).status, 200);
}

/// Segment files (`batch-<n>.parquet`) under `folder`.
fn segment_files(folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(segment_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            found.push(path);
        }
    }
    found
}

/// The store's file system turns read-only under a running server: writes and flushes fail
/// with 507 naming the cause and apply nothing, reads and the server go on, and once the
/// file system is writable again writes and flushes work without a restart; after one,
/// every acknowledged row is there and no segment file is left that no manifest names.
fn a_store_turned_read_only_under_the_server_refuses_writes_and_recovers(backend: StorageBackend) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let read_only = Arc::new(AtomicBool::new(false));
    let fault = Arc::clone(&read_only);
    // The store's writes fail as the backends report `EROFS` while `read_only` is set.
    let layer: calamus::StoreLayer = Box::new(move |inner| {
        let check: WriteCheck = Box::new(move || {
            if fault.load(Ordering::SeqCst) {
                return Err(DomainError::DiskReadOnly(
                    "writing the store: Read-only file system (os error 30)".into(),
                ));
            }
            Ok(())
        });
        Arc::new(WriteGate::new(inner, check))
    });
    let server = TestServer::try_start_layered(backend, &data_dir, |_| {}, layer).expect("the server starts");
    let mut writer = Writer::new(&server);
    for _ in 0..20 {
        assert_eq!(writer.insert(&server).status, 200);
    }

    read_only.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let answer = writer.insert(&server);
        assert_eq!(
            answer.status, 507,
            "{backend}: a write on a read-only store: {}",
            answer.text
        );
        assert_eq!(answer.code(), "INSUFFICIENT_STORAGE");
        assert!(answer.text.contains("read-only"), "{}", answer.text);
    }
    for sql in [
        "UPDATE app.items SET body = 'changed' WHERE id = 1",
        "DELETE FROM app.items WHERE id = 2",
        "CREATE SHARED TABLE app.more (id BIGINT PRIMARY KEY)",
    ] {
        let answer = server.sql(&writer.root, sql);
        assert_eq!(answer.status, 507, "{sql}: {}", answer.text);
    }
    let flush = server.sql(&writer.root, "FLUSH TABLE app.items");
    assert_eq!(flush.status, 507, "a flush on a read-only store: {}", flush.text);
    // Nothing applied; reads and the server go on.
    assert_eq!(count(&server, &writer.root), writer.acknowledged);
    let unchanged = server.sql_ok(
        &writer.root,
        "SELECT count(*) AS n FROM app.items WHERE body = 'changed'",
    );
    assert_eq!(unchanged.rows(0)[0][0], "0", "{}", unchanged.text);
    assert_eq!(server.request("GET", "/health", None, None).status, 200);

    read_only.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        let answer = writer.insert(&server);
        assert_eq!(answer.status, 200, "{backend}: once writable again: {}", answer.text);
    }
    server.sql_ok(&writer.root, "FLUSH TABLE app.items");
    assert_eq!(count(&server, &writer.root), writer.acknowledged);
    drop(server);

    let server = TestServer::start_in(backend, &data_dir, |_| {});
    let root = server.root();
    assert_eq!(count(&server, &root), writer.acknowledged);
    let named = server.sql_ok(&root, "SELECT count(*) AS n FROM app.items WHERE id = 1");
    assert_eq!(named.rows(0)[0][0], "1", "{}", named.text);
    assert_eq!(
        segment_files(&data_dir).len(),
        1,
        "only the flush that committed left a segment"
    );
    assert!(leftover_temporary_files(&data_dir).is_empty());
}

/// A storage's folder on a file system remounted read-only under a running server (it holds
/// no open file between flushes): a flush fails with 507 naming the cause and leaves no
/// file, the rows stay hot and readable, writes go on, and once the file system is writable
/// again the flush succeeds without a restart.
fn a_storage_turned_read_only_under_the_server_fails_flushes_and_recovers(backend: StorageBackend) {
    let disk = SmallDisk::mount(16);
    let server = TestServer::start(backend);
    let root = server.root();
    let base = disk.mount.join("cold");
    server.sql_ok(
        &root,
        &format!(
            "CREATE STORAGE ramdisk TYPE 'filesystem' BASE_DIRECTORY '{}'; CREATE NAMESPACE app; \
             CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (STORAGE_ID = 'ramdisk')",
            base.display()
        ),
    );
    let insert = |ids: std::ops::Range<i64>| {
        for id in ids {
            server.sql_ok(&root, &format!("INSERT INTO app.notes VALUES ({id}, 'note {id}')"));
        }
    };
    let notes = || {
        let answer = server.sql_ok(&root, "SELECT count(*) AS n FROM app.notes");
        answer.rows(0)[0][0]
            .as_str()
            .and_then(|n| n.parse::<i64>().ok())
            .expect("a count")
    };
    insert(0..20);
    server.sql_ok(&root, "FLUSH TABLE app.notes");
    insert(20..30);

    disk.set_read_only(true);
    let flush = server.sql(&root, "FLUSH TABLE app.notes");
    assert_eq!(
        flush.status, 507,
        "{backend}: a flush to a read-only storage: {}",
        flush.text
    );
    assert_eq!(flush.code(), "INSUFFICIENT_STORAGE");
    assert!(flush.text.contains("Read-only file system"), "{}", flush.text);
    assert_eq!(notes(), 30);
    insert(30..35);
    assert_eq!(notes(), 35);
    let jobs = server.sql_ok(
        &root,
        "SELECT status FROM system.jobs WHERE job_type = 'flush' ORDER BY created_at DESC LIMIT 1",
    );
    assert_eq!(jobs.rows(0)[0][0], "failed", "{}", jobs.text);

    disk.set_read_only(false);
    assert!(leftover_temporary_files(&base).is_empty());
    assert_eq!(segment_files(&base).len(), 1);
    server.sql_ok(&root, "FLUSH TABLE app.notes");
    assert_eq!(segment_files(&base).len(), 2);
    assert_eq!(notes(), 35);
    drop(server);
}

calamus_tests::on_both_backends!(
    a_store_turned_read_only_under_the_server_refuses_writes_and_recovers,
    a_storage_turned_read_only_under_the_server_fails_flushes_and_recovers,
    a_read_only_disk_is_a_clear_start_error_and_nothing_is_lost,
    a_full_disk_refuses_writes_and_they_resume_when_space_is_freed,
    an_engine_write_failing_for_space_is_a_clear_error_and_loses_nothing,
);
