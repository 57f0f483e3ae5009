//! The app crate's error type.

use thiserror::Error;

/// Failures of start-up, configuration, composition and the command-line client.
#[derive(Debug, Error)]
pub enum AppError {
    /// The data directory cannot be used.
    #[error("data directory '{path}': {reason}")]
    DataDirectory { path: String, reason: String },
    /// A backup cannot be read or restored.
    #[error("backup '{path}': {reason}")]
    Backup { path: String, reason: String },
    /// The storage backend failed to open.
    #[error(transparent)]
    Domain(#[from] calamus_domain::DomainError),
    /// A statement run in-process (`calamus exec`) failed.
    #[error(transparent)]
    Query(calamus_query::QueryError),
    /// An unknown storage backend name.
    #[error("unknown storage backend '{0}': expected 'rocksdb' or 'sled'")]
    UnknownBackend(String),
    /// The configuration file cannot be read or is not valid TOML.
    #[error("config file '{path}': {reason}")]
    ConfigFile { path: String, reason: String },
    /// A configuration key is unknown or has a value that cannot be used.
    #[error("invalid configuration: {key} (from {origin}): {reason}")]
    ConfigValue {
        /// The key, `section.name`, e.g. `storage.backend`.
        key: String,
        /// Where the value came from: the config file, an environment variable or a flag.
        origin: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The server could not be started or stopped with an error.
    #[error("server: {reason}")]
    Server { reason: String },
    /// The server answered a request of the command-line client with an error.
    #[error("ERROR {code}: {message}{}", details.as_ref().map(|d| format!("\nDETAIL: {d}")).unwrap_or_default())]
    ServerRejected {
        /// The protocol's error code (`NOT_FOUND`, ...).
        code: String,
        /// What failed.
        message: String,
        /// The failing statement, when the server names it.
        details: Option<String>,
    },
    /// The command-line client could not talk to the server.
    #[error("cannot reach the server at {url}: {reason}")]
    Connection { url: String, reason: String },
    /// The server's answer is not what the protocol describes.
    #[error("unexpected answer from the server: {reason}")]
    BadResponse { reason: String },
    /// A file given to the command-line client cannot be read.
    #[error("cannot read '{path}': {source}")]
    ReadFile { path: String, source: std::io::Error },
    /// Writing the client's output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// The interactive prompt failed.
    #[error("prompt: {0}")]
    Prompt(#[from] rustyline::error::ReadlineError),
}
