//! [`BenchError`]: why a benchmark run failed.

use thiserror::Error;

/// Why a benchmark run, or one scenario of it, failed.
#[derive(Debug, Error)]
pub enum BenchError {
    /// A flag's value cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached or broke the connection.
    #[error("cannot reach {url}: {reason}")]
    Connection {
        /// The server's URL.
        url: String,
        /// What the HTTP or WebSocket client said.
        reason: String,
    },
    /// The server answered with an error.
    #[error("the server refused `{sql}`: {code}: {message}")]
    Rejected {
        /// The statement (shortened).
        sql: String,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server's answer was not what the protocol says.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A result was wrong: the benchmark would measure the wrong thing.
    #[error("check failed: {0}")]
    Check(String),
    /// The in-process limit measurements failed.
    #[error("measuring a limit: {0}")]
    Limit(String),
    /// The PostgreSQL baseline failed.
    #[error("PostgreSQL baseline: {0}")]
    Postgres(#[from] postgres::Error),
    /// Writing the report failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The result type of the crate.
pub type BenchResult<T> = Result<T, BenchError>;

/// `sql`, cut to a readable length for messages.
pub fn shorten(sql: &str) -> String {
    const MAX: usize = 120;
    match sql.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &sql[..cut]),
        None => sql.to_owned(),
    }
}
