//! `calamus-bench`: measures a running Calamus server the way its users feel it.
//!
//! It drives the server over HTTP and WebSocket through a fixed list of scenarios (writes,
//! reads, aggregates, per-user queries, live queries, streams, flushed data), measures in
//! the same run the limits the server builds on (the storage engine alone, DataFusion over
//! in-memory Arrow) and, when given a PostgreSQL server, the per-user baseline there; then
//! prints a table and writes `report.json` and `report.html`.
//!
//! ```sh
//! calamus-bench --url http://127.0.0.1:8080 --password '' --scenario insert,lookup
//! ```

mod client;
mod dataset;
mod error;
mod limits;
mod memory;
mod postgres;
mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use calamus::StorageBackend;
use clap::Parser;

use crate::client::HttpClient;
use crate::error::BenchResult;
use crate::limits::{EngineLimits, MemoryLimits};
use crate::memory::MemorySampler;
use crate::postgres::PostgresBaseline;
use crate::report::{Report, RunInfo};
use crate::scenarios::{Bench, ITEMS, Settings};

/// Measures a running Calamus server over HTTP and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "calamus-bench", version)]
struct Args {
    /// The server's URL.
    #[arg(long, env = "CALAMUS_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A user with role system or dba (creates the benchmark's namespace and users).
    #[arg(long, env = "CALAMUS_USER", default_value = "root")]
    user: String,
    /// That user's password.
    #[arg(
        long,
        env = "CALAMUS_PASSWORD",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
    )]
    password: String,
    /// Measured operations of a single-row scenario (the heavier ones run a fifth or less).
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Unmeasured operations before each scenario.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Clients of the concurrent scenarios.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Only the scenarios whose names contain one of these comma-separated words.
    #[arg(long)]
    scenario: Option<String>,
    /// The user counts of `per_user_select`.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    users: Vec<usize>,
    /// Rows of each user in `per_user_select`.
    #[arg(long, default_value_t = 100)]
    rows_per_user: usize,
    /// Subscriptions of `subscriber_scale`.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// The server's storage backend: the engine limits are measured on the same one.
    #[arg(long, default_value = "rocksdb")]
    backend: String,
    /// A PostgreSQL connection URL: the per-user scenarios also run there.
    #[arg(long, env = "CALAMUS_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Where `report.json` and `report.html` go.
    #[arg(long, default_value = "bench-report")]
    out: PathBuf,
    /// The server's commit, recorded in the report.
    #[arg(long, env = "CALAMUS_COMMIT")]
    commit: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            println!("{}", report.text_table());
            println!(
                "report: {} and {}",
                args.out.join("report.json").display(),
                args.out.join("report.html").display()
            );
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("calamus-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> BenchResult<Report> {
    let backend: StorageBackend = args
        .backend
        .parse()
        .map_err(|e: calamus::AppError| error::BenchError::Usage(format!("--backend: {e}")))?;
    let settings = Settings {
        iterations: args.iterations.max(1),
        warmup: args.warmup,
        concurrency: args.concurrency.max(1),
        user_counts: args.users.clone(),
        rows_per_user: args.rows_per_user.max(1),
        subscribers: args.subscribers,
    };
    let root = HttpClient::login(&args.url, &args.user, &args.password)?;
    let sampler = MemorySampler::start(root.clone());
    let idle_rss_bytes = sampler.sample_now();
    eprintln!("measuring the limits ({backend} engine, DataFusion in memory)...");
    let engine = EngineLimits::open(backend, ITEMS)?;
    let memory = MemoryLimits::new(&[("items", ITEMS), ("items_cold", 11_000)])?;
    let postgres = args.postgres.as_deref().map(PostgresBaseline::connect).transpose()?;
    let (cpus, memory_total_bytes, cpu_model) = report::machine();
    let run = RunInfo {
        server_url: args.url.clone(),
        backend: backend.to_string(),
        commit: args.commit.clone(),
        started_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        cpus,
        memory_total_bytes,
        cpu_model,
        settings: settings.clone(),
    };
    let bench = Bench::prepare(settings, root, engine, memory, postgres, sampler)?;
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for scenario in scenarios::selected(args.scenario.as_deref()) {
        let from = bench.sampler.now();
        match (scenario.run)(&bench) {
            Ok(mut done) => {
                let peak = bench.sampler.peak_between(from, bench.sampler.now());
                for outcome in &mut done {
                    outcome.peak_rss_bytes = peak;
                    eprintln!(
                        "{:>26}: p50 {:.3} ms, p99 {:.3} ms, {:.1} ops/s",
                        outcome.scenario, outcome.summary.p50_ms, outcome.summary.p99_ms, outcome.summary.ops_per_sec
                    );
                }
                outcomes.extend(done);
            }
            Err(e) => {
                eprintln!("{:>26}: FAILED: {e}", scenario.name);
                failures.push((scenario.name.to_owned(), e.to_string()));
            }
        }
    }
    let memory_samples = bench.finish();
    let peak_rss_bytes = memory_samples.iter().map(|&(_, b)| b).max();
    let report = Report {
        run,
        idle_rss_bytes,
        peak_rss_bytes,
        outcomes,
        failures,
        memory_samples,
    };
    report.write(&args.out)?;
    Ok(report)
}
