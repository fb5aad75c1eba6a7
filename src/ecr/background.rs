//! Background work that runs once an interval (lifecycle runs, garbage
//! collection) and outlives any one run: each run is its own task, so a run
//! that fails is logged as a warning, one that panics as an error, and the
//! next interval runs again either way.

use std::future::Future;
use std::time::Duration;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::Ecr;
use crate::store::fleet::FleetTask;

/// Runs `run` if this process leads `task` among the replicas sharing its
/// store (a store of one process: always), holding the leadership until it
/// ends; None when another replica leads it. A replica that dies mid-run
/// loses the leadership with its connection, and the next interval runs on
/// another.
pub(crate) async fn if_leading<T>(
    ecr: &Ecr,
    task: FleetTask,
    run: impl Future<Output = EcrResult<T>>,
) -> EcrResult<Option<T>> {
    let lead = if ecr.store.is_shared() {
        let store = ecr.store.clone();
        tokio::task::spawn_blocking(move || store.lead(task))
            .await
            .map_err(|e| EcrError::new(ErrorKind::Server, e.to_string()))??
    } else {
        ecr.store.lead(task)?
    };
    let Some(_lead) = lead else {
        tracing::trace!(task = task.name(), "another replica leads this task");
        return Ok(None);
    };
    run.await.map(Some)
}

/// Calls `run` every `every` (the first time one interval from now) until
/// the calling task is aborted, handing each successful result to `done`.
/// `what` names the work in the log.
pub(crate) async fn repeat<T, F, Fut>(
    every: Duration,
    what: &'static str,
    mut run: F,
    mut done: impl FnMut(T),
) where
    T: Send + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = EcrResult<T>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match tokio::spawn(run()).await {
            Ok(Ok(value)) => done(value),
            Ok(Err(e)) => tracing::warn!(
                task = what,
                error = %e,
                "background run failed; it runs again next interval"
            ),
            Err(e) => tracing::error!(
                task = what,
                error = %e,
                "background run panicked; it runs again next interval"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A run that panics and one that fails do not stop the runs after them.
    #[tokio::test]
    async fn survives_a_panic_and_an_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let task = {
            let calls = calls.clone();
            let done = done.clone();
            tokio::spawn(repeat(
                Duration::from_millis(5),
                "test",
                move || {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            0 => panic!("first run panics"),
                            1 => Err(EcrError::new(ErrorKind::Server, "second run fails")),
                            _ => Ok(n),
                        }
                    }
                },
                move |_| {
                    done.fetch_add(1, Ordering::SeqCst);
                },
            ))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "runs stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!task.is_finished());
        task.abort();
        assert!(calls.load(Ordering::SeqCst) >= 4);
    }
}
