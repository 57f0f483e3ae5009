//! Latency samples and what the report says of them.

use std::time::Duration;

use serde::Serialize;

/// The summary of one scenario's measured operations.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Operations measured (warm-up excluded).
    pub operations: usize,
    /// Rows each operation wrote or read (1 for single-row operations).
    pub rows_per_operation: usize,
    /// Mean latency, milliseconds.
    pub mean_ms: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Slowest operation, milliseconds.
    pub max_ms: f64,
    /// Operations per second of wall-clock time (all workers together).
    pub ops_per_sec: f64,
    /// `ops_per_sec` times `rows_per_operation`.
    pub rows_per_sec: f64,
    /// Latency histogram: `(upper bound in ms, count)`, log-spaced buckets.
    pub histogram: Vec<(f64, usize)>,
}

impl Summary {
    /// Summarises `latencies` of operations that ran within `wall` of wall-clock time.
    pub fn of(latencies: &mut [Duration], wall: Duration, rows_per_operation: usize) -> Self {
        latencies.sort_unstable();
        let n = latencies.len();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |q: f64| {
            if n == 0 {
                0.0
            } else {
                // Nearest rank: the smallest sample with at least q of the samples at or below it.
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                ms(latencies[rank - 1])
            }
        };
        let mean_ms = if n == 0 {
            0.0
        } else {
            latencies.iter().map(|d| ms(*d)).sum::<f64>() / n as f64
        };
        let ops_per_sec = if wall.is_zero() {
            0.0
        } else {
            n as f64 / wall.as_secs_f64()
        };
        Self {
            operations: n,
            rows_per_operation,
            mean_ms,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: latencies.last().map_or(0.0, |d| ms(*d)),
            ops_per_sec,
            rows_per_sec: ops_per_sec * rows_per_operation as f64,
            histogram: histogram(latencies),
        }
    }
}

/// Buckets of latency, 4 per power of ten from 10 µs up to the slowest sample.
fn histogram(sorted: &[Duration]) -> Vec<(f64, usize)> {
    let Some(max) = sorted.last() else {
        return Vec::new();
    };
    let max_ms = max.as_secs_f64() * 1e3;
    let mut bounds = Vec::new();
    let mut bound: f64 = 0.01;
    loop {
        bounds.push(bound);
        if bound >= max_ms {
            break;
        }
        bound *= 10f64.powf(0.25);
    }
    let mut counts = vec![0usize; bounds.len()];
    let mut bucket = 0;
    for d in sorted {
        let v = d.as_secs_f64() * 1e3;
        while bucket + 1 < bounds.len() && v > bounds[bucket] {
            bucket += 1;
        }
        counts[bucket] += 1;
    }
    // Leading empty buckets say nothing.
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    bounds.into_iter().zip(counts).skip(first).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(&mut samples, Duration::from_secs(2), 10);
        assert_eq!(s.operations, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(s.ops_per_sec, 50.0);
        assert_eq!(s.rows_per_sec, 500.0);
        assert_eq!(s.histogram.iter().map(|(_, c)| c).sum::<usize>(), 100);
        assert!(s.histogram.last().unwrap().0 >= 100.0);
    }

    #[test]
    fn no_samples_is_all_zero() {
        let s = Summary::of(&mut [], Duration::ZERO, 1);
        assert_eq!((s.operations, s.p99_ms, s.ops_per_sec), (0, 0.0, 0.0));
        assert!(s.histogram.is_empty());
    }
}
