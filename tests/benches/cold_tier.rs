//! The cold tier, on both backends: flush throughput (rows/s and MB/s of Parquet); a
//! query over a SHARED table of 20 flushed segments plus hot rows against DataFusion
//! reading the same Parquet files directly, in the same run; and one user's query in a
//! USER table whose 100 or 10,000 users have all flushed (the latency must not grow with
//! the other users). The hot-plus-segments query is also timed right after writes to the
//! hot rows, which a backend keeping copies of its scans (sled) must read again.
//!
//! Run: `cargo bench -p calamus-tests --bench cold_tier` (a release build); a backend
//! name as argument runs that backend only.

use std::time::{Duration, Instant};

use calamus::{Database, StorageBackend};
use calamus_domain::model::Role;
use calamus_domain::{Partition, UserId, Value};
use calamus_query::{Session, StatementOutput};
use calamus_tests::bench_support::{
    interleaved_median_times, load_rows, median_time, median_time_after, runtime, table_definition,
};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

const SEGMENTS: usize = 20;
const ROWS_PER_SEGMENT: usize = 50_000;
const HOT_ROWS: usize = 10_000;
const QUERY: &str = "SELECT count(*), sum(n) FROM app.t WHERE n % 7 = 3";
/// The same aggregate over the raw segments (column `c3` is `n`; every row is live and
/// has a single version, so no de-duplication is needed there).
const DIRECT_QUERY: &str = "SELECT count(*), sum(c3) FROM segments WHERE c3 % 7 = 3";

fn rows(from: usize, count: usize) -> impl Iterator<Item = (Partition, Vec<Value>)> {
    (from..from + count).map(|i| {
        (
            Partition::Shared,
            vec![
                Value::BigInt(i as i64),
                Value::Text(format!("row {i:08} with a payload of some length")),
                Value::BigInt((i * 31 % 1000) as i64),
            ],
        )
    })
}

fn count_of(outputs: &[StatementOutput]) -> String {
    match &outputs[0] {
        StatementOutput::Rows { batches, .. } => datafusion::arrow::util::pretty::pretty_format_batches(batches)
            .expect("printable")
            .to_string(),
        other => panic!("{other:?}"),
    }
}

fn run(backend: StorageBackend) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let db = Database::open(backend, &data_dir).expect("open");
    let mut root = Session::root();
    rt.block_on(db.engine.execute(
        &mut root,
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.t (id BIGINT PRIMARY KEY, v TEXT, n BIGINT)",
        &[],
    ))
    .expect("DDL");
    let table = table_definition(&db, "app", "t");

    // Flush throughput: 20 segments of 50,000 rows each.
    let mut flush_time = Duration::ZERO;
    for segment in 0..SEGMENTS {
        load_rows(&db, &table, rows(segment * ROWS_PER_SEGMENT, ROWS_PER_SEGMENT));
        let started = Instant::now();
        rt.block_on(db.engine.execute(&mut root, "FLUSH TABLE app.t", &[]))
            .expect("flush");
        flush_time += started.elapsed();
    }
    let folder = data_dir.join("storage/app/t");
    let bytes: u64 = std::fs::read_dir(&folder)
        .expect("the segments' folder")
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let total_rows = (SEGMENTS * ROWS_PER_SEGMENT) as f64;
    println!(
        "{backend}: flush: {:.0} rows/s, {:.1} MB/s of Parquet ({SEGMENTS} segments of {ROWS_PER_SEGMENT} rows, {:.1} MiB)",
        total_rows / flush_time.as_secs_f64(),
        bytes as f64 / 1e6 / flush_time.as_secs_f64(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    load_rows(&db, &table, rows(SEGMENTS * ROWS_PER_SEGMENT, HOT_ROWS));

    // The engine over hot + 20 segments, against DataFusion over the segments alone.
    let ctx = SessionContext::new();
    rt.block_on(ctx.register_parquet(
        "segments",
        folder.to_string_lossy().as_ref(),
        ParquetReadOptions::default(),
    ))
    .expect("register the segments");
    let engine_answer = count_of(&rt.block_on(db.engine.execute(&mut root, QUERY, &[])).expect("query"));
    let direct_answer = rt
        .block_on(async { ctx.sql(DIRECT_QUERY).await?.collect().await })
        .expect("direct");
    eprintln!("{backend}: engine (hot + cold):\n{engine_answer}");
    eprintln!(
        "{backend}: direct (cold only):\n{}",
        datafusion::arrow::util::pretty::pretty_format_batches(&direct_answer).expect("printable")
    );
    let (engine, direct) = interleaved_median_times(
        21,
        || {
            rt.block_on(db.engine.execute(&mut root, QUERY, &[])).expect("query");
        },
        || {
            rt.block_on(async { ctx.sql(DIRECT_QUERY).await?.collect().await })
                .expect("direct");
        },
    );
    println!(
        "{backend}: aggregate over {SEGMENTS} segments + {HOT_ROWS} hot rows: engine {:.1?}, DataFusion on the Parquet files {:.1?}, ratio {:.2}x (target <= 1.5x)",
        engine,
        direct,
        engine.as_secs_f64() / direct.as_secs_f64()
    );

    // The same query after a write to the hot rows each time: one row appended (the last
    // chunk of the hot read changes), or ten rows spread over the hot rows updated (every
    // chunk changes).
    let writes: [(&str, &dyn Fn(usize) -> String); 2] = [
        ("a row appended", &|i| {
            format!("INSERT INTO app.t VALUES ({}, 'appended', 3)", 2_000_000 + i)
        }),
        ("ten hot rows updated", &|_| {
            "UPDATE app.t SET n = n + 7 WHERE id >= 1000000 AND id < 1010000 AND id % 1000 = 0".to_owned()
        }),
    ];
    let mut writer = Session::root();
    for (what, write) in writes {
        let after_write = median_time_after(
            21,
            |i| {
                rt.block_on(db.engine.execute(&mut writer, &write(i), &[]))
                    .expect("write");
            },
            || {
                rt.block_on(db.engine.execute(&mut root, QUERY, &[])).expect("query");
            },
        );
        println!(
            "{backend}: the same aggregate after {what} each time: engine {after_write:.1?}, ratio {:.2}x to DataFusion above",
            after_write.as_secs_f64() / direct.as_secs_f64()
        );
    }

    // Pruning: a key range inside one segment opens that segment only.
    let before = db.engine.segments_read();
    let started = Instant::now();
    let answer = count_of(
        &rt.block_on(db.engine.execute(&mut root, PRUNED_QUERY, &[]))
            .expect("query"),
    );
    let elapsed = started.elapsed();
    assert!(answer.contains("| 101 "), "{answer}");
    println!(
        "{backend}: `{PRUNED_QUERY}`: {} of {SEGMENTS} segments opened, {elapsed:.1?}",
        db.engine.segments_read() - before
    );
}

/// A key range inside the eighth segment.
const PRUNED_QUERY: &str = "SELECT count(*) FROM app.t WHERE id BETWEEN 350000 AND 350100";

const FLUSHED_ROWS_PER_USER: usize = 20;
const HOT_ROWS_PER_USER: usize = 5;

/// Median latency of one user's `SELECT *` (flushed plus hot rows) in a USER table whose
/// `users` users each flushed a segment.
fn per_user_flushed(backend: StorageBackend, users: usize) -> Duration {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(backend, &dir.path().join("data")).expect("open");
    let mut root = Session::root();
    rt.block_on(db.engine.execute(
        &mut root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.u (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    ))
    .expect("DDL");
    let table = table_definition(&db, "app", "u");
    let user = |u: usize| UserId::new(&format!("u{u:05}")).expect("user id");
    let rows_of = move |users: std::ops::Range<usize>, first: usize, count: usize| {
        users.flat_map(move |u| {
            (first..first + count).map(move |i| {
                (
                    Partition::User(user(u)),
                    vec![Value::BigInt(i as i64), Value::Text(format!("user {u} row {i}"))],
                )
            })
        })
    };
    load_rows(&db, &table, rows_of(0..users, 0, FLUSHED_ROWS_PER_USER));
    let started = Instant::now();
    rt.block_on(db.engine.execute(&mut root, "FLUSH TABLE app.u", &[]))
        .expect("flush");
    let flush_time = started.elapsed();
    let queried = users / 2;
    load_rows(
        &db,
        &table,
        rows_of(queried..queried + 1, FLUSHED_ROWS_PER_USER, HOT_ROWS_PER_USER),
    );
    let mut session = Session::new(user(queried), Role::User);
    let query = "SELECT * FROM app.u";
    let outputs = rt.block_on(db.engine.execute(&mut session, query, &[])).expect("query");
    assert_eq!(
        outputs[0].row_count(),
        (FLUSHED_ROWS_PER_USER + HOT_ROWS_PER_USER) as u64,
        "the user sees its flushed and hot rows"
    );
    let latency = median_time(201, || {
        rt.block_on(db.engine.execute(&mut session, query, &[])).expect("query");
    });
    println!("{backend}: {users} users flushed ({users} segments in {flush_time:.1?}): one user's query {latency:.1?}");
    latency
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    for backend in StorageBackend::ALL {
        if filter.is_empty() || filter.iter().any(|f| backend.as_str().contains(f.as_str())) {
            run(backend);
            let few = per_user_flushed(backend, 100);
            let many = per_user_flushed(backend, 10_000);
            println!(
                "{backend}: one user's query, 10,000 users flushed against 100: {:.2}x (target: flat)",
                many.as_secs_f64() / few.as_secs_f64()
            );
        }
    }
}
