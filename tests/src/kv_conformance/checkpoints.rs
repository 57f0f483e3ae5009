//! Checkpoints: a copy of every keyspace as of one moment, which the backend opens like its
//! own store, taken while writes go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use calamus_domain::{KeyRange, WriteBatch};

use super::{Fixture, Opener};

/// The copy holds exactly what was written before the checkpoint: later writes, and
/// keyspaces dropped before it, are not in it; the source store goes on unchanged.
pub fn checkpoint_is_a_copy_as_of_one_moment(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["rows", "index", "dropped"]);
    for i in 0u32..500 {
        let mut batch = WriteBatch::new();
        batch.put("rows", i.to_be_bytes().to_vec(), format!("row {i}").into_bytes());
        batch.put("index", format!("{i:05}").into_bytes(), Vec::new());
        store.write(batch);
    }
    store.put("rows", b"large", &vec![0xCD; 512 * 1024]);
    store.kv.drop_keyspace("dropped").expect("drop");
    let copies = tempfile::tempdir().expect("a temporary directory");
    let target = copies.path().join("checkpoint");
    store.kv.checkpoint(&target).expect("checkpoint");
    store.put("rows", b"after", b"not in the copy");
    store.kv.create_keyspace("later").expect("create");

    let copy = open(&target);
    assert_eq!(copy.keyspaces().expect("list"), ["index", "rows"]);
    let rows: Vec<_> = copy
        .scan("rows", KeyRange::all(), false)
        .expect("scan")
        .collect::<Result<_, _>>()
        .expect("scan");
    assert_eq!(rows.len(), 501);
    assert_eq!(
        copy.get("rows", &42u32.to_be_bytes()).expect("get"),
        Some(b"row 42".to_vec())
    );
    assert_eq!(copy.get("rows", b"large").expect("get"), Some(vec![0xCD; 512 * 1024]));
    assert_eq!(copy.get("rows", b"after").expect("get"), None);
    assert_eq!(store.get("rows", b"after"), Some(b"not in the copy".to_vec()));
    // The copy is a store of its own: writing it leaves the source alone.
    let mut batch = WriteBatch::new();
    batch.put("rows", b"copy-only".to_vec(), b"v".to_vec());
    copy.write(batch).expect("write the copy");
    assert_eq!(store.get("rows", b"copy-only"), None);
}

/// A checkpoint taken while another thread writes batches across two keyspaces holds every
/// batch whole or not at all, and a prefix of them: no batch is half in the copy.
pub fn checkpoint_under_concurrent_writes_holds_whole_batches(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["a", "b"]);
    let kv = Arc::clone(&store.kv);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut written = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = WriteBatch::new();
                batch.put("a", written.to_be_bytes().to_vec(), b"a".to_vec());
                batch.put("b", written.to_be_bytes().to_vec(), b"b".to_vec());
                kv.write(batch).expect("write");
                written += 1;
            }
            written
        })
    };
    // Let some batches land first.
    while store.kv.get("a", &200u32.to_be_bytes()).expect("get").is_none() {
        std::thread::yield_now();
    }
    let copies = tempfile::tempdir().expect("a temporary directory");
    let target = copies.path().join("checkpoint");
    store.kv.checkpoint(&target).expect("checkpoint");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("the writer");

    let copy = open(&target);
    let keys = |keyspace: &str| -> Vec<Vec<u8>> {
        copy.scan(keyspace, KeyRange::all(), false)
            .expect("scan")
            .map(|pair| pair.expect("scan").0)
            .collect()
    };
    let (a, b) = (keys("a"), keys("b"));
    assert_eq!(a, b, "a batch is half in the checkpoint");
    let expected: Vec<Vec<u8>> = (0..a.len() as u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(a, expected, "the checkpoint is not a prefix of the batches");
    assert!(a.len() > 200 && a.len() as u32 <= written, "{} of {written}", a.len());
}

/// A checkpoint into a folder that exists is an error, and writes nothing there.
pub fn checkpoint_into_an_existing_folder_is_refused(open: Opener) {
    let store = Fixture::with_keyspaces(open, &["a"]);
    store.put("a", b"k", b"v");
    let copies = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(copies.path().join("keep.txt"), b"mine").expect("write");
    assert!(store.kv.checkpoint(copies.path()).is_err());
    assert_eq!(std::fs::read(copies.path().join("keep.txt")).expect("read"), b"mine");
}
