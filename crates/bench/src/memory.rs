//! The server's resident memory, read from `system.stats` (`memory_rss_bytes`) every
//! quarter second while the benchmark runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::HttpClient;

const INTERVAL: Duration = Duration::from_millis(250);
const QUERY: &str = "SELECT metric_value FROM system.stats WHERE metric_name = 'memory_rss_bytes'";

/// Samples of the server's resident memory: `(seconds since start, bytes)`.
pub struct MemorySampler {
    client: HttpClient,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn read(client: &HttpClient) -> Option<u64> {
    let rows = client.rows(QUERY, &[]).ok()?;
    rows.first()?.get(0)?.as_str()?.parse().ok()
}

impl MemorySampler {
    /// Starts sampling through `client` (a dba or system user: it reads `system.stats`).
    pub fn start(client: HttpClient) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let thread = {
            let (client, samples, stop) = (client.clone(), Arc::clone(&samples), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(bytes) = read(&client) {
                        samples
                            .lock()
                            .expect("not poisoned")
                            .push((started.elapsed().as_secs_f64(), bytes));
                    }
                    std::thread::sleep(INTERVAL);
                }
            })
        };
        Self {
            client,
            samples,
            started,
            stop,
            thread: Some(thread),
        }
    }

    /// The resident memory now, if the server reports it.
    pub fn sample_now(&self) -> Option<u64> {
        read(&self.client)
    }

    /// Seconds since sampling started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The highest sample between `from` and `to` (seconds since start).
    pub fn peak_between(&self, from: f64, to: f64) -> Option<u64> {
        let samples = self.samples.lock().expect("not poisoned");
        samples
            .iter()
            .filter(|(t, _)| (from..=to).contains(t))
            .map(|&(_, b)| b)
            .max()
    }

    /// Stops sampling; every sample taken.
    pub fn finish(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.samples.lock().expect("not poisoned"))
    }
}
