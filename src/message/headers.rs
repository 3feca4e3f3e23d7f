//! `subject` and the forwarded `headers` (mapping.md), and the cleaning of header text.
//!
//! Forwarded: every `X-*` field except the SendPigeon control fields, every `List-*` field,
//! and `Message-ID`, `In-Reply-To`, `References`, in message order with repeats kept, named as
//! spelled in the message. Values are read from the original bytes and unfolded; `X-*` values
//! are RFC 2047-decoded (they are unstructured text), the others are kept as written because
//! they are structured (`<id@host>`, `<https://...>`, RFC 2369 lists; mail-parser would strip
//! the angle brackets). Control characters are removed from forwarded values — a TAB becomes
//! a space — so an encoded word that decodes to `\r\nBcc: victim` cannot add a line to the
//! message the API builds (DATA-14). `Bcc:` is never forwarded (DATA-15). The subject only
//! loses CR and LF: a NUL in it is forwarded, JSON-escaped (DATA-08).

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::{Header, HeaderName, HeaderValue};

use super::MappingError;
use super::header_section::field_name;
use super::request::HeaderField;

/// The SendPigeon control fields (lowercase): consumed by the relay, never forwarded.
pub(super) const CONTROL_FIELDS: [&str; 3] = [
    "x-sp-track-opens",
    "x-sp-track-clicks",
    "x-sp-idempotency-key",
];

/// The decoded subject; empty when absent; refused when given twice (DATA-16).
pub(super) fn subject<'a>(headers: &'a [Header<'a>]) -> Result<Cow<'a, str>, MappingError> {
    let mut fields = headers.iter().filter(|h| h.name == HeaderName::Subject);
    let first = fields.next();
    if fields.next().is_some() {
        return Err(MappingError::DuplicateHeader("Subject"));
    }
    Ok(match first.map(|h| &h.value) {
        Some(HeaderValue::Text(text)) => strip_line_breaks(text.trim()),
        _ => Cow::Borrowed(""),
    })
}

/// The fields to forward, from the top-level `headers` and the original bytes `raw`.
pub(super) fn forwarded<'a>(headers: &[Header<'_>], raw: &'a [u8]) -> Vec<HeaderField<'a>> {
    let mut out = Vec::new();
    for header in headers {
        let Some(name) = spelled_name(header, raw) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let value = if lower.starts_with("x-") {
            if CONTROL_FIELDS.contains(&lower.as_str()) {
                continue;
            }
            decoded_value(header, raw)
        } else if lower.starts_with("list-")
            || matches!(lower.as_str(), "message-id" | "in-reply-to" | "references")
        {
            clean_value(raw_value(header, raw))
        } else {
            continue;
        };
        out.push(HeaderField {
            name: Cow::Borrowed(name),
            value,
        });
    }
    out
}

/// The field name as spelled in the message, when it is a valid one (RFC 5322 `ftext`).
pub(super) fn spelled_name<'a>(header: &Header<'_>, raw: &'a [u8]) -> Option<&'a str> {
    let line = raw.get(header.offset_field as usize..header.offset_start as usize)?;
    std::str::from_utf8(field_name(line)?).ok()
}

/// The value as written, unfolded (RFC 5322 §2.2.3: CRLF before a blank is removed; the only
/// other CRLF is the one that ends the field), bytes that are not UTF-8 replaced.
pub(super) fn raw_value<'a>(header: &Header<'_>, raw: &'a [u8]) -> Cow<'a, str> {
    let bytes = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    if memchr::memchr2(b'\r', b'\n', bytes).is_none() {
        return String::from_utf8_lossy(bytes);
    }
    let unfolded: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Cow::Owned(String::from_utf8_lossy(&unfolded).into_owned())
}

/// An unstructured value, unfolded and RFC 2047-decoded by mail-parser, then cleaned.
fn decoded_value<'a>(header: &Header<'_>, raw: &'a [u8]) -> Cow<'a, str> {
    let bytes = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    match MessageStream::new(bytes).parse_unstructured() {
        HeaderValue::Text(text) => clean_value(text),
        _ => Cow::Borrowed(""),
    }
}

/// Removes control characters (TAB becomes a space) and surrounding spaces.
pub(super) fn clean_value(value: Cow<'_, str>) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        let cleaned: String = value
            .chars()
            .filter_map(|c| match c {
                '\t' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect();
        return Cow::Owned(cleaned.trim_matches(' ').to_owned());
    }
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_matches(' ')),
        Cow::Owned(s) if s.trim_matches(' ').len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim_matches(' ').to_owned()),
    }
}

/// Removes CR and LF, keeping everything else.
pub(super) fn strip_line_breaks(value: &str) -> Cow<'_, str> {
    if value.contains(['\r', '\n']) {
        Cow::Owned(value.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tree::parse_top_headers;

    fn forwarded_of(raw: &str) -> Vec<(String, String)> {
        let headers = parse_top_headers(raw.as_bytes()).unwrap();
        forwarded(&headers, raw.as_bytes())
            .into_iter()
            .map(|f| (f.name.into_owned(), f.value.into_owned()))
            .collect()
    }

    #[test]
    fn selection_order_and_spelling() {
        let raw = "Message-ID: <a1b2c3@acme.com>\r\nX-Entity-Ref-ID: invoice-1234\r\n\
                   List-Unsubscribe: <https://acme.com/u/abc>\r\nlist-unsubscribe: <mailto:u@acme.com>\r\n\
                   X-Sp-Track-Opens: true\r\nx-sp-idempotency-key: k\r\nBcc: hidden@x.com\r\n\
                   Received: from x\r\nIn-Reply-To: <p@x>\r\nReferences: <a@x>\r\n <b@x>\r\n\r\nbody";
        assert_eq!(
            forwarded_of(raw),
            [
                ("Message-ID", "<a1b2c3@acme.com>"),
                ("X-Entity-Ref-ID", "invoice-1234"),
                ("List-Unsubscribe", "<https://acme.com/u/abc>"),
                ("list-unsubscribe", "<mailto:u@acme.com>"),
                ("In-Reply-To", "<p@x>"),
                ("References", "<a@x> <b@x>"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn encoded_words_cannot_inject_lines() {
        // DATA-14.
        let raw = "X-Note: =?UTF-8?B?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=\r\n\r\n";
        assert_eq!(forwarded_of(raw)[0].1, "HelloBcc: victim@example.com");
        let headers = parse_top_headers(
            b"Subject: =?UTF-8?B?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=\r\n\r\n",
        )
        .unwrap();
        assert_eq!(subject(&headers).unwrap(), "HelloBcc: victim@example.com");
    }

    #[test]
    fn control_characters_and_tabs() {
        let raw = "X-A: a\tb\x00c\x1b\r\n\td\r\n\r\n";
        assert_eq!(forwarded_of(raw)[0].1, "a bc d");
        let headers = parse_top_headers(b"Subject: a\x00b\r\n\r\n").unwrap();
        assert_eq!(subject(&headers).unwrap(), "a\u{0}b");
    }

    #[test]
    fn subject_rules() {
        let headers = parse_top_headers(b"From: a@x\r\n\r\n").unwrap();
        assert_eq!(subject(&headers).unwrap(), "");
        let headers = parse_top_headers(b"Subject: a\r\nSubject: b\r\n\r\n").unwrap();
        assert_eq!(
            subject(&headers),
            Err(MappingError::DuplicateHeader("Subject"))
        );
        let headers = parse_top_headers(
            b"Subject: =?utf-8?q?Caf=C3=A9?= au\r\n =?utf-8?q?lait?= now\r\n\r\n",
        )
        .unwrap();
        assert_eq!(subject(&headers).unwrap(), "Café au lait now");
    }
}
