//! An in-process sqllogictest runner for Calamus, on the `sqllogictest` crate.
//!
//! - [`script`]: loading a file (with the fixes SQLite's scripts need);
//! - [`connection`]: a connection is an engine session; `connection NAME` acts as user NAME;
//! - [`format`]: how result values and column types print;
//! - [`runner`]: running files record by record against fresh databases;
//! - [`report`]: per-file counts and failures;
//! - [`known`]: the list of intended differences of third-party scripts.
//!
//! As in the crate, a `connection NAME` record applies to the one statement or query that
//! follows it; records without one run on the default connection, root.

pub mod connection;
pub mod format;
pub mod known;
pub mod report;
pub mod runner;
pub mod script;

pub use connection::{CalamusConnection, RUNNER_PASSWORD, SltError};
pub use format::ValueStyle;
pub use known::{KnownDifference, KnownDifferences};
pub use report::{Failure, FileReport};
pub use runner::{Conventions, DEFAULT_LABELS, SltConfig, run_file, run_files};
pub use script::find_scripts;
