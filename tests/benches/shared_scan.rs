//! Full scan of a 1,000,000-row SHARED table through the query engine, against a raw
//! iteration over the same keyspace with the same key-value engine, on both backends in
//! the same run. Target: the provider reads at least 50% of the raw rows/s.
//!
//! Bench ids (`shared_scan/<backend>/<what>`), all with a throughput of 1,000,000 rows:
//! - `raw_kv_scan`: `KvEngine::scan` over the whole keyspace, summing key and value bytes;
//! - `row_store_scan`: `RowStore::scan` of the partition (decodes every row), no SQL;
//! - `sql_aggregate`: `SELECT sum(id), max(length(v)) FROM app.s` (reads every row's columns);
//! - `sql_select_star`: `SELECT * FROM app.s`, all batches collected.
//!
//! The data is loaded with `calamus_tests::bench_support::load_rows` (the row store's keys
//! and values, in large batches); the setup checks the counts through SQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus::{Database, StorageBackend};
use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::TableDefinition;
use calamus_domain::{KeyRange, KvRowStore, Partition, RowStore, ScanRequest, Value};
use calamus_query::{Session, StatementOutput};
use calamus_tests::bench_support::{dir_size_note, load_rows, median_time, runtime, table_definition};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tempfile::TempDir;
use tokio::runtime::Runtime;

const ROWS: usize = 1_000_000;
const AGGREGATE: &str = "SELECT sum(id), max(length(v)) FROM app.s";
const SELECT_STAR: &str = "SELECT * FROM app.s";

fn value_text(i: usize) -> String {
    format!("shared row {i:07} with some payload text")
}

/// Loads `ROWS` rows into the SHARED partition.
fn load(db: &Database, table: &TableDefinition) {
    let rows = (0..ROWS).map(|i| {
        (
            Partition::Shared,
            vec![Value::BigInt(i as i64), Value::Text(value_text(i))],
        )
    });
    load_rows(db, table, rows);
}

struct Fixture {
    _dir: TempDir,
    db: Database,
    table: Arc<TableDefinition>,
    store: KvRowStore,
    session: Session,
}

fn setup(rt: &Runtime, backend: StorageBackend) -> Fixture {
    let dir = TempDir::new().expect("temp dir");
    let db = Database::open(backend, &dir.path().join("data")).expect("database opens");
    let mut session = Session::root();
    rt.block_on(db.engine.execute(
        &mut session,
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.s (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    ))
    .expect("DDL");
    let table = table_definition(&db, "app", "s");
    let started = Instant::now();
    load(&db, &table);
    eprintln!(
        "shared_scan/{backend}: loaded {ROWS} rows in {:.1?} ({})",
        started.elapsed(),
        dir_size_note(dir.path())
    );
    let store = KvRowStore::new(Arc::clone(&db.kv), Arc::new(SnowflakeGenerator::new(2, 0)));
    let mut fixture = Fixture {
        _dir: dir,
        db,
        table,
        store,
        session,
    };
    assert_eq!(raw_scan(&fixture).0, ROWS as u64);
    assert_eq!(row_store_scan(&fixture), ROWS as u64);
    assert_eq!(sql(rt, &mut fixture, SELECT_STAR), ROWS as u64);
    let out = rt
        .block_on(fixture.db.engine.execute(&mut fixture.session, AGGREGATE, &[]))
        .expect("aggregate");
    eprintln!("shared_scan/{backend}: {AGGREGATE} -> {:?}", first_row(&out[0]));
    fixture
}

fn first_row(out: &StatementOutput) -> String {
    match out {
        StatementOutput::Rows { batches, .. } => batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| {
                b.columns()
                    .iter()
                    .map(|c| format!("{:?}", c.as_ref()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

/// Raw iteration: (rows, key + value bytes).
fn raw_scan(f: &Fixture) -> (u64, u64) {
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for pair in f.db.kv.scan(&f.table.keyspace(), KeyRange::all(), false).expect("scan") {
        let (key, value) = pair.expect("pair");
        rows += 1;
        bytes += (key.len() + value.len()) as u64;
    }
    std::hint::black_box(bytes);
    (rows, bytes)
}

fn row_store_scan(f: &Fixture) -> u64 {
    let mut rows = 0u64;
    for row in f
        .store
        .scan(&f.table, &Partition::Shared, ScanRequest::all())
        .expect("scan")
    {
        std::hint::black_box(row.expect("row"));
        rows += 1;
    }
    rows
}

/// Runs `query`; returns the rows it returned (for the aggregate: 1).
fn sql(rt: &Runtime, f: &mut Fixture, query: &str) -> u64 {
    let out = rt
        .block_on(f.db.engine.execute(&mut f.session, query, &[]))
        .expect("query");
    out[0].row_count()
}

fn bench_shared_scan(c: &mut Criterion) {
    let rt = runtime();
    let mut summary = Vec::new();
    for backend in StorageBackend::ALL {
        let mut f = setup(&rt, backend);
        {
            let mut group = c.benchmark_group("shared_scan");
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(2))
                .measurement_time(Duration::from_secs(10))
                .throughput(Throughput::Elements(ROWS as u64));
            let name = backend.as_str();
            group.bench_function(BenchmarkId::new(name, "raw_kv_scan"), |b| b.iter(|| raw_scan(&f)));
            group.bench_function(BenchmarkId::new(name, "row_store_scan"), |b| {
                b.iter(|| row_store_scan(&f))
            });
            group.bench_function(BenchmarkId::new(name, "sql_aggregate"), |b| {
                b.iter(|| sql(&rt, &mut f, AGGREGATE))
            });
            group.bench_function(BenchmarkId::new(name, "sql_select_star"), |b| {
                b.iter(|| sql(&rt, &mut f, SELECT_STAR))
            });
            group.finish();
        }
        // Cross-check: medians of a few runs each, and the ratios the target is about.
        let runs = 5;
        let raw = median_time(runs, || {
            raw_scan(&f);
        });
        let store = median_time(runs, || {
            row_store_scan(&f);
        });
        let agg = median_time(runs, || {
            sql(&rt, &mut f, AGGREGATE);
        });
        let star = median_time(runs, || {
            sql(&rt, &mut f, SELECT_STAR);
        });
        let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
        let pct = |d: Duration| 100.0 * rate(d) / rate(raw);
        summary.push(format!(
            "shared_scan/{backend}: raw {:.2} M rows/s | row store {:.2} M rows/s ({:.0}%) | \
             sql_aggregate {:.2} M rows/s ({:.0}%) | sql_select_star {:.2} M rows/s ({:.0}%) \
             (target >= 50%: {})",
            rate(raw) / 1e6,
            rate(store) / 1e6,
            pct(store),
            rate(agg) / 1e6,
            pct(agg),
            rate(star) / 1e6,
            pct(star),
            if pct(agg) >= 50.0 && pct(star) >= 50.0 {
                "met"
            } else {
                "MISSED"
            }
        ));
        drop(f);
    }
    eprintln!();
    for line in summary {
        eprintln!("{line}");
    }
}

criterion_group!(benches, bench_shared_scan);
criterion_main!(benches);
