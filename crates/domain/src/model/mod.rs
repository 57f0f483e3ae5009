//! The model: what the catalog holds.

pub mod job;
pub mod namespace;
pub mod storage;
pub mod table;
pub mod user;

pub use job::{JobRecord, JobStatus};
pub use namespace::Namespace;
pub use storage::StorageDefinition;
pub use table::{
    AccessLevel, ColumnDefault, ColumnDefinition, DefaultFunction, FlushPolicy, StoredValue, TableDefinition,
    TableKind, TableOptions, TableSchema, DELETED_COLUMN, SEQ_COLUMN,
};
pub use user::{hash_password, verify_password, Role, User};
