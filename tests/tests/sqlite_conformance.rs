//! SQLite's sqllogictest scripts (`/work/shared/conformance/sqlite`, or the directory in
//! `CALAMUS_CONFORMANCE_DIR`) on the RocksDB backend: they test SQL, not storage.
//!
//! Every failure must be listed in `slt/known-differences.txt` (an intended semantic
//! difference of DataFusion from SQLite, with its reason); every listed entry must still
//! fail. Run with `-- --nocapture` to see the per-file counts of a passing run.
//!
//! The scripts hold about 11,000 records; a debug build runs them in tens of minutes
//! (`select5.test`'s joins of up to 64 tables are the slowest). To run some of them, set
//! `CALAMUS_CONFORMANCE_FILTER` to comma-separated parts of their names (`select1,in1`).

use std::path::{Path, PathBuf};

use calamus::StorageBackend;
use calamus_tests::slt::{self, KnownDifferences, SltConfig};

/// Failures listed per file.
const MAX_LISTED: usize = 20;

/// Where the scripts are: `CALAMUS_CONFORMANCE_DIR`, else `shared/conformance/sqlite`
/// beside the checkout, else the shared folder of this machine (a clone elsewhere).
fn conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CALAMUS_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/sqlite");
    let machine = PathBuf::from("/work/shared/conformance/sqlite");
    if !beside.is_dir() && machine.is_dir() {
        machine
    } else {
        beside
    }
}

#[test]
fn sqlite_scripts_pass_on_rocksdb() {
    let dir = conformance_dir();
    assert!(
        dir.is_dir(),
        "the SQLite conformance scripts are not at {}: check out the shared conformance data \
         there or point CALAMUS_CONFORMANCE_DIR at the directory holding select1.test",
        dir.display()
    );
    let mut files = slt::find_scripts(&dir, "test").expect("the conformance directory can be listed");
    assert!(!files.is_empty(), "no *.test script under {}", dir.display());
    if let Ok(filter) = std::env::var("CALAMUS_CONFORMANCE_FILTER") {
        let parts: Vec<&str> = filter.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        files.retain(|(_, name)| parts.iter().any(|part| name.contains(part)));
        assert!(
            !files.is_empty(),
            "CALAMUS_CONFORMANCE_FILTER={filter} matches no script"
        );
    }
    let known_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt/known-differences.txt");
    let known = KnownDifferences::load(&known_path).unwrap_or_else(|e| panic!("{e}"));

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut reports = slt::run_files(&SltConfig::new(StorageBackend::RocksDb), &files, threads);

    let mut problems = Vec::new();
    let (mut passed, mut failed, mut skipped, mut seconds) = (0, 0, 0, 0.0);
    for report in &mut reports {
        let stale = known.apply(report);
        print!("{}", report.render(MAX_LISTED));
        passed += report.passed;
        failed += report.failures.len();
        skipped += report.skipped;
        seconds += report.elapsed.as_secs_f64();
        let unexpected = report.unexpected().count();
        if unexpected > 0 {
            problems.push(format!("{}: {unexpected} unexpected failures", report.name));
        }
        for entry in stale {
            problems.push(format!(
                "known-differences.txt:{}: {}:{} no longer fails; remove the entry",
                entry.list_line, entry.file, entry.line
            ));
        }
    }
    if std::env::var_os("CALAMUS_CONFORMANCE_FILTER").is_none() {
        for entry in known.entries_of_missing_files(&reports) {
            problems.push(format!(
                "known-differences.txt:{}: no script {} ran; fix or remove the entry",
                entry.list_line, entry.file
            ));
        }
        for entry in known.unmatched_errors(&reports) {
            problems.push(format!(
                "known-differences.txt:{}: no failure gives the error \"{}\" any more; remove the entry",
                entry.list_line, entry.error
            ));
        }
    }
    println!("total: {passed} passed, {failed} failed, {skipped} skipped, {seconds:.1} s of script time");
    assert!(problems.is_empty(), "SQLite conformance:\n{}", problems.join("\n"));
}
