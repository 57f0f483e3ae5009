//! The report of a run: a table for the terminal, a JSON file, and a self-contained HTML
//! page with latency histograms and the server's memory over time.

mod html;

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{BenchError, BenchResult};
use crate::scenarios::{Outcome, Settings};

pub use html::html_page;

/// Where and how the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The server measured.
    pub server_url: String,
    /// The storage backend of the server (and of the engine limits).
    pub backend: String,
    /// The commit of the server, when given.
    pub commit: Option<String>,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Logical CPUs of the machine running the benchmark.
    pub cpus: usize,
    /// The machine's memory, from `/proc/meminfo`, if readable.
    pub memory_total_bytes: Option<u64>,
    /// The CPU model, from `/proc/cpuinfo`, if readable.
    pub cpu_model: Option<String>,
    /// What was measured.
    pub settings: Settings,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where and how.
    pub run: RunInfo,
    /// The server's resident memory before the benchmark wrote anything.
    pub idle_rss_bytes: Option<u64>,
    /// Its highest sample over the run.
    pub peak_rss_bytes: Option<u64>,
    /// Every scenario measured.
    pub outcomes: Vec<Outcome>,
    /// Scenarios that failed, with why.
    pub failures: Vec<(String, String)>,
    /// `(seconds since start, resident bytes)` of the server.
    pub memory_samples: Vec<(f64, u64)>,
}

impl Report {
    /// The table printed at the end of a run.
    pub fn text_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<26} {:>3} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>8} {:>7}",
            "scenario",
            "c",
            "ops",
            "mean ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "ops/s",
            "rows/s",
            "of limit",
            "vs pg"
        );
        for o in &self.outcomes {
            let s = &o.summary;
            let _ = writeln!(
                out,
                "{:<26} {:>3} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1} {:>11.0} {:>8} {:>7}",
                o.scenario,
                o.concurrency,
                s.operations,
                s.mean_ms,
                s.p50_ms,
                s.p95_ms,
                s.p99_ms,
                s.max_ms,
                s.ops_per_sec,
                s.rows_per_sec,
                o.of_limit.map_or("-".into(), |f| format!("{:.1}%", f * 100.0)),
                o.postgres_p50_ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            );
        }
        let _ = writeln!(
            out,
            "server memory: idle {}, peak {}",
            mib(self.idle_rss_bytes),
            mib(self.peak_rss_bytes)
        );
        for (scenario, why) in &self.failures {
            let _ = writeln!(out, "FAILED {scenario}: {why}");
        }
        out
    }

    /// Writes `report.json` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> BenchResult<()> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| BenchError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json_path = dir.join("report.json");
        let json = serde_json::to_string_pretty(self).expect("a report serialises");
        std::fs::write(&json_path, json).map_err(io(&json_path))?;
        let html_path = dir.join("report.html");
        std::fs::write(&html_path, html_page(self)).map_err(io(&html_path))?;
        Ok(())
    }
}

/// The machine's logical CPUs, memory and CPU model, as far as it tells.
pub fn machine() -> (usize, Option<u64>, Option<String>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    });
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        let line = c.lines().find(|l| l.starts_with("model name"))?.to_owned();
        Some(line.split(':').nth(1)?.trim().to_owned())
    });
    (cpus, memory, model)
}

/// `12.3 MiB`, or `n/a`.
pub(crate) fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}
