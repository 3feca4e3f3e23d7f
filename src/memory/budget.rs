//! The global budget of message memory, shared by every session, and the reservations that
//! hold parts of it.
//!
//! Messages are held in memory while they are received and mapped (mail-parser needs the
//! whole message as one slice). Each message reserves what it really costs (see
//! [`super::message_cost_bound`]) before it holds it; when the budget cannot give more, the
//! session stops reading and waits (the driver's business), then answers `452 4.3.1` if it is
//! still spent after `limits.memory_wait`, instead of the process being killed for memory.
//!
//! Waiting sessions must never wait on each other forever. Two pools make that true:
//! - **small grants**: a message starts with up to [`SMALL_GRANT_MAX`] from a quarter of the
//!   budget, taken at once or not at all (never waited for while holding more);
//! - **large reservations**: a message that outgrows its small grant asks for the most it can
//!   need (its declared `SIZE=`, else the size limit, as a cost bound) in one piece, first come
//!   first served. A large holder has all it will need, so it never waits on anyone.
//!
//! A waiter holds at most a small grant, and large holders finish without waiting; the small
//! pool is at most a quarter of the budget, so the rest always has room for the largest
//! message once the large holders ahead of it are done (`minimum_budget` checks that at
//! start). There is no cycle of waits, hence no deadlock; and the queue is FIFO, so a waiter
//! is served in turn, not by chance.
//!
//! Plain data behind a mutex, no I/O and no clock: usable from the sans-IO core. The driver
//! learns of releases through the `on_release` hook.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The largest small grant: a message whose cost stays under it never queues.
pub const SMALL_GRANT_MAX: usize = 1 << 20;

/// Called after memory was given back, so waiters can try again.
pub type OnRelease = Arc<dyn Fn() + Send + Sync>;

/// Shared between all sessions of the process.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    small_cap: usize,
    state: Mutex<State>,
    on_release: OnRelease,
}

#[derive(Default)]
struct State {
    used: usize,
    small_used: usize,
    next_ticket: u64,
    /// Tickets of the reservations waiting for a large piece, oldest first.
    queue: VecDeque<u64>,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.inner.limit)
            .field("used", &self.used())
            .finish()
    }
}

/// Whether a reservation now holds what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Held now.
    Held,
    /// Not now: wait for a release (the reservation keeps its place in the queue).
    Wait,
    /// Never: more than the budget can hold for one message.
    Never,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, without a release hook.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget::with_hook(limit, Arc::new(|| {}))
    }

    /// A budget of `limit` bytes that calls `on_release` whenever memory is given back.
    pub fn with_hook(limit: usize, on_release: OnRelease) -> MemoryBudget {
        MemoryBudget {
            inner: Arc::new(Inner {
                limit,
                small_cap: limit / 4,
                state: Mutex::new(State::default()),
                on_release,
            }),
        }
    }

    /// The whole budget.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The most one large reservation can hold: the budget without the small pool.
    pub fn largest_reservation(&self) -> usize {
        self.inner.limit - self.inner.small_cap
    }

    /// Bytes reserved right now (for metrics).
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// Bytes not reserved by anyone right now.
    pub fn available(&self) -> usize {
        self.inner.limit.saturating_sub(self.used())
    }

    /// An empty reservation.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
            large: false,
            ticket: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent numbers (every update is one
        // statement), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Bytes reserved by one message; given back when dropped, so a message that is delivered,
/// refused or abandoned always frees its share (and its place in the queue).
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: usize,
    /// Held as one large piece (else a small grant, or nothing).
    large: bool,
    /// Its place in the queue for a large piece, while it waits.
    ticket: Option<u64>,
}

impl Reservation {
    /// Asks to hold at least `total` bytes. Up to [`SMALL_GRANT_MAX`], a small grant that fits
    /// at once is taken; anything else becomes a large request for `max(total, large_hint)`
    /// in one piece, in turn. While the answer is [`Grant::Wait`] the reservation keeps what it
    /// held and its place; ask again after a release. A large piece that must grow takes free
    /// memory at once or answers [`Grant::Never`]: holders of large pieces never wait.
    pub fn request(&mut self, total: usize, large_hint: usize) -> Grant {
        if total <= self.bytes {
            return Grant::Held;
        }
        if self.large {
            // A large piece was sized for the whole message; outgrowing it (a `SIZE=` that
            // said less than was sent) takes only free memory, so no large holder ever waits.
            return if self.resize_to(total) {
                Grant::Held
            } else {
                Grant::Never
            };
        }
        let budget = self.budget.clone();
        let inner = &budget.inner;
        let mut state = budget.lock();
        if total <= SMALL_GRANT_MAX && self.ticket.is_none() {
            let extra = total - self.bytes;
            if state.small_used + extra <= inner.small_cap && state.used + extra <= inner.limit {
                state.small_used += extra;
                state.used += extra;
                self.bytes = total;
                return Grant::Held;
            }
        }
        let want = total.max(large_hint).min(budget.largest_reservation());
        if want < total {
            return Grant::Never;
        }
        let ticket = *self.ticket.get_or_insert_with(|| {
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.queue.push_back(ticket);
            ticket
        });
        if state.queue.front() != Some(&ticket) {
            return Grant::Wait;
        }
        // What this reservation holds now is given back as part of the swap.
        let held = self.bytes;
        if state.used - held + want > inner.limit {
            return Grant::Wait;
        }
        state.small_used -= held;
        state.used = state.used - held + want;
        state.queue.pop_front();
        self.ticket = None;
        self.bytes = want;
        self.large = true;
        drop(state);
        // The next in the queue may now be at its head.
        (inner.on_release)();
        Grant::Held
    }

    /// Sets the reservation to exactly `total` bytes: what is above it is given back at once;
    /// growing takes only what is free now, never from the queue's turn (false, unchanged).
    pub fn resize_to(&mut self, total: usize) -> bool {
        let budget = self.budget.clone();
        let mut state = budget.lock();
        if total <= self.bytes {
            let freed = self.bytes - total;
            state.used -= freed;
            if !self.large {
                state.small_used -= freed;
            }
            self.bytes = total;
            drop(state);
            if freed > 0 {
                (budget.inner.on_release)();
            }
            return true;
        }
        let extra = total - self.bytes;
        let small_fits = self.large || state.small_used + extra <= budget.inner.small_cap;
        if !state.queue.is_empty() || !small_fits || state.used + extra > budget.inner.limit {
            return false;
        }
        state.used += extra;
        if !self.large {
            state.small_used += extra;
        }
        self.bytes = total;
        true
    }

    /// Gives everything back now, and leaves the queue.
    pub fn release(&mut self) {
        let budget = self.budget.clone();
        let mut state = budget.lock();
        let mut notify = false;
        if let Some(ticket) = self.ticket.take() {
            notify = state.queue.front() == Some(&ticket);
            state.queue.retain(|&t| t != ticket);
        }
        if self.bytes > 0 {
            state.used -= self.bytes;
            if !self.large {
                state.small_used -= self.bytes;
            }
            notify = true;
        }
        self.bytes = 0;
        self.large = false;
        drop(state);
        if notify {
            (budget.inner.on_release)();
        }
    }

    /// Moves what is held into a new reservation, leaving this one empty.
    pub fn take(&mut self) -> Reservation {
        Reservation {
            budget: self.budget.clone(),
            bytes: std::mem::take(&mut self.bytes),
            large: std::mem::take(&mut self.large),
            ticket: self.ticket.take(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether it holds a large piece (sized for the whole message).
    pub fn is_large(&self) -> bool {
        self.large
    }

    /// Whether it waits in the queue for a large piece.
    pub fn is_queued(&self) -> bool {
        self.ticket.is_some()
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MIB: usize = 1 << 20;

    #[test]
    fn small_grants_are_bounded_by_a_quarter_and_returned() {
        let budget = MemoryBudget::new(8 * MIB);
        let mut a = budget.reservation();
        let mut b = budget.reservation();
        assert_eq!(a.request(MIB, 4 * MIB), Grant::Held);
        assert_eq!(b.request(MIB, 4 * MIB), Grant::Held);
        // The small pool (2 MiB) is spent: a third small request queues for a large piece.
        let mut c = budget.reservation();
        assert_eq!(c.request(MIB / 2, 4 * MIB), Grant::Held);
        assert!(!c.is_queued());
        assert_eq!(c.bytes(), 4 * MIB);
        assert_eq!(budget.used(), 6 * MIB);
        drop(a);
        drop(b);
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn large_requests_are_served_in_turn_and_never_deadlock() {
        let releases = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&releases);
        let budget = MemoryBudget::with_hook(
            16 * MIB,
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        // Twelve sessions each take a small grant, then all outgrow it at once.
        let mut sessions: Vec<Reservation> = (0..12).map(|_| budget.reservation()).collect();
        let mut small = 0;
        for s in &mut sessions {
            if s.request(MIB / 4, 5 * MIB) == Grant::Held {
                small += 1;
            }
        }
        assert_eq!(small, 12);
        let mut grants: Vec<Grant> = sessions
            .iter_mut()
            .map(|s| s.request(2 * MIB, 5 * MIB))
            .collect();
        // 16 MiB minus the 11 small grants left (2.75 MiB): two large pieces of 5 MiB.
        assert_eq!(grants.iter().filter(|g| **g == Grant::Held).count(), 2);
        // Whoever holds a large piece finishes and leaves; the others get theirs in turn.
        let mut served = 2;
        while served < 12 {
            let done = grants.iter().position(|g| *g == Grant::Held).unwrap();
            sessions.remove(done);
            grants.remove(done);
            for (s, g) in sessions.iter_mut().zip(grants.iter_mut()) {
                if *g == Grant::Wait {
                    *g = s.request(2 * MIB, 5 * MIB);
                    if *g == Grant::Held {
                        served += 1;
                    }
                }
            }
        }
        assert!(releases.load(Ordering::SeqCst) > 0);
        drop(sessions);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_queue_is_first_come_first_served() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut holder = budget.reservation();
        assert_eq!(holder.request(2 * MIB, 6 * MIB), Grant::Held);
        let mut first = budget.reservation();
        let mut second = budget.reservation();
        assert_eq!(first.request(2 * MIB, 6 * MIB), Grant::Wait);
        assert_eq!(
            second.request(2 * MIB, 2 * MIB),
            Grant::Wait,
            "not ahead of first"
        );
        drop(holder);
        assert_eq!(
            second.request(2 * MIB, 2 * MIB),
            Grant::Wait,
            "still first's turn"
        );
        assert_eq!(first.request(2 * MIB, 6 * MIB), Grant::Held);
        assert_eq!(second.request(2 * MIB, 2 * MIB), Grant::Held);
        // Leaving the queue gives the turn to the next.
        let mut third = budget.reservation();
        let mut fourth = budget.reservation();
        assert_eq!(third.request(7 * MIB, 0), Grant::Wait);
        assert_eq!(fourth.request(2 * MIB, 0), Grant::Wait);
        drop(third);
        assert_eq!(fourth.request(2 * MIB, 0), Grant::Held);
    }

    #[test]
    fn a_large_piece_outgrown_never_waits() {
        let budget = MemoryBudget::new(8 * MIB);
        let mut a = budget.reservation();
        let mut b = budget.reservation();
        assert_eq!(a.request(2 * MIB, 2 * MIB), Grant::Held);
        assert_eq!(b.request(2 * MIB, 4 * MIB), Grant::Held);
        assert_eq!(a.request(3 * MIB, 0), Grant::Held, "free memory is taken");
        assert_eq!(
            b.request(6 * MIB, 0),
            Grant::Never,
            "not free: never queued"
        );
        assert!(!b.is_queued());
    }

    #[test]
    fn more_than_one_message_can_hold_is_never_granted() {
        let budget = MemoryBudget::new(8 * MIB);
        let mut r = budget.reservation();
        assert_eq!(r.request(7 * MIB, 0), Grant::Never);
        assert_eq!(r.request(6 * MIB, 0), Grant::Held);
    }

    #[test]
    fn resizing_gives_back_at_once_and_grows_only_from_free_memory() {
        let budget = MemoryBudget::new(8 * MIB);
        let mut r = budget.reservation();
        assert_eq!(r.request(3 * MIB, 5 * MIB), Grant::Held);
        assert!(r.resize_to(2 * MIB));
        assert_eq!(budget.used(), 2 * MIB);
        assert!(r.resize_to(6 * MIB));
        assert!(!r.resize_to(9 * MIB));
        let mut waiting = budget.reservation();
        assert_eq!(waiting.request(4 * MIB, 0), Grant::Wait);
        assert!(!r.resize_to(7 * MIB), "a waiter is ahead");
    }
}
