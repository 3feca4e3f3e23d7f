//! Makes nested messages opaque to mail-parser, so that it never parses them.
//!
//! mail-parser parses a `message/rfc822` or `message/global` part as a nested message, and so
//! the children of a `multipart/digest`, which default to `message/rfc822`. When the part is
//! base64 or quoted-printable it decodes it and parses the decoded bytes, three levels deep
//! (`MAX_NESTED_ENCODED`): parts that no scan of the raw bytes can see or count, copied with
//! `into_owned`. A 7bit nested message also needs no boundary to start a part (MIME-02), has a
//! known index panic when corrupt (mail-parser issue #120), and gets the whole outer message as
//! its `raw_message`. The relay needs none of it: a nested message is forwarded as one
//! attachment of its own bytes (mapping.md).
//!
//! mail-parser 0.11.9 takes no custom header parser, so the only way to stop it is in the
//! bytes it reads. Its Content-Type parser keeps a subtype as one contiguous token, so a part
//! is a nested message only if `rfc822` or `global` (or `digest`, for the default) occurs
//! literally, after a `/` that may be separated from it by blanks, quotes, backslashes,
//! folding or a comment, after `message` (or `multipart`). Every such occurrence gets its last
//! letter replaced by `_` in a copy of the message — the same length, so every offset stays
//! valid — and mail-parser sees `message/rfc82_`: a plain binary part, decoded, not parsed.
//! The copy is made only when such an occurrence exists. Values read from bytes that were
//! changed are read again from the original ([`super::tree::Tree::touched`]); this module does
//! not do that, it only says where it changed bytes.

use aho_corasick::AhoCorasick;

/// A copy of the message with nested-message types defused, and where it differs.
pub(super) struct Neutralized {
    /// The bytes mail-parser parses instead of the original.
    pub bytes: Vec<u8>,
    /// Sorted offsets of the changed bytes.
    pub changed: Vec<usize>,
}

/// The defused copy of `raw`, or `None` when `raw` declares no nested message.
pub(super) fn neutralize(raw: &[u8]) -> Option<Neutralized> {
    let finder = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["rfc822", "global", "digest"])
        .ok()?;
    let changed: Vec<usize> = finder
        .find_iter(raw)
        .filter(|found| is_subtype_position(raw, found.start()))
        .map(|found| found.end() - 1)
        .collect();
    if changed.is_empty() {
        return None;
    }
    let mut bytes = raw.to_vec();
    for &at in &changed {
        bytes[at] = b'_';
    }
    Some(Neutralized { bytes, changed })
}

/// Whether the word at `start` may be the subtype of a `message/...` or `multipart/...` type.
/// Errs towards yes: a comment anywhere in between is taken as a match.
fn is_subtype_position(raw: &[u8], start: usize) -> bool {
    let before_word = skip_back(raw, start);
    match before_word.checked_sub(1).map(|i| raw[i]) {
        Some(b')') => true,
        Some(b'/') => {
            let before_slash = skip_back(raw, before_word - 1);
            let head = &raw[..before_slash];
            head.ends_with(b")")
                || ends_with_ci(head, b"message")
                || ends_with_ci(head, b"multipart")
        }
        _ => false,
    }
}

/// The offset before which `raw[..end]` ends in none of the bytes mail-parser skips inside
/// a type (blanks, CR, LF of a fold, quotes, backslashes).
fn skip_back(raw: &[u8], mut end: usize) -> usize {
    while end > 0 && matches!(raw[end - 1], b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\\') {
        end -= 1;
    }
    end
}

fn ends_with_ci(head: &[u8], word: &[u8]) -> bool {
    head.len() >= word.len() && head[head.len() - word.len()..].eq_ignore_ascii_case(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, PartType};

    fn changed(raw: &str) -> Vec<usize> {
        neutralize(raw.as_bytes())
            .map(|n| n.changed)
            .unwrap_or_default()
    }

    #[test]
    fn nested_message_types_are_found_in_all_spellings() {
        for raw in [
            "Content-Type: message/rfc822\r\n",
            "Content-Type: Message/RFC822; x=y\r\n",
            "Content-Type: message / rfc822\r\n",
            "Content-Type: message/\r\n rfc822\r\n",
            "Content-Type: \"message\"/\"rfc822\"\r\n",
            "Content-Type: message(c)/(d)rfc822\r\n",
            "Content-Type: message/global\r\n",
            "Content-Type: multipart/digest; boundary=x\r\n",
        ] {
            assert_eq!(changed(raw).len(), 1, "for {raw:?}");
        }
    }

    #[test]
    fn ordinary_words_are_left_alone() {
        for raw in [
            "Subject: Global news digest\r\n\r\nSee https://example.com/global/digest\r\n",
            "Content-Type: text/plain\r\n\r\nRFC822 is old.\r\n",
        ] {
            assert!(neutralize(raw.as_bytes()).is_none(), "for {raw:?}");
        }
    }

    #[test]
    fn mail_parser_no_longer_parses_the_nested_message() {
        let raw = concat!(
            "Content-Type: multipart/mixed; boundary=o\r\n\r\n",
            "--o\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            "U3ViamVjdDogaW5uZXINCg0KYm9keQ0K\r\n",
            "--o--\r\n"
        );
        let original = MessageParser::default().parse(raw).unwrap();
        assert!(matches!(original.parts[1].body, PartType::Message(_)));

        let defused = neutralize(raw.as_bytes()).unwrap();
        let parsed = MessageParser::default().parse(&defused.bytes).unwrap();
        match &parsed.parts[1].body {
            PartType::Binary(bytes) => assert_eq!(&bytes[..], b"Subject: inner\r\n\r\nbody\r\n"),
            other => panic!("expected an opaque part, got {other:?}"),
        }
        assert_eq!(defused.bytes.len(), raw.len());
    }

    #[test]
    fn mime_02_deep_nested_messages_become_one_opaque_part() {
        // 1 000 levels of 7bit message/rfc822: without defusing, one part per level.
        let mut raw = Vec::new();
        for level in 0..1000 {
            raw.extend_from_slice(format!("Subject: level {level}\r\n").as_bytes());
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: innermost\r\n\r\nbody\r\n");
        let undefended = MessageParser::default().parse(&raw).unwrap();
        let mut levels = 0;
        let mut message = &undefended;
        while let PartType::Message(nested) = &message.parts[0].body {
            levels += 1;
            message = nested;
        }
        assert_eq!(levels, 1000);
        let defused = neutralize(&raw).unwrap();
        assert_eq!(defused.changed.len(), 1000);
        let parsed = MessageParser::default().parse(&defused.bytes).unwrap();
        assert_eq!(parsed.parts.len(), 1);
        assert!(matches!(parsed.parts[0].body, PartType::Binary(_)));
    }

    #[test]
    fn parts_hidden_in_base64_nested_messages_are_never_parsed() {
        // A base64 message/rfc822 whose decoded bytes are MIME-03 in miniature: 20 000 empty
        // parts no scan of the raw bytes can see.
        let mut inner = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n".to_vec();
        inner.extend(b"--a\r\n\r\n".repeat(20_000));
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&inner);
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
             Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {encoded}\r\n--o--\r\n"
        );
        let undefended = MessageParser::default().parse(&raw).unwrap();
        match &undefended.parts[1].body {
            PartType::Message(nested) => assert!(nested.parts.len() > 20_000),
            other => panic!("mail-parser should parse the nested message: {other:?}"),
        }
        let defused = neutralize(raw.as_bytes()).unwrap();
        let parsed = MessageParser::default().parse(&defused.bytes).unwrap();
        assert_eq!(parsed.parts.len(), 2);
        match &parsed.parts[1].body {
            PartType::Binary(bytes) => assert_eq!(&bytes[..], &inner[..]),
            other => panic!("expected an opaque part, got {other:?}"),
        }
    }
}
