//! Live-query scenarios over WebSocket: a subscription's initial load, the latency of a
//! change notification, and the same with many subscriptions on the table.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Bench, Outcome, load_items};
use crate::client::LiveConnection;
use crate::dataset::{ITEMS_COLUMNS_SQL, Item};
use crate::error::{BenchError, BenchResult};
use crate::stats::Summary;

/// How long a change notification may take before the scenario fails.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Subscriptions per WebSocket connection in `subscriber_scale` (the server's default cap).
const SUBSCRIPTIONS_PER_CONNECTION: usize = 100;

fn user_table(bench: &Bench, name: &str) -> BenchResult<String> {
    let table = Bench::table(name);
    bench.user.sql(
        &format!("CREATE USER TABLE IF NOT EXISTS {table} ({ITEMS_COLUMNS_SQL})"),
        &[],
    )?;
    Ok(table)
}

/// Subscribing to 1,000 rows and receiving all of them.
pub fn subscribe_initial_load(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    const ROWS: usize = 1000;
    let table = user_table(bench, "live")?;
    if bench.user.scalar(&format!("SELECT COUNT(*) FROM {table}"))? == 0 {
        load_items(&bench.user, &table, 0, ROWS)?;
    }
    let connection = Mutex::new(LiveConnection::open(&bench.user)?);
    let sql = format!("SELECT * FROM {table}");
    let iterations = (bench.settings.iterations / 5).max(20);
    let summary = bench.measure("subscribe_initial_load", iterations, 1, ROWS, |_, i| {
        let mut connection = connection.lock().expect("not poisoned");
        let id = format!("initial{i}");
        match connection.subscribe(&id, &sql)? {
            ROWS => connection.unsubscribe(&id),
            n => Err(BenchError::Check(format!("the snapshot had {n} rows, not {ROWS}"))),
        }
    })?;
    Ok(vec![Outcome::new(
        "subscribe_initial_load",
        "subscribe and receive a snapshot of 1,000 rows",
        1,
        summary,
    )])
}

/// Time from sending an INSERT over HTTP to its change arriving on `subscribers` subscriptions.
fn change_latency(
    bench: &Bench,
    scenario: &str,
    table: &str,
    connections: &mut [LiveConnection],
    per_connection: &[usize],
) -> BenchResult<Summary> {
    let insert = format!("INSERT INTO {table} (id, category, amount, note) VALUES ($1, $2, $3, $4)");
    let iterations = if per_connection.iter().sum::<usize>() > 1 {
        (bench.settings.iterations / 20).max(10)
    } else {
        bench.settings.iterations
    };
    let connections = Mutex::new(connections);
    bench.measure(scenario, iterations, 1, 1, |_, _| {
        let mut connections = connections.lock().expect("not poisoned");
        let id = bench.fresh_id();
        bench.user.sql(&insert, &Item::new(id).params())?;
        for (connection, &subscriptions) in connections.iter_mut().zip(per_connection) {
            for _ in 0..subscriptions {
                let change = connection.next_change(CHANGE_TIMEOUT)?;
                let row_id = &change["rows"][0]["id"];
                let is_it = row_id.as_i64() == Some(id) || row_id.as_str() == Some(id.to_string().as_str());
                if change["change_type"] != "insert" || !is_it {
                    return Err(BenchError::Check(format!(
                        "expected the insert of row {id}, got {change}"
                    )));
                }
            }
        }
        Ok(())
    })
}

/// One subscription; each INSERT's notification, timed from the INSERT request.
pub fn subscribe_change_latency(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = user_table(bench, "feed")?;
    let mut connection = LiveConnection::open(&bench.user)?;
    connection.subscribe("feed", &format!("SELECT * FROM {table}"))?;
    let summary = change_latency(
        bench,
        "subscribe_change_latency",
        &table,
        std::slice::from_mut(&mut connection),
        &[1],
    )?;
    Ok(vec![
        Outcome::new(
            "subscribe_change_latency",
            "INSERT over HTTP until its change arrives on the WebSocket",
            1,
            summary,
        )
        .note("target: p99 under 10 ms"),
    ])
}

/// `settings.subscribers` subscriptions on one table; each INSERT until every one of them
/// has its change.
pub fn subscriber_scale(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = user_table(bench, "fanout")?;
    let total = bench.settings.subscribers.max(1);
    let before = bench.sampler.sample_now();
    let started = Instant::now();
    let mut connections = Vec::new();
    let mut per_connection = Vec::new();
    let mut opened = 0;
    while opened < total {
        let n = (total - opened).min(SUBSCRIPTIONS_PER_CONNECTION);
        let mut connection = LiveConnection::open(&bench.user)?;
        for s in 0..n {
            connection.subscribe(&format!("fan{s}"), &format!("SELECT * FROM {table}"))?;
        }
        connections.push(connection);
        per_connection.push(n);
        opened += n;
    }
    let setup = started.elapsed();
    let after = bench.sampler.sample_now();
    let summary = change_latency(bench, "subscriber_scale", &table, &mut connections, &per_connection)?;
    let mut outcome = Outcome::new(
        "subscriber_scale",
        &format!(
            "INSERT until all {total} subscriptions ({} connections) have its change",
            connections.len()
        ),
        1,
        summary,
    )
    .note(format!("{total} subscriptions opened in {setup:.1?}"));
    match (before, after) {
        (Some(before), Some(after)) if after > before => {
            outcome = outcome.note(format!(
                "server memory per subscription (with its connection's share): {:.2} KiB",
                (after - before) as f64 / 1024.0 / total as f64
            ));
        }
        // The allocator reused memory freed by earlier scenarios: resident memory did not grow.
        (Some(_), Some(_)) => outcome = outcome.note("resident memory did not grow with the subscriptions"),
        _ => {}
    }
    Ok(vec![outcome])
}
