//! The global budget of message bytes held in memory across all sessions.
//!
//! Messages are buffered in memory while they are received (mail-parser needs the whole
//! message as one slice). Each session reserves what it holds from this budget as its message
//! grows; when the budget is spent the message is refused with `452 4.3.1` after the end of
//! data instead of the process being killed for running out of memory (adversarial RES-05).
//! Plain atomics: no locks, no I/O, usable from the sans-IO core.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shared between all sessions of the process.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Bytes not reserved by anyone right now.
    pub fn available(&self) -> usize {
        self.inner
            .limit
            .saturating_sub(self.inner.used.load(Ordering::Relaxed))
    }

    /// Bytes reserved right now (for metrics).
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// An empty reservation that can grow.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn try_take(&self, bytes: usize) -> bool {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes reserved by one message; given back when dropped, so a message that is delivered,
/// refused or abandoned always frees its share.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: usize,
}

impl Reservation {
    /// Grows the reservation to at least `total` bytes; false (and unchanged) when the budget
    /// cannot cover it.
    pub fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        let extra = total - self.bytes;
        if self.budget.try_take(extra) {
            self.bytes = total;
            true
        } else {
            false
        }
    }

    /// Sets the reservation to exactly `total` bytes: what is above it is given back at once;
    /// growing can fail (false, unchanged).
    pub fn resize_to(&mut self, total: usize) -> bool {
        if total >= self.bytes {
            return self.grow_to(total);
        }
        self.budget.give_back(self.bytes - total);
        self.bytes = total;
        true
    }

    /// Gives everything back now.
    pub fn release(&mut self) {
        self.budget.give_back(self.bytes);
        self.bytes = 0;
    }

    /// Moves what is held into a new reservation, leaving this one empty.
    pub fn take(&mut self) -> Reservation {
        Reservation {
            budget: self.budget.clone(),
            bytes: std::mem::take(&mut self.bytes),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_returned() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        assert!(a.grow_to(60));
        let mut b = budget.reservation();
        assert!(!b.grow_to(41));
        assert!(b.grow_to(40));
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 60);
        b.release();
        assert_eq!(budget.available(), 100);
    }
}
