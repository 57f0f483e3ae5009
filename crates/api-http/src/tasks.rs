//! Counting the server's connection tasks, so shutdown can wait for them to finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// How many tasks are running; [`Self::idle`] waits for none.
#[derive(Debug, Default)]
pub struct TaskCount {
    active: AtomicUsize,
    idle: Notify,
}

/// One running task; dropping it ends the task's count.
#[derive(Debug)]
pub struct TaskGuard(Arc<TaskCount>);

impl TaskCount {
    /// Counts a task until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> TaskGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        TaskGuard(Arc::clone(self))
    }

    /// Tasks running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Waits until no task runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
