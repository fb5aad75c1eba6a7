//! `Ecr::collection`: orders garbage collection against the steps that
//! make or use a blob before any record refers to it (`gc`, "Races"). The
//! steps hold it shared, a collection exclusively. On a store that several
//! replicas share it is also taken for the whole fleet (`store::fleet`), so
//! a collection on one replica waits for a push finishing on another.

use std::sync::Arc;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::error::{EcrError, EcrResult, ErrorKind};
use crate::store::fleet::{FleetGuard, FleetLock, LockMode};
use crate::store::MetadataStore;

pub(crate) struct CollectionLock {
    local: Arc<RwLock<()>>,
    store: Arc<dyn MetadataStore>,
}

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
        }
    }

    /// Held by a step that makes or uses an unreferenced blob or upload.
    pub(crate) async fn read(&self) -> EcrResult<CollectionGuard> {
        let local = Local::Shared(self.local.clone().read_owned().await);
        Ok(CollectionGuard {
            _fleet: self.fleet(LockMode::Shared).await?,
            _local: local,
        })
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
