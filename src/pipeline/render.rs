//! From a submission to a request ready to send, shared by every upstream: memory reserved
//! for the parse, the message mapped, the reservation set to what the mapped message really
//! holds, and the Idempotency-Key decided (docs/upstream.md).
//!
//! The Idempotency-Key is the message's `X-SP-Idempotency-Key`; else, when the message carries
//! its own identity (a top-level `Message-ID` or `Date`), one derived from the key, envelope
//! and bytes, so a resend after a lost `250` is a retry; else none, so two identical alerts
//! are two messages (counted in `messages_without_identity_total`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::SystemTime;

use prometheus::IntCounter;

use super::{DeliveryError, Submission, idempotency};
use crate::memory::FIXED_MESSAGE_COST;
use crate::memory::budget::Reservation;
use crate::message::{MimeLimits, RequestBody, map_message, parse_cost_bound};
use crate::secret::ApiKey;
use crate::smtp::{RefusalReason, reply};

/// Messages up to this size are mapped on the async worker that received them; larger ones
/// on the blocking pool, so a 25 MB parse never stalls other sessions. Measured
/// (`cargo bench --bench mapping`, map + write + digest): 8 µs at 4 KiB, 21 µs at 16 KiB,
/// 69 µs at 64 KiB, 252 µs at 256 KiB; the hop to the blocking pool and back cost about
/// 50 µs of CPU per message in scenario (ii) (two thread wake-ups). Up to 64 KiB the worker
/// is held no longer than the hop would cost and well under the ~100 µs a tokio worker
/// should run between awaits.
pub const MAP_ON_WORKER_MAX: usize = 64 * 1024;

/// Turns submissions into requests; cheap to clone.
#[derive(Debug, Clone)]
pub struct Renderer {
    limits: Arc<MimeLimits>,
    without_identity: IntCounter,
}

/// A mapped submission: the body and what goes with it.
#[derive(Debug)]
pub struct Prepared {
    pub body: RequestBody,
    /// `None`: the message has no identity of its own; send no Idempotency-Key.
    pub idempotency_key: Option<String>,
    pub key: ApiKey,
    pub request_id: String,
    pub received_at: SystemTime,
    /// What the body holds, reserved from the memory budget until it is dropped.
    pub reservation: Reservation,
    /// The domain of the `from` address (failing early after a 403).
    pub from_domain: Option<String>,
}

impl Renderer {
    /// `without_identity` counts messages sent without an Idempotency-Key.
    pub fn new(limits: MimeLimits, without_identity: IntCounter) -> Renderer {
        Renderer {
            limits: Arc::new(limits),
            without_identity,
        }
    }

    /// [`Renderer::prepare`] where it is cheapest: on this worker for a small message, on the
    /// blocking pool for a large one. A panic in mapping answers `451 4.3.0` for this message
    /// only, either way.
    pub async fn prepare_off_workers(&self, sub: Submission) -> Result<Prepared, DeliveryError> {
        let panicked = || {
            DeliveryError::new(
                reply::INTERNAL_ERROR,
                RefusalReason::Internal,
                "mapping panicked",
            )
        };
        if sub.message.len() <= MAP_ON_WORKER_MAX {
            return catch_unwind(AssertUnwindSafe(|| self.prepare(sub))).map_err(|_| panicked())?;
        }
        let renderer = self.clone();
        tokio::task::spawn_blocking(move || renderer.prepare(sub))
            .await
            .map_err(|_| panicked())?
    }

    /// Maps `sub`. Blocking work (parsing, hashing): call it off the async workers for a large
    /// message ([`Renderer::prepare_off_workers`]).
    pub fn prepare(&self, sub: Submission) -> Result<Prepared, DeliveryError> {
        let Submission {
            envelope,
            message,
            mut reservation,
            key,
            source,
            request_id,
            received_at,
            commit: _,
        } = sub;
        let size = message.len();
        // The parse's tables are bounded before it runs, so the budget holds them too; it
        // answers at once (the client is waiting for its reply to the final dot).
        let bound = size
            .saturating_add(parse_cost_bound(&message, &self.limits))
            .saturating_add(FIXED_MESSAGE_COST);
        if bound > reservation.bytes() && !reservation.resize_to(bound) {
            return Err(DeliveryError::new(
                reply::INSUFFICIENT_STORAGE,
                RefusalReason::Memory,
                format!("memory budget cannot hold the parse of a {size}-byte message"),
            ));
        }
        let mapped = map_message(message, &envelope, &source, &self.limits).map_err(|e| {
            DeliveryError::new(
                e.reply(),
                e.reason(),
                format!("mapping refused the message: {e}"),
            )
        })?;
        let cost = size
            .saturating_add(mapped.body.extra_cost())
            .saturating_add(FIXED_MESSAGE_COST);
        if !reservation.resize_to(cost) {
            return Err(DeliveryError::new(
                reply::INSUFFICIENT_STORAGE,
                RefusalReason::Memory,
                format!("memory budget cannot hold the request for a {size}-byte message"),
            ));
        }
        let idempotency_key = match mapped.idempotency_key {
            Some(key) => Some(key),
            None if mapped.has_identity => {
                Some(idempotency::derived_key(&key, &envelope, mapped.body.raw()))
            }
            None => {
                self.without_identity.inc();
                None
            }
        };
        Ok(Prepared {
            from_domain: mapped.from_domain,
            body: mapped.body,
            idempotency_key,
            key,
            request_id,
            received_at,
            reservation,
        })
    }
}
