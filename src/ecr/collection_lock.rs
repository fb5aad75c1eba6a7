//! `Ecr::collection`: orders garbage collection against the steps that
//! make or use a blob before any record refers to it (`gc`, "Races"). The
//! steps hold it shared, a collection exclusively. On a store that several
//! replicas share it is also taken for the whole fleet (`store::fleet`), so
//! a collection on one replica waits for a push finishing on another.
//!
//! A collection's first step needs only that the steps already in flight
//! have committed, not that no step starts: `drain` waits for those (a
//! step is counted in the generation it started in) while new steps go
//! ahead. Only the confirming step (`write`) holds steps back.
//!
//! How long steps wait for it is kept as a histogram (`/metrics`'
//! `ecrd_gc_lock_wait_seconds`): the stall a collection causes a push,
//! apart from the CPU it takes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

use tokio::sync::{Notify, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::error::{EcrError, EcrResult, ErrorKind};
use crate::store::fleet::{FleetGuard, FleetLock, LockMode};
use crate::store::MetadataStore;

pub(crate) struct CollectionLock {
    local: Arc<RwLock<()>>,
    /// The steps in flight, by generation.
    in_flight: Arc<InFlight>,
    store: Arc<dyn MetadataStore>,
    /// Seconds each step waited for its shared hold.
    step_waits: Histogram,
}

/// Bucket bounds of `step_waits`, in seconds: fine below 10 ms, where
/// "a few milliseconds" is told from more.
const WAIT_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// Held while a step or a collection runs. The fleet's lock is released
/// before this process's (fields drop in order). Owned, so a task that
/// outlives its caller can hold it.
pub(crate) struct CollectionGuard {
    _fleet: Option<FleetGuard>,
    _local: Local,
    _counted: Option<Counted>,
}

/// Steps in flight, counted by the generation they started in; `drain`
/// starts a new generation and waits for the older ones to empty.
#[derive(Default)]
struct InFlight {
    generations: Mutex<Generations>,
    emptied: Notify,
}

#[derive(Default)]
struct Generations {
    current: u64,
    /// Steps in flight per generation (no entry: none).
    counts: BTreeMap<u64, usize>,
}

impl InFlight {
    fn generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A step counted in its generation until it ends.
struct Counted {
    in_flight: Arc<InFlight>,
    generation: u64,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut generations = self.in_flight.generations();
        if let Some(count) = generations.counts.get_mut(&self.generation) {
            *count -= 1;
            if *count == 0 {
                generations.counts.remove(&self.generation);
                drop(generations);
                self.in_flight.emptied.notify_waiters();
            }
        }
    }
}

enum Local {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

impl CollectionLock {
    pub(crate) fn new(store: Arc<dyn MetadataStore>) -> Self {
        CollectionLock {
            local: Arc::new(RwLock::new(())),
            in_flight: Arc::default(),
            store,
            step_waits: Histogram::new(WAIT_BUCKETS),
        }
    }

    /// Held by a step that makes or uses an unreferenced blob or upload.
    pub(crate) async fn read(&self) -> EcrResult<CollectionGuard> {
        let asked = Instant::now();
        // Uncontended, the hold is taken without a poll: an await on the
        // lock could yield to the scheduler (tokio's budget) and wait
        // behind other tasks though nobody holds the lock.
        let local = match self.local.clone().try_read_owned() {
            Ok(held) => Local::Shared(held),
            Err(_) => Local::Shared(self.local.clone().read_owned().await),
        };
        let counted = {
            let mut generations = self.in_flight.generations();
            let generation = generations.current;
            *generations.counts.entry(generation).or_insert(0) += 1;
            Counted {
                in_flight: self.in_flight.clone(),
                generation,
            }
        };
        let guard = CollectionGuard {
            _fleet: self.fleet(LockMode::Shared).await?,
            _local: local,
            _counted: Some(counted),
        };
        self.step_waits.observe(asked.elapsed().as_secs_f64());
        Ok(guard)
    }

    /// The histogram of steps' waits (shared with the metrics registry).
    pub(crate) fn step_waits(&self) -> Histogram {
        self.step_waits.clone()
    }

    /// Held by a collection while no such step may run.
    pub(crate) async fn write(&self) -> EcrResult<CollectionGuard> {
        let local = Local::Exclusive(self.local.clone().write_owned().await);
        Ok(CollectionGuard {
            _fleet: self.fleet(LockMode::Exclusive).await?,
            _local: local,
            _counted: None,
        })
    }

    /// Returns once every step that started before the call has ended,
    /// without holding back the steps that start meanwhile. On a shared
    /// store the fleet's lock is then taken exclusively for an instant, for
    /// the other replicas' steps.
    pub(crate) async fn drain(&self) -> EcrResult<()> {
        let before = {
            let mut generations = self.in_flight.generations();
            generations.current += 1;
            generations.current
        };
        loop {
            let emptied = self.in_flight.emptied.notified();
            tokio::pin!(emptied);
            // Registered before the check, so an emptying in between wakes it.
            emptied.as_mut().enable();
            let older_in_flight = self
                .in_flight
                .generations()
                .counts
                .range(..before)
                .next()
                .is_some();
            if !older_in_flight {
                break;
            }
            emptied.await;
        }
        drop(self.fleet(LockMode::Exclusive).await?);
        Ok(())
    }

    async fn fleet(&self, mode: LockMode) -> EcrResult<Option<FleetGuard>> {
        if !self.store.is_shared() {
            return Ok(None);
        }
        // Waiting for another replica's collection blocks a thread: not
        // one of the async workers.
        let store = self.store.clone();
        let taken =
            tokio::task::spawn_blocking(move || store.fleet_lock(FleetLock::Collection, mode))
                .await
                .map_err(|e| EcrError::new(ErrorKind::Server, e.to_string()))?;
        Ok(taken?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn lock() -> Arc<CollectionLock> {
        Arc::new(CollectionLock::new(Arc::new(MemoryStore::new())))
    }

    const SOON: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn drain_waits_for_the_steps_in_flight_but_not_for_later_ones() {
        let lock = lock();
        let in_flight = lock.read().await.expect("step");
        let draining = tokio::spawn({
            let lock = lock.clone();
            async move { lock.drain().await }
        });
        tokio::time::sleep(SOON).await;
        assert!(
            !draining.is_finished(),
            "drain returned with a step in flight"
        );
        // A step starting meanwhile is not held back, nor waited for.
        let later = tokio::time::timeout(SOON, lock.read())
            .await
            .expect("a step waited for a drain")
            .expect("step");
        drop(in_flight);
        tokio::time::timeout(Duration::from_secs(5), draining)
            .await
            .expect("drain still waiting after the older step ended")
            .expect("join")
            .expect("drain");
        drop(later);
        assert!(lock.in_flight.generations().counts.is_empty());
    }

    #[tokio::test]
    async fn drain_with_nothing_in_flight_returns_at_once() {
        let lock = lock();
        drop(lock.read().await.expect("step"));
        tokio::time::timeout(SOON, lock.drain())
            .await
            .expect("drain waited for nothing")
            .expect("drain");
    }

    #[tokio::test]
    async fn a_step_waits_for_a_confirming_collection() {
        let lock = lock();
        let confirming = lock.write().await.expect("collection");
        let step = tokio::spawn({
            let lock = lock.clone();
            async move { lock.read().await.map(drop) }
        });
        tokio::time::sleep(SOON).await;
        assert!(!step.is_finished(), "a step ran during the confirming step");
        drop(confirming);
        step.await.expect("join").expect("step");
    }
}
