//! Calamus's own sqllogictest suite (`tests/slt/*.slt`) over HTTP, against a real server on
//! every storage backend: every record must pass, as it does in-process (`slt.rs`).
//!
//! The scripts reuse names (namespace `app`, users `alice` and `bob`) and each expects an
//! empty database, so every file runs against a server of its own.

use std::path::Path;

use calamus::StorageBackend;
use calamus_tests::server::TestServer;
use calamus_tests::slt::{self, SltConfig, SltTarget};

/// Failures listed per file.
const MAX_LISTED: usize = 50;

fn run_suite(backend: StorageBackend) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let files = slt::find_scripts(&dir, "slt").expect("tests/slt can be listed");
    assert!(!files.is_empty(), "no *.slt script under {}", dir.display());
    let mut failing = Vec::new();
    for file in &files {
        let server = TestServer::start(backend);
        let mut config = SltConfig::new(backend);
        config.target = SltTarget::Http {
            url: server.url(""),
            root_password: String::new(),
        };
        let Some(mut report) = slt::run_files(&config, std::slice::from_ref(file), 1).pop() else {
            panic!("no report for {}", file.1);
        };
        drop(server.stop());
        report.backend = format!("{backend} over HTTP");
        print!("{}", report.render(MAX_LISTED));
        if !report.failures.is_empty() {
            failing.push(format!("{}: {} failures", report.name, report.failures.len()));
        }
    }
    assert!(
        failing.is_empty(),
        "sqllogictest suite over HTTP on {backend}:\n{}",
        failing.join("\n")
    );
}

#[test]
fn slt_suite_passes_over_http_on_rocksdb() {
    run_suite(StorageBackend::RocksDb);
}

#[test]
fn slt_suite_passes_over_http_on_sled() {
    run_suite(StorageBackend::Sled);
}
