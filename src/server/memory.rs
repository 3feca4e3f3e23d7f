//! Waiting for the memory budget: the session asked for memory it cannot have now, so the
//! connection reads nothing (TCP backpressure) until a release lets it in, or until
//! `limits.memory_wait` has passed (then the session answers `452 4.3.1`). A forced stop
//! ends the wait with `421 4.3.2`. The budget's rules are in `crate::memory::budget`.

use tokio::time::{Duration, Instant};

use super::Relay;
use crate::smtp::Session;

/// Waits as above; returns how long, which the caller keeps out of the DATA rate check.
pub(super) async fn wait(
    relay: &Relay,
    session: &mut Session,
    session_deadline: Instant,
) -> Duration {
    let started = Instant::now();
    let deadline = (started + relay.config.limits.memory_wait.0).min(session_deadline);
    let granted = loop {
        // Registered before the retry, so a release between the two is not missed.
        let notified = relay.memory_released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if session.retry_memory() {
            break true;
        }
        tokio::select! {
            biased;
            _ = relay.shutdown.forced() => {
                session.shutting_down();
                return started.elapsed();
            }
            _ = tokio::time::sleep_until(deadline) => break false,
            _ = notified => {}
        }
    };
    let waited = started.elapsed();
    let outcome = if granted { "granted" } else { "timeout" };
    relay
        .metrics
        .memory_waits
        .with_label_values(&[outcome])
        .inc();
    let waited_ms = waited.as_millis() as u64;
    if granted {
        tracing::debug!(waited_ms, "memory granted");
    } else {
        tracing::warn!(
            waited_ms,
            "memory budget still spent after limits.memory_wait: 452"
        );
        session.memory_timed_out();
    }
    waited
}
