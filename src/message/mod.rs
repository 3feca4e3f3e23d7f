//! From a received MIME message and its envelope to the REST send request (docs/mapping.md).
//!
//! Pure functions: no I/O, no clock, no async. The caller runs [`map_message`] inside a panic
//! boundary, off the async workers when the message is large.
//!
//! The stages, in order, each in its own file:
//!
//! 1. [`header_section`]: the top-level header section exists, is well formed, fits
//!    `header_section` bytes and has at most `received_headers` `Received:` fields.
//! 2. [`parse`]: mail-parser parses under its own part and depth limits; a part it flags as
//!    cut short refuses the message. Limits come from the real structure, never from text.
//! 3. [`addresses`], [`headers`], [`control`]: the small fields, from the top-level header.
//! 4. [`parts`]: which part is the text, the html, each attachment, and where their bytes are.
//! 5. [`body`]: the request body, which owns the parsed message and writes the large fields
//!    ([`json`] escaping, [`base64`] transcoding) a chunk at a time when it is read.
//!
//! Memory, for a message of N bytes: N (the body owns the received bytes), the parse tables
//! ([`parse::parse_cost_bound`] bounds them before parsing), text bodies that had to be
//! decoded (quoted-printable, base64 or a legacy charset) and quoted-printable attachments
//! while they are written; [`RequestBody::extra_cost`] says how much. The JSON is never held
//! whole: the upload reads it in 64 KiB chunks.

mod addresses;
mod base64;
mod body;
mod content_type;
mod control;
mod header_section;
mod headers;
mod json;
mod parse;
mod parts;

use std::net::IpAddr;

use serde::Serialize;

use crate::smtp::{Envelope, RefusalReason, Reply, reply};

pub use addresses::Mailbox;
pub use body::RequestBody;
pub use control::{MAX_IDEMPOTENCY_KEY, Tracking};
pub use headers::HeaderField;
pub use parse::MAX_PART_HEADER_FIELDS;

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
    /// Most MIME parts in the message, every part counted: the root, each multipart, each
    /// leaf, and the parts of a nested 7bit message (default 1 000).
    pub parts: usize,
    /// Most nested multiparts (and nested messages): 50 are accepted, 51 refused (default 50).
    pub depth: usize,
    /// Most `Received:` headers before the message is taken for a loop (default 50).
    pub received_headers: usize,
}

/// Why a message cannot be mapped; [`MappingError::reply`] is the SMTP answer to DATA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Zero bytes (DATA-05): `554 5.6.0 Message is empty`.
    #[error("message is empty")]
    EmptyMessage,
    /// The first line is not a header field: a body without headers, or garbage (DATA-05,
    /// DATA-07): `554 5.6.0 Message has no header section`.
    #[error("message has no header section")]
    NoHeaderSection,
    /// A later top-level line that is neither `name: value` nor a folded continuation
    /// (DATA-07): `554 5.6.0 Malformed header line <n>` (lines count from 1).
    #[error("malformed header line {line}")]
    MalformedHeaderLine { line: usize },
    /// The top-level header section is larger than `header_section`, checked before parsing
    /// (DATA-11, DATA-12, MIME-08): `552 5.3.4 Message header section exceeds fixed maximum
    /// size`.
    #[error("header section too large")]
    HeaderSectionTooLarge,
    /// More than `received_headers` `Received:` fields (DATA-13): `554 5.4.6 Too many
    /// Received headers: possible mail loop`.
    #[error("too many Received headers")]
    TooManyReceived,
    /// A cap on the MIME structure, as the parser found it: parts, nesting depth, header
    /// fields in parts (MIME-01..03): `554 5.6.0 MIME structure exceeds safety limit: <what>`.
    #[error("MIME structure exceeds safety limit: {0}")]
    MimeLimit(String),
    /// `From` or `Subject` given twice (DATA-16, RFC 5322 §3.6):
    /// `554 5.6.0 Message has more than one <name> header`.
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
    /// No `From:` and the null reverse-path: `554 5.6.0 Message has no From header and the
    /// envelope sender is empty`.
    #[error("no From header and a null envelope sender")]
    NoSender,
    /// `From:` is a group: `554 5.6.0 From header must be a single mailbox, not a group`.
    #[error("From header is a group")]
    FromGroup,
    /// `From:` has several mailboxes: `554 5.6.0 From header has <n> mailboxes; exactly one is
    /// required`.
    #[error("From header has {0} mailboxes")]
    FromSeveralMailboxes(usize),
    /// `From:` has no address: `554 5.6.0 From header has no email address`.
    #[error("From header has no address")]
    FromNoAddress,
    /// An `X-SP-Track-*` value other than true/false, or two different values:
    /// `554 5.6.0 Invalid X-SP-Track-Opens value "maybe": expected true or false`.
    #[error("invalid {header} value {value:?}")]
    InvalidTracking { header: &'static str, value: String },
    /// `X-SP-Idempotency-Key` not 1 to 256 printable ASCII characters, or two different
    /// values: `554 5.6.0 Invalid X-SP-Idempotency-Key header: ...`.
    #[error("invalid X-SP-Idempotency-Key")]
    InvalidIdempotencyKey,
    /// mail-parser found nothing although the header section was valid (not expected):
    /// `554 5.6.0 Message could not be parsed`.
    #[error("message could not be parsed")]
    Unparseable,
    /// Serialising a field failed (not expected: every value is a string or a number):
    /// `451 4.3.0`.
    #[error("the request could not be written: {0}")]
    Render(String),
}

impl MappingError {
    /// Why, for the metrics: the header section's size is a size; a rendering bug is ours;
    /// everything else is the message's content.
    pub fn reason(&self) -> RefusalReason {
        match self {
            MappingError::HeaderSectionTooLarge => RefusalReason::Size,
            MappingError::Render(_) => RefusalReason::Internal,
            _ => RefusalReason::Content,
        }
    }

    /// The SMTP reply for this error (permanent: the same bytes would fail again; only a
    /// rendering bug is temporary).
    pub fn reply(&self) -> Reply {
        match self {
            MappingError::EmptyMessage => reply::EMPTY_MESSAGE,
            MappingError::NoHeaderSection => reply::NO_HEADER_SECTION,
            MappingError::MalformedHeaderLine { line } => reply::malformed_header_line(*line),
            MappingError::HeaderSectionTooLarge => reply::HEADER_SECTION_TOO_BIG,
            MappingError::TooManyReceived => reply::MAIL_LOOP,
            MappingError::MimeLimit(detail) => reply::mime_limit(detail),
            MappingError::DuplicateHeader(name) => reply::duplicate_header(name),
            MappingError::NoSender => reply::NO_SENDER,
            MappingError::FromGroup => reply::FROM_GROUP,
            MappingError::FromSeveralMailboxes(n) => reply::from_several_mailboxes(*n),
            MappingError::FromNoAddress => reply::FROM_NO_ADDRESS,
            MappingError::InvalidTracking { header, value } => {
                reply::invalid_tracking_value(header, value)
            }
            MappingError::InvalidIdempotencyKey => reply::INVALID_IDEMPOTENCY_KEY,
            MappingError::Unparseable => reply::UNPARSEABLE_MESSAGE,
            MappingError::Render(_) => reply::INTERNAL_ERROR,
        }
    }
}

/// A mapped message: the request body and what the upstream needs besides it.
#[derive(Debug)]
pub struct Mapped {
    /// The JSON body, written when read.
    pub body: RequestBody,
    /// The message's `X-SP-Idempotency-Key`, when it has one.
    pub idempotency_key: Option<String>,
    /// The message carries its own identity (a top-level `Message-ID` or `Date`), so a resend
    /// of the same bytes is a retry (docs/upstream.md, Idempotency-Key).
    pub has_identity: bool,
    /// The domain of the request's `from` address, lowercase (failing early after a 403).
    pub from_domain: Option<String>,
}

/// What parsing `raw` can cost beyond `raw` itself, at most; for the memory budget, before
/// [`map_message`] runs.
pub fn parse_cost_bound(raw: &[u8], limits: &MimeLimits) -> usize {
    parse::parse_cost_bound(raw, limits)
}

/// Maps `raw` (the message as received: dot-unstuffed, CRLF line ends) and its envelope to
/// the send request. Every failure is a [`MappingError`] whose [`reply`](MappingError::reply)
/// is permanent.
pub fn map_message(
    raw: Vec<u8>,
    envelope: &Envelope,
    source: &Source,
    limits: &MimeLimits,
) -> Result<Mapped, MappingError> {
    header_section::check(&raw, limits)?;
    let message = parse::parse(raw, limits)?;
    let headers = message.root().headers();
    let addresses = addresses::map(&headers, envelope)?;
    let subject = headers::subject(&headers)?;
    let tracking = control::tracking(&headers)?;
    let idempotency_key = control::idempotency_key(&headers)?;
    let has_identity = control::has_identity(&headers);
    let forwarded = headers::forwarded(&headers);
    let content = parts::plan(&message);

    let from_domain = addresses
        .from
        .email
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .filter(|domain| !domain.is_empty());
    let json = |e: serde_json::Error| MappingError::Render(e.to_string());
    let mut b = body::Builder::new();
    b.field("from", &addresses.from).map_err(json)?;
    b.field("to", &addresses.to).map_err(json)?;
    b.field("cc", &addresses.cc).map_err(json)?;
    b.field("bcc", &addresses.bcc).map_err(json)?;
    b.field("reply_to", &addresses.reply_to).map_err(json)?;
    b.field("subject", &subject).map_err(json)?;
    if let Some(text) = content.text {
        b.text("text", text);
    }
    if let Some(html) = content.html {
        b.text("html", html);
    }
    b.field("headers", &forwarded).map_err(json)?;
    b.attachments(content.attachments).map_err(json)?;
    b.field("tracking", &tracking).map_err(json)?;
    b.field("envelope", envelope).map_err(json)?;
    b.field("source", source).map_err(json)?;
    drop((addresses, subject, forwarded, headers));
    Ok(Mapped {
        body: b.finish(message),
        idempotency_key,
        has_identity,
        from_domain,
    })
}
