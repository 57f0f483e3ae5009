//! The app crate's error type.

use thiserror::Error;

/// Failures of start-up and composition.
#[derive(Debug, Error)]
pub enum AppError {
    /// The data directory cannot be used.
    #[error("data directory '{path}': {reason}")]
    DataDirectory { path: String, reason: String },
    /// The storage backend failed to open.
    #[error(transparent)]
    Domain(#[from] calamus_domain::DomainError),
    /// An unknown storage backend name.
    #[error("unknown storage backend '{0}': expected 'rocksdb' or 'sled'")]
    UnknownBackend(String),
}
