//! The domain's one error type.

use thiserror::Error;

/// Result of domain and port operations.
pub type DomainResult<T> = Result<T, DomainError>;

/// Everything that can fail in the model, the ports and the semantics over them.
///
/// Variants name the thing they are about, so a message reaching a user says what and which.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DomainError {
    /// An identifier failed validation.
    #[error("invalid {kind} '{name}': {reason}")]
    InvalidIdentifier {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// A name is reserved for the server.
    #[error("{kind} '{name}' is reserved")]
    ReservedName { kind: &'static str, name: String },

    /// A keyspace was read or written before being created.
    #[error("keyspace '{keyspace}' does not exist")]
    KeyspaceNotFound { keyspace: String },

    /// A namespace does not exist.
    #[error("namespace '{namespace}' does not exist; create it with CREATE NAMESPACE {namespace}")]
    NamespaceNotFound { namespace: String },

    /// A namespace already exists.
    #[error("namespace '{namespace}' already exists")]
    NamespaceExists { namespace: String },

    /// A namespace still holds tables.
    #[error(
        "namespace '{namespace}' still holds tables ({tables}); drop them first or use DROP NAMESPACE {namespace} CASCADE"
    )]
    NamespaceNotEmpty { namespace: String, tables: String },

    /// A table does not exist.
    #[error("table '{table}' does not exist")]
    TableNotFound { table: String },

    /// A table already exists.
    #[error("table '{table}' already exists")]
    TableExists { table: String },

    /// A column does not exist.
    #[error("column '{column}' does not exist in table '{table}'")]
    ColumnNotFound { table: String, column: String },

    /// A column already exists.
    #[error("column '{column}' already exists in table '{table}'")]
    ColumnExists { table: String, column: String },

    /// A user does not exist.
    #[error("user '{user}' does not exist")]
    UserNotFound { user: String },

    /// A user already exists.
    #[error("user '{user}' already exists")]
    UserExists { user: String },

    /// A storage does not exist.
    #[error("storage '{storage}' does not exist")]
    StorageNotFound { storage: String },

    /// A primary key is already taken in the partition.
    #[error("duplicate primary key {key} in table '{table}'")]
    DuplicateKey { table: String, key: String },

    /// A value breaks a column or table constraint.
    #[error("{0}")]
    Constraint(String),

    /// A table definition or option is invalid.
    #[error("{0}")]
    InvalidDefinition(String),

    /// A value does not fit its column's type.
    #[error("{0}")]
    InvalidValue(String),

    /// Stored bytes could not be decoded: the store holds data this version cannot read.
    #[error("corrupt data: {0}")]
    Corrupt(String),

    /// The storage engine failed.
    #[error("storage engine error: {0}")]
    Storage(String),

    /// The disk holding the data is (nearly) full: the write was refused, or failed, and
    /// nothing of it was applied.
    #[error("disk full: {0}")]
    DiskFull(String),

    /// The file system holding the data is read-only: the write was refused.
    #[error("read-only disk: {0}")]
    DiskReadOnly(String),

    /// A read overlapped a flush of the rows it read, and may have missed some: running
    /// the statement again reads them.
    #[error("{0}")]
    ReadRacedFlush(String),

    /// A password could not be hashed or checked.
    #[error("password hashing failed: {0}")]
    Password(String),
}
