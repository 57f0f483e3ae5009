//! One user's `SELECT * FROM app.t` (100 rows) in a USER table, with 100 and with 10,000
//! users of 100 rows each, on both backends: the query must cost the same however many
//! other users the table holds (target: 10,000 users within 1.2x of 100 users).
//!
//! Bench ids: `per_user_query/<backend>/<n>_users`. After each backend the bench prints a
//! summary line with the median latency of both sizes and their ratio.
//!
//! Setup: the table is created through SQL, the rows are written straight to the key-value
//! store in large batches, with exactly the keys and values `KvRowStore::insert` writes
//! (its per-call write batch, fsynced on every call by sled's default configuration, would
//! make loading 10,000 partitions take minutes). The setup checks through the row store and
//! through SQL that the queried user sees exactly its 100 rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calamus::{Database, StorageBackend};
use calamus_domain::ids::SnowflakeGenerator;
use calamus_domain::model::{Role, TableDefinition};
use calamus_domain::{DomainError, KeyRange, KvRowStore, Partition, RowStore, ScanRequest, UserId, Value};
use calamus_query::Session;
use calamus_tests::bench_support::{dir_size_note, load_rows, median_time, runtime, table_definition};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tempfile::TempDir;
use tokio::runtime::Runtime;

const ROWS_PER_USER: usize = 100;
const USER_COUNTS: [usize; 2] = [100, 10_000];
const QUERY: &str = "SELECT * FROM app.t";

fn user_name(i: usize) -> String {
    format!("u{i:05}")
}

/// Loads `rows_per_user` rows for each of `users` users.
fn load_users(db: &Database, table: &TableDefinition, users: usize, rows_per_user: usize) {
    let rows = (0..users).flat_map(|u| {
        let partition = Partition::User(UserId::new(&user_name(u)).expect("user id"));
        (0..rows_per_user).map(move |r| {
            let id = (u * rows_per_user + r) as i64;
            let values = vec![
                Value::BigInt(id),
                Value::Text(format!("user {u:05} row {r:03} some payload text")),
            ];
            (partition.clone(), values)
        })
    });
    load_rows(db, table, rows);
}

struct Fixture {
    _dir: TempDir,
    db: Database,
    session: Session,
    table: Arc<TableDefinition>,
}

fn setup(rt: &Runtime, backend: StorageBackend, users: usize) -> Fixture {
    let dir = TempDir::new().expect("temp dir");
    let db = Database::open(backend, &dir.path().join("data")).expect("database opens");
    let mut root = Session::root();
    rt.block_on(db.engine.execute(
        &mut root,
        "CREATE NAMESPACE app; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)",
        &[],
    ))
    .expect("DDL");
    let table = table_definition(&db, "app", "t");
    let started = Instant::now();
    load_users(&db, &table, users, ROWS_PER_USER);
    eprintln!(
        "per_user_query/{backend}: loaded {users} users x {ROWS_PER_USER} rows in {:.1?} ({})",
        started.elapsed(),
        dir_size_note(dir.path())
    );

    // The queried user: one in the middle of the key space.
    let user = UserId::new(&user_name(users / 2)).expect("user id");
    let store = KvRowStore::new(Arc::clone(&db.kv), Arc::new(SnowflakeGenerator::new(2, 0)));
    let seen = store
        .scan(&table, &Partition::User(user.clone()), ScanRequest::all())
        .expect("scan")
        .count();
    assert_eq!(seen, ROWS_PER_USER, "the row store sees the user's rows");
    // A row through the real insert path with a key the loader wrote must be a duplicate:
    // keeps the loader's keys honest (nothing is written).
    let dup = rt.block_on(store.insert(
        &table,
        &Partition::User(user.clone()),
        vec![vec![
            Value::BigInt((users / 2 * ROWS_PER_USER) as i64),
            Value::Text("dup".into()),
        ]],
    ));
    assert!(
        matches!(dup, Err(DomainError::DuplicateKey { .. })),
        "the loader's keys are the row store's keys: {dup:?}"
    );

    let mut session = Session::new(user, Role::User);
    let out = rt.block_on(db.engine.execute(&mut session, QUERY, &[])).expect("query");
    assert_eq!(
        out[0].row_count(),
        ROWS_PER_USER as u64,
        "the user sees exactly its rows"
    );
    Fixture {
        _dir: dir,
        db,
        session,
        table,
    }
}

fn run_query(rt: &Runtime, fixture: &mut Fixture) -> u64 {
    let out = rt
        .block_on(fixture.db.engine.execute(&mut fixture.session, QUERY, &[]))
        .expect("query");
    out[0].row_count()
}

/// Median latency over `n` runs (a cross-check printed next to criterion's figures).
fn median_latency(rt: &Runtime, fixture: &mut Fixture, n: usize) -> Duration {
    median_time(n, || {
        std::hint::black_box(run_query(rt, fixture));
    })
}

/// Median time of the key-value engine alone iterating the queried user's rows: tells
/// whether a difference between the sizes is the engine's or the SQL layer's.
fn median_engine_scan(fixture: &Fixture, n: usize) -> Duration {
    let partition = Partition::User(fixture.session.user.clone());
    let range = KeyRange::prefix(&partition.key_prefix());
    let keyspace = fixture.table.keyspace();
    median_time(n, || {
        let rows = fixture
            .db
            .kv
            .scan(&keyspace, range.clone(), false)
            .expect("scan")
            .count();
        assert_eq!(rows, ROWS_PER_USER);
    })
}

fn bench_per_user_query(c: &mut Criterion) {
    let rt = runtime();
    let mut summary = Vec::new();
    for backend in StorageBackend::ALL {
        let mut medians = Vec::new();
        for users in USER_COUNTS {
            let mut fixture = setup(&rt, backend, users);
            {
                let mut group = c.benchmark_group("per_user_query");
                group.measurement_time(Duration::from_secs(5));
                group.bench_with_input(
                    BenchmarkId::new(backend.as_str(), format!("{users}_users")),
                    &users,
                    |b, _| b.iter(|| run_query(&rt, &mut fixture)),
                );
                group.finish();
            }
            medians.push((
                users,
                median_latency(&rt, &mut fixture, 301),
                median_engine_scan(&fixture, 301),
            ));
        }
        let (small, large) = (medians[0].1, medians[1].1);
        let ratio = large.as_secs_f64() / small.as_secs_f64();
        summary.push(format!(
            "per_user_query/{backend}: median {:>4} users {:>10.1?}, {:>6} users {:>10.1?}, ratio {ratio:.2}x (target <= 1.20x: {}); \
             the engine alone iterating the user's rows: {:.1?} and {:.1?}",
            medians[0].0,
            small,
            medians[1].0,
            large,
            if ratio <= 1.2 { "met" } else { "MISSED" },
            medians[0].2,
            medians[1].2,
        ));
    }
    eprintln!();
    for line in summary {
        eprintln!("{line}");
    }
}

criterion_group!(benches, bench_per_user_query);
criterion_main!(benches);
