//! DataFusion's view of Calamus: a catalog answering from the statement's catalog snapshot,
//! one provider per table kind, and the system tables.

mod bounded_scan;
pub mod catalog;
pub(crate) mod deferred_scan;
pub mod key_range;
pub mod kv_table;
pub mod system;

pub use catalog::{SessionCatalog, TableAccess};
pub use kv_table::{KvTable, ROW_ID_COLUMN};
