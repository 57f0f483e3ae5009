//! `flushed_query`: an aggregate over rows most of which were flushed to Parquet.

use super::{Bench, Outcome, load_items};
use crate::dataset::{CATEGORIES, ITEMS_COLUMNS_SQL};
use crate::error::{BenchError, BenchResult};

/// Rows flushed before the measurement.
const FLUSHED: usize = 10_000;
/// Rows written after the flush (still hot).
const HOT: usize = 1_000;

/// A GROUP BY over 10,000 flushed and 1,000 hot rows of one user.
pub fn flushed_query(bench: &Bench) -> BenchResult<Vec<Outcome>> {
    let table = Bench::table("cold");
    bench.root.sql(&format!("DROP TABLE IF EXISTS {table}"), &[])?;
    bench
        .user
        .sql(&format!("CREATE USER TABLE {table} ({ITEMS_COLUMNS_SQL})"), &[])?;
    load_items(&bench.user, &table, 0, FLUSHED)?;
    bench.root.sql(&format!("FLUSH TABLE {table}"), &[])?;
    load_items(&bench.user, &table, FLUSHED as i64, HOT)?;
    let total = (FLUSHED + HOT) as i64;
    let sql_over = |t: &str| format!("SELECT category, COUNT(*), SUM(amount) FROM {t} GROUP BY category");
    let sql = sql_over(&table);
    let iterations = (bench.settings.iterations / 5).max(20);
    let summary = bench.measure("flushed_query", iterations, 1, FLUSHED + HOT, |_, _| {
        let rows = bench.user.rows(&sql, &[])?;
        let counted: i64 = rows
            .iter()
            .map(|r| {
                r[1].as_i64()
                    .or_else(|| r[1].as_str().and_then(|s| s.parse().ok()))
                    .unwrap_or(0)
            })
            .sum();
        if rows.len() != CATEGORIES as usize || counted != total {
            return Err(BenchError::Check(format!(
                "the aggregate saw {counted} rows in {} groups, not {total} in {CATEGORIES}",
                rows.len()
            )));
        }
        Ok(())
    })?;
    let (limit, _) = bench.memory.query(&sql_over("items_cold"), iterations)?;
    Ok(vec![
        Outcome::new(
            "flushed_query",
            "GROUP BY over 10,000 flushed (Parquet) and 1,000 hot rows",
            1,
            summary,
        )
        .with_limit(limit),
    ])
}
