//! # calamus
//!
//! The composition root: reads the configuration, opens the configured storage backend,
//! builds the catalog, the row store and the query engine over it, and serves them. The
//! `calamus` binary (`main.rs`) starts from here; tests open a [`Database`] in-process the
//! same way.
//!
//! - [`config`]: the configuration (file, environment, flags);
//! - [`database`]: opening a data directory;
//! - [`backup`]: `BACKUP DATABASE` and `calamus restore`;
//! - [`disk_space`]: writes refused, clearly, below a floor of free disk space;
//! - [`serve`]: the server;
//! - [`cli`]: the command line (`calamus serve`, `calamus sql`, `calamus exec`);
//! - [`client`]: the HTTP client behind `calamus sql`.

pub mod backup;
pub mod cli;
pub mod client;
pub mod config;
pub mod database;
pub mod disk_space;
pub mod error;
pub mod serve;

pub use config::Config;
pub use database::{Database, StorageBackend, StoreLayer};
pub use error::AppError;

/// The allocator of every program built on this crate (the server, its tests and
/// benchmarks): mimalloc keeps allocation cheap when a large store's heap is fragmented,
/// where glibc's malloc made one user's query slower the more other users' rows were cached.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
