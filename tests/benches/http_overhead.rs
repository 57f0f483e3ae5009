//! The cost of the HTTP layer: single-row INSERT and primary-key SELECT through a real
//! server over loopback HTTP (keep-alive connections, Bearer token, a `user` caller in a
//! USER table), against the same statements run in-process by the same engine on the same
//! backend in the same run. Then a 100k-row SELECT read through HTTP while the process's
//! peak resident memory is watched: a streamed result keeps it flat.
//!
//! Figures per backend: p50 and p99 latency at concurrency 1, and throughput at
//! concurrency 8, for both paths, with HTTP / in-process ratios. The server runs in this
//! process on a two-worker runtime; the in-process engine gets a runtime of the same size.
//!
//! Run: `cargo bench -p calamus-tests --bench http_overhead` (a release build).
//! `CALAMUS_BENCH_SAMPLES` changes the number of timed statements per measurement.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use calamus::{Database, StorageBackend};
use calamus_domain::UserId;
use calamus_domain::model::Role;
use calamus_query::{QueryEngine, Session};
use calamus_tests::bench_support::samples;
use calamus_tests::server::TestServer;
use serde_json::json;
use tempfile::TempDir;
use tokio::runtime::Runtime;

const DDL: &str = "CREATE NAMESPACE app; CREATE USER TABLE app.t (id BIGINT PRIMARY KEY, v TEXT)";
const BENCH_USER: &str = "bench";
const CONCURRENCY: usize = 8;
const DEFAULT_SAMPLES: usize = 3_000;
const WARMUP: usize = 300;
const STREAM_ROWS: usize = 100_000;

fn insert_sql(id: i64) -> String {
    format!("INSERT INTO app.t (id, v) VALUES ({id}, 'row {id} with a short text payload')")
}

/// A key among the first `population` ids, spread by a multiplicative hash.
fn lookup_sql(i: usize, population: i64) -> String {
    let id = (i as i64).wrapping_mul(2_654_435_761).rem_euclid(population);
    format!("SELECT id, v FROM app.t WHERE id = {id}")
}

/// One path a statement can take: over HTTP to the server, or straight to an engine.
trait Path: Sync {
    /// A client for one worker (a connection, or a session).
    type Client: Send;
    fn client(&self) -> Self::Client;
    fn run(&self, client: &mut Self::Client, sql: &str);
}

struct Http {
    server: TestServer,
    url: String,
    authorization: String,
}

impl Path for Http {
    type Client = ureq::Agent;

    fn client(&self) -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn run(&self, agent: &mut ureq::Agent, sql: &str) {
        let body = serde_json::to_vec(&json!({ "sql": sql })).expect("JSON");
        let mut response = agent
            .post(&self.url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .expect("the request is answered");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("the body");
        assert_eq!(status, 200, "{sql}: {text}");
    }
}

struct InProcess {
    _dir: TempDir,
    engine: Arc<QueryEngine>,
    runtime: Runtime,
}

impl Path for InProcess {
    type Client = Session;

    fn client(&self) -> Session {
        Session::new(UserId::new(BENCH_USER).expect("user id"), Role::User)
    }

    fn run(&self, session: &mut Session, sql: &str) {
        self.runtime
            .block_on(self.engine.execute(session, sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Latency percentiles of one measurement.
struct Latency {
    p50: Duration,
    p99: Duration,
}

fn latency<P: Path>(path: &P, n: usize, statement: impl Fn(usize) -> String) -> Latency {
    let mut client = path.client();
    for i in 0..WARMUP {
        path.run(&mut client, &statement(i));
    }
    let mut times: Vec<Duration> = (WARMUP..WARMUP + n)
        .map(|i| {
            let sql = statement(i);
            let started = Instant::now();
            path.run(&mut client, &sql);
            started.elapsed()
        })
        .collect();
    times.sort();
    Latency {
        p50: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
    }
}

/// Statements per second with `CONCURRENCY` workers running `n` statements in all.
fn throughput<P: Path>(path: &P, n: usize, statement: impl Fn(usize) -> String + Sync) -> f64 {
    let per_worker = n / CONCURRENCY;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..CONCURRENCY {
            let statement = &statement;
            scope.spawn(move || {
                let mut client = path.client();
                for i in 0..per_worker {
                    path.run(&mut client, &statement(worker * per_worker + i));
                }
            });
        }
    });
    (per_worker * CONCURRENCY) as f64 / started.elapsed().as_secs_f64()
}

/// The figures of one path on one backend.
struct Figures {
    insert: Latency,
    insert_per_s: f64,
    lookup: Latency,
    lookup_per_s: f64,
}

/// Inserts and looks up rows through `path`; `next_id` hands out fresh primary keys.
fn measure<P: Path>(path: &P, next_id: &AtomicI64) -> Figures {
    let n = samples(DEFAULT_SAMPLES);
    let fresh = |_| insert_sql(next_id.fetch_add(1, Ordering::Relaxed));
    let insert = latency(path, n, fresh);
    let insert_per_s = throughput(path, n * 2, fresh);
    let population = next_id.load(Ordering::Relaxed);
    let lookup = latency(path, n, |i| lookup_sql(i, population));
    let lookup_per_s = throughput(path, n * 2, |i| lookup_sql(i, population));
    Figures {
        insert,
        insert_per_s,
        lookup,
        lookup_per_s,
    }
}

fn in_process(backend: StorageBackend) -> InProcess {
    let dir = TempDir::new().expect("temp dir");
    let db = Database::open(backend, &dir.path().join("data")).expect("database opens");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(db.engine.execute(&mut Session::root(), DDL, &[]))
        .expect("DDL");
    InProcess {
        _dir: dir,
        engine: Arc::clone(&db.engine),
        runtime,
    }
}

fn http(backend: StorageBackend) -> Http {
    let server = TestServer::start(backend);
    server.create_user(BENCH_USER, "bench-password", "user");
    server.sql_ok(&server.root(), DDL);
    let authorization = server.bearer(BENCH_USER, "bench-password");
    Http {
        url: server.url("/v1/api/sql"),
        server,
        authorization,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn report(backend: StorageBackend, http: &Figures, local: &Figures) {
    println!("\n{backend}: statement          | in-process      | HTTP            | HTTP / in-process");
    let latency_rows = |name: &str, local: &Latency, http: &Latency| {
        [
            (
                format!("{name} p50 (c=1)"),
                ms(local.p50),
                ms(http.p50),
                ratio(http.p50, local.p50),
            ),
            (
                format!("{name} p99 (c=1)"),
                ms(local.p99),
                ms(http.p99),
                ratio(http.p99, local.p99),
            ),
        ]
    };
    let throughput_row = |name: &str, local: f64, http: f64| {
        (
            format!("{name}/s (c=8)"),
            format!("{local:.0}"),
            format!("{http:.0}"),
            format!("{:.2}", http / local),
        )
    };
    let mut rows = Vec::new();
    rows.extend(latency_rows("INSERT", &local.insert, &http.insert));
    rows.push(throughput_row("INSERT", local.insert_per_s, http.insert_per_s));
    rows.extend(latency_rows("PK SELECT", &local.lookup, &http.lookup));
    rows.push(throughput_row("PK SELECT", local.lookup_per_s, http.lookup_per_s));
    for (name, local, http, ratio) in rows {
        println!("{backend}: {name:<19} | {local:<15} | {http:<15} | {ratio}");
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
}

/// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Resets the peak resident size (`VmHWM`) to the current one.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs accepts 5");
}

/// Reads `SELECT ... LIMIT rows` through HTTP without keeping the body, giving the body's
/// size and how far the process's peak resident memory rose above where it started.
fn streamed_select(http: &Http, rows: usize) -> (u64, u64) {
    let agent = http.client();
    reset_peak_rss();
    let before = proc_status_kib("VmRSS");
    let body = serde_json::to_vec(&json!({ "sql": format!("SELECT * FROM app.big LIMIT {rows}") })).expect("JSON");
    let mut response = agent
        .post(&http.url)
        .header("Authorization", &http.authorization)
        .send(&body[..])
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let read = reader.read(&mut buffer).expect("the body reads");
        if read == 0 {
            break;
        }
        bytes += read as u64;
    }
    let growth = proc_status_kib("VmHWM").saturating_sub(before);
    (bytes, growth)
}

fn streaming_memory(backend: StorageBackend, http: &Http) {
    http.server.sql_ok(
        &http.server.root(),
        "CREATE USER TABLE app.big (id BIGINT PRIMARY KEY, v TEXT)",
    );
    for chunk in 0..STREAM_ROWS / 1_000 {
        let values: Vec<String> = (0..1_000)
            .map(|i| {
                let id = chunk * 1_000 + i;
                format!("({id}, 'row {id:06} of the streamed result, with a payload of some length')")
            })
            .collect();
        http.server.sql_ok(
            &http.authorization,
            &format!("INSERT INTO app.big (id, v) VALUES {}", values.join(",")),
        );
    }
    println!();
    for rows in [1_000, 10_000, STREAM_ROWS] {
        // The first read warms caches and allocator pools; the second is the figure.
        streamed_select(http, rows);
        let (bytes, growth_kib) = streamed_select(http, rows);
        println!(
            "{backend}: SELECT of {rows:>6} rows over HTTP: {:>6.1} MiB of JSON, peak resident memory +{:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0),
            growth_kib as f64 / 1024.0
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects backends by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    for backend in StorageBackend::ALL {
        if !filter.is_empty() && !filter.iter().any(|f| backend.as_str().contains(f.as_str())) {
            continue;
        }
        let local = in_process(backend);
        let local_figures = measure(&local, &AtomicI64::new(0));
        drop(local);
        let http = http(backend);
        let http_figures = measure(&http, &AtomicI64::new(0));
        report(backend, &http_figures, &local_figures);
        streaming_memory(backend, &http);
    }
}
