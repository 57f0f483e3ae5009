//! Live-query notification latency: from the writer's acknowledgement (its HTTP response
//! read) to the subscriber's receipt of the `change` message, with 1, 1,000 and 10,000
//! live subscriptions spread over 1,000 users of one USER table.
//!
//! The writer inserts into its own partition, watched by one probe subscription; the other
//! subscriptions watch other users' partitions of the same table. A write is matched only
//! against the subscriptions of its table and partition, so latency must not grow with
//! them. The server runs in this process on a two-worker runtime, as in the HTTP bench.
//!
//! Run: `cargo bench -p calamus-tests --bench live_latency` (a release build).
//! `CALAMUS_BENCH_SAMPLES` changes the number of timed writes per measurement (2,000).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use calamus::StorageBackend;
use calamus_tests::bench_support::samples;
use calamus_tests::server::{TestServer, basic};
use calamus_tests::ws_client::WsClient;
use serde_json::json;

const USERS: usize = 1_000;
const SUBSCRIPTION_COUNTS: [usize; 3] = [1, 1_000, 10_000];
const DEFAULT_SAMPLES: usize = 2_000;
const WARMUP: usize = 200;

fn user(i: usize) -> String {
    format!("u{i:04}")
}

/// Creates the users in large batches (each password is hashed with Argon2).
fn create_users(server: &TestServer) {
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(100) {
        let sql: Vec<String> = chunk
            .iter()
            .map(|&i| format!("CREATE USER {} WITH PASSWORD 'pw-{i}' ROLE user", user(i)))
            .collect();
        server.sql_ok(&server.root(), &sql.join("; "));
    }
}

/// Opens `count` subscriptions (besides the probe) over users 1.. of `USERS`, ten per
/// connection at most; the connections stay open while the result lives.
fn background_subscriptions(server: &TestServer, count: usize) -> Vec<WsClient> {
    let mut clients = Vec::new();
    let mut opened = 0;
    let mut u = 1;
    while opened < count {
        let token = server.login(&user(u), &format!("pw-{u}"));
        let mut client = WsClient::connect_as(server.addr, &format!("Bearer {token}"));
        let here = (count - opened).min(count.div_ceil(USERS - 1).max(1));
        for s in 0..here {
            let (ack, _) = client.subscribe(&format!("s{s}"), "SELECT * FROM app.events WHERE kind = 'x'", json!({}));
            assert_eq!(ack["type"], "subscription_ack");
        }
        opened += here;
        clients.push(client);
        u = u % (USERS - 1) + 1;
    }
    clients
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Latencies of `n` inserts by the probe user (after a warm-up).
fn measure(server: &TestServer, n: usize, first_id: usize) -> Vec<Duration> {
    let token = server.login(&user(0), "pw-0");
    let mut probe = WsClient::connect_as(server.addr, &format!("Bearer {token}"));
    probe.subscribe("probe", "SELECT * FROM app.events WHERE kind = 'x'", json!({}));
    // The reader timestamps each change as it arrives.
    let (received_tx, received_rx) = mpsc::channel::<(u64, Instant)>();
    let reader = std::thread::spawn(move || {
        while let Some(message) = probe.try_recv(Duration::from_secs(5)) {
            let at = Instant::now();
            if message["type"] != "change" {
                continue;
            }
            let id: u64 = message["rows"][0]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if received_tx.send((id, at)).is_err() {
                break;
            }
        }
    });
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let authorization = basic(&user(0), "pw-0");
    let url = server.url("/v1/api/sql");
    let mut acknowledged = Vec::with_capacity(n + WARMUP);
    for i in 0..n + WARMUP {
        let id = first_id + i;
        let body = json!({"sql": format!("INSERT INTO app.events (id, kind) VALUES ({id}, 'x')")}).to_string();
        let mut response = agent
            .post(&url)
            .header("Authorization", &authorization)
            .send(body.as_bytes())
            .expect("answered");
        let _ = response.body_mut().read_to_string();
        assert_eq!(response.status().as_u16(), 200);
        acknowledged.push((id as u64, Instant::now()));
        // Paced like a client waiting for its own change, so queues stay empty.
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut received = std::collections::HashMap::new();
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

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n = samples(DEFAULT_SAMPLES);
    for backend in StorageBackend::ALL {
        if !filter.is_empty() && !filter.iter().any(|f| backend.as_str().contains(f.as_str())) {
            continue;
        }
        let server = TestServer::start_with(backend, |config| config.server.max_connections = 4096);
        server.sql_ok(
            &server.root(),
            "CREATE NAMESPACE app; CREATE USER TABLE app.events (id BIGINT PRIMARY KEY, kind TEXT)",
        );
        let started = Instant::now();
        create_users(&server);
        eprintln!("{backend}: {USERS} users created in {:.1?}", started.elapsed());
        let mut next_id = 0;
        for count in SUBSCRIPTION_COUNTS {
            let started = Instant::now();
            let background = background_subscriptions(&server, count - 1);
            eprintln!(
                "{backend}: {} background subscriptions on {} connections in {:.1?}",
                count - 1,
                background.len(),
                started.elapsed()
            );
            let latencies = measure(&server, n, next_id);
            next_id += n + WARMUP;
            println!(
                "{backend}: {count:>6} subscriptions: notification latency p50 {:>8.3} ms, p99 {:>8.3} ms, max {:>8.3} ms ({n} writes)",
                percentile(&latencies, 0.50).as_secs_f64() * 1e3,
                percentile(&latencies, 0.99).as_secs_f64() * 1e3,
                latencies.last().unwrap().as_secs_f64() * 1e3,
            );
            for client in background {
                client.close();
            }
        }
    }
}
