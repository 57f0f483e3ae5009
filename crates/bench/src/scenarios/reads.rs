//! Scenarios that read the benchmark user's 10,000 items: by key, by filter, counts,
//! aggregates, concurrent readers, and a read-mostly mix.

use serde_json::json;

use super::{Bench, ITEMS, Outcome, load_items};
use crate::dataset::{CATEGORIES, ITEMS_COLUMNS_SQL, Item};
use crate::error::{BenchError, BenchResult};

/// The items table, created and loaded with [`ITEMS`] rows on first use.
pub(super) fn items_table(bench: &Bench) -> BenchResult<String> {
    let table = Bench::table("items");
    let mut loaded = bench.items_loaded.lock().expect("not poisoned");
    if !*loaded {
        bench.user.sql(
            &format!("CREATE USER TABLE IF NOT EXISTS {table} ({ITEMS_COLUMNS_SQL})"),
            &[],
        )?;
        load_items(&bench.user, &table, 0, ITEMS)?;
        *loaded = true;
    }
    Ok(table)
}

/// The id the `i`-th lookup asks for: spread over the items, the same in every run.
fn lookup_id(i: usize) -> i64 {
    (i as i64).wrapping_mul(7919).rem_euclid(ITEMS as i64)
}

fn point_lookup_once(bench: &Bench, sql: &str, i: usize) -> BenchResult<()> {
    let id = lookup_id(i);
    let rows = bench.user.rows(sql, &[json!(id)])?;
    match rows.as_slice() {
        [row] if row[0] == json!(id) || row[0] == json!(id.to_string()) => Ok(()),
        _ => Err(BenchError::Check(format!("the lookup of id {id} returned {rows:?}"))),
    }
}

/// `SELECT * ... WHERE id = $1`, one client.
pub fn point_lookup(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = items_table(bench)?;
    let sql = format!("SELECT * FROM {table} WHERE id = $1");
    let iterations = bench.settings.iterations;
    let summary = bench.measure("point_lookup", iterations, 1, 1, |_, i| {
        point_lookup_once(bench, &sql, i)
    })?;
    let limit = bench.engine.point_read(iterations.max(10_000))?;
    Ok(vec![
        Outcome::new("point_lookup", "SELECT * by primary key (1 of 10,000 rows)", 1, summary).with_limit(limit),
    ])
}

/// A query the server and DataFusion in memory both run; `check` looks at the server's rows.
fn query_scenario(
    bench: &Bench,
    name: &str,
    operation: &str,
    sql_over: impl Fn(&str) -> String,
    check: impl Fn(&[serde_json::Value]) -> BenchResult<()> + Sync,
) -> BenchResult<Outcome> {
    let table = items_table(bench)?;
    let sql = sql_over(&table);
    let iterations = (bench.settings.iterations / 5).max(20);
    let summary = bench.measure(name, iterations, 1, ITEMS, |_, _| check(&bench.user.rows(&sql, &[])?))?;
    let (limit, limit_rows) = bench.memory.query(&sql_over("items"), iterations)?;
    Ok(Outcome::new(name, operation, 1, summary)
        .with_limit(limit)
        .note(format!(
            "DataFusion in memory returned {limit_rows} row(s) for the same query"
        )))
}

/// `SELECT id, amount ... WHERE category = 'c3'`: 1,000 of 10,000 rows, no index.
pub fn select_by_filter(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let expected = ITEMS / CATEGORIES as usize;
    let outcome = query_scenario(
        bench,
        "select_by_filter",
        "SELECT 2 columns WHERE category = 'c3' (1,000 of 10,000 rows)",
        |t| format!("SELECT id, amount FROM {t} WHERE category = 'c3'"),
        |rows| match rows.len() {
            n if n == expected => Ok(()),
            n => Err(BenchError::Check(format!(
                "the filter returned {n} rows, not {expected}"
            ))),
        },
    )?;
    Ok(vec![outcome])
}

/// `SELECT COUNT(*)` over 10,000 rows; its limit is the engine iterating the same rows.
pub fn select_count(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = items_table(bench)?;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let iterations = (bench.settings.iterations / 5).max(20);
    let summary = bench.measure("select_count", iterations, 1, ITEMS, |_, _| {
        match bench.user.scalar(&sql)? {
            n if n == ITEMS as i64 => Ok(()),
            n => Err(BenchError::Check(format!("COUNT(*) said {n}, not {ITEMS}"))),
        }
    })?;
    let limit = bench.engine.scan(iterations)?;
    Ok(vec![
        Outcome::new("select_count", "SELECT COUNT(*) over 10,000 rows", 1, summary).with_limit(limit),
    ])
}

/// A GROUP BY with four aggregates over 10,000 rows.
pub fn aggregate(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let outcome = query_scenario(
        bench,
        "aggregate",
        "GROUP BY category: COUNT, SUM, AVG, MAX over 10,000 rows",
        |t| format!("SELECT category, COUNT(*), SUM(amount), AVG(amount), MAX(id) FROM {t} GROUP BY category"),
        |rows| match rows.len() {
            n if n == CATEGORIES as usize => Ok(()),
            n => Err(BenchError::Check(format!(
                "the GROUP BY returned {n} groups, not {CATEGORIES}"
            ))),
        },
    )?;
    Ok(vec![outcome])
}

/// Point lookups from `concurrency` clients at once.
pub fn concurrent_select(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = items_table(bench)?;
    let sql = format!("SELECT * FROM {table} WHERE id = $1");
    let (iterations, workers) = (bench.settings.iterations * 2, bench.settings.concurrency);
    let summary = bench.measure("concurrent_select", iterations, workers, 1, |_, i| {
        point_lookup_once(bench, &sql, i)
    })?;
    let limit = bench.engine.point_read(iterations.max(10_000))?;
    Ok(vec![
        Outcome::new(
            "concurrent_select",
            "SELECT * by primary key, concurrent clients",
            workers,
            summary,
        )
        .with_limit(limit)
        .note("limit: engine point reads from one thread"),
    ])
}

/// A read-mostly mix from `concurrency` clients: 70% lookups, 20% inserts, 10% updates.
pub fn mixed(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = items_table(bench)?;
    let lookup = format!("SELECT * FROM {table} WHERE id = $1");
    // Inserts go to the write scenarios' table, so the items stay the 10,000 the reads check.
    let insert = format!(
        "INSERT INTO {} (id, category, amount, note) VALUES ($1, $2, $3, $4)",
        super::writes::writes_table(bench)?
    );
    // Updates touch only preloaded rows and leave every column the checks read as it was.
    let update = format!("UPDATE {table} SET note = $2 WHERE id = $1");
    let (iterations, workers) = (bench.settings.iterations * 2, bench.settings.concurrency);
    let summary = bench.measure("mixed", iterations, workers, 1, |_, i| match i % 10 {
        0..=6 => point_lookup_once(bench, &lookup, i),
        7 | 8 => bench.user.sql(&insert, &Item::new(bench.fresh_id()).params()).map(drop),
        _ => bench
            .user
            .sql(&update, &[json!(lookup_id(i)), json!(format!("updated {i}"))])
            .map(drop),
    })?;
    Ok(vec![Outcome::new(
        "mixed",
        "70% lookups, 20% inserts, 10% updates, concurrent clients",
        workers,
        summary,
    )])
}
