//! Running scripts record by record, so one failure is counted and the script goes on:
//! in-process, each file against a fresh database in a temporary directory; or over HTTP
//! against a running server ([`SltTarget::Http`]).
//!
//! The runner cannot reset a server: over HTTP, scripts run one after another against the
//! same server and see what earlier scripts left. The project's scripts (`tests/slt`)
//! reuse names (namespace `app`, users `alice` and `bob`) and expect to start from an empty
//! database, so each of them needs a fresh server (as `tests/tests/slt_http.rs` does).

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use calamus::{Database, StorageBackend};
use calamus_query::QueryEngine;
use sqllogictest::{AsyncDB, Connection, Control, DefaultColumnType, Record, RecordOutput, ResultMode, Runner};

use super::connection::CalamusConnection;
use super::format::ValueStyle;
use super::http::{HttpConnection, HttpTarget};
use super::report::{Failure, FileReport};
use super::script::{self, SltRecord};

/// The stack of the threads that plan and run statements: planning a join of 64 tables
/// recurses deeper than the default 2 MiB allow in a debug build.
const STACK_SIZE: usize = 64 << 20;

/// The labels `skipif`/`onlyif` see by default: SQLite's scripts then take the
/// PostgreSQL-flavoured expectations where they offer a choice.
pub const DEFAULT_LABELS: [&str; 2] = ["postgresql", "calamus"];

/// What scripts run against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SltTarget {
    /// A fresh in-process database per file, on [`SltConfig::backend`].
    #[default]
    InProcess,
    /// A running server, over HTTP: every file against the same server, as it is.
    Http {
        /// The server's base URL, `http://host:port`.
        url: String,
        /// Root's password (empty: a server that has none yet, reached from loopback).
        root_password: String,
    },
}

/// The label `skipif`/`onlyif` see in addition when scripts run over HTTP: a record whose
/// expectation is the protocol's rather than the engine's (API.md words some failures
/// generically for roles `user` and `service`) takes it.
pub const HTTP_LABEL: &str = "http";

/// How scripts run.
#[derive(Debug, Clone)]
pub struct SltConfig {
    /// The storage backend of each fresh database (in-process only).
    pub backend: StorageBackend,
    /// In-process, or a server.
    pub target: SltTarget,
    /// The engine labels for `skipif`/`onlyif` (over HTTP, [`HTTP_LABEL`] is added).
    pub labels: HashSet<String>,
    /// Whether scripts follow SQLite's conventions ([`Conventions::sqlite`]) rather than
    /// Calamus's own; `None` decides by the file: `*.test` files are SQLite's.
    pub sqlite_conventions: Option<bool>,
}

impl SltConfig {
    /// `backend` with the [`DEFAULT_LABELS`], the conventions decided by file.
    pub fn new(backend: StorageBackend) -> Self {
        Self {
            backend,
            target: SltTarget::InProcess,
            labels: DEFAULT_LABELS.iter().map(|l| (*l).to_owned()).collect(),
            sqlite_conventions: None,
        }
    }

    /// The labels `skipif`/`onlyif` see: [`Self::labels`], and [`HTTP_LABEL`] over HTTP.
    pub fn effective_labels(&self) -> HashSet<String> {
        let mut labels = self.labels.clone();
        if matches!(self.target, SltTarget::Http { .. }) {
            labels.insert(HTTP_LABEL.to_owned());
        }
        labels
    }

    /// What reports name as the backend: the storage backend, or the server's URL.
    fn backend_name(&self) -> String {
        match &self.target {
            SltTarget::InProcess => self.backend.to_string(),
            SltTarget::Http { url, .. } => url.clone(),
        }
    }

    fn conventions_for(&self, path: &Path) -> Conventions {
        let sqlite = self
            .sqlite_conventions
            .unwrap_or_else(|| path.extension().is_some_and(|e| e == "test"));
        if sqlite {
            Conventions::sqlite()
        } else {
            Conventions::calamus()
        }
    }
}

/// How a script writes its expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conventions {
    /// How values print.
    pub value_style: ValueStyle,
    /// Expected results list one value per line rather than one row per line.
    pub value_wise: bool,
    /// Results of more values than this are compared by hash until the script sets
    /// `hash-threshold` itself (0: never).
    pub hash_threshold: usize,
}

impl Conventions {
    /// Calamus's own scripts: one row per line, booleans as `true`/`false`, no hashing.
    pub fn calamus() -> Self {
        Self {
            value_style: ValueStyle::Calamus,
            value_wise: false,
            hash_threshold: 0,
        }
    }

    /// SQLite's scripts: one value per line, booleans as `1`/`0` (its harness reads them
    /// through integer columns), results of more than 8 values hashed (the threshold its
    /// expectations were computed with).
    pub fn sqlite() -> Self {
        Self {
            value_style: ValueStyle::Sqlite,
            value_wise: true,
            hash_threshold: 8,
        }
    }
}

/// Runs the script at `path` (named `name` in the report) against a fresh database, or
/// against the server of [`SltTarget::Http`].
pub fn run_file(config: &SltConfig, path: &Path, name: &str) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport {
        name: name.to_owned(),
        backend: config.backend_name(),
        ..Default::default()
    };
    if let Err(reason) = run_file_into(config, path, &mut report) {
        report.failures.push(Failure::whole_file(reason));
    }
    report.elapsed = started.elapsed();
    report
}

fn run_file_into(config: &SltConfig, path: &Path, report: &mut FileReport) -> Result<(), String> {
    let labels = config.effective_labels();
    let records = script::load(path, &report.name, &labels).map_err(|e| e.to_string())?;
    let conventions = config.conventions_for(path);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(STACK_SIZE)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    if let SltTarget::Http { url, root_password } = &config.target {
        let target = HttpTarget::new(url, root_password);
        target.check_health()?;
        let style = conventions.value_style;
        let connect = {
            let target = target.clone();
            move |connection: Connection| {
                let target = target.clone();
                async move {
                    match connection {
                        Connection::Default => Ok(HttpConnection::root(&target, style)),
                        Connection::Named(user) => HttpConnection::for_user(&target, &user, style).await,
                    }
                }
            }
        };
        return runtime.block_on(async {
            target.check_root().await?;
            run_records_on(connect, records, &labels, &conventions, report).await;
            Ok(())
        });
    }
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    runtime.block_on(async {
        let db = Database::open(config.backend, &dir.path().join("data"))
            .map_err(|e| format!("cannot open a {} database: {e}", config.backend))?;
        let engine = Arc::clone(&db.engine);
        run_records(engine, records, &labels, &conventions, report).await;
        drop(db);
        Ok(())
    })
}

/// Runs `records` one by one against `engine`, counting each statement and query into
/// `report`.
pub async fn run_records(
    engine: Arc<QueryEngine>,
    records: Vec<SltRecord>,
    labels: &HashSet<String>,
    conventions: &Conventions,
    report: &mut FileReport,
) {
    let style = conventions.value_style;
    let connect = move |connection: Connection| {
        let engine = Arc::clone(&engine);
        async move {
            match connection {
                Connection::Default => Ok(CalamusConnection::root(engine, style)),
                Connection::Named(user) => CalamusConnection::for_user(engine, &user, style).await,
            }
        }
    };
    run_records_on(connect, records, labels, conventions, report).await;
}

/// Runs `records` one by one on connections `connect` opens (given the record's
/// `connection`, on its first use), counting each statement and query into `report`.
pub async fn run_records_on<D, C, F>(
    connect: C,
    records: Vec<SltRecord>,
    labels: &HashSet<String>,
    conventions: &Conventions,
    report: &mut FileReport,
) where
    D: AsyncDB<ColumnType = DefaultColumnType>,
    C: Fn(Connection) -> F,
    F: Future<Output = Result<D, D::Error>>,
{
    // The crate opens a connection on the first record that names it, without telling
    // which name: the record's connection is handed over through this cell.
    let next_connection = Arc::new(Mutex::new(Connection::Default));
    let make_connection = {
        let next_connection = Arc::clone(&next_connection);
        move || connect(lock(&next_connection).clone())
    };
    let mut runner = Runner::new(make_connection);
    runner.with_hash_threshold(conventions.hash_threshold);
    for label in labels {
        runner.add_label(label);
    }
    if conventions.value_wise {
        let value_wise = Record::Control(Control::ResultMode(ResultMode::ValueWise));
        if let Err(error) = runner.run_async(value_wise).await {
            report.failures.push(Failure::from_test_error(&error, ""));
        }
    }

    // CALAMUS_SLT_TRACE=1 prints every record's time as it ends: finds a hanging one.
    let trace = std::env::var_os("CALAMUS_SLT_TRACE").is_some_and(|v| v != "0");
    let mut records = records.into_iter();
    while let Some(record) = records.next() {
        let sql = match &record {
            Record::Statement { sql, connection, .. }
            | Record::Query { sql, connection, .. }
            | Record::Let { sql, connection, .. } => {
                *lock(&next_connection) = connection.clone();
                Some(sql.clone())
            }
            Record::Halt { loc } => {
                // Only halts that apply to this engine are left (see `script`).
                report.halted_at = Some(loc.line());
                report.skipped += records.by_ref().filter(is_test).count();
                break;
            }
            _ => None,
        };
        let line = record_line(&record);
        let started = Instant::now();
        let outcome = runner.run_async(record).await;
        if let Some(line) = line {
            let took = started.elapsed();
            if trace {
                eprintln!("{}:{line} {} ms", report.name, took.as_millis());
            }
            report.time_record(line, took);
        }
        match (outcome, sql) {
            (Ok(RecordOutput::Nothing), Some(_)) => report.skipped += 1,
            (Ok(_), Some(_)) => report.passed += 1,
            (Ok(_), None) => {}
            (Err(error), sql) => report
                .failures
                .push(Failure::from_test_error(&error, sql.as_deref().unwrap_or(""))),
        }
    }
    runner.shutdown_async().await;
}

/// The line of a statement, query or `let` record.
fn record_line(record: &SltRecord) -> Option<u32> {
    match record {
        Record::Statement { loc, .. } | Record::Query { loc, .. } | Record::Let { loc, .. } => Some(loc.line()),
        _ => None,
    }
}

/// Whether a record is a test: a statement, a query or a `let`.
fn is_test(record: &SltRecord) -> bool {
    record_line(record).is_some()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs every `(path, name)` of `files` with [`run_file`], `threads` files at a time; the
/// reports come back in the order of `files`. The largest files start first, so one big
/// file does not run alone at the end.
pub fn run_files(config: &SltConfig, files: &[(PathBuf, String)], threads: usize) -> Vec<FileReport> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    let size = |i: &usize| std::fs::metadata(&files[*i].0).map_or(0, |m| m.len());
    order.sort_by_key(|i| std::cmp::Reverse(size(i)));
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<FileReport>>> = Mutex::new(vec![None; files.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            let worker = std::thread::Builder::new()
                .name("slt-file".into())
                .stack_size(STACK_SIZE);
            let spawned = worker.spawn_scoped(scope, || {
                while let Some(&index) = order.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let (path, name) = &files[index];
                    let report = run_file(config, path, name);
                    lock(&reports)[index] = Some(report);
                }
            });
            spawned.expect("a thread for running scripts can be started");
        }
    });
    reports
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect()
}
