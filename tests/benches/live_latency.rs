//! Live queries under load, against a server in a child process (so its memory is its own):
//!
//! - notification latency, from the writer's acknowledgement (its HTTP response read) to
//!   the subscriber's receipt of the `change`, with 1, 1,000 and 10,000 live subscriptions
//!   spread over 1,000 users of one USER table. The writer inserts into its own partition,
//!   watched by one probe subscription; the others watch other users' partitions, so the
//!   latency must not grow with them;
//! - the server's resident memory per idle connection and per idle subscription;
//! - stream ingest: single-row inserts per second into one STREAM table with a subscriber
//!   attached, at concurrency 1 and 8, every event received.
//!
//! Run: `cargo bench -p calamus-tests --bench live_latency` (a release build); a backend
//! name as argument runs that backend only. `CALAMUS_BENCH_SAMPLES` changes the number of
//! timed writes per measurement (2,000).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use calamus::StorageBackend;
use calamus_tests::bench_support::samples;
use calamus_tests::server::{TestServer, basic};
use calamus_tests::ws_client::WsClient;
use serde_json::{Value, json};

const DEFAULT_SAMPLES: usize = 2_000;
const USERS: usize = 1_000;
const SUBSCRIPTION_COUNTS: [usize; 3] = [1, 1_000, 10_000];
const WARMUP: usize = 200;
const SERVE_FLAG: &str = "--serve-for-bench";

/// The server side: a child process running a server until its stdin closes.
struct RemoteServer {
    child: Child,
    addr: SocketAddr,
    http: Http,
}

/// A keep-alive HTTP client of the server.
struct Http {
    addr: SocketAddr,
    agent: ureq::Agent,
}

impl RemoteServer {
    fn start(backend: StorageBackend) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .args([SERVE_FLAG, backend.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server process starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server says where it listens");
        let addr = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("an address, not {line:?}"));
        Self {
            child,
            addr,
            http: Http::new(addr),
        }
    }

    fn sql(&self, authorization: &str, sql: &str) -> Value {
        self.http.sql(authorization, sql)
    }

    fn bearer(&self, user: &str, password: &str) -> String {
        self.http.bearer(user, password)
    }

    /// The server's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the server's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Http {
    fn new(addr: SocketAddr) -> Self {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Self { addr, agent }
    }

    fn sql(&self, authorization: &str, sql: &str) -> Value {
        let body = json!({ "sql": sql }).to_string();
        let mut response = self
            .agent
            .post(format!("http://{}/v1/api/sql", self.addr))
            .header("Authorization", authorization)
            .send(body.as_bytes())
            .expect("answered");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        assert_eq!(status, 200, "{sql}: {text}");
        serde_json::from_str(&text).expect("JSON")
    }

    fn bearer(&self, user: &str, password: &str) -> String {
        let body = json!({"user": user, "password": password}).to_string();
        let mut response = self
            .agent
            .post(format!("http://{}/v1/api/auth/login", self.addr))
            .send(body.as_bytes())
            .expect("answered");
        let answer: Value = serde_json::from_str(&response.body_mut().read_to_string().expect("a body")).expect("JSON");
        format!("Bearer {}", answer["access_token"].as_str().expect("a token"))
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The child: serves until stdin closes.
fn serve(backend: StorageBackend) {
    let server = TestServer::start_with(backend, |config| {
        config.server.max_connections = 4096;
        config.log.level = "error".into();
    });
    println!("{}", server.addr);
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(server);
}

fn root() -> String {
    basic("root", "")
}

fn user(i: usize) -> String {
    format!("u{i:04}")
}

fn password(i: usize) -> String {
    format!("pw-{i}")
}

/// Creates the users in batches (each password is hashed with Argon2).
fn create_users(server: &RemoteServer) {
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(100) {
        let sql: Vec<String> = chunk
            .iter()
            .map(|&i| format!("CREATE USER {} WITH PASSWORD '{}' ROLE user", user(i), password(i)))
            .collect();
        server.sql(&root(), &sql.join("; "));
    }
}

/// One authenticated connection for each of users 1.. (as many as `connections`).
fn connect_users(server: &RemoteServer, connections: usize) -> Vec<WsClient> {
    (0..connections)
        .map(|c| {
            let u = c % (USERS - 1) + 1;
            WsClient::connect_as(server.addr, &server.bearer(&user(u), &password(u)))
        })
        .collect()
}

/// Spreads `count` subscriptions over `clients`.
fn subscribe_all(clients: &mut [WsClient], count: usize) {
    for s in 0..count {
        let client = &mut clients[s % clients.len()];
        let (ack, _) = client.subscribe(&format!("s{s}"), "SELECT * FROM app.events WHERE kind = 'x'", json!({}));
        assert_eq!(ack["type"], "subscription_ack");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Starts a thread timestamping the `change` messages `client` receives, by row id.
fn receive_changes(mut client: WsClient) -> (mpsc::Receiver<(u64, Instant)>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        while let Some(message) = client.try_recv(Duration::from_secs(5)) {
            let at = Instant::now();
            if message["type"] != "change" {
                continue;
            }
            for row in message["rows"].as_array().into_iter().flatten() {
                let id = row["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                if tx.send((id, at)).is_err() {
                    return;
                }
            }
        }
    });
    (rx, reader)
}

/// Latencies of `n` inserts by user 0 into its partition (after a warm-up).
fn notification_latency(server: &RemoteServer, n: usize, first_id: u64) -> Vec<Duration> {
    let mut probe = WsClient::connect_as(server.addr, &server.bearer(&user(0), &password(0)));
    probe.subscribe("probe", "SELECT * FROM app.events WHERE kind = 'x'", json!({}));
    let (received_rx, reader) = receive_changes(probe);
    let authorization = basic(&user(0), &password(0));
    let mut acknowledged = Vec::with_capacity(n + WARMUP);
    for i in 0..(n + WARMUP) as u64 {
        let id = first_id + i;
        server.sql(
            &authorization,
            &format!("INSERT INTO app.events (id, kind) VALUES ({id}, 'x')"),
        );
        acknowledged.push((id, Instant::now()));
        // Paced like a client that waits a moment between writes, so queues stay empty.
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut received = HashMap::new();
    while received.len() < n + WARMUP {
        let (id, at) = received_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("every change arrives");
        received.insert(id, at);
    }
    drop(received_rx);
    let _ = reader.join();
    let mut latencies: Vec<Duration> = acknowledged[WARMUP..]
        .iter()
        .map(|(id, acked)| received[id].saturating_duration_since(*acked))
        .collect();
    latencies.sort();
    latencies
}

/// Inserts per second into a STREAM table by `writers` concurrent writers (user 0), with
/// user 0 subscribed; checks that every event arrived.
fn stream_ingest(server: &RemoteServer, writers: usize, events: usize) -> f64 {
    let table = format!("typing{writers}");
    server.sql(
        &root(),
        &format!("CREATE STREAM TABLE app.{table} (id BIGINT, who TEXT) WITH (TTL_SECONDS = 3600)"),
    );
    let mut subscriber = WsClient::connect_as(server.addr, &server.bearer(&user(0), &password(0)));
    subscriber.subscribe("s", &format!("SELECT * FROM app.{table}"), json!({}));
    let (received_rx, reader) = receive_changes(subscriber);
    let per_writer = events / writers;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let table = &table;
            scope.spawn(move || {
                let writer = Http::new(server.addr);
                let authorization = basic(&user(0), &password(0));
                for i in 0..per_writer {
                    let id = w * per_writer + i;
                    writer.sql(&authorization, &format!("INSERT INTO app.{table} VALUES ({id}, 'u0')"));
                }
            });
        }
    });
    let rate = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();
    let mut received = 0;
    while received < per_writer * writers {
        received_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("every event reaches the subscriber");
        received += 1;
    }
    drop(received_rx);
    let _ = reader.join();
    rate
}

fn run(backend: StorageBackend) {
    let n = samples(DEFAULT_SAMPLES);
    let server = RemoteServer::start(backend);
    server.sql(
        &root(),
        "CREATE NAMESPACE app; CREATE USER TABLE app.events (id BIGINT PRIMARY KEY, kind TEXT)",
    );
    let started = Instant::now();
    create_users(&server);
    eprintln!("{backend}: {USERS} users created in {:.1?}", started.elapsed());

    let mut next_id = 0;
    for count in SUBSCRIPTION_COUNTS {
        let background = count - 1;
        let idle_rss = server.rss_kib();
        let mut clients = connect_users(&server, background.min(USERS - 1));
        let connected_rss = server.rss_kib();
        subscribe_all(&mut clients, background);
        let subscribed_rss = server.rss_kib();
        if background > 0 {
            // Signed: resident memory can shrink when the allocator hands pages back.
            let connections = connected_rss as f64 - idle_rss as f64;
            let subscriptions = subscribed_rss as f64 - connected_rss as f64;
            println!(
                "{backend}: memory: {} idle connections {:+.1} MiB ({:.1} KiB each); {background} idle subscriptions {:+.1} MiB ({:.2} KiB each)",
                clients.len(),
                connections / 1024.0,
                connections / clients.len() as f64,
                subscriptions / 1024.0,
                subscriptions / background as f64,
            );
        }
        let latencies = notification_latency(&server, n, next_id);
        next_id += (n + WARMUP) as u64;
        println!(
            "{backend}: {count:>6} subscriptions: notification latency p50 {:>7.3} ms, p99 {:>7.3} ms, max {:>7.3} ms ({n} writes)",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().expect("latencies").as_secs_f64() * 1e3,
        );
        for client in clients {
            client.close();
        }
    }
    for writers in [1, 8] {
        let rate = stream_ingest(&server, writers, n * 4);
        println!("{backend}: stream ingest with a subscriber, {writers} writer(s): {rate:.0} events/s");
    }
    println!(
        "{backend}: server resident memory at the end: {:.1} MiB",
        server.rss_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_FLAG) {
        let backend = args.get(1).and_then(|b| b.parse().ok()).expect("a backend");
        serve(backend);
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    for backend in StorageBackend::ALL {
        if filter.is_empty() || filter.iter().any(|f| backend.as_str().contains(f.as_str())) {
            run(backend);
        }
    }
}
