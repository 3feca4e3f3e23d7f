//! The REST request body (docs/upstream.md, "Send"), written in chunks from the parsed message and
//! never held whole.
//!
//! The small fields (addresses, subject, headers, attachment names, tracking, envelope,
//! source) are serialised with serde_json into literal pieces when the message is mapped. The
//! large ones are written when the body is read: the text and html bodies escaped from the
//! message's own bytes (or their decoded copy), attachment content as base64 of the decoded
//! bytes, transcoded from the part's own base64 a chunk at a time. So a message costs its
//! received bytes plus what had to be decoded, not a second full copy as JSON; the exact
//! length is known before the first byte is sent (`Content-Length`, not chunked encoding).
//! The body owns the parsed message (and through it the received bytes), so it can be moved
//! into the HTTP client and dropped when the upload ends.

use std::convert::Infallible;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use mail_parser::{Encoding, Message};
use serde::Serialize;

use super::base64::{self, Encoder, Transcoder};
use super::json::{self, LineState};
use super::parts::{AttachmentPlan, BodyText, ContentSource, Disposition};

/// Output written per chunk (a little more when a step overshoots).
const CHUNK: usize = 64 * 1024;

/// One piece of the body.
#[derive(Debug)]
enum Segment {
    /// JSON written when the message was mapped.
    Literal(Vec<u8>),
    /// The content of a JSON string holding a text body (the quotes are literals).
    Text(BodyText),
    /// The content of a JSON string holding base64 (the quotes are literals), and the length
    /// of the bytes it encodes.
    Base64(ContentSource, usize),
}

/// Progress inside the segment being written.
#[derive(Debug)]
enum Cursor {
    Literal {
        pos: usize,
    },
    Text {
        pos: usize,
        lines: LineState,
    },
    Transcode(Transcoder),
    Encode {
        encoder: Encoder,
        decoded: Option<Vec<u8>>,
    },
}

/// The request body of one message; see the module doc.
#[derive(Debug)]
pub struct RequestBody {
    message: Message<'static>,
    segments: Vec<Segment>,
    len: usize,
    /// Bytes this body holds beyond the message's own: decoded texts, literals.
    extra: usize,
    next: usize,
    cursor: Option<Cursor>,
    written: usize,
}

/// Builds a [`RequestBody`] field by field, in the order of the request.
pub(super) struct Builder {
    segments: Vec<Segment>,
    literal: Vec<u8>,
    first: bool,
}

impl Builder {
    pub fn new() -> Builder {
        let mut literal = Vec::with_capacity(1024);
        literal.push(b'{');
        Builder {
            segments: Vec::with_capacity(8),
            literal,
            first: true,
        }
    }

    fn key(&mut self, name: &str) {
        if !std::mem::replace(&mut self.first, false) {
            self.literal.push(b',');
        }
        self.literal.push(b'"');
        self.literal.extend_from_slice(name.as_bytes());
        self.literal.extend_from_slice(b"\":");
    }

    /// A field with a small value, serialised now.
    pub fn field(&mut self, name: &str, value: &impl Serialize) -> serde_json::Result<()> {
        self.key(name);
        serde_json::to_writer(&mut self.literal, value)
    }

    /// A text or html field.
    pub fn text(&mut self, name: &str, text: BodyText) {
        self.key(name);
        self.literal.push(b'"');
        self.flush_literal();
        self.segments.push(Segment::Text(text));
        self.literal.push(b'"');
    }

    /// The `attachments` array.
    pub fn attachments(&mut self, attachments: Vec<AttachmentPlan>) -> serde_json::Result<()> {
        self.key("attachments");
        self.literal.push(b'[');
        for (i, attachment) in attachments.into_iter().enumerate() {
            if i > 0 {
                self.literal.push(b',');
            }
            let info = attachment.info;
            self.literal.extend_from_slice(b"{\"filename\":");
            serde_json::to_writer(&mut self.literal, &info.filename)?;
            self.literal.extend_from_slice(b",\"content_type\":");
            serde_json::to_writer(&mut self.literal, &info.content_type)?;
            self.literal.extend_from_slice(b",\"content\":\"");
            self.flush_literal();
            self.segments
                .push(Segment::Base64(attachment.source, attachment.decoded_len));
            self.literal.extend_from_slice(b"\",\"disposition\":");
            self.literal.extend_from_slice(match info.disposition {
                Disposition::Inline => b"\"inline\"",
                Disposition::Attachment => b"\"attachment\"",
            });
            if let Some(id) = &info.content_id {
                self.literal.extend_from_slice(b",\"content_id\":");
                serde_json::to_writer(&mut self.literal, id)?;
            }
            self.literal.push(b'}');
        }
        self.literal.push(b']');
        Ok(())
    }

    fn flush_literal(&mut self) {
        if !self.literal.is_empty() {
            let literal = std::mem::replace(&mut self.literal, Vec::with_capacity(256));
            self.segments.push(Segment::Literal(literal));
        }
    }

    /// The finished body over `message`, whose parts the segments name.
    pub fn finish(mut self, message: Message<'static>) -> RequestBody {
        self.literal.push(b'}');
        let last = std::mem::take(&mut self.literal);
        self.segments.push(Segment::Literal(last));
        let mut body = RequestBody {
            message,
            segments: self.segments,
            len: 0,
            extra: 0,
            next: 0,
            cursor: None,
            written: 0,
        };
        body.measure();
        body
    }
}

impl RequestBody {
    /// The exact length of the body, in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the body is empty (never: it is at least `{}`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message as received, for the derived Idempotency-Key.
    pub fn raw(&self) -> &[u8] {
        self.message.raw()
    }

    /// What holding this body costs in memory, beyond the received bytes: the parse, the
    /// decoded copies and the literal pieces (the chunk being written is the caller's).
    pub fn extra_cost(&self) -> usize {
        self.extra
    }

    /// Adds a field before the closing brace (the outbox's `relay` object). Only before the
    /// first chunk is read.
    pub fn append_field(&mut self, name: &str, value: &impl Serialize) -> serde_json::Result<()> {
        debug_assert_eq!(self.written, 0, "a field appended after writing began");
        let mut field = format!(",\"{name}\":").into_bytes();
        serde_json::to_writer(&mut field, value)?;
        if let Some(Segment::Literal(last)) = self.segments.last_mut() {
            let brace = last.pop();
            last.extend_from_slice(&field);
            last.extend(brace);
        }
        self.len += field.len();
        self.extra += field.len();
        Ok(())
    }

    /// Computes the exact length and the extra cost of the segments.
    fn measure(&mut self) {
        let mut len = 0;
        let mut extra = super::parse::parse_cost(&self.message);
        for segment in &self.segments {
            len += match segment {
                Segment::Literal(bytes) => {
                    extra += bytes.capacity();
                    bytes.len()
                }
                Segment::Text(BodyText::InMessage(range)) => self
                    .message
                    .raw()
                    .get(range.clone())
                    .map_or(0, json::escaped_len),
                Segment::Text(BodyText::Decoded(text)) => {
                    extra += text.capacity();
                    json::escaped_len(text.as_bytes())
                }
                Segment::Base64(source, decoded) => {
                    if matches!(source, ContentSource::QuotedPrintable(_)) {
                        extra += decoded;
                    }
                    base64::encoded_len(*decoded)
                }
            };
        }
        self.len = len;
        self.extra = extra;
    }

    /// Appends the next chunk of the body to `out`; false once the body is finished.
    pub fn fill(&mut self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        while out.len() - start < CHUNK {
            let Some(segment) = self.segments.get(self.next) else {
                break;
            };
            let cursor = self.cursor.get_or_insert_with(|| match segment {
                Segment::Literal(_) => Cursor::Literal { pos: 0 },
                Segment::Text(_) => Cursor::Text {
                    pos: 0,
                    lines: LineState::default(),
                },
                Segment::Base64(ContentSource::Base64(_), _) => {
                    Cursor::Transcode(Transcoder::default())
                }
                Segment::Base64(..) => Cursor::Encode {
                    encoder: Encoder::default(),
                    decoded: None,
                },
            });
            let done = step(&self.message, segment, cursor, out, CHUNK);
            if done {
                self.cursor = None;
                self.next += 1;
            }
        }
        self.written += out.len() - start;
        out.len() > start
    }

    /// The next chunk, or `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        // A small body is one chunk of its exact size; a chunk may overshoot by a step.
        let left = self.len.saturating_sub(self.written);
        let mut out = Vec::with_capacity(left.min(CHUNK + CHUNK / 4));
        self.fill(&mut out).then(|| Bytes::from(out))
    }

    /// Writes the whole body to `w`.
    pub fn write_to(mut self, mut w: impl Write) -> io::Result<()> {
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 4);
        while self.fill(&mut out) {
            w.write_all(&out)?;
            out.clear();
        }
        if self.written != self.len {
            return Err(io::Error::other(format!(
                "request body is {} bytes, {} were announced",
                self.written, self.len
            )));
        }
        Ok(())
    }

    /// The whole body in memory (tests and small tools).
    pub fn into_vec(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        // Writing into a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

/// Advances `cursor` inside `segment` by about `room` bytes of output; true when done.
fn step(
    message: &Message<'static>,
    segment: &Segment,
    cursor: &mut Cursor,
    out: &mut Vec<u8>,
    room: usize,
) -> bool {
    match (segment, cursor) {
        (Segment::Literal(bytes), Cursor::Literal { pos }) => {
            let end = (*pos + room).min(bytes.len());
            out.extend_from_slice(&bytes[*pos..end]);
            *pos = end;
            *pos >= bytes.len()
        }
        (Segment::Text(text), Cursor::Text { pos, lines }) => {
            let bytes = match text {
                BodyText::InMessage(range) => message.raw().get(range.clone()).unwrap_or_default(),
                BodyText::Decoded(text) => text.as_bytes(),
            };
            // Input steps end on a character boundary so the escaper sees whole characters
            // (it copies bytes above 0x7f as they are, so any cut is safe; this keeps chunks
            // valid UTF-8 for a reader that checks them one by one).
            let mut end = (*pos + room / 2).min(bytes.len());
            while end < bytes.len() && (bytes[end] & 0xc0) == 0x80 {
                end += 1;
            }
            json::escape_text(&bytes[*pos..end], lines, out);
            *pos = end;
            if *pos >= bytes.len() {
                json::finish_text(lines, out);
                return true;
            }
            false
        }
        (Segment::Base64(ContentSource::Base64(id), _), Cursor::Transcode(transcoder)) => {
            let input = message.part(*id).map(|p| p.raw_body()).unwrap_or_default();
            transcoder.step(input, out)
        }
        (Segment::Base64(source, _), Cursor::Encode { encoder, decoded }) => match *source {
            ContentSource::Raw(id) => {
                let input = message.part(id).map(|p| p.raw_body()).unwrap_or_default();
                encoder.step(input, out)
            }
            ContentSource::QuotedPrintable(id) => {
                let bytes = decoded.get_or_insert_with(|| {
                    message.part(id).map_or_else(Vec::new, |p| {
                        let mut bytes = Vec::with_capacity(p.decoded_len());
                        Encoding::QuotedPrintable.decode_append(p.raw_body(), &mut bytes);
                        bytes
                    })
                });
                let done = encoder.step(bytes, out);
                if done {
                    *decoded = None;
                }
                done
            }
            ContentSource::Base64(_) => true,
        },
        // A cursor always matches its segment (it is made from it).
        _ => true,
    }
}

/// The body as an HTTP request body with an exact length (hyper sends `Content-Length`).
impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        Poll::Ready(
            body.next_chunk()
                .map(|chunk| Ok(http_body::Frame::data(chunk))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.segments.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact((self.len - self.written.min(self.len)) as u64)
    }
}
