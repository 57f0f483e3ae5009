//! Calamus's whole-system test support.

pub mod bench_support;
pub mod kv_conformance;
pub mod server;
pub mod slt;
pub mod ws_client;

use calamus::{Database, StorageBackend};
use calamus_query::{Session, StatementOutput};
use datafusion::arrow::util::display::array_value_to_string;

/// A database opened in a temporary data directory (removed when dropped), with a runtime
/// to run its statements on: for tests that drive the engine without a server.
pub struct OpenDatabase {
    /// The database.
    pub db: Database,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl OpenDatabase {
    /// A new, empty database with `backend`.
    pub fn new(backend: StorageBackend) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Database::open(backend, &dir.path().join("data")).expect("the database opens");
        Self {
            db,
            runtime: bench_support::runtime(),
            _dir: dir,
        }
    }

    /// A new, empty database with `backend`, `layer` put over its store (see
    /// [`calamus::StoreLayer`]).
    pub fn with_layer(backend: StorageBackend, layer: calamus::StoreLayer) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = calamus::config::StorageConfig {
            backend,
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        let db = Database::open_layered(&storage, layer).expect("the database opens");
        Self {
            db,
            runtime: bench_support::runtime(),
            _dir: dir,
        }
    }

    /// Runs `sql` as `session`; panics naming the statement if it fails.
    pub fn run(&self, session: &mut Session, sql: &str) -> Vec<StatementOutput> {
        self.block_on(self.db.engine.execute(session, sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql` as root; panics naming the statement if it fails.
    pub fn run_as_root(&self, sql: &str) -> Vec<StatementOutput> {
        self.run(&mut Session::root(), sql)
    }

    /// Runs `future` to its end on the database's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// Every cell of every row of a query's output, as text (panics if it is not rows).
pub fn cells(output: &StatementOutput) -> Vec<Vec<String>> {
    let StatementOutput::Rows { batches, .. } = output else {
        panic!("not rows: {output:?}")
    };
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                b.columns()
                    .iter()
                    .map(|c| array_value_to_string(c, r).expect("a printable value"))
                    .collect()
            })
        })
        .collect()
}

/// Runs each `$name(backend)` function of the calling test file as one test per backend:
/// `on_both_backends!(a, b)` makes `rocksdb::a`, `rocksdb::b`, `sled::a`, `sled::b`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            $(#[test] fn $name() { super::$name(calamus::StorageBackend::RocksDb) })*
        }
        mod sled {
            $(#[test] fn $name() { super::$name(calamus::StorageBackend::Sled) })*
        }
    };
}
