//! The parsed part tree: runs mail-parser on the bytes the caps allowed, walks the parts in
//! document order with the depth cap, and reads each part's MIME metadata and content —
//! from the original bytes wherever [`super::neutralize`] changed the copy that was parsed.
//!
//! The parser is configured to parse only what the mapping reads from parts (Content-Type,
//! Content-Disposition, Content-Transfer-Encoding, Content-ID) and to skip the value of every
//! other field, so a part's unknown fields cost a `Header` and no allocation. The top-level
//! fields the mapping needs are parsed separately, from the original ([`parse_top_headers`]).
//! This module decides nothing about text, html or attachments ([`super::attachments`] does).

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    ContentType, Encoding, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    PartType,
};

use super::MappingError;

/// Parses the MIME structure: MIME fields only.
static BODY_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition)
        .header_text(HeaderName::ContentTransferEncoding)
        .header_id(HeaderName::ContentId)
        .default_header_ignore()
});

/// Parses the top-level header section: the fields the mapping reads as values.
static TOP_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_address(HeaderName::From)
        .header_address(HeaderName::To)
        .header_address(HeaderName::Cc)
        .header_address(HeaderName::ReplyTo)
        .header_text(HeaderName::Subject)
        .default_header_ignore()
});

/// The top-level header fields of the original message, in order. Only the header section is
/// read (mail-parser's `parse_headers`), whose size [`super::header_section`] has capped.
pub(super) fn parse_top_headers(raw: &[u8]) -> Result<Vec<Header<'_>>, MappingError> {
    let mut message = TOP_PARSER
        .parse_headers(raw)
        .ok_or(MappingError::Unparseable)?;
    match message.parts.first_mut() {
        Some(root) => Ok(std::mem::take(&mut root.headers)),
        None => Err(MappingError::Unparseable),
    }
}

/// A leaf part, in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Leaf {
    /// Index into `message.parts`.
    pub id: usize,
    /// The parent is a `multipart/digest`, so a missing Content-Type means `message/rfc822`
    /// (RFC 2046 §5.1.5).
    pub in_digest: bool,
}

/// The parsed message and the original bytes behind it.
pub(super) struct Tree<'i> {
    pub message: Message<'i>,
    original: &'i [u8],
    /// Sorted offsets where the parsed bytes differ from `original`.
    changed: &'i [usize],
}

impl<'i> Tree<'i> {
    /// Parses `input`, which is `original` or its defused copy differing at `changed`.
    pub fn parse(
        input: &'i [u8],
        original: &'i [u8],
        changed: &'i [usize],
    ) -> Result<Tree<'i>, MappingError> {
        let message = BODY_PARSER.parse(input).ok_or(MappingError::Unparseable)?;
        Ok(Tree {
            message,
            original,
            changed,
        })
    }

    /// The leaf parts in document order; [`MappingError::MimeLimit`] when any part is nested
    /// deeper than `max_depth` (the top-level part is at depth 1). Iterative, and each part
    /// is visited once whatever the ids say, so no input can make it recurse or loop.
    pub fn leaves(&self, max_depth: usize) -> Result<Vec<Leaf>, MappingError> {
        let parts = &self.message.parts;
        let mut visited = vec![false; parts.len()];
        let mut leaves = Vec::new();
        let mut stack = vec![(0usize, 1usize, false)];
        while let Some((id, depth, in_digest)) = stack.pop() {
            let Some(part) = parts.get(id) else { continue };
            if std::mem::replace(&mut visited[id], true) {
                continue;
            }
            if depth > max_depth {
                return Err(MappingError::MimeLimit(format!(
                    "nesting deeper than {max_depth} levels"
                )));
            }
            match &part.body {
                PartType::Multipart(children) => {
                    let digest = self.content_type(part).is_some_and(|ct| {
                        ct.subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
                    });
                    for &child in children.iter().rev() {
                        stack.push((child as usize, depth + 1, digest));
                    }
                }
                _ => leaves.push(Leaf { id, in_digest }),
            }
        }
        Ok(leaves)
    }

    /// Whether the parsed bytes in `from..to` differ from the original.
    pub fn touched(&self, from: u32, to: u32) -> bool {
        let i = self.changed.partition_point(|&c| c < from as usize);
        self.changed.get(i).is_some_and(|&c| c < to as usize)
    }

    /// The part's Content-Type (the last one, as mail-parser uses).
    pub fn content_type<'a>(
        &'a self,
        part: &'a MessagePart<'i>,
    ) -> Option<Cow<'a, ContentType<'a>>> {
        self.structured(part, &HeaderName::ContentType)
    }

    /// The part's Content-Disposition (the last one).
    pub fn disposition<'a>(
        &'a self,
        part: &'a MessagePart<'i>,
    ) -> Option<Cow<'a, ContentType<'a>>> {
        self.structured(part, &HeaderName::ContentDisposition)
    }

    fn structured<'a>(
        &'a self,
        part: &'a MessagePart<'i>,
        name: &HeaderName<'_>,
    ) -> Option<Cow<'a, ContentType<'a>>> {
        let header = part.headers.iter().rev().find(|h| &h.name == name)?;
        if self.touched(header.offset_start, header.offset_end) {
            let value = self
                .original
                .get(header.offset_start as usize..header.offset_end as usize)?;
            MessageStream::new(value)
                .parse_content_type()
                .into_content_type()
                .map(Cow::Owned)
        } else {
            header.value.as_content_type().map(Cow::Borrowed)
        }
    }

    /// The part's Content-ID, without angle brackets (the last one).
    pub fn content_id<'a>(&'a self, part: &'a MessagePart<'i>) -> Option<&'a str> {
        match &part
            .headers
            .iter()
            .rev()
            .find(|h| h.name == HeaderName::ContentId)?
            .value
        {
            HeaderValue::Text(id) => Some(id),
            HeaderValue::TextList(ids) => ids.first().map(|id| id.as_ref()),
            _ => None,
        }
    }

    /// The part's body as transported, from the original bytes.
    pub fn raw_body(&self, part: &MessagePart<'_>) -> &'i [u8] {
        let end = (part.offset_end as usize).min(self.original.len());
        let start = (part.offset_body as usize).min(end);
        &self.original[start..end]
    }

    /// The part's body with its transfer encoding undone, from the original bytes: what
    /// mail-parser would have decoded had the copy not been changed. A body that does not
    /// decode is kept as transported, as mail-parser does.
    pub fn decoded_body(&self, part: &MessagePart<'_>) -> Cow<'i, [u8]> {
        let raw = self.raw_body(part);
        let (end, bytes) = match part.encoding {
            Encoding::Base64 => MessageStream::new(raw).decode_base64_mime(b""),
            Encoding::QuotedPrintable => MessageStream::new(raw).decode_quoted_printable_mime(b""),
            Encoding::None => return Cow::Borrowed(raw),
        };
        if end == usize::MAX {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(bytes.into_owned())
        }
    }

    /// The part's text, decoded from its charset, read again from the original bytes.
    pub fn decoded_text(&self, part: &MessagePart<'_>) -> String {
        let bytes = self.decoded_body(part);
        let charset = self.content_type(part).and_then(|ct| {
            ct.attribute("charset")
                .and_then(|c| charset_decoder(c.as_bytes()))
        });
        match charset {
            Some(decode) => decode(&bytes),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        for level in 0..levels {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
        raw
    }

    #[test]
    fn depth_is_measured_exactly() {
        let raw = nested(9);
        let tree = Tree::parse(&raw, &raw, &[]).unwrap();
        // Nine multiparts and the leaf: ten levels.
        assert_eq!(tree.leaves(10).unwrap().len(), 1);
        assert_eq!(
            tree.leaves(9),
            Err(MappingError::MimeLimit(
                "nesting deeper than 9 levels".into()
            ))
        );
    }

    #[test]
    fn hundreds_of_levels_are_walked_without_recursion() {
        let raw = nested(900);
        let tree = Tree::parse(&raw, &raw, &[]).unwrap();
        assert_eq!(tree.leaves(1000).unwrap().len(), 1);
        assert!(tree.leaves(50).is_err());
    }

    #[test]
    fn touched_ranges() {
        let raw = b"Subject: x\r\n\r\n";
        let changed = [5, 9];
        let tree = Tree::parse(raw, raw, &changed).unwrap();
        assert!(tree.touched(0, 6));
        assert!(!tree.touched(6, 9));
        assert!(tree.touched(9, 10));
        assert!(!tree.touched(10, 20));
    }
}
