//! Calamus's own sqllogictest suite (`tests/slt/*.slt`) on every storage backend: every
//! record must pass.

use calamus::StorageBackend;
use calamus_tests::slt::{self, SltConfig};

fn run_suite(backend: StorageBackend) {
    // The two backends' tests run side by side: one file at a time each.
    let reports = slt::run_files(&SltConfig::new(backend), &slt::own_scripts(), 1);
    slt::assert_all_pass(&reports, &format!("on {backend}"));
}

#[test]
fn slt_suite_passes_on_rocksdb() {
    run_suite(StorageBackend::RocksDb);
}

#[test]
fn slt_suite_passes_on_sled() {
    run_suite(StorageBackend::Sled);
}
