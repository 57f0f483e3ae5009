//! Calamus's own sqllogictest suite (`tests/slt/*.slt`) over HTTP, against a real server on
//! every storage backend: every record must pass, as it does in-process (`slt.rs`).
//!
//! The scripts reuse names (namespace `app`, users `alice` and `bob`) and each expects an
//! empty database, so every file runs against a server of its own.

use calamus::StorageBackend;
use calamus_tests::server::TestServer;
use calamus_tests::slt::{self, SltConfig, SltTarget};

fn run_suite(backend: StorageBackend) {
    let mut reports = Vec::new();
    for file in slt::own_scripts() {
        let server = TestServer::start(backend);
        let mut config = SltConfig::new(backend);
        config.target = SltTarget::Http {
            url: server.url(""),
            root_password: String::new(),
        };
        let Some(mut report) = slt::run_files(&config, std::slice::from_ref(&file), 1).pop() else {
            panic!("no report for {}", file.1);
        };
        drop(server.stop());
        report.backend = format!("{backend} over HTTP");
        reports.push(report);
    }
    slt::assert_all_pass(&reports, &format!("over HTTP on {backend}"));
}

#[test]
fn slt_suite_passes_over_http_on_rocksdb() {
    run_suite(StorageBackend::RocksDb);
}

#[test]
fn slt_suite_passes_over_http_on_sled() {
    run_suite(StorageBackend::Sled);
}
