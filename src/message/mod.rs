//! From a received MIME message and its envelope to the REST send request (spec: mapping.md).
//!
//! Pure functions: no I/O, no clock, no async. The caller runs [`map_message`] inside a panic
//! boundary and off the async workers when the message is large; this module enforces the
//! relay's own caps (header section size, MIME part count, nesting depth) before and during
//! parsing, because mail-parser has none.
//!
//! The stages, in order, each in its own file:
//!
//! 1. [`header_section`]: the top-level header section exists, is well formed, fits
//!    `header_section` bytes and has at most `received_headers` `Received:` fields.
//! 2. [`neutralize`]: nested messages are made opaque, so mail-parser never parses them.
//! 3. [`prescan`]: upper bounds on parts, part header fields and parse time, from the bytes.
//! 4. [`tree`]: mail-parser parses; the part tree is walked with the depth cap.
//! 5. [`addresses`], [`headers`], [`control`], [`attachments`]: the request fields, from
//!    the top-level fields (parsed again from the original bytes) and the leaf parts.
//!
//! [`SendRequest`] borrows from the parse, so it is handed to a closure that serialises it
//! (to a file or a `Vec`) rather than returned: no body or attachment is copied for it.
//!
//! Memory, for a message of size N: the caller's N, decoded copies of base64 and
//! quoted-printable parts (at most about N), text in charsets other than UTF-8 converted
//! (at most about 3x that text), a copy of N only when the message declares a nested
//! message (stage 2), and the bounded parse structures. The JSON goes wherever `f` writes it.

mod addresses;
mod attachments;
mod boundary;
mod control;
mod header_section;
mod headers;
mod neutralize;
mod prescan;
mod request;
mod section_end;
mod tree;

use std::net::IpAddr;

use serde::Serialize;

use crate::smtp::{Envelope, Reply, reply};

pub use control::MAX_IDEMPOTENCY_KEY;
pub use prescan::{MAX_BOUNDARY_BYTES, MAX_HEADER_FIELDS, MAX_UNMATCHED_BOUNDARIES};
pub use request::{
    Attachment, Base64Content, BodyText, Disposition, HeaderField, Mailbox, SendRequest, Tracking,
};

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
    /// Most MIME parts in the message (default 1 000). Nested messages are never parsed (they
    /// are forwarded as attachments, see `neutralize.rs`), but the boundaries written inside a
    /// 7bit one still count towards the bound the prescan computes.
    pub parts: usize,
    /// Deepest nesting of multiparts, the top-level part being level 1; a message/rfc822 part
    /// is a leaf (default 50).
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
    /// A cap on the MIME structure: parts, nesting depth, header fields, boundary
    /// declarations, boundaries that never occur (MIME-01..04):
    /// `554 5.6.0 MIME structure exceeds safety limit: <what>`.
    #[error("MIME structure exceeds safety limit: {0}")]
    MimeLimit(String),
    /// A boundary declared in a form the part-count bound cannot read (RFC 2231, over 998
    /// bytes, encoded word, escapes): `554 5.6.0 Unsupported MIME boundary: <why>`.
    #[error("unsupported MIME boundary: {0}")]
    UnsupportedBoundary(&'static str),
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
}

impl MappingError {
    /// The SMTP reply for this error (all permanent: the same bytes would fail again).
    pub fn reply(&self) -> Reply {
        match self {
            MappingError::EmptyMessage => reply::EMPTY_MESSAGE,
            MappingError::NoHeaderSection => reply::NO_HEADER_SECTION,
            MappingError::MalformedHeaderLine { line } => reply::malformed_header_line(*line),
            MappingError::HeaderSectionTooLarge => reply::HEADER_SECTION_TOO_BIG,
            MappingError::TooManyReceived => reply::MAIL_LOOP,
            MappingError::MimeLimit(detail) => reply::mime_limit(detail),
            MappingError::UnsupportedBoundary(why) => reply::unsupported_boundary(why),
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
        }
    }
}

/// Maps `raw` (the message as received: dot-unstuffed, CRLF line ends) and its envelope to
/// the send request, and hands the request to `f`, whose result is returned.
///
/// Every failure is a [`MappingError`] whose [`reply`](MappingError::reply) is permanent.
pub fn map_message<R>(
    raw: &[u8],
    envelope: &Envelope,
    source: &Source,
    limits: &MimeLimits,
    f: impl FnOnce(&SendRequest<'_>) -> R,
) -> Result<R, MappingError> {
    let section = header_section::check(raw, limits)?;
    let defused = neutralize::neutralize(raw);
    let (input, changed): (&[u8], &[usize]) = match &defused {
        Some(copy) => (&copy.bytes, &copy.changed),
        None => (raw, &[]),
    };
    prescan::check(input, limits, section.fields)?;
    let tree = tree::Tree::parse(input, raw, changed)?;
    let leaves = tree.leaves(limits.depth)?;

    let top = tree::parse_top_headers(raw)?;
    let addresses = addresses::map(&top, envelope)?;
    let subject = headers::subject(&top)?;
    let tracking = control::tracking(&top, raw)?;
    let idempotency_key = control::idempotency_key(&top, raw)?;
    let content = attachments::map(&tree, &leaves);

    let request = SendRequest {
        from: addresses.from,
        to: addresses.to,
        cc: addresses.cc,
        bcc: addresses.bcc,
        reply_to: addresses.reply_to,
        subject,
        text: content.text,
        html: content.html,
        headers: headers::forwarded(&top, raw),
        attachments: content.attachments,
        tracking,
        envelope,
        source,
        idempotency_key,
    };
    Ok(f(&request))
}
