//! Work that, once started, runs to its end: polled on the caller's task while the caller
//! waits for it, and handed to a task of its own when the caller stops waiting (the
//! response started first, or the client went away and the request was dropped). A batch
//! of statements is never cut off between two steps of one statement.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that is spawned when dropped before it finished.
pub struct RunToEnd(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl RunToEnd {
    /// `work`, not started yet.
    pub fn new(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(Some(Box::pin(work)))
    }
}

impl Future for RunToEnd {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(work) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        let done = work.as_mut().poll(cx);
        if done.is_ready() {
            self.0 = None;
        }
        done
    }
}

impl Drop for RunToEnd {
    fn drop(&mut self) {
        // Work that panicked cannot go on (the panic is the caller's to report), and outside
        // a runtime (it is shutting down) there is nothing left to run it on.
        if std::thread::panicking() {
            return;
        }
        if let Some(work) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn work_dropped_half_way_goes_on_in_a_task_of_its_own() {
        let finished = Arc::new(AtomicBool::new(false));
        let (go_on, wait) = oneshot::channel::<()>();
        let flag = Arc::clone(&finished);
        let mut work = RunToEnd::new(async move {
            let _ = wait.await;
            flag.store(true, Ordering::SeqCst);
        });
        // Polled once: it waits half way.
        assert!(futures::poll!(&mut work).is_pending());
        drop(work);
        go_on.send(()).unwrap();
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the dropped work never finished");
    }

    #[tokio::test]
    async fn finished_work_is_not_run_again() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let mut work = RunToEnd::new(async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (&mut work).await;
        drop(work);
        tokio::task::yield_now().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
