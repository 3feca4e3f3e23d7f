//! From a received MIME message and its envelope to the REST send request (spec: mapping.md).
//!
//! Pure functions: no I/O, no clock, no async. The caller runs [`map_message`] inside a panic
//! boundary and off the async workers when the message is large; this module enforces the
//! relay's own caps (header section size, MIME part count, nesting depth) before and during
//! parsing, because mail-parser has none.

use std::net::IpAddr;

use serde::Serialize;

use crate::smtp::{Envelope, Reply};

/// Where the message came from: the `source` object of the request body.
#[derive(Clone, Debug, Serialize)]
pub struct Source {
    /// Always `"smtp"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The client address (after PROXY protocol, when a load balancer is in front).
    pub client_ip: IpAddr,
    /// The negotiated TLS version, e.g. `TLSv1.3`.
    pub tls: Option<&'static str>,
    /// The EHLO/HELO argument, already sanitised by the session.
    pub helo: String,
    /// The session id, also in logs and in `X-Request-Id`.
    pub session_id: String,
}

/// The caps this module enforces on a message, from `[limits]` in the configuration.
#[derive(Clone, Debug)]
pub struct MimeLimits {
    /// Largest top-level header section, in bytes (default 1 MiB).
    pub header_section: usize,
    /// Most MIME parts in the whole message, nested messages included (default 1 000).
    pub parts: usize,
    /// Deepest nesting of multiparts and message/rfc822 parts (default 50).
    pub depth: usize,
    /// Most `Received:` headers before the message is taken for a loop (default 50).
    pub received_headers: usize,
}

// TEMPORARY until the mapping module lands (replaced wholesale by the merge).
/// The request body.
#[derive(Debug, Serialize)]
pub struct SendRequest<'a> {
    /// Envelope.
    pub envelope: &'a Envelope,
    /// Source.
    pub source: &'a Source,
    /// Header value.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// Mapping failure.
#[derive(Debug, thiserror::Error)]
#[error("empty message")]
pub struct MappingError;

impl MappingError {
    /// Reply.
    pub fn reply(&self) -> Reply {
        Reply::dynamic(554, "5.6.0", "Message has no header section")
    }
}

/// Maps.
pub fn map_message<R>(
    raw: &[u8],
    envelope: &Envelope,
    source: &Source,
    _limits: &MimeLimits,
    f: impl FnOnce(&SendRequest<'_>) -> R,
) -> Result<R, MappingError> {
    if raw.is_empty() {
        return Err(MappingError);
    }
    Ok(f(&SendRequest {
        envelope,
        source,
        idempotency_key: None,
    }))
}
