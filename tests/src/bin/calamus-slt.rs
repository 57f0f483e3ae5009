//! `calamus-slt`: runs sqllogictest scripts against an in-process Calamus, each file on a
//! fresh database in a temporary directory, or against a running server over HTTP, and
//! prints per-file counts and failures.
//!
//! ```text
//! cargo run -p calamus-tests --bin calamus-slt -- [--backend rocksdb|sled] [--label postgresql] FILE...
//! cargo run -p calamus-tests --bin calamus-slt -- --url http://127.0.0.1:8080 [--root-password PW] FILE...
//! ```
//! With `--url`, the files run in the order given against that one server, which is not
//! reset between them: each sees what the earlier ones left. Calamus's own scripts
//! (`tests/slt`) expect an empty database each, so run them one per fresh server (or use
//! `cargo test -p calamus-tests --test slt_http`, which does).
//!
//! Exits with status 1 when any record failed (other than a listed known difference).

use std::path::PathBuf;
use std::process::ExitCode;

use calamus::StorageBackend;
use calamus_tests::slt::{self, KnownDifferences, SltConfig, SltTarget};
use clap::Parser;

/// Run sqllogictest scripts against Calamus, in-process or over HTTP.
#[derive(Debug, Parser)]
#[command(name = "calamus-slt")]
struct Args {
    /// Storage backend of the databases the scripts run on: rocksdb or sled (ignored with
    /// `--url`).
    #[arg(long, default_value = "rocksdb")]
    backend: String,
    /// Run the scripts against the server at this URL (`http://host:port`) instead of
    /// in-process; the files run in order against that one server, which is not reset.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Root's password on the server of `--url` (default: empty, which a server without a
    /// root password accepts from loopback).
    #[arg(long, value_name = "PW", default_value = "", requires = "url")]
    root_password: String,
    /// Engine label for `skipif`/`onlyif` (repeatable); replaces the defaults
    /// `postgresql` and `calamus`.
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,
    /// A list of known differences (`FILE:LINE reason` per line): listed failures are
    /// reported but do not fail the run.
    #[arg(long, value_name = "FILE")]
    known_differences: Option<PathBuf>,
    /// Read scripts with SQLite's conventions (one expected value per line, booleans as
    /// 1/0, results of more than 8 values hashed); by default only `*.test` files are.
    #[arg(long, value_name = "BOOL")]
    sqlite_conventions: Option<bool>,
    /// How many failures to list per file.
    #[arg(long, default_value_t = 20)]
    max_listed: usize,
    /// Instead of the failures' details, print each unexpected failure as a line of a
    /// known-differences list (`FILE:LINE <the error or mismatch>`), to edit into reasons.
    #[arg(long)]
    list_failures: bool,
    /// The scripts.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend: StorageBackend = match (&args.url, args.backend.parse()) {
        (Some(_), _) => StorageBackend::RocksDb,
        (None, Ok(backend)) => backend,
        (None, Err(e)) => {
            eprintln!("calamus-slt: {e}");
            return ExitCode::from(2);
        }
    };
    let known = match &args.known_differences {
        Some(path) => match KnownDifferences::load(path) {
            Ok(known) => known,
            Err(e) => {
                eprintln!("calamus-slt: {e}");
                return ExitCode::from(2);
            }
        },
        None => KnownDifferences::default(),
    };
    let mut config = SltConfig::new(backend);
    if let Some(url) = &args.url {
        config.target = SltTarget::Http {
            url: url.clone(),
            root_password: args.root_password.clone(),
        };
    }
    config.sqlite_conventions = args.sqlite_conventions;
    if !args.labels.is_empty() {
        config.labels = args.labels.iter().cloned().collect();
    }

    let (mut passed, mut failed, mut skipped, mut unexpected) = (0, 0, 0, 0);
    let mut reports = Vec::new();
    for path in &args.files {
        // One file at a time, on a runner thread (its stack fits planning big joins).
        let file = [(path.clone(), path.display().to_string())];
        let Some(mut report) = slt::run_files(&config, &file, 1).pop() else {
            continue;
        };
        let stale = known.apply(&mut report);
        if args.list_failures {
            println!("# {}", report.summary());
            for failure in report.unexpected() {
                let what = match failure.actual.strip_prefix("error: ") {
                    Some(error) => error.lines().next().unwrap_or("error").trim(),
                    None => "wrong result",
                };
                println!("{}:{} {what}", report.name, failure.line);
            }
        } else {
            print!("{}", report.render(args.max_listed));
        }
        for entry in stale {
            println!(
                "  note: known difference {}:{} no longer fails ({})",
                entry.file, entry.line, entry.reason
            );
        }
        passed += report.passed;
        failed += report.failures.len();
        skipped += report.skipped;
        unexpected += report.unexpected().count();
        reports.push(report);
    }
    for entry in known.unmatched_errors(&reports) {
        println!(
            "  note: no failure of these scripts gives the known error \"{}\" (line {} of the list)",
            entry.error, entry.list_line
        );
    }
    if args.files.len() > 1 {
        println!("total: {passed} passed, {failed} failed ({unexpected} unexpected), {skipped} skipped");
    }
    if unexpected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
