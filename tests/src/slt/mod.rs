//! A sqllogictest runner for Calamus, on the `sqllogictest` crate: in-process, or against a
//! running server over HTTP.
//!
//! - [`script`]: loading a file (with the fixes SQLite's scripts need);
//! - [`connection`]: a connection is an engine session; `connection NAME` acts as user NAME;
//! - [`http`]: the same over a server's SQL endpoint; [`wire`]: its JSON results as Arrow;
//! - [`format`]: how result values and column types print;
//! - [`runner`]: running files record by record against fresh databases or a server;
//! - [`report`]: per-file counts and failures;
//! - [`known`]: the list of intended differences of third-party scripts.
//!
//! As in the crate, a `connection NAME` record applies to the one statement or query that
//! follows it; records without one run on the default connection, root.

pub mod connection;
pub mod format;
pub mod http;
pub mod known;
pub mod report;
pub mod runner;
pub mod script;
pub mod wire;

pub use connection::{CalamusConnection, RUNNER_PASSWORD, SltError};
pub use format::ValueStyle;
pub use http::{HttpConnection, HttpTarget};
pub use known::{KnownDifference, KnownDifferences};
pub use report::{Failure, FileReport};
pub use runner::{Conventions, DEFAULT_LABELS, HTTP_LABEL, SltConfig, SltTarget, run_file, run_files};
pub use script::find_scripts;

/// Failures listed per file by [`assert_all_pass`].
const MAX_LISTED: usize = 50;

/// The project's own scripts, `tests/slt/*.slt`.
pub fn own_scripts() -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let files = find_scripts(&dir, "slt").expect("tests/slt can be listed");
    assert!(!files.is_empty(), "no *.slt script under {}", dir.display());
    files
}

/// Prints every report and fails, naming the files, unless every record of every report
/// passed; `what` says where the scripts ran.
pub fn assert_all_pass(reports: &[FileReport], what: &str) {
    let mut failing = Vec::new();
    for report in reports {
        print!("{}", report.render(MAX_LISTED));
        if !report.failures.is_empty() {
            failing.push(format!("{}: {} failures", report.name, report.failures.len()));
        }
    }
    assert!(failing.is_empty(), "sqllogictest suite {what}:\n{}", failing.join("\n"));
}
