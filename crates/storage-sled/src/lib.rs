//! The sled adapter of Calamus's `KvEngine` port.
//!
//! Keyspaces are sled trees; a `WriteBatch` becomes one sled transaction over every tree it
//! touches, so it is atomic across keyspaces. sled has no snapshots, so a scan copies its
//! range while writes are held off (see [`engine`]). Every sled-specific choice (cache sizes,
//! flush after each write) lives in this crate and nowhere else.
//!
//! - [`config`]: the durability and cache knobs, [`SledConfig`].
//! - [`engine`]: [`SledEngine`], the `KvEngine` implementation, and [`open`].
//! - `scan_cache`: the copies of recently scanned ranges that spare sled's iterator.

pub mod config;
pub mod engine;
mod scan_cache;

pub use config::SledConfig;
pub use engine::{SledEngine, open};
