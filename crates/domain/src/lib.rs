//! # calamus-domain
//!
//! The inside of Calamus's hexagon: the model (validated identifiers, tables and their
//! schema versions, users and roles), the ports (`KvEngine`, `RowStore`, `Catalog`), and the
//! semantics every backend shares, written once over `KvEngine`: the key layout, the row
//! codec, row versions, soft deletes and stream eviction.
//!
//! The one rule: nothing here knows a storage engine, DataFusion or HTTP. Storage crates
//! implement `KvEngine`; the query crate drives `Catalog` and `RowStore`; Arrow's schema and
//! array types are allowed because they are the data vocabulary (see [`arrow_rows`]).

pub mod arrow_rows;
pub mod catalog;
pub mod change_feed;
pub mod codec;
pub mod error;
pub mod ident;
pub mod ids;
pub mod keys;
pub mod kv;
pub mod kv_catalog;
pub mod kv_row_store;
pub mod model;
pub mod row_batch;
pub mod row_store;
pub mod types;

pub use catalog::{Catalog, CatalogSnapshot};
pub use change_feed::{ChangeBatch, ChangeListener, RowEvent};
pub use codec::{RowCodec, RowHeader, RowVersion, ValueRef};
pub use error::{DomainError, DomainResult};
pub use ident::{ColumnName, NamespaceId, StorageId, TableId, TableName, UserId};
pub use keys::Partition;
pub use kv::{KeyRange, KvEngine, KvIter, KvPair, PairVisitor, WriteBatch, WriteOp, prefix_successor};
pub use kv_catalog::KvCatalog;
pub use kv_row_store::KvRowStore;
pub use row_store::{RowChange, RowIter, RowStore, ScanRequest, StoredRow};
pub use types::{DataType, Value};

#[cfg(any(test, feature = "mocks"))]
pub use catalog::MockCatalog;
#[cfg(any(test, feature = "mocks"))]
pub use kv::MockKvEngine;
#[cfg(any(test, feature = "mocks"))]
pub use row_store::MockRowStore;
