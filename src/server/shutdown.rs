//! Graceful shutdown (docs/smtp.md "Shutdown"; README.md "Shutdown, reload, probes").
//!
//! Before them, `server.shutdown_delay` (default 0): readiness turns 503 while sessions are
//! still accepted, for a balancer to notice (operations.md, Abuse limits).
//!
//! Two phases. **Drain** (first SIGTERM/SIGINT): readiness turns 503, new connections get
//! `421 4.3.2`, idle sessions get `421 4.3.2` at once, sessions in a transaction (DATA, an
//! upstream call) carry on and get their `421` at their next command. **Force** (the grace
//! period ran out, or a second signal): every session still open gets `421 4.3.2` and closes;
//! an upstream call still running is abandoned, so its message is never answered `250`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by the accept loops, every session and the admin endpoint.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    drain: CancellationToken,
    force: CancellationToken,
    tasks: TaskTracker,
    ready: Arc<AtomicBool>,
}

impl Shutdown {
    /// A running relay (not ready until its listeners are bound).
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A stop signal with `server.shutdown_delay`: `/readyz` turns 503 at once while new
    /// sessions are still served, so a health-checking balancer takes the replica out before
    /// it refuses anyone; the drain starts after `delay` (at once when it is zero, or when
    /// forced meanwhile).
    pub async fn stop_after(&self, delay: Duration) {
        if !delay.is_zero() {
            self.ready.store(false, Ordering::SeqCst);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.forced() => {}
            }
        }
        self.drain();
    }

    /// Starts draining. Harmless when repeated.
    pub fn drain(&self) {
        self.ready.store(false, Ordering::SeqCst);
        self.drain.cancel();
    }

    /// Closes everything now. Harmless when repeated.
    pub fn force(&self) {
        self.drain();
        self.force.cancel();
    }

    /// Resolves when draining starts.
    pub async fn draining(&self) {
        self.drain.cancelled().await
    }

    /// Resolves when the grace period is over.
    pub async fn forced(&self) {
        self.force.cancelled().await
    }

    /// True once draining started.
    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// True once forced.
    pub fn is_forced(&self) -> bool {
        self.force.is_cancelled()
    }

    /// Every listener is bound and the relay is not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_draining()
    }

    /// Called once the listeners are bound.
    pub fn set_ready(&self) {
        if !self.is_draining() {
            self.ready.store(true, Ordering::SeqCst);
        }
    }

    /// Tracks session tasks so the drain can wait for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tasks
    }

    /// After draining started: forces once `grace` has passed, then waits until every session
    /// has ended (at most `write` after the force: each session answers `421` and closes
    /// within its write deadline). Returns true for a clean drain.
    pub async fn finish(&self, grace: Duration, write: Duration) -> bool {
        self.tasks.close();
        let clean = tokio::select! {
            _ = self.tasks.wait() => true,
            _ = tokio::time::sleep(grace) => false,
            _ = self.forced() => false,
        };
        if !clean {
            self.force();
            let _ = tokio::time::timeout(write, self.tasks.wait()).await;
        }
        clean
    }
}
