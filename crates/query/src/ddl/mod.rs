//! Statements that change the catalog.

pub mod alter_table;
pub mod create_table;
pub mod namespace;
pub mod options;
pub mod storage;
pub mod table;
pub mod user;
