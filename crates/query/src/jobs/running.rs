//! The jobs running now in this process, so `KILL JOB` can reach them.
//!
//! A job registers when it starts and is unregistered when its handle is dropped. Killing
//! it sets a flag the job reads between units of work (a flush, between partitions): the
//! unit in progress finishes, so what the job did so far stays consistent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The registry of running jobs.
#[derive(Debug, Default)]
pub struct RunningJobs {
    jobs: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl RunningJobs {
    /// Registers job `job_id` as running; it is unregistered when the handle is dropped.
    pub fn start(self: &Arc<Self>, job_id: &str) -> RunningJob {
        let cancelled = Arc::new(AtomicBool::new(false));
        self.jobs.lock().insert(job_id.to_owned(), Arc::clone(&cancelled));
        RunningJob {
            registry: Arc::clone(self),
            job_id: job_id.to_owned(),
            cancelled,
        }
    }

    /// Asks job `job_id` to stop; false if no such job runs in this process.
    pub fn cancel(&self, job_id: &str) -> bool {
        match self.jobs.lock().get(job_id) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

/// A running job's side of the registry.
#[derive(Debug)]
pub struct RunningJob {
    registry: Arc<RunningJobs>,
    job_id: String,
    cancelled: Arc<AtomicBool>,
}

impl RunningJob {
    /// Whether `KILL JOB` asked the job to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        self.registry.jobs.lock().remove(&self.job_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_killable_while_its_handle_lives() {
        let jobs = Arc::new(RunningJobs::default());
        let job = jobs.start("flush-1");
        assert!(!job.is_cancelled());
        assert!(!jobs.cancel("flush-2"), "another id");
        assert!(jobs.cancel("flush-1"));
        assert!(job.is_cancelled());
        drop(job);
        assert!(!jobs.cancel("flush-1"), "finished jobs are gone");
    }
}
