//! The upstream behind one trait: where an accepted message goes before the client hears
//! `250`: the REST API ([`HttpUpstream`]) in production, or the outbox (a local directory),
//! the embedded default.
//!
//! The contract: `deliver` resolves `Ok` only once the upstream has the message (REST 2xx, or
//! the outbox file durably written). Anything else is a [`DeliveryError`] carrying the exact
//! SMTP reply, never a 250.

pub mod client;
mod commit;
pub mod early;
mod http;
mod idempotency;
mod outbox;
pub mod render;
pub mod rest;

use std::time::SystemTime;

pub use commit::CommitGate;
pub use http::HttpUpstream;
pub use idempotency::derived_key;
pub use outbox::Outbox;
pub use render::{Prepared, Renderer};

use crate::BoxFuture;
use crate::memory::budget::Reservation;
use crate::message::Source;
use crate::secret::ApiKey;
use crate::smtp::{Envelope, RefusalReason, Reply};

/// One received message and what the upstream needs to know about it.
#[derive(Debug)]
pub struct Submission {
    /// As accepted at MAIL and RCPT.
    pub envelope: Envelope,
    /// The message exactly as received (un-stuffed, CRLF line endings).
    pub message: Vec<u8>,
    /// The memory budget share of `message`, given back when the submission is dropped.
    pub reservation: Reservation,
    /// The key the client authenticated with.
    pub key: ApiKey,
    /// The `source` object of the request.
    pub source: Source,
    /// `<session id>.<transaction number>`, sent as `X-Request-Id`.
    pub request_id: String,
    /// When the end of data was received.
    pub received_at: SystemTime,
    /// Decides between the reply's deadline and an upstream's commit (the outbox's rename).
    pub commit: CommitGate,
}

/// The upstream has the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id for `250 2.0.0 OK: queued as <id>`, already limited to `[A-Za-z0-9._-]`.
    pub id: String,
    /// For the upstream metric: `2xx` (REST) or `written` (outbox).
    pub outcome: &'static str,
}

/// The upstream does not have the message: the reply to send, and a detail for the log.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    /// The SMTP reply (the REST outcome table, or the mapping error's reply).
    pub reply: Reply,
    /// Why, for the metrics.
    pub reason: RefusalReason,
    /// What happened, for the log line (never the key).
    pub detail: String,
    /// For the upstream metric: the HTTP status class, `error` or `timeout`; `None` when no
    /// request was made (the mapping refused the message).
    pub outcome: Option<&'static str>,
}

impl DeliveryError {
    /// A refusal made before any upstream request (mapping, rendering, memory).
    pub fn new(reply: Reply, reason: RefusalReason, detail: impl AsRef<str>) -> DeliveryError {
        DeliveryError {
            reply,
            reason,
            detail: log_safe(detail.as_ref()),
            outcome: None,
        }
    }

    /// A refusal that came from an upstream request (or the outbox's write).
    pub fn upstream(reply: Reply, detail: impl AsRef<str>, outcome: &'static str) -> Self {
        DeliveryError {
            reply,
            reason: RefusalReason::Upstream,
            detail: log_safe(detail.as_ref()),
            outcome: Some(outcome),
        }
    }
}

/// Details can quote message content or API text: one escaped line, cut short, before they
/// reach a log line.
fn log_safe(detail: &str) -> String {
    crate::smtp::reply::sanitize(detail, 300)
}

/// `2xx`, `4xx`, ... for an HTTP status.
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Where accepted messages go.
pub trait Upstream: Send + Sync {
    /// Hands the message over; resolves once the upstream has it, or with the refusal.
    fn deliver(&self, submission: Submission) -> BoxFuture<'_, Result<Accepted, DeliveryError>>;

    /// A one-line description for the start-up log and `check-config`.
    fn describe(&self) -> String;
}

/// Keeps only `[A-Za-z0-9._-]` of an upstream id (Symfony Mailer parses the queue id with
/// that class), at most 128 characters.
pub fn safe_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(128)
        .collect()
}
