//! `from`, `to`, `cc`, `reply_to` and `bcc` (docs/mapping.md), from the top-level header fields
//! as parsed by mail-parser (display names RFC 2047-decoded) and the envelope.
//!
//! Rules: `From:` must be one mailbox — absent means the envelope sender, and the null sender
//! then has nobody to send as; a group, several mailboxes, no address or a second `From:`
//! field (RFC 5322 §3.6: at most one) are refused. `To:`, `Cc:` and `Reply-To:` fields are
//! merged in message order, groups flattened, entries without an address dropped. `bcc` is
//! every envelope recipient that `To:` and `Cc:` do not show, compared case-insensitively on
//! the whole address, in envelope order; a `Bcc:` field is never read. Addresses are kept as
//! written; names and addresses lose any CR or LF an encoded word decoded to (DATA-14).

use std::borrow::Cow;

use mail_parser::{AddressList, HeaderName, Headers};
use serde::Serialize;

use super::MappingError;
use super::headers::strip_line_breaks;
use crate::smtp::Envelope;

/// One address with its optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox<'a> {
    pub email: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
}

/// The address fields of the request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Addresses<'a> {
    pub from: Mailbox<'a>,
    pub to: Vec<Mailbox<'a>>,
    pub cc: Vec<Mailbox<'a>>,
    pub reply_to: Vec<Mailbox<'a>>,
    pub bcc: Vec<Mailbox<'a>>,
}

/// Maps the top-level `headers` (From/To/Cc/Reply-To parsed as addresses).
pub(super) fn map<'a>(
    headers: &Headers<'a>,
    envelope: &'a Envelope,
) -> Result<Addresses<'a>, MappingError> {
    let from = from(headers, envelope)?;
    let to = mailboxes(headers, HeaderName::To);
    let cc = mailboxes(headers, HeaderName::Cc);
    let reply_to = mailboxes(headers, HeaderName::ReplyTo);
    // Case-insensitive on the whole address (Unicode lowercase, for SMTPUTF8 addresses),
    // compared in place: a few header addresses against at most the recipient limit.
    let same = |a: &str, b: &str| {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    };
    let bcc = envelope
        .rcpt_to
        .iter()
        .filter(|rcpt| !to.iter().chain(&cc).any(|m| same(&m.email, rcpt)))
        .map(|rcpt| Mailbox {
            email: Cow::Borrowed(rcpt.as_str()),
            name: None,
        })
        .collect();
    Ok(Addresses {
        from,
        to,
        cc,
        reply_to,
        bcc,
    })
}

fn from<'a>(headers: &Headers<'a>, envelope: &'a Envelope) -> Result<Mailbox<'a>, MappingError> {
    let mut fields = headers.all(HeaderName::From);
    let Some(field) = fields.next() else {
        if envelope.mail_from.is_empty() {
            return Err(MappingError::NoSender);
        }
        return Ok(Mailbox {
            email: Cow::Borrowed(envelope.mail_from.as_str()),
            name: None,
        });
    };
    if fields.next().is_some() {
        return Err(MappingError::DuplicateHeader("From"));
    }
    let Some(list) = field.value().as_address() else {
        return Err(MappingError::FromNoAddress);
    };
    if list.has_groups() {
        return Err(MappingError::FromGroup);
    }
    let all: Vec<_> = list.mailboxes().collect();
    match all.as_slice() {
        [one] => mailbox(one.name(), one.address()).ok_or(MappingError::FromNoAddress),
        [] => Err(MappingError::FromNoAddress),
        several => Err(MappingError::FromSeveralMailboxes(several.len())),
    }
}

/// Every mailbox of every `name` field, in order, groups flattened.
fn mailboxes<'a>(headers: &Headers<'a>, name: HeaderName<'_>) -> Vec<Mailbox<'a>> {
    let mut out = Vec::new();
    for field in headers.all(name) {
        if let Some(list) = field.value().as_address() {
            out.extend(flatten(list));
        }
    }
    out
}

fn flatten(list: AddressList<'_>) -> impl Iterator<Item = Mailbox<'_>> {
    list.mailboxes()
        .filter_map(|m| mailbox(m.name(), m.address()))
}

/// The mailbox of one parsed address, or `None` when it has no address.
fn mailbox<'a>(name: Option<&'a str>, address: Option<&'a str>) -> Option<Mailbox<'a>> {
    let email = strip_line_breaks(address?.trim());
    if email.is_empty() {
        return None;
    }
    let name = name
        .map(|n| strip_line_breaks(n.trim()))
        .filter(|n| !n.is_empty());
    Some(Mailbox { email, name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn envelope(from: &str, rcpt: &[&str]) -> Envelope {
        Envelope {
            mail_from: from.into(),
            rcpt_to: rcpt.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn with<T>(
        raw: &str,
        env: &Envelope,
        check: impl FnOnce(Result<Addresses<'_>, MappingError>) -> T,
    ) -> T {
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        check(map(&message.root().headers(), env))
    }

    fn mb(email: &str, name: Option<&str>) -> Mailbox<'static> {
        Mailbox {
            email: Cow::Owned(email.into()),
            name: name.map(|n| Cow::Owned(n.into())),
        }
    }

    #[test]
    fn from_rules() {
        let env = envelope("bounce@acme.com", &["a@x.com"]);
        with(
            "From: \"Acme Billing\" <billing@acme.com>\r\n\r\n",
            &env,
            |r| {
                assert_eq!(
                    r.unwrap().from,
                    mb("billing@acme.com", Some("Acme Billing"))
                );
            },
        );
        with("Subject: s\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap().from, mb("bounce@acme.com", None));
        });
        with("Subject: s\r\n\r\n", &envelope("", &[]), |r| {
            assert_eq!(r.unwrap_err(), MappingError::NoSender);
        });
        with("From: a@x.com, b@x.com\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap_err(), MappingError::FromSeveralMailboxes(2));
        });
        with("From: Team: a@x.com, b@x.com;\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap_err(), MappingError::FromGroup);
        });
        with("From: Jane\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap_err(), MappingError::FromNoAddress);
        });
        with("From: <>\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap_err(), MappingError::FromNoAddress);
        });
        with("From: a@x.com\r\nFrom: b@x.com\r\n\r\n", &env, |r| {
            assert_eq!(r.unwrap_err(), MappingError::DuplicateHeader("From"));
        });
    }

    #[test]
    fn recipients_merge_and_bcc_is_what_the_headers_do_not_show() {
        let env = envelope(
            "s@acme.com",
            &["Jane@Example.com", "ops@acme.com", "audit@acme.com"],
        );
        let raw = "From: s@acme.com\r\nTo: Jane Doe <jane@example.com>\r\nTo: Team: x@y.com;\r\n\
                   Cc: ops@acme.com\r\nBcc: audit@acme.com\r\nReply-To: =?utf-8?q?Ren=C3=A9?= <r@acme.com>\r\n\r\n";
        with(raw, &env, |r| {
            let a = r.unwrap();
            assert_eq!(
                a.to,
                vec![
                    mb("jane@example.com", Some("Jane Doe")),
                    mb("x@y.com", None)
                ]
            );
            assert_eq!(a.cc, vec![mb("ops@acme.com", None)]);
            assert_eq!(a.reply_to, vec![mb("r@acme.com", Some("René"))]);
            assert_eq!(a.bcc, vec![mb("audit@acme.com", None)]);
        });
    }

    #[test]
    fn decoded_line_breaks_never_reach_a_name() {
        let env = envelope("s@acme.com", &[]);
        let raw = "From: =?utf-8?b?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?= <a@x.com>\r\n\r\n";
        with(raw, &env, |r| {
            assert_eq!(
                r.unwrap().from,
                mb("a@x.com", Some("HelloBcc: victim@example.com"))
            );
        });
    }
}
