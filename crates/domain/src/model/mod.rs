//! The model: what the catalog holds.

pub mod job;
pub mod manifest;
pub mod namespace;
pub mod storage;
pub mod table;
pub mod user;

pub use job::{JobRecord, JobStatus};
pub use manifest::{ColumnStats, Manifest, Segment};
pub use namespace::Namespace;
pub use storage::StorageDefinition;
pub use table::{
    AccessLevel, ColumnDefault, ColumnDefinition, DELETED_COLUMN, DefaultFunction, FlushPolicy, SEQ_COLUMN,
    StoredValue, TableDefinition, TableKind, TableOptions, TableSchema,
};
pub use user::{Role, User, hash_password, verify_password};
