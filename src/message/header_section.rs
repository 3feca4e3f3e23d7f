//! The top-level header section, checked line by line before any parsing: it exists, every
//! line is a header field or a folded continuation, it fits `limits.header_section`, and it
//! does not carry more `Received:` fields than `limits.received_headers`.
//!
//! mail-parser is lenient by design: it skips lines without a colon and accepts a body with
//! no headers at all. The relay is not: a client that sends garbage gets a `554 5.6.0` that
//! says what is wrong (adversarial DATA-05, DATA-07) instead of a request built from a guess.
//! The walk stops as soon as it passes the size cap, so its cost is bounded by the cap and not
//! by the message (DATA-11, DATA-12, MIME-08). It does not look at MIME parts, nor at values.

use super::{MappingError, MimeLimits};

/// What the walk learned that later stages need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeaderSection {
    /// Header fields in the section (continuation lines not counted).
    pub fields: usize,
}

/// Checks the top-level header section of `raw` (see the module doc).
///
/// Lines end at LF, with an optional CR before it. The section ends at the first empty line,
/// or at the end of the message: headers without a body are valid (RFC 5322 §3.5, DATA-06).
pub(super) fn check(raw: &[u8], limits: &MimeLimits) -> Result<HeaderSection, MappingError> {
    if raw.is_empty() {
        return Err(MappingError::EmptyMessage);
    }
    // Never look further than the cap plus a CRLF: a longer section is refused anyway, and
    // the blank line that ends a section of exactly the cap's size must still be seen.
    let window = &raw[..raw.len().min(limits.header_section.saturating_add(2))];
    let mut pos = 0;
    let mut line_no = 0;
    let mut fields = 0;
    let mut received = 0;
    while pos < raw.len() {
        let end = match memchr::memchr(b'\n', &window[pos..]) {
            Some(i) => pos + i + 1,
            None if window.len() < raw.len() => return Err(MappingError::HeaderSectionTooLarge),
            None => raw.len(),
        };
        line_no += 1;
        let line = strip_line_end(&raw[pos..end]);
        if line.is_empty() {
            if line_no == 1 {
                return Err(MappingError::NoHeaderSection);
            }
            return done(fields, received, limits);
        }
        if end > limits.header_section {
            return Err(MappingError::HeaderSectionTooLarge);
        }
        if matches!(line[0], b' ' | b'\t') {
            // RFC 5322 §2.2.3: a folded continuation of the previous field.
            if line_no == 1 {
                return Err(MappingError::NoHeaderSection);
            }
        } else {
            match field_name(line) {
                Some(name) => {
                    fields += 1;
                    if name.eq_ignore_ascii_case(b"received") {
                        received += 1;
                    }
                }
                None if line_no == 1 => return Err(MappingError::NoHeaderSection),
                None => return Err(MappingError::MalformedHeaderLine { line: line_no }),
            }
        }
        pos = end;
    }
    done(fields, received, limits)
}

fn done(
    fields: usize,
    received: usize,
    limits: &MimeLimits,
) -> Result<HeaderSection, MappingError> {
    if received > limits.received_headers {
        return Err(MappingError::TooManyReceived);
    }
    Ok(HeaderSection { fields })
}

/// The line without its CRLF or LF.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The field name of `name: value` (RFC 5322 §3.6.8 `ftext`, with the obsolete white space
/// before the colon of §4.5.8), or `None` when the line is not a header field.
pub(super) fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let name = line[..colon].trim_ascii_end();
    let ftext = |b: &u8| (33..=126).contains(b) && *b != b':';
    (!name.is_empty() && name.iter().all(ftext)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MimeLimits {
        MimeLimits {
            header_section: 1024,
            parts: 100,
            depth: 10,
            received_headers: 3,
        }
    }

    #[test]
    fn empty_message_is_refused() {
        assert_eq!(check(b"", &limits()), Err(MappingError::EmptyMessage));
    }

    #[test]
    fn body_without_headers_is_refused() {
        // DATA-05 / DATA-07.
        assert_eq!(
            check(b"hello world\r\n", &limits()),
            Err(MappingError::NoHeaderSection)
        );
        assert_eq!(
            check(b"\r\nbody\r\n", &limits()),
            Err(MappingError::NoHeaderSection)
        );
        assert_eq!(
            check(b" folded\r\n\r\n", &limits()),
            Err(MappingError::NoHeaderSection)
        );
    }

    #[test]
    fn malformed_line_is_named() {
        let raw = b"From: a@x\r\nBad header\r\n\r\nbody";
        assert_eq!(
            check(raw, &limits()),
            Err(MappingError::MalformedHeaderLine { line: 2 })
        );
        let raw = b"From: a@x\r\nSubject: s\r\nna me: x\r\n\r\n";
        assert_eq!(
            check(raw, &limits()),
            Err(MappingError::MalformedHeaderLine { line: 3 })
        );
    }

    #[test]
    fn headers_without_body_are_valid() {
        // DATA-06.
        let raw = b"From: s@sender.example\r\nSubject: s\r\n";
        assert_eq!(check(raw, &limits()), Ok(HeaderSection { fields: 2 }));
        assert_eq!(
            check(b"Subject: no newline", &limits()),
            Ok(HeaderSection { fields: 1 })
        );
    }

    #[test]
    fn folding_and_obsolete_space_before_colon_are_valid() {
        let raw = b"Subject : a\r\n\tb\r\n  \r\nX-A:\r\n\r\nbody\r\nnot: checked\r\n";
        assert_eq!(check(raw, &limits()), Ok(HeaderSection { fields: 2 }));
    }

    #[test]
    fn section_over_the_cap_is_refused_without_reading_further() {
        // DATA-11: one long Subject.
        let mut raw = b"Subject: ".to_vec();
        raw.extend(std::iter::repeat_n(b'A', 5000));
        raw.extend_from_slice(b"\r\n\r\nx\r\n");
        assert_eq!(
            check(&raw, &limits()),
            Err(MappingError::HeaderSectionTooLarge)
        );
        // DATA-12: many short fields.
        let raw = b"X-A: b\r\n".repeat(200);
        assert_eq!(
            check(&raw, &limits()),
            Err(MappingError::HeaderSectionTooLarge)
        );
        // MIME-08: one field folded many times.
        let mut raw = b"Subject: a\r\n".to_vec();
        raw.extend(b" x\r\n".repeat(500));
        assert_eq!(
            check(&raw, &limits()),
            Err(MappingError::HeaderSectionTooLarge)
        );
        // Exactly at the cap is fine; the blank line and the body do not count.
        let mut raw = b"Subject: ".to_vec();
        raw.extend(std::iter::repeat_n(b'A', 1024 - 11));
        raw.extend_from_slice(b"\r\n\r\n");
        raw.extend(std::iter::repeat_n(b'B', 5000));
        assert_eq!(check(&raw, &limits()), Ok(HeaderSection { fields: 1 }));
    }

    #[test]
    fn too_many_received_headers_is_a_loop() {
        // DATA-13, with the cap at 3.
        let ok = b"Received: a\r\nreceived: b\r\nRECEIVED : c\r\n\r\n";
        assert!(check(ok, &limits()).is_ok());
        let looped = b"Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\n\r\n";
        assert_eq!(check(looped, &limits()), Err(MappingError::TooManyReceived));
    }
}
