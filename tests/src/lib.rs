//! Calamus's whole-system test support.

pub mod bench_support;
pub mod kv_conformance;
pub mod server;
pub mod slt;
pub mod ws_client;

use calamus_query::StatementOutput;
use datafusion::arrow::util::display::array_value_to_string;

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
