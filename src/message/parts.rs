//! `text`, `html` and `attachments` (docs/mapping.md), decided from the parsed part tree: which
//! part is which, and where each one's bytes come from. Nothing is decoded here that the
//! request body can read later; [`super::body`] writes the content.
//!
//! `text` is the first part of mail-parser's text body list that really is `text/plain` and
//! not marked `Content-Disposition: attachment`; `html` likewise from the html body list and
//! `text/html`; an empty one is left out, like an absent one. mail-parser puts an HTML part in the text list when an alternative has no
//! plain part (and the reverse), and its `body_text()` would convert it: filtering on the
//! real type means a body is never synthesised from the other. Every other leaf of the
//! top-level message is an attachment, in document order: a nested message is one leaf,
//! forwarded as its bytes (7bit/8bit: exactly as sent; base64/quoted-printable: decoded);
//! other parts as their decoded bytes, text included (no charset conversion: the declared
//! charset goes into `content_type`). File name: Content-Disposition `filename`, else
//! Content-Type `name` (Symfony Mailer puts a generated Content-ID there), else
//! `attachment-<n>.<ext>`. A part with no content and no file name (an empty part between two
//! boundaries, a message without a body, DATA-06) is not an attachment; an empty named file
//! is. A multipart that never split keeps its bytes as a `text/plain` leaf.

use std::ops::Range;

use mail_parser::{Encoding, Message, MessagePart, PartId, PartKind};

use super::content_type::{extension, mime_type, with_parameters};
use super::headers::clean_value;

/// What the request says about one attachment, besides its content.
#[derive(Debug, Clone)]
pub(super) struct AttachmentInfo {
    pub filename: String,
    pub content_type: String,
    pub disposition: Disposition,
    pub content_id: Option<String>,
}

/// How the recipient's client should show an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Disposition {
    Inline,
    Attachment,
}

/// Where an attachment's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentSource {
    /// A base64 body, transcoded a chunk at a time.
    Base64(PartId),
    /// A body without transfer encoding: its bytes as they are.
    Raw(PartId),
    /// A quoted-printable body, decoded when it is written.
    QuotedPrintable(PartId),
}

/// One attachment.
#[derive(Debug, Clone)]
pub(super) struct AttachmentPlan {
    pub info: AttachmentInfo,
    pub source: ContentSource,
    /// Bytes after transfer decoding.
    pub decoded_len: usize,
}

/// A text or html body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BodyText {
    /// The body's bytes in the message are its text (UTF-8, no transfer encoding).
    InMessage(Range<usize>),
    /// Decoded from its transfer encoding or charset.
    Decoded(String),
}

/// The body and attachment fields of the request.
#[derive(Debug)]
pub(super) struct Content {
    pub text: Option<BodyText>,
    pub html: Option<BodyText>,
    pub attachments: Vec<AttachmentPlan>,
}

/// Plans the content of `message`.
pub(super) fn plan(message: &Message<'_>) -> Content {
    let root = message.root();
    let is_body = |part: &MessagePart<'_>, subtype: &str, html: bool| {
        // No Content-Type is text/plain (outside a digest).
        let typed = match part.content_type() {
            Some(_) => part.is_content_type("text", subtype),
            None => subtype == "plain" && !in_digest(part),
        };
        typed
            && !part
                .content_disposition()
                .is_some_and(|d| d.is_attachment())
            && matches!(
                (part.kind(), html),
                (PartKind::Text, false) | (PartKind::Html, true)
            )
    };
    let text_part = root.text_body().find(|p| is_body(p, "plain", false));
    let html_part = root.html_body().find(|p| is_body(p, "html", true));
    let chosen = [text_part.map(|p| p.id()), html_part.map(|p| p.id())];

    let mut attachments = Vec::new();
    for part in root.parts() {
        let leaf = match part.kind() {
            PartKind::Multipart => part.children().len() == 0,
            _ => true,
        };
        if !leaf || chosen.contains(&Some(part.id())) {
            continue;
        }
        if let Some(attachment) = attachment(&part, attachments.len() + 1) {
            attachments.push(attachment);
        }
    }
    // An empty body carries nothing: it is left out, as an absent one is.
    let non_empty = |text: BodyText| match &text {
        BodyText::InMessage(range) if range.is_empty() => None,
        BodyText::Decoded(text) if text.is_empty() => None,
        _ => Some(text),
    };
    Content {
        text: text_part.and_then(|p| non_empty(body_text(message, &p))),
        html: html_part.and_then(|p| non_empty(body_text(message, &p))),
        attachments,
    }
}

/// The parent is a `multipart/digest`, so a missing Content-Type means `message/rfc822`.
fn in_digest(part: &MessagePart<'_>) -> bool {
    part.parent()
        .is_some_and(|parent| parent.is_content_type("multipart", "digest"))
}

/// The decoded text of a body part: where it lies in the message when nothing had to be
/// decoded, else the decoded copy.
fn body_text(message: &Message<'_>, part: &MessagePart<'_>) -> BodyText {
    let text = part.text().unwrap_or_default();
    let raw = message.raw();
    let (base, at) = (raw.as_ptr() as usize, text.as_ptr() as usize);
    if matches!(text, std::borrow::Cow::Borrowed(_))
        && at >= base
        && at + text.len() <= base + raw.len()
    {
        BodyText::InMessage(at - base..at - base + text.len())
    } else {
        BodyText::Decoded(text.into_owned())
    }
}

/// The attachment for a leaf, numbered `n` among the attachments if it needs a generated name.
fn attachment(part: &MessagePart<'_>, n: usize) -> Option<AttachmentPlan> {
    let content_type = part.content_type();
    let mime = mime_type(content_type.as_ref(), in_digest(part));
    let decoded_len = part.decoded_len();
    let filename = part
        .attachment_name()
        .map(|name| clean_value(name.into()).into_owned())
        .filter(|name| !name.is_empty());
    if decoded_len == 0 && filename.is_none() {
        return None;
    }
    let filename = filename.unwrap_or_else(|| format!("attachment-{n}.{}", extension(&mime)));
    let content_id = part
        .content_id()
        .map(|id| clean_value(id.trim_matches(['<', '>', ' ']).into()).into_owned())
        .filter(|id| !id.is_empty());
    let in_alternative = part
        .parent()
        .is_some_and(|parent| parent.is_content_type("multipart", "alternative"));
    let disposition = match part.content_disposition() {
        // An invite in an alternative is the message's calendar view (Outlook, Google).
        _ if mime == "text/calendar" && in_alternative => Disposition::Inline,
        Some(d) if d.is_inline() => Disposition::Inline,
        Some(d) if d.is_attachment() => Disposition::Attachment,
        _ if content_id.is_some() => Disposition::Inline,
        _ => Disposition::Attachment,
    };
    let source = match part.encoding() {
        Encoding::Base64 => ContentSource::Base64(part.id()),
        Encoding::QuotedPrintable => ContentSource::QuotedPrintable(part.id()),
        Encoding::None => ContentSource::Raw(part.id()),
    };
    Some(AttachmentPlan {
        info: AttachmentInfo {
            filename,
            content_type: with_parameters(mime, content_type.as_ref()),
            disposition,
            content_id,
        },
        source,
        decoded_len,
    })
}
