//! Durability: what was acknowledged is there after the store is closed, synced, or its
//! process killed, and reopened.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use calamus_domain::{KeyRange, KvEngine, WriteBatch};

use super::keyspaces::assert_keyspace_not_found;
use super::{Fixture, Opener};

/// Set in the child process of the killed-process test: the store directory it writes to.
const CHILD_STORE: &str = "CALAMUS_KV_CONFORMANCE_CHILD_STORE";
/// Printed by that child once every write was acknowledged.
const ACKNOWLEDGED: &str = "calamus-kv-conformance: all writes acknowledged";

/// Writes a mix of every kind of op, each batch on its own, into a new store.
fn write_workload(kv: &dyn KvEngine) {
    for keyspace in ["rows", "index", "dropped"] {
        kv.create_keyspace(keyspace).expect("create keyspace");
    }
    for i in 0u32..200 {
        let mut batch = WriteBatch::new();
        batch.put("rows", i.to_be_bytes().to_vec(), format!("row {i}").into_bytes());
        batch.put("index", format!("{i:05}").into_bytes(), i.to_be_bytes().to_vec());
        kv.write(batch).expect("write");
    }
    let mut batch = WriteBatch::new();
    batch.put("rows", 7u32.to_be_bytes().to_vec(), b"overwritten".to_vec());
    batch.delete("rows", 8u32.to_be_bytes().to_vec());
    batch.delete_range("index", b"00100".to_vec(), b"00200".to_vec());
    batch.put("rows", b"large".to_vec(), vec![0xAB; 1024 * 1024]);
    batch.put("rows", b"empty".to_vec(), Vec::new());
    kv.write(batch).expect("write");
    let mut batch = WriteBatch::new();
    batch.put("dropped", b"k".to_vec(), b"v".to_vec());
    kv.write(batch).expect("write");
    kv.drop_keyspace("dropped").expect("drop keyspace");
    // Last, a small write: large ones may reach the disk early in any engine.
    let mut batch = WriteBatch::new();
    batch.put("rows", b"last".to_vec(), b"small".to_vec());
    kv.write(batch).expect("write");
}

/// Checks that a store holds exactly what [`write_workload`] acknowledged.
fn check_workload(store: &Fixture) {
    assert_eq!(store.kv.keyspaces().expect("list"), ["index", "rows"]);
    assert_keyspace_not_found(store.kv.get("dropped", b"k"), "dropped");
    let rows = store.scan("rows", KeyRange::all(), false);
    assert_eq!(rows.len(), 199 + 3);
    assert_eq!(store.get("rows", b"last"), Some(b"small".to_vec()));
    assert_eq!(store.get("rows", &7u32.to_be_bytes()), Some(b"overwritten".to_vec()));
    assert_eq!(store.get("rows", &8u32.to_be_bytes()), None);
    assert_eq!(store.get("rows", &199u32.to_be_bytes()), Some(b"row 199".to_vec()));
    assert_eq!(store.get("rows", b"large"), Some(vec![0xAB; 1024 * 1024]));
    assert_eq!(store.get("rows", b"empty"), Some(Vec::new()));
    let index = store.keys("index", KeyRange::all(), false);
    let expected: Vec<Vec<u8>> = (0..100).map(|i| format!("{i:05}").into_bytes()).collect();
    assert_eq!(index, expected);
}

/// Closing the store (dropping the engine, no `sync`) and reopening it keeps every
/// acknowledged write, keyspace creation and keyspace drop.
pub fn acknowledged_writes_survive_reopen(open: Opener) {
    let store = Fixture::new(open);
    write_workload(&*store.kv);
    let store = store.reopen();
    check_workload(&store);
    // And a second time, after reading only.
    check_workload(&store.reopen());
}

/// Keyspaces created and dropped are still so after a reopen, including a dropped one that
/// was recreated empty.
pub fn keyspaces_survive_reopen(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["b", "a", "recreated", "gone"]);
    store.put("recreated", b"old", b"v");
    store.kv.drop_keyspace("recreated").expect("drop");
    store.kv.drop_keyspace("gone").expect("drop");
    store.kv.create_keyspace("recreated").expect("recreate");
    store.put("recreated", b"new", b"v");
    let store = store.reopen();
    assert_eq!(store.kv.keyspaces().expect("list"), ["a", "b", "recreated"]);
    assert_eq!(store.keys("recreated", KeyRange::all(), false), [b"new".to_vec()]);
    store.kv.create_keyspace("c").expect("create after reopen");
    assert_eq!(store.kv.keyspaces().expect("list"), ["a", "b", "c", "recreated"]);
}

/// `sync` succeeds (also with nothing to sync) and the store reopens with everything.
pub fn sync_then_reopen(open: Opener) {
    let store = Fixture::new(open);
    store.kv.sync().expect("sync an empty store");
    write_workload(&*store.kv);
    store.kv.sync().expect("sync");
    check_workload(&store.reopen());
}

/// A process killed (SIGKILL on Unix: no destructor, no flush) right after its writes were
/// acknowledged loses none of them.
///
/// `test_name` is this test's own name in the test binary: the binary runs itself again
/// with only this test, in a child process that writes and then waits to be killed.
pub fn acknowledged_writes_survive_a_killed_process(open: Opener, test_name: &str) {
    if let Some(dir) = std::env::var_os(CHILD_STORE) {
        let kv = open(Path::new(&dir));
        write_workload(&*kv);
        // libtest has already printed the test's name on this line.
        println!("\n{ACKNOWLEDGED}");
        // Keep the store open until the parent kills this process.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }

    let dir = tempfile::tempdir().expect("create a temporary directory");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_STORE, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writing process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let acknowledged = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(ACKNOWLEDGED));
    child.kill().expect("kill the writing process");
    child.wait().expect("wait for the writing process");
    assert!(
        acknowledged,
        "the writing process ended before acknowledging its writes"
    );

    let killed = Fixture {
        kv: open(dir.path()),
        dir,
        open,
    };
    check_workload(&killed);
}
