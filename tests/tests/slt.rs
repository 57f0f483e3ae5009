//! Calamus's own sqllogictest suite (`tests/slt/*.slt`) on every storage backend: every
//! record must pass.

use std::path::Path;

use calamus::StorageBackend;
use calamus_tests::slt::{self, SltConfig};

/// Failures listed per file.
const MAX_LISTED: usize = 50;

fn run_suite(backend: StorageBackend) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let files = slt::find_scripts(&dir, "slt").expect("tests/slt can be listed");
    assert!(!files.is_empty(), "no *.slt script under {}", dir.display());
    // The two backends' tests run side by side: one file at a time each.
    let reports = slt::run_files(&SltConfig::new(backend), &files, 1);
    let mut failing = Vec::new();
    for report in &reports {
        print!("{}", report.render(MAX_LISTED));
        if !report.failures.is_empty() {
            failing.push(format!("{}: {} failures", report.name, report.failures.len()));
        }
    }
    assert!(
        failing.is_empty(),
        "sqllogictest suite on {backend}:\n{}",
        failing.join("\n")
    );
}

#[test]
fn slt_suite_passes_on_rocksdb() {
    run_suite(StorageBackend::RocksDb);
}

#[test]
fn slt_suite_passes_on_sled() {
    run_suite(StorageBackend::Sled);
}
