//! What running one script gives: counts per record, and each failure with its SQL, the
//! expected and the actual answer.

use std::fmt::Write as _;
use std::time::Duration;

use sqllogictest::{TestError, TestErrorKind};

/// One record that did not pass.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The line of the record's `statement`/`query` line (0 for a whole-file failure).
    pub line: u32,
    /// The record's SQL.
    pub sql: String,
    /// What the script expected.
    pub expected: String,
    /// What the engine did.
    pub actual: String,
    /// The reason, when the failure is a listed known difference.
    pub known: Option<String>,
}

impl Failure {
    /// A failure of the whole file (it cannot be read, parsed, or its database opened).
    pub fn whole_file(reason: impl Into<String>) -> Self {
        Self {
            line: 0,
            sql: String::new(),
            expected: "the script to run".into(),
            actual: reason.into(),
            known: None,
        }
    }

    /// The failure the runner reported for the record holding `sql`.
    pub fn from_test_error(error: &TestError, sql: &str) -> Self {
        let (expected, actual) = match error.kind() {
            TestErrorKind::QueryResultMismatch { expected, actual, .. } => (expected, actual),
            TestErrorKind::Fail { err, .. } => ("success".into(), format!("error: {err}")),
            TestErrorKind::ErrorMismatch { err, expected_err, .. } => {
                (format!("an error matching {expected_err}"), format!("error: {err}"))
            }
            TestErrorKind::Ok { .. } => ("an error".into(), "success".into()),
            TestErrorKind::StatementResultMismatch { expected, actual, .. } => {
                (format!("{expected} rows affected"), actual)
            }
            TestErrorKind::QueryResultColumnsMismatch { expected, actual, .. } => {
                (format!("column types {expected}"), format!("column types {actual}"))
            }
            other => (String::new(), other.to_string()),
        };
        Self {
            line: error.location().line(),
            sql: sql.to_owned(),
            expected,
            actual,
            known: None,
        }
    }
}

/// The outcome of one script on one backend.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The script's name, as failures and known differences name it.
    pub name: String,
    /// The storage backend it ran on.
    pub backend: String,
    /// Records (statements and queries) that passed.
    pub passed: usize,
    /// Records not run: excluded by `skipif`/`onlyif`, or after a `halt`.
    pub skipped: usize,
    /// Records that failed, in script order.
    pub failures: Vec<Failure>,
    /// The line of a `halt` that stopped the script.
    pub halted_at: Option<u32>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The slowest records: their line and time, slowest first (at most [`SLOWEST_KEPT`]).
    pub slowest: Vec<(u32, Duration)>,
}

/// How many of the slowest records a report keeps.
pub const SLOWEST_KEPT: usize = 5;

impl FileReport {
    /// Counts a record's time among the slowest.
    pub fn time_record(&mut self, line: u32, took: Duration) {
        if self.slowest.len() == SLOWEST_KEPT && self.slowest.last().is_some_and(|(_, t)| *t >= took) {
            return;
        }
        self.slowest.push((line, took));
        self.slowest.sort_by_key(|(_, took)| std::cmp::Reverse(*took));
        self.slowest.truncate(SLOWEST_KEPT);
    }

    /// Records seen: passed, failed and skipped.
    pub fn records(&self) -> usize {
        self.passed + self.failures.len() + self.skipped
    }

    /// Failures that are not listed known differences.
    pub fn unexpected(&self) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(|f| f.known.is_none())
    }

    /// Failures that are listed known differences.
    pub fn known_count(&self) -> usize {
        self.failures.iter().filter(|f| f.known.is_some()).count()
    }

    /// One summary line.
    pub fn summary(&self) -> String {
        let known = self.known_count();
        let mut line = format!(
            "{} [{}]: {} records, {} passed, {} failed",
            self.name,
            self.backend,
            self.records(),
            self.passed,
            self.failures.len()
        );
        if known > 0 {
            let _ = write!(line, " ({known} known differences)");
        }
        let _ = write!(line, ", {} skipped, {:.1} s", self.skipped, self.elapsed.as_secs_f64());
        if let Some(halt) = self.halted_at {
            let _ = write!(line, " (halted at line {halt})");
        }
        line
    }

    /// The summary and the first `max_listed` unexpected failures.
    pub fn render(&self, max_listed: usize) -> String {
        let mut out = self.summary();
        out.push('\n');
        // Slow records are worth a look (a debug build runs about 20 per second).
        if self.slowest.first().is_some_and(|(_, t)| t.as_secs_f64() >= 1.0) {
            let slowest: Vec<String> = self
                .slowest
                .iter()
                .map(|(line, t)| format!("line {line} {:.1} s", t.as_secs_f64()))
                .collect();
            let _ = writeln!(out, "  slowest records: {}", slowest.join(", "));
        }
        let unexpected: Vec<&Failure> = self.unexpected().collect();
        for failure in unexpected.iter().take(max_listed) {
            let _ = writeln!(out, "  FAIL {}:{}", self.name, failure.line);
            push_block(&mut out, "sql", &failure.sql);
            push_block(&mut out, "expected", &failure.expected);
            push_block(&mut out, "actual", &failure.actual);
        }
        if unexpected.len() > max_listed {
            let _ = writeln!(out, "  ... and {} more failures", unexpected.len() - max_listed);
        }
        out
    }
}

/// `    label:    first line` then the other lines indented under it.
fn push_block(out: &mut String, label: &str, text: &str) {
    let mut lines = text.lines();
    let _ = writeln!(out, "    {:<9} {}", format!("{label}:"), lines.next().unwrap_or(""));
    for line in lines {
        let _ = writeln!(out, "              {line}");
    }
}
