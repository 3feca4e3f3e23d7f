//! `text`, `html` and `attachments` (mapping.md), from the leaf parts in document order.
//!
//! `text` is the first part of mail-parser's `text_body` list that really is `text/plain` and
//! is not marked `Content-Disposition: attachment`; `html` likewise from `html_body` and
//! `text/html`. mail-parser puts an HTML part in `text_body` when an alternative has no plain
//! part (and the reverse), and its `body_text()` would convert it: filtering on the real type
//! means a body is never synthesised from the other kind. Every other leaf is an attachment:
//! content type lowercase `type/subtype` (`text/plain` when absent, `message/rfc822` in a
//! digest, RFC 2045 §5.2 / RFC 2046 §5.1.5), content decoded (text parts as UTF-8, nested
//! messages as their bytes), file name from Content-Disposition `filename` before Content-Type
//! `name` (Symfony Mailer puts a generated Content-ID in `name`), else `attachment-<n>.<ext>`.
//! A part with no content and no file name (an empty part between two boundaries, or a
//! message without a body, DATA-06) is not an attachment; an empty named file is. A multipart
//! whose boundary never occurs is a leaf; it is sent as `text/plain`, its bytes as text.

use std::borrow::Cow;

use mail_parser::{ContentType, Encoding, MessagePart, PartType};

use super::headers::clean_value;
use super::request::{Attachment, Base64Content, BodyText, Disposition};
use super::tree::{Leaf, Tree};

/// The body and attachment fields of the request.
pub(super) struct Content<'a> {
    pub text: Option<BodyText<'a>>,
    pub html: Option<BodyText<'a>>,
    pub attachments: Vec<Attachment<'a>>,
}

/// Maps the `leaves` of `tree`.
pub(super) fn map<'a>(tree: &'a Tree<'_>, leaves: &[Leaf]) -> Content<'a> {
    let message = &tree.message;
    let leaf_of = |id: u32| leaves.iter().find(|l| l.id == id as usize);
    let body = |list: &[u32], subtype: &str| {
        list.iter().copied().filter_map(leaf_of).find(|leaf| {
            let part = &message.parts[leaf.id];
            let ct = tree.content_type(part);
            let is_attachment = tree
                .disposition(part)
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
            mime_type(ct.as_deref(), leaf.in_digest) == format!("text/{subtype}")
                && !is_attachment
                && matches!(
                    (&part.body, subtype),
                    (PartType::Text(_), "plain") | (PartType::Html(_), "html")
                )
        })
    };
    let text_leaf = body(&message.text_body, "plain");
    let html_leaf = body(&message.html_body, "html");

    let mut attachments = Vec::new();
    for leaf in leaves {
        if Some(leaf) == text_leaf || Some(leaf) == html_leaf {
            continue;
        }
        if let Some(attachment) = attachment(tree, leaf, attachments.len() + 1) {
            attachments.push(attachment);
        }
    }
    Content {
        text: text_leaf.map(|leaf| body_text(tree, &message.parts[leaf.id])),
        html: html_leaf.map(|leaf| body_text(tree, &message.parts[leaf.id])),
        attachments,
    }
}

/// The decoded text of a body part.
fn body_text<'a>(tree: &'a Tree<'_>, part: &'a MessagePart<'_>) -> BodyText<'a> {
    if tree.touched(part.offset_body, part.offset_end) {
        return BodyText(Cow::Owned(tree.decoded_text(part)));
    }
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => BodyText(Cow::Borrowed(text)),
        _ => BodyText(Cow::Owned(tree.decoded_text(part))),
    }
}

/// The attachment for `leaf`, numbered `n` among the attachments if it needs a generated name.
fn attachment<'a>(tree: &'a Tree<'_>, leaf: &Leaf, n: usize) -> Option<Attachment<'a>> {
    let part = &tree.message.parts[leaf.id];
    let content_type = tree.content_type(part);
    let disposition = tree.disposition(part);
    let mime = mime_type(content_type.as_deref(), leaf.in_digest);
    let content = content(tree, part, &mime);
    let filename = disposition
        .as_ref()
        .and_then(|d| d.attribute("filename"))
        .or_else(|| content_type.as_ref().and_then(|ct| ct.attribute("name")))
        .map(|name| clean_value(Cow::Borrowed(name)).into_owned())
        .filter(|name| !name.is_empty());
    if content.is_empty() && filename.is_none() {
        return None;
    }
    let filename = filename.map_or_else(
        || Cow::Owned(format!("attachment-{n}.{}", extension(&mime))),
        Cow::Owned,
    );
    let content_id = tree
        .content_id(part)
        .map(|id| clean_value(Cow::Borrowed(id.trim_matches(['<', '>', ' ']))))
        .filter(|id| !id.is_empty());
    let disposition = match disposition.as_ref().map(|d| d.ctype().to_ascii_lowercase()) {
        Some(kind) if kind == "inline" => Disposition::Inline,
        Some(kind) if kind == "attachment" => Disposition::Attachment,
        _ if content_id.is_some() => Disposition::Inline,
        _ => Disposition::Attachment,
    };
    Some(Attachment {
        filename,
        content_type: mime,
        content: Base64Content(content),
        disposition,
        content_id,
    })
}

/// The decoded bytes of an attachment part.
fn content<'a>(tree: &'a Tree<'_>, part: &'a MessagePart<'_>, mime: &str) -> Cow<'a, [u8]> {
    let text = mime.starts_with("text/");
    if tree.touched(part.offset_body, part.offset_end) {
        return if text {
            Cow::Owned(tree.decoded_text(part).into_bytes())
        } else {
            tree.decoded_body(part)
        };
    }
    if mime.starts_with("message/") {
        // The nested message as it was sent (7bit/8bit: the bytes themselves).
        return match (&part.body, part.encoding) {
            (_, Encoding::None) => Cow::Borrowed(tree.raw_body(part)),
            (PartType::Binary(bytes) | PartType::InlineBinary(bytes), _) => Cow::Borrowed(bytes),
            _ => tree.decoded_body(part),
        };
    }
    match &part.body {
        PartType::Text(s) | PartType::Html(s) => Cow::Borrowed(s.as_bytes()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) if text => {
            match String::from_utf8_lossy(bytes) {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        }
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Cow::Borrowed(bytes),
        PartType::Message(_) => Cow::Borrowed(tree.raw_body(part)),
        PartType::Multipart(_) => Cow::Borrowed(&[]),
    }
}

/// Lowercase `type/subtype` of a leaf: `text/plain` for none (or a multipart that never
/// split), `message/rfc822` for none in a digest, `application/octet-stream` for a type that
/// is not two RFC 2045 tokens.
pub(super) fn mime_type(content_type: Option<&ContentType<'_>>, in_digest: bool) -> String {
    let Some(ct) = content_type else {
        return if in_digest {
            "message/rfc822"
        } else {
            "text/plain"
        }
        .to_owned();
    };
    let kind = ct.ctype();
    if kind.eq_ignore_ascii_case("multipart") {
        return "text/plain".to_owned();
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
    };
    match ct.subtype() {
        Some(sub) if token(kind) && token(sub) => {
            format!("{}/{}", kind.to_ascii_lowercase(), sub.to_ascii_lowercase())
        }
        _ => "application/octet-stream".to_owned(),
    }
}

/// The extension of a generated file name.
fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" | "application/ics" => "ics",
        "message/rfc822" | "message/global" => "eml",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        let ct = |t: &'static str, s: Option<&'static str>| ContentType {
            c_type: t.into(),
            c_subtype: s.map(Into::into),
            attributes: None,
        };
        assert_eq!(mime_type(None, false), "text/plain");
        assert_eq!(mime_type(None, true), "message/rfc822");
        assert_eq!(
            mime_type(Some(&ct("Image", Some("PNG"))), false),
            "image/png"
        );
        assert_eq!(
            mime_type(Some(&ct("multipart", Some("mixed"))), false),
            "text/plain"
        );
        assert_eq!(
            mime_type(Some(&ct("text", None)), false),
            "application/octet-stream"
        );
        assert_eq!(
            mime_type(Some(&ct("text", Some("pl\"ain"))), false),
            "application/octet-stream"
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("image/jpeg"), "jpg");
        assert_eq!(extension("message/rfc822"), "eml");
        assert_eq!(extension("application/x-unknown"), "bin");
    }
}
