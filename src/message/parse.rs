//! Parsing with mail-parser 1.0 under the relay's structure limits, and the memory the parse
//! may take.
//!
//! The limits are the parser's own: `max_parts` (every part counts: the root, multiparts,
//! leaves and the parts of a nested 7bit message) and `max_depth` (containers, the root
//! message included, so `limits.depth` nested multiparts need `depth + 1`). A part the parser
//! flags `LIMIT_REACHED` means the parse stopped or a container was left unopened there; such
//! a message is refused, never forwarded with a part cut short (docs/mapping.md). Limits come from
//! this real structure only, never from text in a body. Transfer-encoded nested messages are
//! not decoded and parsed (`max_encoded_nesting(0)`): they are forwarded as attachments of
//! their decoded bytes, so parsing them would only cost memory.
//!
//! mail-parser keeps about 40 bytes per header field it finds, and nothing bounds the fields
//! of a part's header block except the message size: a message made of tiny `X:` lines would
//! cost ten times its size while it is parsed. [`parse_cost_bound`] bounds that before the
//! parse (so the memory budget can hold it), and [`MAX_PART_HEADER_FIELDS`] refuses such a
//! message after it.

use mail_parser::{Message, MessageParser, PartFlags};

use super::{MappingError, MimeLimits};

/// Most header fields in all MIME parts together (the top-level section has its own cap,
/// `limits.header_section`). Real messages carry a few per part.
pub const MAX_PART_HEADER_FIELDS: usize = 10_000;

/// Memory the parse keeps per header field, measured at about 40 bytes (offsets and the
/// parsed value), with room for decoded values.
const COST_PER_FIELD: usize = 64;
/// Memory the parse keeps per part and for its fixed tables.
const COST_PER_PART: usize = 128;

/// Parses `raw` (its top-level header section already checked) under `limits`.
pub(super) fn parse(raw: Vec<u8>, limits: &MimeLimits) -> Result<Message<'static>, MappingError> {
    let parser = MessageParser::new()
        .max_parts(limits.parts)
        .max_depth(limits.depth.saturating_add(1))
        .max_encoded_nesting(0);
    let message = parser.parse_owned(raw).ok_or(MappingError::Unparseable)?;
    let parts = message.parts().len();
    if message
        .parts()
        .any(|part| part.flags().contains(PartFlags::LIMIT_REACHED))
    {
        return Err(MappingError::MimeLimit(if parts >= limits.parts {
            format!("more than {} parts", limits.parts)
        } else {
            format!("nesting deeper than {} levels", limits.depth)
        }));
    }
    let top_fields = message.root().headers().len();
    if message.header_count().saturating_sub(top_fields) > MAX_PART_HEADER_FIELDS {
        return Err(MappingError::MimeLimit(format!(
            "more than {MAX_PART_HEADER_FIELDS} header fields in MIME parts"
        )));
    }
    Ok(message)
}

/// What the parse of `raw` can keep at most, beyond `raw` itself: every line that could be a
/// header field (`name:` at the start of a line) counted as one, every part allowed.
///
/// It jumps from colon to colon, so a base64 body (no colon at all) costs one vector scan.
pub(super) fn parse_cost_bound(raw: &[u8], limits: &MimeLimits) -> usize {
    let mut fields = 0usize;
    let mut pos = 0;
    while let Some(offset) = memchr::memchr(b':', &raw[pos..]) {
        let colon = pos + offset;
        let line_start = memchr::memrchr(b'\n', &raw[..colon]).map_or(0, |i| i + 1);
        // RFC 5322 §4.5.8 allows blanks before the colon; the parser takes them too.
        let name = raw[line_start..colon].trim_ascii_end();
        if !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b)) {
            fields += 1;
        }
        // One field per line at most: go on after the end of this line.
        pos = match memchr::memchr(b'\n', &raw[colon..]) {
            Some(i) => colon + i + 1,
            None => break,
        };
    }
    fields
        .saturating_mul(COST_PER_FIELD)
        .saturating_add(limits.parts.saturating_mul(COST_PER_PART))
}

/// What the parsed message keeps beyond its input, from its real structure.
pub(super) fn parse_cost(message: &Message<'_>) -> usize {
    message
        .header_count()
        .saturating_mul(COST_PER_FIELD)
        .saturating_add(message.parts().len().saturating_mul(COST_PER_PART))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(parts: usize, depth: usize) -> MimeLimits {
        MimeLimits {
            header_section: 1 << 20,
            parts,
            depth,
            received_headers: 50,
        }
    }

    fn nested(levels: usize) -> Vec<u8> {
        let mut raw = b"From: a@example.com\r\n".to_vec();
        for level in 0..levels {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
        raw
    }

    fn flat(children: usize) -> Vec<u8> {
        let mut raw =
            b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for i in 0..children {
            raw.extend_from_slice(
                format!("--x\r\nContent-Type: text/plain\r\n\r\n{i}\r\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"--x--\r\n");
        raw
    }

    #[test]
    fn depth_counts_nested_multiparts() {
        assert!(parse(nested(9), &limits(1000, 9)).is_ok());
        assert_eq!(
            parse(nested(10), &limits(1000, 9)).unwrap_err(),
            MappingError::MimeLimit("nesting deeper than 9 levels".into())
        );
        assert!(parse(nested(50), &limits(1000, 50)).is_ok());
        assert!(parse(nested(51), &limits(1000, 50)).is_err());
    }

    #[test]
    fn part_limit_counts_every_part() {
        // The multipart and its four children.
        assert!(parse(flat(4), &limits(5, 50)).is_ok());
        assert_eq!(
            parse(flat(5), &limits(5, 50)).unwrap_err(),
            MappingError::MimeLimit("more than 5 parts".into())
        );
    }

    #[test]
    fn boundary_text_in_a_body_is_not_structure() {
        let raw = b"From: a@example.com\r\nContent-Type: text/plain\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            Content-Type: multipart/mixed; boundary=3D\"abc\"\r\n--abc\r\n--abc\r\n--abc--\r\n"
            .to_vec();
        let message = parse(raw, &limits(2, 1)).unwrap();
        assert_eq!(message.parts().len(), 1);
    }

    #[test]
    fn header_dense_parts_are_bounded_and_refused() {
        let mut raw =
            b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
                .to_vec();
        for _ in 0..(MAX_PART_HEADER_FIELDS + 1) {
            raw.extend_from_slice(b"X:\r\n");
        }
        raw.extend_from_slice(b"\r\nbody\r\n--x--\r\n");
        let limits = limits(1000, 50);
        assert!(parse_cost_bound(&raw, &limits) >= (MAX_PART_HEADER_FIELDS + 3) * COST_PER_FIELD);
        assert_eq!(
            parse(raw, &limits).unwrap_err(),
            MappingError::MimeLimit("more than 10000 header fields in MIME parts".into())
        );
    }

    #[test]
    fn the_bound_covers_the_real_cost() {
        for raw in [nested(20), flat(100)] {
            let limits = limits(1000, 50);
            let bound = parse_cost_bound(&raw, &limits);
            let message = parse(raw, &limits).unwrap();
            assert!(parse_cost(&message) <= bound);
        }
        // Base64 has no colon: only the part allowance.
        let raw = b"QUJD\r\n".repeat(1000);
        assert_eq!(parse_cost_bound(&raw, &limits(10, 5)), 10 * COST_PER_PART);
    }
}
