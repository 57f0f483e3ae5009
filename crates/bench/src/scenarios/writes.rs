//! Scenarios that write: single rows, bulk statements, updates, deletes, concurrent
//! writers, and a STREAM table's ingest.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::{Bench, Outcome, load_items};
use crate::dataset::{ITEMS_COLUMNS_SQL, Item, insert_values};
use crate::error::{BenchError, BenchResult};

/// The table the write scenarios insert into, created on first use.
pub(super) fn writes_table(bench: &Bench) -> BenchResult<String> {
    let table = Bench::table("writes");
    bench.user.sql(
        &format!("CREATE USER TABLE IF NOT EXISTS {table} ({ITEMS_COLUMNS_SQL})"),
        &[],
    )?;
    Ok(table)
}

fn insert_sql(table: &str) -> String {
    format!("INSERT INTO {table} (id, category, amount, note) VALUES ($1, $2, $3, $4)")
}

fn affected(answer: &serde_json::Value) -> u64 {
    answer["results"][0]["row_count"].as_u64().unwrap_or(0)
}

fn expect_one(answer: &serde_json::Value, what: &str) -> BenchResult<()> {
    match affected(answer) {
        1 => Ok(()),
        n => Err(BenchError::Check(format!("{what} affected {n} rows, not 1: {answer}"))),
    }
}

/// One row per INSERT statement, with parameters, one client.
pub fn single_insert(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = writes_table(bench)?;
    let sql = insert_sql(&table);
    let iterations = bench.settings.iterations;
    let summary = bench.measure("single_insert", iterations, 1, 1, |_, _| {
        expect_one(
            &bench.user.sql(&sql, &Item::new(bench.fresh_id()).params())?,
            "an INSERT",
        )
    })?;
    let limit = bench.write_limit(iterations, 1)?;
    Ok(vec![
        Outcome::new("single_insert", "INSERT of 1 row ($n parameters)", 1, summary).with_limit(limit),
    ])
}

/// INSERT statements of 50 and of 1,000 rows.
pub fn bulk_insert(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = writes_table(bench)?;
    let mut outcomes = Vec::new();
    for (rows, iterations) in [
        (50, (bench.settings.iterations / 5).max(20)),
        // 100 statements by default: with 20, one stall of the store (a memtable switch)
        // moved the mean by a tenth.
        (1000, (bench.settings.iterations / 10).max(10)),
    ] {
        let name = format!("bulk_insert_{rows}");
        // The statements' text is written before the clock starts: what is timed is the
        // request and the server's work, not the client formatting rows.
        let runs = bench.settings.warmup.min(iterations) + iterations;
        let statements: Vec<String> = (0..runs)
            .map(|_| insert_values(&table, bench.fresh_ids(rows), rows))
            .collect();
        let next = AtomicUsize::new(0);
        let summary = bench.measure(&name, iterations, 1, rows, |_, _| {
            let sql = statements
                .get(next.fetch_add(1, Ordering::Relaxed))
                .ok_or_else(|| BenchError::Check(format!("{name} ran more statements than it wrote")))?;
            let answer = bench.user.sql(sql, &[])?;
            match affected(&answer) {
                n if n == rows as u64 => Ok(()),
                n => Err(BenchError::Check(format!("a bulk INSERT of {rows} rows affected {n}"))),
            }
        })?;
        let limit = bench.write_limit(iterations, rows)?;
        outcomes
            .push(Outcome::new(&name, &format!("INSERT of {rows} rows (one statement)"), 1, summary).with_limit(limit));
    }
    Ok(outcomes)
}

/// Rows for an UPDATE or DELETE scenario to work on: `count` fresh items; the first id.
fn seeded_rows(bench: &Bench, table: &str, count: usize) -> BenchResult<i64> {
    let first = bench.fresh_ids(count);
    load_items(&bench.user, table, first, count)?;
    Ok(first)
}

/// One row per UPDATE, by primary key.
pub fn single_update(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = writes_table(bench)?;
    let iterations = bench.settings.iterations;
    let rows = iterations + bench.settings.warmup;
    let first = seeded_rows(bench, &table, rows)?;
    let sql = format!("UPDATE {table} SET amount = amount + 1 WHERE id = $1");
    let summary = bench.measure("single_update", iterations, 1, 1, |_, i| {
        let id = first + (i % rows) as i64;
        expect_one(&bench.user.sql(&sql, &[json!(id)])?, "an UPDATE")
    })?;
    let limit = bench.write_limit(iterations, 1)?;
    Ok(vec![
        Outcome::new("single_update", "UPDATE of 1 row by primary key", 1, summary)
            .with_limit(limit)
            .note("limit: a 1-row engine write (an UPDATE also reads the row)"),
    ])
}

/// One row per DELETE, by primary key; every deleted row existed.
pub fn single_delete(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = writes_table(bench)?;
    let iterations = bench.settings.iterations;
    let warmup = bench.settings.warmup.min(iterations);
    let first = seeded_rows(bench, &table, iterations + warmup)?;
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    let summary = bench.measure("single_delete", iterations, 1, 1, |_, i| {
        // Warm-up runs get i from the top of usize's range: their own rows after the measured ones.
        let offset = if i >= iterations {
            iterations + (usize::MAX - i)
        } else {
            i
        };
        expect_one(&bench.user.sql(&sql, &[json!(first + offset as i64)])?, "a DELETE")
    })?;
    let limit = bench.write_limit(iterations, 1)?;
    Ok(vec![
        Outcome::new("single_delete", "DELETE of 1 row by primary key", 1, summary)
            .with_limit(limit)
            .note("limit: a 1-row engine write (a DELETE also reads the row)"),
    ])
}

/// Single-row INSERTs from `concurrency` clients at once.
pub fn concurrent_insert(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = writes_table(bench)?;
    concurrent_inserts(
        bench,
        "concurrent_insert",
        &table,
        "INSERT of 1 row, concurrent clients",
    )
}

/// `settings.concurrency` clients inserting one new item per statement into `table`,
/// compared with one-row engine writes.
fn concurrent_inserts(bench: &Bench, scenario: &str, table: &str, operation: &str) -> BenchResult<Vec<Outcome>> {
    let sql = insert_sql(table);
    let (iterations, workers) = (bench.settings.iterations * 2, bench.settings.concurrency);
    let summary = bench.measure(scenario, iterations, workers, 1, |_, _| {
        expect_one(&bench.user.sql(&sql, &Item::new(bench.fresh_id()).params())?, operation)
    })?;
    let limit = bench.write_limit(iterations, 1)?;
    Ok(vec![
        Outcome::new(scenario, operation, workers, summary)
            .with_limit(limit)
            .note("limit: 1-row engine writes from one thread"),
    ])
}

/// Events into a STREAM table (TTL and per-user row cap) from `concurrency` clients.
pub fn stream_ingest(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = Bench::table("events");
    bench.user.sql(
        &format!("CREATE STREAM TABLE IF NOT EXISTS {table} ({ITEMS_COLUMNS_SQL}) WITH (TTL_SECONDS = 300, MAX_ROWS = 100000)"),
        &[],
    )?;
    concurrent_inserts(
        bench,
        "stream_ingest",
        &table,
        "INSERT of 1 event into a STREAM table, concurrent clients",
    )
}
