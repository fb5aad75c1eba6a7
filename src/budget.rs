//! A byte budget shared by every request that buffers a body in memory.
//!
//! The control plane (awsJson1_1 and STS) must hold a request's whole body
//! before it can decode it; this budget caps how many such bytes are held at
//! once across all connections, so a crowd of clients sending large bodies
//! cannot grow the process without bound. A request that would go over it is
//! refused at once rather than queued (a queued body would still be held by
//! the kernel and the client would not learn to back off).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes that may be buffered at once.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
}

/// Bytes taken from a [`ByteBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    budget: ByteBudget,
}

impl ByteBudget {
    pub fn new(bytes: usize) -> Self {
        ByteBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// An empty reservation, to grow with [`Reservation::grow`].
    pub fn reserve_none(&self) -> Reservation {
        Reservation {
            permit: None,
            budget: self.clone(),
        }
    }

    /// Bytes not reserved by anyone now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

impl Reservation {
    /// Takes `bytes` more, or returns false (taking nothing) when the
    /// budget does not have them.
    pub fn grow(&mut self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(count) = u32::try_from(bytes) else {
            return false;
        };
        match Arc::clone(&self.budget.bytes).try_acquire_many_owned(count) {
            Ok(more) => {
                match &mut self.permit {
                    Some(held) => held.merge(more),
                    None => self.permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_come_back_when_dropped() {
        let budget = ByteBudget::new(100);
        let mut a = budget.reserve_none();
        assert!(a.grow(60));
        assert!(a.grow(30));
        assert_eq!(a.len(), 90);
        let mut b = budget.reserve_none();
        assert!(!b.grow(20), "only 10 bytes are left");
        assert!(b.is_empty(), "a refused grow takes nothing");
        assert!(b.grow(10));
        drop(a);
        assert_eq!(budget.available(), 90);
        drop(b);
        assert_eq!(budget.available(), 100);
    }
}
