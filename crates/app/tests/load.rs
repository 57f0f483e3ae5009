//! Load: the `calamus` binary with 1,000 concurrent connections, each a user's client
//! doing mixed inserts, updates, counts and key lookups, for a while. No request fails, no
//! acknowledged write is lost or changed, every count a client reads matches what it wrote,
//! and the server's resident memory stays bounded. And the connection limit: connections
//! beyond `server.max_connections` wait until one closes.
//!
//! The default run is short (1,000 connections for 5 s per backend); the long one is
//! `CALAMUS_LOAD_SECONDS=60 cargo test --release -p calamus --test load -- --nocapture`
//! (`CALAMUS_LOAD_CONNECTIONS` changes the number of connections).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, agent, basic, sql};

mod support;

/// Users the connections are spread over.
const USERS: usize = 50;
/// The peak resident memory a run may reach (a debug build with 1,000 connections uses a
/// fraction of it).
const MEMORY_BOUND_BYTES: u64 = 1 << 30;

/// Runs one load test at a time: each starts a server and many threads.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A user's bearer token.
fn login(port: u16, user: &str) -> String {
    let mut response = agent()
        .post(format!("http://127.0.0.1:{port}/v1/api/auth/login"))
        .send(json!({ "user": user, "password": "pw" }).to_string().as_bytes())
        .expect("login");
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    format!("Bearer {}", body["access_token"].as_str().expect("an access token"))
}

/// The first cell of the first row of a result, as an integer.
fn first_integer(answer: &Value) -> Option<i64> {
    let cell = &answer["results"][0]["rows"][0][0];
    cell.as_i64().or_else(|| cell.as_str()?.parse().ok())
}

/// Runs `statement` over `agent`; a failure says what went wrong (transport, status,
/// body), so a failing run can be told apart from a slow one.
fn send(agent: &ureq::Agent, port: u16, authorization: &str, statement: &str) -> Result<Value, String> {
    let body = json!({ "sql": statement }).to_string();
    let mut response = agent
        .post(format!("http://127.0.0.1:{port}/v1/api/sql"))
        .header("Authorization", authorization)
        .send(body.as_bytes())
        .map_err(|error| format!("sending: {error}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|error| format!("status {status}, reading the body: {error}"))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|error| format!("status {status}, not JSON ({error}): {text}"))?;
    if status == 200 {
        Ok(value)
    } else {
        Err(format!("status {status}: {value}"))
    }
}

/// One connection's client: what it wrote (id → v), its request latencies, its failures.
#[derive(Default)]
struct Client {
    rows: BTreeMap<i64, i64>,
    latencies_us: Vec<u64>,
    failures: Vec<String>,
}

/// Runs connection `index` until `stop`: insert a row; every third time also add one to a
/// row's `v`; every second time count its rows; every fifth read a row by key.
fn run_client(port: u16, index: usize, authorization: &str, start: &Barrier, stop: &AtomicBool) -> Client {
    // Patient: with a thousand clients on a small machine a request may queue for seconds.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(180)))
        .build()
        .into();
    let mut client = Client::default();
    let request = |client: &mut Client, statement: &str| -> Option<Value> {
        let began = Instant::now();
        let answer = send(&agent, port, authorization, statement);
        client.latencies_us.push(began.elapsed().as_micros() as u64);
        match answer {
            Ok(value) => Some(value),
            Err(error) => {
                client.failures.push(format!("{statement}: {error}"));
                None
            }
        }
    };
    // Every connection is open before any load starts.
    request(&mut client, "SELECT 1");
    start.wait();
    let mut k = 0i64;
    while !stop.load(Ordering::Relaxed) && client.failures.is_empty() {
        k += 1;
        let id = index as i64 * 1_000_000 + k;
        if request(
            &mut client,
            &format!("INSERT INTO app.items (id, conn, v) VALUES ({id}, {index}, 0)"),
        )
        .is_some()
        {
            client.rows.insert(id, 0);
        }
        let some_row = *client
            .rows
            .keys()
            .nth(k as usize % client.rows.len().max(1))
            .unwrap_or(&id);
        if k % 3 == 0
            && request(
                &mut client,
                &format!("UPDATE app.items SET v = v + 1 WHERE id = {some_row}"),
            )
            .is_some()
        {
            *client.rows.get_mut(&some_row).unwrap() += 1;
        }
        if k % 2 == 0
            && let Some(answer) = request(
                &mut client,
                &format!("SELECT count(*) FROM app.items WHERE conn = {index}"),
            )
            && first_integer(&answer) != Some(client.rows.len() as i64)
        {
            client.failures.push(format!(
                "connection {index} counted {answer} of {} rows",
                client.rows.len()
            ));
        }
        if k % 5 == 0
            && let Some(answer) = request(&mut client, &format!("SELECT v FROM app.items WHERE id = {some_row}"))
            && first_integer(&answer) != client.rows.get(&some_row).copied()
        {
            client.failures.push(format!("row {some_row} reads {answer}"));
        }
    }
    client
}

/// The value at `quantile` of sorted `values`.
fn percentile(values: &[u64], quantile: f64) -> u64 {
    values[((values.len() - 1) as f64 * quantile) as usize]
}

fn a_thousand_connections_of_mixed_reads_and_writes(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let connections = setting("CALAMUS_LOAD_CONNECTIONS", 1000) as usize;
    let seconds = setting("CALAMUS_LOAD_SECONDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(backend, &dir.path().join("data"));
    let port = server.port;
    let root = basic("root", "");
    let mut setup = vec![
        "CREATE NAMESPACE app".to_owned(),
        "CREATE USER TABLE app.items (id BIGINT PRIMARY KEY, conn INT NOT NULL, v BIGINT NOT NULL)".to_owned(),
    ];
    setup.extend((0..USERS).map(|u| format!("CREATE USER u{u} WITH PASSWORD 'pw' ROLE user")));
    sql(&agent(), port, &root, &setup.join("; ")).expect("setup");
    let tokens: Vec<String> = (0..USERS).map(|u| login(port, &format!("u{u}"))).collect();
    let (idle_memory, _) = server.memory();

    let start = Arc::new(Barrier::new(connections + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..connections)
        .map(|index| {
            let (start, stop, token) = (Arc::clone(&start), Arc::clone(&stop), tokens[index % USERS].clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || run_client(port, index, &token, &start, &stop))
                .expect("a client thread")
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let peak = AtomicU64::new(0);
    while began.elapsed() < Duration::from_secs(seconds) {
        peak.fetch_max(server.memory().0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let clients: Vec<Client> = clients.into_iter().map(|c| c.join().expect("a client")).collect();
    let elapsed = began.elapsed();
    let (after_memory, high_water) = server.memory();

    let failures: Vec<&String> = clients.iter().flat_map(|c| &c.failures).collect();
    assert!(
        failures.is_empty(),
        "{backend}: {} failures, the first: {}",
        failures.len(),
        failures[0]
    );
    // Every acknowledged write is there with its last value, each user seeing only its own.
    let agent = agent();
    for (user, token) in tokens.iter().enumerate() {
        let answer = sql(&agent, port, token, "SELECT id, conn, v FROM app.items").expect("read back");
        let stored: BTreeMap<i64, (i64, i64)> = answer["results"][0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let cell = |i: usize| row[i].as_i64().or_else(|| row[i].as_str()?.parse().ok()).unwrap();
                (cell(0), (cell(1), cell(2)))
            })
            .collect();
        let expected: BTreeMap<i64, (i64, i64)> = clients
            .iter()
            .enumerate()
            .filter(|(index, _)| index % USERS == user)
            .flat_map(|(index, c)| c.rows.iter().map(move |(&id, &v)| (id, (index as i64, v))))
            .collect();
        assert_eq!(stored, expected, "{backend}: user u{user}'s rows");
    }
    let mut latencies: Vec<u64> = clients.iter().flat_map(|c| c.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let writes: usize = clients.iter().map(|c| c.rows.len()).sum();
    let peak = peak.load(Ordering::Relaxed).max(high_water);
    println!(
        "{backend}: {connections} connections for {:.1} s: {} requests ({:.0}/s), {writes} rows written, \
         0 failures; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; resident memory idle {} MiB, \
         peak {} MiB, after {} MiB",
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        percentile(&latencies, 1.0) as f64 / 1000.0,
        idle_memory >> 20,
        peak >> 20,
        after_memory >> 20,
    );
    assert!(latencies.len() >= 2 * connections, "every connection made requests");
    assert!(
        peak < MEMORY_BOUND_BYTES,
        "{backend}: resident memory peaked at {} MiB",
        peak >> 20
    );
}

/// Sends `GET /health` on `stream` (keep-alive) and reads the start of the answer.
fn health_on(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut buffer = [0u8; 512];
    let read = stream.read(&mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer[..read]).into_owned())
}

fn connections_beyond_the_limit_wait_until_one_closes(backend: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("calamus.toml");
    std::fs::write(&config, "[server]\nmax_connections = 4\n").unwrap();
    let server = Server::start_with_config(backend, &dir.path().join("data"), &config);
    let address = format!("127.0.0.1:{}", server.port);
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            assert!(health_on(&mut stream).unwrap().starts_with("HTTP/1.1 200"));
            stream
        })
        .collect();
    // The fifth is not served while four are open.
    let mut fifth = TcpStream::connect(&address).unwrap();
    fifth.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let waited = health_on(&mut fifth);
    assert!(waited.is_err(), "{backend}: a fifth connection was served: {waited:?}");
    // One closes: the fifth is served.
    drop(held.pop());
    fifth.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buffer = [0u8; 512];
    let read = fifth.read(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_thousand_connections_of_mixed_reads_and_writes_on_rocksdb() {
    a_thousand_connections_of_mixed_reads_and_writes("rocksdb");
}

#[test]
fn a_thousand_connections_of_mixed_reads_and_writes_on_sled() {
    a_thousand_connections_of_mixed_reads_and_writes("sled");
}

#[test]
fn connections_beyond_the_limit_wait_until_one_closes_on_rocksdb() {
    connections_beyond_the_limit_wait_until_one_closes("rocksdb");
}

#[test]
fn connections_beyond_the_limit_wait_until_one_closes_on_sled() {
    connections_beyond_the_limit_wait_until_one_closes("sled");
}
