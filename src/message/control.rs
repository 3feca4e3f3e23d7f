//! The SendPigeon control fields: `X-SP-Track-Opens`, `X-SP-Track-Clicks` (→ `tracking`) and
//! `X-SP-Idempotency-Key` (→ `idempotency_key`). They are consumed here and never forwarded
//! ([`super::headers::CONTROL_FIELDS`]).
//!
//! Names match in any case (Nodemailer sends `X-Sp-Track-Opens`, docs/mapping.md "What
//! clients send"). Values are read as written and unfolded, without RFC 2047 decoding: they
//! are protocol tokens, not text. A field given twice with the same value is accepted; with
//! two different values it is refused like an invalid value, because there is no right one
//! to pick.
//!
//! Also the message's own identity ([`has_identity`]): whether a resend of the same bytes is a
//! retry (docs/upstream.md, Idempotency-Key).

use std::borrow::Cow;

use mail_parser::{HeaderName, Headers};
use serde::Serialize;

use super::MappingError;
use super::headers::{raw_value, spelled_name};

/// `tracking`: `null` when the message does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub opens: Option<bool>,
    pub clicks: Option<bool>,
}

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The canonical spellings, used in replies.
const TRACK_OPENS: &str = "X-SP-Track-Opens";
const TRACK_CLICKS: &str = "X-SP-Track-Clicks";

/// `tracking` from the top-level `headers`: each flag `true`, `false` (any case, blanks
/// around ignored) or `None` when absent.
pub(super) fn tracking(headers: &Headers<'_>) -> Result<Tracking, MappingError> {
    Ok(Tracking {
        opens: flag(headers, TRACK_OPENS)?,
        clicks: flag(headers, TRACK_CLICKS)?,
    })
}

fn flag(headers: &Headers<'_>, canonical: &'static str) -> Result<Option<bool>, MappingError> {
    let mut seen: Option<(bool, Cow<'_, str>)> = None;
    for value in values(headers, canonical) {
        let parsed = if value.eq_ignore_ascii_case("true") {
            true
        } else if value.eq_ignore_ascii_case("false") {
            false
        } else {
            return Err(MappingError::InvalidTracking {
                header: canonical,
                value: value.into_owned(),
            });
        };
        match &seen {
            Some((earlier, first)) if *earlier != parsed => {
                return Err(MappingError::InvalidTracking {
                    header: canonical,
                    value: format!("{first}, {value}"),
                });
            }
            Some(_) => {}
            None => seen = Some((parsed, value)),
        }
    }
    Ok(seen.map(|(flag, _)| flag))
}

/// The `X-SP-Idempotency-Key` value: 1 to 256 printable ASCII characters after trimming.
pub(super) fn idempotency_key(headers: &Headers<'_>) -> Result<Option<String>, MappingError> {
    let mut key: Option<Cow<'_, str>> = None;
    for value in values(headers, "X-SP-Idempotency-Key") {
        let valid = (1..=MAX_IDEMPOTENCY_KEY).contains(&value.len())
            && value.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if !valid || key.as_ref().is_some_and(|k| *k != value) {
            return Err(MappingError::InvalidIdempotencyKey);
        }
        key = Some(value);
    }
    Ok(key.map(Cow::into_owned))
}

/// The trimmed values of every field named `canonical` (any case), in order.
fn values<'a>(headers: &Headers<'a>, canonical: &'a str) -> impl Iterator<Item = Cow<'a, str>> {
    headers
        .iter()
        .filter(move |h| spelled_name(h).is_some_and(|n| n.eq_ignore_ascii_case(canonical)))
        .map(|h| match raw_value(&h) {
            Cow::Borrowed(v) => Cow::Borrowed(v.trim_matches([' ', '\t'])),
            Cow::Owned(v) => Cow::Owned(v.trim_matches([' ', '\t']).to_owned()),
        })
}

/// Whether the message carries its own identity: a non-empty `Message-ID` or `Date` field in
/// the top-level header section, read from the parsed header (never by searching the bytes).
/// Only then does a resend of the same bytes count as a retry of the same message; without
/// either, two identical alerts are two messages.
pub(super) fn has_identity(headers: &Headers<'_>) -> bool {
    [HeaderName::MessageId, HeaderName::Date]
        .into_iter()
        .any(|name| {
            headers
                .all(name)
                .any(|h| !raw_value(&h).trim_matches([' ', '\t']).is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn track(raw: &str) -> Result<Tracking, MappingError> {
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        tracking(&message.root().headers())
    }

    fn key(raw: &str) -> Result<Option<String>, MappingError> {
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        idempotency_key(&message.root().headers())
    }

    fn identity(raw: &str) -> bool {
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        has_identity(&message.root().headers())
    }

    #[test]
    fn identity_is_a_non_empty_message_id_or_date() {
        assert!(identity("Message-ID: <a@b>\r\nSubject: s\r\n\r\nbody"));
        assert!(identity(
            "Date: Fri, 27 Nov 2026 09:30:00 +0000\r\n\r\nbody"
        ));
        assert!(identity("message-id:\r\n <folded@b>\r\n\r\nbody"));
        assert!(!identity("Subject: alert\r\n\r\nbody"));
        assert!(!identity("Message-ID:  \r\nDate:\r\n\r\nbody"));
        // Only the top-level header counts, never the text of a body.
        assert!(!identity(
            "Subject: s\r\nContent-Type: text/plain\r\n\r\nMessage-ID: <x@y>\r\nDate: today\r\n"
        ));
    }

    #[test]
    fn tracking_values() {
        assert_eq!(track("Subject: s\r\n\r\n"), Ok(Tracking::default()));
        assert_eq!(
            track("X-Sp-Track-Opens:  TRUE \r\nx-sp-track-clicks: false\r\n\r\n"),
            Ok(Tracking {
                opens: Some(true),
                clicks: Some(false)
            })
        );
        assert_eq!(
            track("X-SP-Track-Opens: true\r\nX-SP-TRACK-OPENS: True\r\n\r\n"),
            Ok(Tracking {
                opens: Some(true),
                clicks: None
            })
        );
    }

    #[test]
    fn invalid_and_conflicting_values_are_refused() {
        let err = track("X-SP-Track-Opens: maybe\r\n\r\n").unwrap_err();
        assert_eq!(
            err.reply().to_string(),
            "554 5.6.0 Invalid X-SP-Track-Opens value \"maybe\": expected true or false"
        );
        let err = track("x-sp-track-clicks: true\r\nX-SP-Track-Clicks: false\r\n\r\n").unwrap_err();
        assert_eq!(
            err.reply().to_string(),
            "554 5.6.0 Invalid X-SP-Track-Clicks value \"true, false\": expected true or false"
        );
        let err = track("X-SP-Track-Opens: \r\n\r\n").unwrap_err();
        assert_eq!(
            err.reply().to_string(),
            "554 5.6.0 Invalid X-SP-Track-Opens value \"\": expected true or false"
        );
    }

    #[test]
    fn idempotency_key_rules() {
        assert_eq!(key("Subject: s\r\n\r\n"), Ok(None));
        assert_eq!(
            key("X-SP-Idempotency-Key:  order-42 \r\n\r\n"),
            Ok(Some("order-42".into()))
        );
        assert_eq!(
            key("x-sp-idempotency-key: a\r\nX-SP-Idempotency-Key: a\r\n\r\n"),
            Ok(Some("a".into()))
        );
        let long = format!("X-SP-Idempotency-Key: {}\r\n\r\n", "k".repeat(257));
        for raw in [
            "X-SP-Idempotency-Key: \r\n\r\n",
            "X-SP-Idempotency-Key: caf\u{e9}\r\n\r\n",
            "X-SP-Idempotency-Key: a\r\nX-SP-Idempotency-Key: b\r\n\r\n",
            long.as_str(),
        ] {
            assert_eq!(
                key(raw),
                Err(MappingError::InvalidIdempotencyKey),
                "for {raw:?}"
            );
        }
        let max = format!("X-SP-Idempotency-Key: {}\r\n\r\n", "k".repeat(256));
        assert_eq!(key(&max).unwrap().unwrap().len(), 256);
    }
}
