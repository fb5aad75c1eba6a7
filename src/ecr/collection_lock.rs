//! `Ecr::collection`: orders garbage collection against the steps that
//! make or use a blob before any record refers to it (`gc`, "Races"). The
//! steps hold it shared, a collection exclusively. On a store that several
//! replicas share it is also taken for the whole fleet (`store::fleet`), so
//! a collection on one replica waits for a push finishing on another.
//!
//! How long steps wait for it is kept as a histogram (`/metrics`'
//! `ecrd_gc_lock_wait_seconds`): the stall a collection causes a push,
//! apart from the CPU it takes.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::error::{EcrError, EcrResult, ErrorKind};
use crate::store::fleet::{FleetGuard, FleetLock, LockMode};
use crate::store::MetadataStore;

pub(crate) struct CollectionLock {
    local: Arc<RwLock<()>>,
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
}

enum Local {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

impl CollectionLock {
    pub(crate) fn new(store: Arc<dyn MetadataStore>) -> Self {
        CollectionLock {
            local: Arc::new(RwLock::new(())),
            store,
            step_waits: Histogram::new(WAIT_BUCKETS),
        }
    }

    /// Held by a step that makes or uses an unreferenced blob or upload.
    pub(crate) async fn read(&self) -> EcrResult<CollectionGuard> {
        let asked = Instant::now();
        let local = Local::Shared(self.local.clone().read_owned().await);
        let guard = CollectionGuard {
            _fleet: self.fleet(LockMode::Shared).await?,
            _local: local,
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
        })
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
