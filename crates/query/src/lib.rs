//! # calamus-query
//!
//! Calamus's SQL layer: the parser (Calamus statements layered on sqlparser), the role rules
//! every statement is checked against, the DataFusion catalog and table providers over the
//! `Catalog` and `RowStore` ports, and the execution of DDL and DML for a session. DataFusion types stop at this crate's edge except for the
//! Arrow batches of results.

pub mod authorization;
pub mod backup;
pub mod cold;
pub mod ddl;
pub mod dialect;
pub mod dml;
pub mod engine;
pub mod error;
pub mod functions;
pub mod jobs;
pub mod live;
pub mod output;
pub mod parser;
pub mod plan_cache;
pub mod providers;
pub mod session;
pub mod show;
pub mod statement;
pub mod streaming;
pub mod types;

#[cfg(test)]
mod failure_tests;

pub use datafusion::scalar::ScalarValue;
pub use engine::QueryEngine;
pub use error::{ErrorKind, QueryError, QueryResult};
pub use output::StatementOutput;
pub use session::Session;
pub use statement::{Statement, UnavailableFeature};
pub use streaming::{RowStream, StreamedStatement, StreamingOutput};
