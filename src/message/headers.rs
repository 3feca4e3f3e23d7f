//! `subject` and the forwarded `headers` (docs/mapping.md), and the cleaning of header text.
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

use mail_parser::{Header, HeaderForm, HeaderName, Headers};
use serde::Serialize;

use super::MappingError;

/// One forwarded header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// The SendPigeon control fields (lowercase): consumed by the relay, never forwarded.
pub(super) const CONTROL_FIELDS: [&str; 3] = [
    "x-sp-track-opens",
    "x-sp-track-clicks",
    "x-sp-idempotency-key",
];

/// The decoded subject; empty when absent; refused when given twice (DATA-16).
pub(super) fn subject<'a>(headers: &Headers<'a>) -> Result<Cow<'a, str>, MappingError> {
    let mut fields = headers.all(HeaderName::Subject);
    let first = fields.next();
    if fields.next().is_some() {
        return Err(MappingError::DuplicateHeader("Subject"));
    }
    Ok(match first.and_then(|h| h.value().as_text()) {
        Some(text) => strip_line_breaks(text.trim()),
        None => Cow::Borrowed(""),
    })
}

/// The fields to forward, from the top-level `headers`.
pub(super) fn forwarded<'a>(headers: &Headers<'a>) -> Vec<HeaderField<'a>> {
    let mut out = Vec::new();
    for header in headers {
        let Some(name) = spelled_name(&header) else {
            continue;
        };
        let is = |prefix: &str| {
            name.len() >= prefix.len()
                && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        let value = if is("x-") {
            if CONTROL_FIELDS.iter().any(|c| name.eq_ignore_ascii_case(c)) {
                continue;
            }
            decoded_value(&header)
        } else if is("list-")
            || ["message-id", "in-reply-to", "references"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        {
            clean_value(raw_value(&header))
        } else {
            continue;
        };
        out.push(HeaderField { name, value });
    }
    out
}

/// The field name as spelled in the message, when it is a valid one (RFC 5322 `ftext`).
pub(super) fn spelled_name<'a>(header: &Header<'a>) -> Option<&'a str> {
    let name = header.raw_name();
    let ftext = |b: u8| (33..=126).contains(&b) && b != b':';
    (!name.is_empty() && name.bytes().all(ftext)).then_some(name)
}

/// The value as written, unfolded (RFC 5322 §2.2.3: CRLF before a blank is removed; the only
/// other CRLF is the one that ends the field), bytes that are not UTF-8 replaced.
pub(super) fn raw_value<'a>(header: &Header<'a>) -> Cow<'a, str> {
    let bytes = header.raw_value();
    let bytes = bytes
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(&bytes[..0], |last| &bytes[..=last]);
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
fn decoded_value<'a>(header: &Header<'a>) -> Cow<'a, str> {
    let parsed = header.parse_as(HeaderForm::Text);
    let text = parsed.value().as_text().unwrap_or_default().to_owned();
    match clean_value(Cow::Owned(text)) {
        Cow::Owned(s) => Cow::Owned(s),
        Cow::Borrowed(s) => Cow::Owned(s.to_owned()),
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
    use mail_parser::MessageParser;

    fn with_headers<T>(raw: &str, f: impl FnOnce(&Headers<'_>) -> T) -> T {
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        f(&message.root().headers())
    }

    fn forwarded_of(raw: &str) -> Vec<(String, String)> {
        with_headers(raw, |h| {
            forwarded(h)
                .into_iter()
                .map(|f| (f.name.to_owned(), f.value.into_owned()))
                .collect()
        })
    }

    fn subject_of(raw: &str) -> Result<String, MappingError> {
        with_headers(raw, |h| subject(h).map(Cow::into_owned))
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
        assert_eq!(
            subject_of("Subject: =?UTF-8?B?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=\r\n\r\n")
                .unwrap(),
            "HelloBcc: victim@example.com"
        );
    }

    #[test]
    fn control_characters_and_tabs() {
        let raw = "X-A: a\tb\x00c\x1b\r\n\td\r\n\r\n";
        assert_eq!(forwarded_of(raw)[0].1, "a bc d");
        assert_eq!(subject_of("Subject: a\x00b\r\n\r\n").unwrap(), "a\u{0}b");
    }

    #[test]
    fn subject_rules() {
        assert_eq!(subject_of("From: a@x\r\n\r\n").unwrap(), "");
        assert_eq!(
            subject_of("Subject: a\r\nSubject: b\r\n\r\n"),
            Err(MappingError::DuplicateHeader("Subject"))
        );
        assert_eq!(
            subject_of("Subject: =?utf-8?q?Caf=C3=A9?= au\r\n =?utf-8?q?lait?= now\r\n\r\n")
                .unwrap(),
            "Café au lait now"
        );
    }
}
