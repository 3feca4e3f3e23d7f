//! The commit point of one delivery (rest-api.md, "The outbox": the rename). A deadline or a
//! forced stop that comes first abandons the delivery, and nothing may land afterwards; once
//! an upstream has started its commit (the outbox's rename), the reply must follow its
//! result. Both sides race on one atomic: whoever moves it out of `PENDING` first wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const PENDING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

/// Shared between the session waiting for the reply and the upstream doing the work.
#[derive(Debug, Clone, Default)]
pub struct CommitGate(Arc<AtomicU8>);

impl CommitGate {
    /// A delivery not yet committed nor abandoned.
    pub fn new() -> CommitGate {
        CommitGate::default()
    }

    /// The upstream is about to make the message visible: true when it may (then the waiting
    /// side must take its result), false when the delivery was abandoned (undo, land nothing).
    pub fn commit(&self) -> bool {
        self.swap_from_pending(COMMITTING) || self.0.load(Ordering::Acquire) == COMMITTING
    }

    /// The deadline passed or the relay is forced to stop: true when nothing can land any
    /// more (answer 451/421); false when the commit already began (wait for its result).
    pub fn abandon(&self) -> bool {
        self.swap_from_pending(ABANDONED) || self.0.load(Ordering::Acquire) == ABANDONED
    }

    fn swap_from_pending(&self, to: u8) -> bool {
        self.0
            .compare_exchange(PENDING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_side_wins_and_the_other_learns_it() {
        let gate = CommitGate::new();
        assert!(gate.commit());
        assert!(!gate.abandon(), "too late: the reply follows the commit");
        assert!(gate.commit());

        let gate = CommitGate::new();
        assert!(gate.abandon());
        assert!(!gate.commit(), "abandoned: nothing may land");
        assert!(gate.abandon());
    }

    #[test]
    fn a_race_has_exactly_one_winner() {
        for _ in 0..1000 {
            let gate = CommitGate::new();
            let other = gate.clone();
            let committer = std::thread::spawn(move || other.commit());
            let abandoned = gate.abandon();
            let committed = committer.join().unwrap();
            assert_ne!(abandoned, committed);
        }
    }
}
