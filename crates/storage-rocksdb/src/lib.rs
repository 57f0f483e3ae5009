//! The RocksDB adapter of Calamus's `KvEngine` port.
//!
//! Keyspaces are RocksDB column families; a `WriteBatch` becomes one RocksDB write batch,
//! so it is atomic across keyspaces; scans are RocksDB iterators, which read the implicit
//! snapshot taken when they are created. Every RocksDB-specific choice (block cache, open
//! files, write-ahead-log sync policy) lives in this crate and nowhere else.
//!
//! - [`config`]: the tuning and durability knobs, [`RocksDbConfig`].
//! - [`engine`]: [`RocksDbEngine`], the `KvEngine` implementation, and [`open`].

pub mod config;
pub mod engine;

pub use config::RocksDbConfig;
pub use engine::{RocksDbEngine, open};
