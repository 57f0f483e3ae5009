//! What the benchmarks share: a runtime, a table's definition, loading many rows fast,
//! timing, and the size of a data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus::Database;
use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::keys::encode_key_value;
use calamus_domain::model::TableDefinition;
use calamus_domain::{NamespaceId, Partition, RowCodec, RowVersion, TableId, TableName, Value, WriteBatch};
use tokio::runtime::Runtime;

/// Rows per write batch while loading.
const LOAD_BATCH_ROWS: usize = 20_000;

/// A multi-threaded tokio runtime.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The catalog's definition of `namespace.table`.
pub fn table_definition(db: &Database, namespace: &str, table: &str) -> Arc<TableDefinition> {
    let id = TableId::new(
        NamespaceId::new(namespace).expect("namespace id"),
        TableName::new(table).expect("table name"),
    );
    Arc::clone(
        db.engine
            .catalog()
            .snapshot()
            .table(&id)
            .expect("the table exists in the catalog"),
    )
}

/// Writes `rows` (partition, values; the first value is the primary key) straight to the
/// key-value store in large batches, with the keys and values `KvRowStore::insert` writes.
/// The row store's insert writes (and, on sled, syncs) one batch per call and checks every
/// key; loading millions of rows or thousands of partitions that way takes minutes. A
/// bench checks what it loaded through the row store and SQL.
pub fn load_rows(db: &Database, table: &TableDefinition, rows: impl IntoIterator<Item = (Partition, Vec<Value>)>) {
    let seq = SnowflakeGenerator::new(1, 0);
    let codec = RowCodec::new(table.schema());
    let keyspace = table.keyspace();
    let mut batch = WriteBatch::new();
    for (partition, values) in rows {
        let row_id = encode_key_value(&values[0]).expect("a primary-key value");
        let version = RowVersion {
            seq: seq.next_id(),
            deleted: false,
            values,
        };
        let value = codec.encode(&version).expect("the row encodes");
        batch.put(&keyspace, partition.row_key(&row_id), value);
        if batch.len() >= LOAD_BATCH_ROWS {
            db.kv.write(std::mem::take(&mut batch)).expect("write");
        }
    }
    db.kv.write(batch).expect("write");
    db.kv.sync().expect("sync");
}

/// The median time of `n` runs of `run`.
pub fn median_time(n: usize, run: impl FnMut()) -> Duration {
    median_time_after(n, |_| {}, run)
}

/// The median time of `n` runs of `run`, each after an untimed `prepare(i)` (`i` counts
/// the runs from 0).
pub fn median_time_after(n: usize, mut prepare: impl FnMut(usize), mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            prepare(i);
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// The medians of `n` runs each of `first` and `second`, taken in turns (first, second,
/// first, ...), so that whatever else the machine does during the measurement (a
/// compaction of the store, another process) weighs on both alike.
pub fn interleaved_median_times(n: usize, mut first: impl FnMut(), mut second: impl FnMut()) -> (Duration, Duration) {
    let time = |run: &mut dyn FnMut()| {
        let started = Instant::now();
        run();
        started.elapsed()
    };
    let (mut firsts, mut seconds) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        firsts.push(time(&mut first));
        seconds.push(time(&mut second));
    }
    firsts.sort();
    seconds.sort();
    (firsts[n / 2], seconds[n / 2])
}

/// `12.3 MiB on disk`: the size of everything under `path`.
pub fn dir_size_note(path: &Path) -> String {
    fn size(p: &Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    format!("{:.1} MiB on disk", size(path) as f64 / (1024.0 * 1024.0))
}

/// The number of timed operations per measurement: `CALAMUS_BENCH_SAMPLES`, else `default`.
pub fn samples(default: usize) -> usize {
    std::env::var("CALAMUS_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
