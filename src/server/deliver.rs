//! The delivery step: a received message handed to the upstream under `timeouts.upstream`
//! and a forced stop, its outcome counted and logged on one line. `250` only comes back
//! with the upstream's acceptance; a forced stop answers nothing here, so the session says
//! `421 4.3.2` and the message is never answered `250`. Either cut abandons the delivery at
//! its commit point ([`CommitGate`]) so nothing lands after the client heard 451/421; a commit
//! that began first is waited for, and the reply follows it.

use std::time::SystemTime;

use tokio::time::{Instant, timeout};

use super::Relay;
use crate::message::Source;
use crate::pipeline::{CommitGate, Submission};
use crate::smtp::reply::{self, Reply};
use crate::smtp::{Delivery, RefusalReason};

/// How long a commit that began before the deadline or a forced stop is waited for.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What ended the wait for the upstream before it answered.
enum Cut {
    Deadline,
    Forced,
}

/// Hands `d` to the upstream; `None` when the relay was forced to stop first. `source` is the
/// session's; its `helo` is filled from the delivery.
pub(super) async fn deliver(
    relay: &Relay,
    d: Delivery,
    mut source: Source,
) -> Option<Result<String, Reply>> {
    let started = Instant::now();
    let (size, recipients) = (d.message.len(), d.envelope.rcpt_to.len());
    source.helo = d.helo;
    let submission = Submission {
        request_id: format!("{}.{}", source.session_id, d.transaction),
        envelope: d.envelope,
        message: d.message,
        reservation: d.reservation,
        key: d.key,
        source,
        received_at: SystemTime::now(),
        commit: CommitGate::new(),
    };
    let metrics = &relay.metrics;
    let gate = submission.commit.clone();
    let upstream = std::pin::pin!(relay.upstream.deliver(submission));
    let deadline = started + relay.config.timeouts.upstream.0;
    let outcome = settle(relay, &gate, upstream, deadline).await;
    let elapsed = started.elapsed();
    let result = match outcome {
        Ok(Ok(accepted)) => {
            metrics
                .upstream_requests
                .with_label_values(&[accepted.outcome])
                .inc();
            metrics.upstream_latency.observe(elapsed.as_secs_f64());
            Ok(accepted.id)
        }
        Ok(Err(e)) => {
            if let Some(outcome) = e.outcome {
                metrics
                    .upstream_requests
                    .with_label_values(&[outcome])
                    .inc();
                metrics.upstream_latency.observe(elapsed.as_secs_f64());
            }
            tracing::warn!(detail = %e.detail, "message not accepted");
            Err((e.reply, e.reason))
        }
        Err(Cut::Deadline) => {
            metrics
                .upstream_requests
                .with_label_values(&["timeout"])
                .inc();
            Err((reply::UPSTREAM_TIMEOUT, RefusalReason::Upstream))
        }
        Err(Cut::Forced) => {
            tracing::warn!(
                size,
                recipients,
                "shutting down during the upstream call: 421, not 250"
            );
            count_refused(relay, size, &reply::SHUTTING_DOWN, RefusalReason::Shutdown);
            return None;
        }
    };
    let duration_ms = elapsed.as_millis() as u64;
    Some(match result {
        Ok(id) => {
            metrics.accepted.inc();
            metrics.received_bytes.inc_by(size as u64);
            metrics.message_size.observe(size as f64);
            tracing::info!(%id, size, recipients, code = 250, duration_ms, "message accepted");
            Ok(id)
        }
        Err((r, reason)) => {
            count_refused(relay, size, &r, reason);
            tracing::info!(
                size,
                recipients,
                code = r.code(),
                status = r.status().unwrap_or(""),
                duration_ms,
                "message refused"
            );
            Err(r)
        }
    })
}

/// Waits for `upstream` until `deadline` or a forced stop. A cut abandons the delivery at its
/// commit point, so nothing lands after the client hears 451 or 421; when the upstream's
/// commit (the outbox's rename) began first, its result is waited for instead, within
/// [`COMMIT_WAIT`] in case the disk hangs.
async fn settle<F: Future>(
    relay: &Relay,
    gate: &CommitGate,
    mut upstream: std::pin::Pin<&mut F>,
    deadline: Instant,
) -> Result<F::Output, Cut> {
    let cut = tokio::select! {
        outcome = &mut upstream => return Ok(outcome),
        _ = tokio::time::sleep_until(deadline) => Cut::Deadline,
        _ = relay.shutdown.forced() => Cut::Forced,
    };
    if gate.abandon() {
        return Err(cut);
    }
    match timeout(COMMIT_WAIT, upstream).await {
        Ok(outcome) => Ok(outcome),
        Err(_) => {
            tracing::error!("the upstream's commit did not finish in time; its result is unknown");
            Err(cut)
        }
    }
}

/// Counts a refused message: its bytes, and `messages_refused_total{class, reason}`.
pub(super) fn count_refused(relay: &Relay, size: usize, reply: &Reply, reason: RefusalReason) {
    let m = &relay.metrics;
    m.received_bytes.inc_by(size as u64);
    m.message_size.observe(size as f64);
    let class = if reply.is_transient() { "4xx" } else { "5xx" };
    m.refused.with_label_values(&[class, reason.label()]).inc();
}
