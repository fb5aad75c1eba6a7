//! Coordination between the ecrd processes that share one store (replicas
//! on one PostgreSQL database): locks every process honours, leadership of
//! background tasks, and a mark in the store's write history.
//!
//! A store that belongs to one process (memory, a data directory, which is
//! locked to its process) needs none of this: its in-process locks and
//! watches already see everything. Its answers are the trivial ones (no
//! fleet lock, every task led here, no write mark), and the domain's
//! in-process mechanisms carry on alone.

/// A lock or leadership held for the fleet until dropped.
pub struct FleetGuard(#[allow(dead_code)] Option<Box<dyn Send + Sync>>);

impl FleetGuard {
    /// Held by this process alone: nothing to release.
    pub fn local() -> FleetGuard {
        FleetGuard(None)
    }

    /// Releases `held` when dropped (its own `Drop` does the releasing).
    pub fn holding(held: impl Send + Sync + 'static) -> FleetGuard {
        FleetGuard(Some(Box::new(held)))
    }
}

impl std::fmt::Debug for FleetGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "FleetGuard(held)"
        } else {
            "FleetGuard(local)"
        })
    }
}

/// The locks the fleet shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetLock {
    /// Garbage collection against the steps that make or use a blob before
    /// a record refers to it (`ecr::gc`, "Races"): those hold it shared, a
    /// collection's confirming step exclusively.
    Collection,
}

/// How a [`FleetLock`] is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A background task that one process of the fleet runs at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetTask {
    GarbageCollection,
    Lifecycle,
    Scrub,
    Replication,
    Signing,
}

impl FleetTask {
    pub fn name(self) -> &'static str {
        match self {
            FleetTask::GarbageCollection => "garbage collection",
            FleetTask::Lifecycle => "lifecycle",
            FleetTask::Scrub => "scrub",
            FleetTask::Replication => "replication",
            FleetTask::Signing => "signing",
        }
    }
}
