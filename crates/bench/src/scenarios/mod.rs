//! The scenarios, and how one is measured: a warm-up, then `iterations` operations shared
//! by `concurrency` workers, each operation timed from the client's side.

mod cold;
mod live;
pub mod per_user;
mod reads;
mod writes;

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::client::HttpClient;
use crate::error::BenchResult;
use crate::limits::{EngineLimits, Limit, MemoryLimits};
use crate::memory::MemorySampler;
use crate::postgres::PostgresBaseline;
use crate::stats::Summary;

/// The namespace the benchmark creates its tables in (dropped and created again by every run).
pub const NAMESPACE: &str = "calamus_bench";
/// The user the scenarios run as (role `user`).
pub const BENCH_USER: &str = "bench_user";
/// The password of every user the benchmark creates.
pub const BENCH_PASSWORD: &str = "calamus-bench-password";
/// Rows of the tables that reads and aggregates run over.
pub const ITEMS: usize = 10_000;

/// How much to measure.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Measured operations of a single-row scenario (others scale it down).
    pub iterations: usize,
    /// Operations run and thrown away before measuring.
    pub warmup: usize,
    /// Workers of the concurrent scenarios.
    pub concurrency: usize,
    /// The user counts of `per_user_select`.
    pub user_counts: Vec<usize>,
    /// Rows of each user in `per_user_select`.
    pub rows_per_user: usize,
    /// Subscriptions of `subscriber_scale`.
    pub subscribers: usize,
}

/// What one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// What one operation is.
    pub operation: String,
    /// Workers.
    pub concurrency: usize,
    /// The latencies and rates.
    pub summary: Summary,
    /// The limit measured in this run for the same work, if one exists.
    pub limit: Option<Limit>,
    /// `summary.ops_per_sec / limit.ops_per_sec`.
    pub of_limit: Option<f64>,
    /// The same work on PostgreSQL, when a server was given.
    pub postgres: Option<Summary>,
    /// Calamus's p50 divided by PostgreSQL's.
    pub postgres_p50_ratio: Option<f64>,
    /// The server's peak resident memory while the scenario ran, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Anything else worth knowing (checks made, derived figures).
    pub notes: Vec<String>,
}

impl Outcome {
    /// An outcome without limit, baseline or notes yet.
    pub fn new(scenario: &str, operation: &str, concurrency: usize, summary: Summary) -> Self {
        Self {
            scenario: scenario.to_owned(),
            operation: operation.to_owned(),
            concurrency,
            summary,
            limit: None,
            of_limit: None,
            postgres: None,
            postgres_p50_ratio: None,
            peak_rss_bytes: None,
            notes: Vec::new(),
        }
    }

    /// The same outcome, compared with `limit`.
    pub fn with_limit(mut self, limit: Limit) -> Self {
        self.of_limit = Some(self.summary.ops_per_sec / limit.ops_per_sec.max(f64::MIN_POSITIVE));
        self.limit = Some(limit);
        self
    }

    /// The same outcome, with a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Everything a scenario needs: the server, the limits, the settings.
pub struct Bench {
    /// What to measure.
    pub settings: Settings,
    /// A client logged in as root (set-up, flushes, memory).
    pub root: HttpClient,
    /// A client logged in as [`BENCH_USER`].
    pub user: HttpClient,
    /// The storage engine alone.
    pub engine: EngineLimits,
    /// DataFusion alone over the items in memory.
    pub memory: MemoryLimits,
    /// PostgreSQL, when a server was given.
    pub postgres: Option<PostgresBaseline>,
    /// The server's memory, sampled in the background.
    pub sampler: MemorySampler,
    /// Whether the items table is loaded (the read scenarios load it on first use).
    items_loaded: Mutex<bool>,
    next_id: AtomicI64,
    engine_next_id: AtomicI64,
}

impl Bench {
    /// Creates the benchmark's namespace, tables and user on the server.
    pub fn prepare(
        settings: Settings,
        root: HttpClient,
        engine: EngineLimits,
        memory: MemoryLimits,
        postgres: Option<PostgresBaseline>,
        sampler: MemorySampler,
    ) -> BenchResult<Self> {
        root.sql(&format!("DROP NAMESPACE IF EXISTS {NAMESPACE} CASCADE"), &[])?;
        root.sql(&format!("CREATE NAMESPACE {NAMESPACE}"), &[])?;
        root.sql(
            &format!("CREATE USER IF NOT EXISTS {BENCH_USER} WITH PASSWORD '{BENCH_PASSWORD}' ROLE user"),
            &[],
        )?;
        let user = root.login_as(BENCH_USER, BENCH_PASSWORD)?;
        Ok(Self {
            settings,
            root,
            user,
            engine,
            memory,
            postgres,
            sampler,
            // Ids of rows the scenarios insert start past every preloaded table's.
            items_loaded: Mutex::new(false),
            next_id: AtomicI64::new(1_000_000_000),
            engine_next_id: AtomicI64::new(0),
        })
    }

    /// Ends the run: the server's memory samples.
    pub fn finish(self) -> Vec<(f64, u64)> {
        self.sampler.finish()
    }

    /// `calamus_bench.<name>`.
    pub fn table(name: &str) -> String {
        format!("{NAMESPACE}.{name}")
    }

    /// A primary key no scenario used yet.
    pub fn fresh_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `count` consecutive fresh primary keys; the first.
    pub fn fresh_ids(&self, count: usize) -> i64 {
        self.next_id.fetch_add(count as i64, Ordering::Relaxed)
    }

    /// The engine-side write limit for batches of `rows` (fresh keys in the limit's store).
    pub fn write_limit(&self, operations: usize, rows: usize) -> BenchResult<Limit> {
        let first = self
            .engine_next_id
            .fetch_add((operations * rows) as i64, Ordering::Relaxed);
        self.engine.write(first, operations, rows)
    }

    /// Measures `op`: first `settings.warmup` (at most `iterations`) unmeasured runs, then
    /// `iterations` runs shared by `concurrency` workers; `op(worker, i)`.
    pub fn measure<F>(
        &self,
        scenario: &str,
        iterations: usize,
        concurrency: usize,
        rows_per_operation: usize,
        op: F,
    ) -> BenchResult<Summary>
    where
        F: Fn(usize, usize) -> BenchResult<()> + Sync,
    {
        let bar = progress_bar(scenario, iterations);
        for i in 0..self.settings.warmup.min(iterations) {
            op(0, usize::MAX - i)?;
        }
        let next = AtomicUsize::new(0);
        let started = Instant::now();
        let per_worker: Vec<BenchResult<Vec<Duration>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..concurrency.max(1))
                .map(|worker| {
                    let (op, next, bar) = (&op, &next, &bar);
                    scope.spawn(move || {
                        let mut latencies = Vec::with_capacity(iterations / concurrency.max(1) + 1);
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= iterations {
                                return Ok(latencies);
                            }
                            let began = Instant::now();
                            op(worker, i)?;
                            latencies.push(began.elapsed());
                            bar.inc(1);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a benchmark worker panicked"))
                .collect()
        });
        let wall = started.elapsed();
        bar.finish_and_clear();
        let mut latencies = Vec::with_capacity(iterations);
        for worker in per_worker {
            latencies.extend(worker?);
        }
        Ok(Summary::of(&mut latencies, wall, rows_per_operation))
    }
}

fn progress_bar(scenario: &str, length: usize) -> ProgressBar {
    let bar = ProgressBar::new(length as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>26} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(scenario.to_owned());
    bar
}

/// A progress line for set-up work that is not measured.
pub fn setup_bar(what: &str, length: usize) -> ProgressBar {
    let bar = ProgressBar::new(length as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>26} [{bar:40}] {pos}/{len} (set-up) eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

/// A scenario: its name and how to run it.
pub struct Scenario {
    /// The name the filter matches and the report shows.
    pub name: &'static str,
    /// Runs it; one or more outcomes (e.g. one per user count).
    pub run: fn(&Bench) -> BenchResult<Vec<Outcome>>,
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "single_insert",
        run: writes::single_insert,
    },
    Scenario {
        name: "bulk_insert",
        run: writes::bulk_insert,
    },
    Scenario {
        name: "point_lookup",
        run: reads::point_lookup,
    },
    Scenario {
        name: "select_by_filter",
        run: reads::select_by_filter,
    },
    Scenario {
        name: "select_count",
        run: reads::select_count,
    },
    Scenario {
        name: "aggregate",
        run: reads::aggregate,
    },
    Scenario {
        name: "single_update",
        run: writes::single_update,
    },
    Scenario {
        name: "single_delete",
        run: writes::single_delete,
    },
    Scenario {
        name: "concurrent_insert",
        run: writes::concurrent_insert,
    },
    Scenario {
        name: "concurrent_select",
        run: reads::concurrent_select,
    },
    Scenario {
        name: "mixed",
        run: reads::mixed,
    },
    Scenario {
        name: "per_user_select",
        run: per_user::per_user_select,
    },
    Scenario {
        name: "subscribe_initial_load",
        run: live::subscribe_initial_load,
    },
    Scenario {
        name: "subscribe_change_latency",
        run: live::subscribe_change_latency,
    },
    Scenario {
        name: "subscriber_scale",
        run: live::subscriber_scale,
    },
    Scenario {
        name: "stream_ingest",
        run: writes::stream_ingest,
    },
    Scenario {
        name: "flushed_query",
        run: cold::flushed_query,
    },
];

/// The scenarios `filter` selects: each comma-separated word selects the scenarios whose
/// name contains it; no filter selects all.
pub fn selected(filter: Option<&str>) -> Vec<&'static Scenario> {
    let words: Vec<&str> = filter
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    SCENARIOS
        .iter()
        .filter(|s| words.is_empty() || words.iter().any(|w| s.name.contains(w)))
        .collect()
}

/// Loads the items `first..first + count` into `table` as `client`'s user, in statements
/// of 1,000 rows.
pub fn load_items(client: &HttpClient, table: &str, first: i64, count: usize) -> BenchResult<()> {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(1000);
        client.sql(&crate::dataset::insert_values(table, first + done as i64, n), &[])?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_selects_by_name_parts() {
        let names = |f: Option<&str>| selected(f).iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(None).len(), SCENARIOS.len());
        assert_eq!(
            names(Some("insert")),
            ["single_insert", "bulk_insert", "concurrent_insert"]
        );
        assert_eq!(names(Some("count, flushed")), ["select_count", "flushed_query"]);
        assert!(names(Some("nothing_like_this")).is_empty());
    }
}
