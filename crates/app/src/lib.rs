//! # calamus
//!
//! The composition root: opens the configured storage backend, builds the catalog, the row
//! store and the query engine over it. The `calamus` binary (`main.rs`) starts from here;
//! tests open a [`Database`] in-process the same way.

pub mod database;
pub mod error;

pub use database::{Database, StorageBackend};
pub use error::AppError;
