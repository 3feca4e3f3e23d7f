//! The REST send request body (rest-api.md, "Send") as a serde model that borrows from the
//! parsed message, so that serialising it copies no body or attachment.
//!
//! Two values are written through `Serializer::collect_str` instead of being built as strings
//! first: attachment content (base64 of up to 25 MiB, produced by `Base64Display` in 1 KiB
//! chunks) and the text and html bodies (line breaks normalised on the fly). serde_json's
//! `collect_str` escapes each chunk straight into the writer (`ser.rs`, its `Adapter`), so
//! serialising to a file or a `Vec` needs no intermediate `String`; the test
//! `serialising_does_not_build_the_base64_string` checks it. This module decides no field: it
//! only says how the fields are written.

use std::borrow::Cow;
use std::fmt;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Serialize, Serializer};

use super::Source;
use crate::smtp::Envelope;

/// The body of `POST /v1/emails`.
#[derive(Debug, Serialize)]
pub struct SendRequest<'a> {
    pub from: Mailbox<'a>,
    pub to: Vec<Mailbox<'a>>,
    pub cc: Vec<Mailbox<'a>>,
    pub bcc: Vec<Mailbox<'a>>,
    pub reply_to: Vec<Mailbox<'a>>,
    /// Decoded; empty when the message has no Subject.
    pub subject: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<BodyText<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<BodyText<'a>>,
    pub headers: Vec<HeaderField<'a>>,
    pub attachments: Vec<Attachment<'a>>,
    pub tracking: Tracking,
    pub envelope: &'a Envelope,
    pub source: &'a Source,
    /// The `X-SP-Idempotency-Key` value, for the `Idempotency-Key` request header; not part of
    /// the body.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// One address with its optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox<'a> {
    pub email: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
}

/// One forwarded header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// One attachment or inline part.
#[derive(Debug, Serialize)]
pub struct Attachment<'a> {
    pub filename: Cow<'a, str>,
    /// Lowercase `type/subtype`, without parameters.
    pub content_type: String,
    pub content: Base64Content<'a>,
    pub disposition: Disposition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<Cow<'a, str>>,
}

/// How the recipient's client should show an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    Inline,
    Attachment,
}

/// `tracking`: `null` when the message does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub opens: Option<bool>,
    pub clicks: Option<bool>,
}

/// Decoded attachment bytes, serialised as standard base64 without line breaks.
#[derive(Debug)]
pub struct Base64Content<'a>(pub Cow<'a, [u8]>);

impl Serialize for Base64Content<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(&self.0, &STANDARD))
    }
}

/// A text or html body, serialised with every line break as `\n`.
///
/// CRLF is the wire form, and Action Mailer's quoted-printable turns a CR into `=0D`, which
/// decodes to CR CR LF (clients.md, pitfall 9); a lone CR would be a bare CR if the API put
/// the text back on the wire. So each run of CRs followed by an LF, each lone LF and each
/// run-less CR becomes one `\n`. Everything else, NUL included, is kept (JSON escapes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyText<'a>(pub Cow<'a, str>);

impl Serialize for BodyText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&NormalizedLines(&self.0))
    }
}

struct NormalizedLines<'a>(&'a str);

impl fmt::Display for NormalizedLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while let Some(offset) = memchr::memchr2(b'\r', b'\n', &bytes[i..]) {
            let at = i + offset;
            // CR and LF are ASCII, so `at` is a char boundary.
            f.write_str(&self.0[start..at])?;
            f.write_str("\n")?;
            let mut next = at;
            while bytes.get(next) == Some(&b'\r') {
                next += 1;
            }
            if bytes.get(next) == Some(&b'\n') {
                next += 1;
            } else if next > at + 1 {
                // CRs not followed by LF: each one is a line break of its own.
                for _ in at + 1..next {
                    f.write_str("\n")?;
                }
            }
            start = next;
            i = next;
        }
        f.write_str(&self.0[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn line_breaks_are_normalised() {
        let text = |s: &'static str| json(&BodyText(s.into()));
        assert_eq!(text("a\r\nb\nc\r\r\nd"), r#""a\nb\nc\nd""#);
        assert_eq!(text("a\rb\r\rc\r"), r#""a\nb\n\nc\n""#);
        assert_eq!(text("caf\u{e9}\r\n\u{0}x"), "\"caf\u{e9}\\n\\u0000x\"");
        assert_eq!(text(""), r#""""#);
    }

    #[test]
    fn content_is_standard_base64_without_breaks() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = json(&Base64Content(Cow::Borrowed(&bytes)));
        use base64::Engine;
        assert_eq!(encoded, format!("\"{}\"", STANDARD.encode(&bytes)));
        assert!(!encoded.contains('\n'));
    }

    /// A writer that records the largest single write it is given.
    struct LargestWrite(usize, usize);

    impl std::io::Write for LargestWrite {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.max(buf.len());
            self.1 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn serialising_does_not_build_the_base64_string() {
        // Were the 4 MiB of base64 built first, it would reach the writer in one piece.
        let bytes = vec![7u8; 3 << 20];
        let mut out = LargestWrite(0, 0);
        serde_json::to_writer(&mut out, &Base64Content(Cow::Borrowed(&bytes))).unwrap();
        assert_eq!(out.1, (4 << 20) + 2);
        assert!(out.0 <= 4096, "largest write {} bytes", out.0);
    }
}
