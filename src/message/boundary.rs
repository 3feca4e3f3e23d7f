//! Reading a `boundary=` parameter straight from the raw bytes, the way mail-parser's
//! Content-Type parser (`parsers/fields/content_type.rs` in 0.11.9) would read it, or saying
//! that the syntax is one whose reading we cannot predict.
//!
//! The precise part count in [`super::prescan`] counts the occurrences of `--` + every
//! declared boundary. That count is an upper bound only if every boundary mail-parser will
//! use is among the values found here, so this module is deliberately narrow: a plain token
//! or a quoted string on one line is read exactly as mail-parser reads it (inner spaces kept,
//! trailing spaces of a token dropped), and everything mail-parser would transform is refused
//! instead of guessed: RFC 2231 `boundary*` forms, RFC 2047 encoded words, backslash escapes,
//! a quote inside a token, folding inside a quoted value, values that are not UTF-8, and
//! values over 998 bytes (RFC 5322 §2.1.1 line limit; RFC 2046 §5.1.1 allows only 70).
//! It does not know whether the text is a header at all: body text that happens to contain
//! `boundary=` yields a candidate too, which only makes the bound more conservative.

/// The longest boundary accepted (RFC 5322 §2.1.1: a line is at most 998 octets).
pub(super) const MAX_BOUNDARY: usize = 998;

/// What the bytes after one case-insensitive `boundary` say.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Declaration<'a> {
    /// `boundary=value`: mail-parser reads exactly these bytes as the boundary.
    Value(&'a [u8]),
    /// An assignment in a form we refuse; the text says which (for the 554 reply).
    Unsupported(&'static str),
    /// Not an assignment (prose such as "the boundary of"), or an empty value, which
    /// mail-parser ignores.
    NotAssignment,
}

/// Reads the declaration at `at`, the offset of a case-insensitive `boundary` in `input`.
/// Looks at no more than about [`MAX_BOUNDARY`] bytes, so scanning every occurrence of a
/// message stays linear in the number of occurrences.
pub(super) fn declaration_at(input: &[u8], at: usize) -> Declaration<'_> {
    let mut i = skip_blanks(input, at + b"boundary".len());
    match input.get(i) {
        Some(b'=') => i += 1,
        Some(b'*') => {
            // RFC 2231 §3/§4: boundary*=, boundary*0=, boundary*0*=. Only an assignment counts:
            // "**boundary**" in a Markdown body is not one.
            while matches!(input.get(i), Some(b'*' | b'0'..=b'9' | b' ' | b'\t')) {
                i += 1;
            }
            return if input.get(i) == Some(&b'=') {
                Declaration::Unsupported("RFC 2231 encoded or continued boundary parameter")
            } else {
                Declaration::NotAssignment
            };
        }
        _ => return Declaration::NotAssignment,
    }
    let i = skip_blanks(input, i);
    let value = if input.get(i) == Some(&b'"') {
        match quoted(input, i + 1) {
            Ok(value) => value,
            Err(why) => return Declaration::Unsupported(why),
        }
    } else {
        match token(input, i) {
            Ok(value) => value,
            Err(why) => return Declaration::Unsupported(why),
        }
    };
    if value.is_empty() {
        Declaration::NotAssignment
    } else if value.len() > MAX_BOUNDARY {
        Declaration::Unsupported("longer than 998 bytes")
    } else if memchr::memmem::find(value, b"=?").is_some() {
        Declaration::Unsupported("RFC 2047 encoded word in boundary")
    } else if std::str::from_utf8(value).is_err() {
        Declaration::Unsupported("boundary is not valid UTF-8")
    } else {
        Declaration::Value(value)
    }
}

fn skip_blanks(input: &[u8], mut i: usize) -> usize {
    while matches!(input.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The bytes between the opening quote (before `start`) and the closing one.
fn quoted(input: &[u8], start: usize) -> Result<&[u8], &'static str> {
    let window = &input[start.min(input.len())..input.len().min(start + MAX_BOUNDARY + 1)];
    match memchr::memchr3(b'"', b'\\', b'\n', window) {
        Some(i) if window[i] == b'"' => {
            let value = &window[..i];
            if value.contains(&b'\r') {
                Err("control character in quoted boundary")
            } else {
                Ok(value)
            }
        }
        Some(i) if window[i] == b'\\' => Err("escaped character in quoted boundary"),
        Some(_) => Err("quoted boundary is folded or unterminated"),
        None if window.len() > MAX_BOUNDARY => Err("longer than 998 bytes"),
        None => Err("quoted boundary is unterminated"),
    }
}

/// An unquoted value: up to `;`, a comment, or the end of the line, without trailing blanks.
fn token(input: &[u8], start: usize) -> Result<&[u8], &'static str> {
    let mut i = start;
    let limit = input.len().min(start + MAX_BOUNDARY + 1);
    while i < limit {
        match input[i] {
            b';' | b'(' | b'\n' => break,
            b'\r' if input.get(i + 1) == Some(&b'\n') => break,
            b'\r' => return Err("control character in boundary"),
            b'"' => return Err("quote inside unquoted boundary"),
            b'\\' => return Err("escaped character in boundary"),
            _ => i += 1,
        }
    }
    if i == limit && limit < input.len() {
        return Err("longer than 998 bytes");
    }
    let mut value = &input[start..i];
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::parsers::MessageStream;

    /// What mail-parser itself reads as the boundary of a Content-Type value.
    fn mail_parser_reads(value: &str) -> Option<String> {
        let raw = format!("{value}\r\n");
        let parsed = MessageStream::new(raw.as_bytes()).parse_content_type();
        parsed
            .as_content_type()
            .and_then(|ct| ct.attribute("boundary"))
            .map(str::to_owned)
    }

    fn ours(value: &str) -> Declaration<'_> {
        let at = value.to_ascii_lowercase().find("boundary").unwrap();
        declaration_at(value.as_bytes(), at)
    }

    #[test]
    fn plain_forms_read_exactly_like_mail_parser() {
        for value in [
            "multipart/mixed; boundary=abc",
            "multipart/mixed; boundary=\"----=_Part_0_12.34\"",
            "multipart/mixed; BOUNDARY = \"a b \" ; charset=x",
            "multipart/mixed; boundary=a b  ;x=y",
            "multipart/mixed; boundary=abc(comment)",
            "multipart/alternative;\r\n boundary=\"000000000000d1a6\"",
            "multipart/mixed; boundary=\"(;)\"",
            "multipart/related; boundary=--==_mimepart_65a1",
        ] {
            let expected = mail_parser_reads(value).unwrap();
            assert_eq!(
                ours(value),
                Declaration::Value(expected.as_bytes()),
                "for {value:?}"
            );
        }
    }

    #[test]
    fn forms_mail_parser_transforms_are_refused() {
        for value in [
            "multipart/mixed; boundary*=utf-8''abc",
            "multipart/mixed; boundary*0=\"ab\"; boundary*1=\"c\"",
            "multipart/mixed; boundary=\"=?utf-8?q?abc?=\"",
            "multipart/mixed; boundary=\"a\\\"b\"",
            "multipart/mixed; boundary=a\\b",
            "multipart/mixed; boundary=ab\"cd\"",
            "multipart/mixed; boundary=\"ab\r\n cd\"",
            "multipart/mixed; boundary=\"abc",
        ] {
            assert!(
                matches!(ours(value), Declaration::Unsupported(_)),
                "for {value:?}: {:?}",
                ours(value)
            );
        }
    }

    #[test]
    fn long_boundaries_are_refused() {
        let ok = format!("boundary={}", "b".repeat(998));
        assert!(matches!(ours(&ok), Declaration::Value(v) if v.len() == 998));
        let long = format!("boundary={}\r\n", "b".repeat(999));
        assert_eq!(
            ours(&long),
            Declaration::Unsupported("longer than 998 bytes")
        );
        let long = format!("boundary=\"{}\"", "b".repeat(5000));
        assert_eq!(
            ours(&long),
            Declaration::Unsupported("longer than 998 bytes")
        );
    }

    #[test]
    fn prose_is_not_a_declaration() {
        for value in [
            "the boundary of the field",
            "**boundary**: see above",
            "boundary=\"\"",
            "boundary=",
            "boundary",
        ] {
            assert_eq!(ours(value), Declaration::NotAssignment, "for {value:?}");
        }
    }
}
