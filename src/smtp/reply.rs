//! The one catalogue of SMTP replies: code, enhanced status code (RFC 3463) and text.
//!
//! Every reply the relay can send is built here, so the wire text of each situation lives in
//! one place and the tests can pin it. Replies whose text carries outside input (an upstream
//! error message, a queue id, a parameter the client sent) go through [`Reply::dynamic`],
//! which reduces the text to one printable ASCII line of bounded length: no CR or LF from a
//! client or from the REST API ever reaches the wire (adversarial catalogue DATA-17, LIM-09).

use std::borrow::Cow;

/// The longest text we put on one reply line. RFC 5321 §4.5.3.1.5 caps a reply line at 512
/// octets including the code and CRLF; this leaves room for both.
pub const MAX_TEXT: usize = 400;

/// One single-line SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    status: Option<&'static str>,
    text: Cow<'static, str>,
}

impl Reply {
    /// A reply whose text is a constant of this catalogue.
    pub const fn fixed(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: Cow::Borrowed(text),
        }
    }

    /// A reply whose text includes outside input; the text is made safe (see module doc).
    pub fn dynamic(code: u16, status: &'static str, text: impl AsRef<str>) -> Reply {
        Reply {
            code,
            status: Some(status),
            text: Cow::Owned(sanitize(text.as_ref(), MAX_TEXT)),
        }
    }

    /// A reply without an enhanced status code (the greeting, RFC 2034 §3).
    pub fn plain(code: u16, text: impl AsRef<str>) -> Reply {
        Reply {
            code,
            status: None,
            text: Cow::Owned(sanitize(text.as_ref(), MAX_TEXT)),
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code, e.g. `5.3.4`.
    pub fn status(&self) -> Option<&'static str> {
        self.status
    }

    /// The human-readable text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 4xx: the client may try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_line(out, ' ');
    }

    /// The reply as one CRLF-terminated line, for writing it straight to a socket.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::new();
        self.write_to(&mut line);
        line
    }

    /// Appends the reply as a continuation line (`250-...`) of a multi-line reply.
    pub fn write_continued(&self, out: &mut Vec<u8>) {
        self.write_line(out, '-');
    }

    fn write_line(&self, out: &mut Vec<u8>, sep: char) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{}{}", self.code, sep);
        if let Some(status) = self.status {
            out.extend_from_slice(status.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} {} {}", self.code, status, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Reduces `text` to printable ASCII on one line: control characters (CR, LF, NUL, ...) and
/// runs of whitespace become one space, other non-ASCII characters become `?`, and the result
/// is cut to `max` bytes with `...` marking the cut.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_control() || ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(if ch.is_ascii() { ch } else { '?' });
        if out.len() >= max {
            out.truncate(max.saturating_sub(3));
            out.push_str("...");
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The catalogue. Grouped by the command or situation that produces them.
// ---------------------------------------------------------------------------------------------

/// `250 2.0.0 OK` for NOOP and RSET.
pub const OK: Reply = Reply::fixed(250, "2.0.0", "OK");
/// MAIL accepted.
pub const SENDER_OK: Reply = Reply::fixed(250, "2.1.0", "Sender OK");
/// RCPT accepted.
pub const RECIPIENT_OK: Reply = Reply::fixed(250, "2.1.5", "Recipient OK");
/// QUIT.
pub const BYE: Reply = Reply::fixed(221, "2.0.0", "Bye");
/// VRFY never confirms an address (RFC 5321 §3.5.3, no enumeration).
pub const VRFY: Reply = Reply::fixed(252, "2.5.0", "Cannot VRFY user, but will accept message");
/// HELP, without any version string.
pub const HELP: Reply = Reply::fixed(
    214,
    "2.0.0",
    "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
);

/// RFC 3207 §4: the go-ahead, flushed before the handshake.
pub const STARTTLS_READY: Reply = Reply::fixed(220, "2.0.0", "Ready to start TLS");
/// RFC 3207 §4: STARTTLS takes no parameters.
pub const STARTTLS_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: STARTTLS");
/// A second TLS layer is never allowed.
pub const TLS_ALREADY_ACTIVE: Reply = Reply::fixed(503, "5.5.1", "TLS already active");
/// Anything but EHLO, HELO, STARTTLS, NOOP, RSET, HELP or QUIT before TLS on a STARTTLS port.
pub const MUST_STARTTLS: Reply = Reply::fixed(530, "5.7.0", "Must issue a STARTTLS command first");

/// AUTH succeeded.
pub const AUTH_OK: Reply = Reply::fixed(235, "2.7.0", "Authentication successful");
/// The key store or the API could not answer (RFC 4954 §6).
pub const AUTH_TEMPORARY: Reply = Reply::fixed(454, "4.7.0", "Temporary authentication failure");
/// `*` at a 334 prompt (RFC 4954 §4: MUST be 501).
pub const AUTH_ABORTED: Reply = Reply::fixed(501, "5.7.0", "Authentication aborted");
/// Undecodable base64 in an AUTH response (RFC 4954 §4: 501).
pub const AUTH_BAD_BASE64: Reply = Reply::fixed(
    501,
    "5.5.2",
    "Cannot decode the authentication response (base64)",
);
/// A PLAIN message that is not `authzid NUL authcid NUL passwd` (RFC 4616 §2).
pub const AUTH_MALFORMED_PLAIN: Reply =
    Reply::fixed(501, "5.5.2", "Malformed PLAIN authentication message");
/// `AUTH` without a mechanism.
pub const AUTH_SYNTAX: Reply =
    Reply::fixed(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
/// A mechanism we do not offer (RFC 4954 §4: 504).
pub const AUTH_UNKNOWN_MECHANISM: Reply = Reply::fixed(
    504,
    "5.5.4",
    "Unrecognized authentication type; use PLAIN or LOGIN",
);
/// AUTH after a successful AUTH (also after RSET).
pub const AUTH_ALREADY: Reply = Reply::fixed(503, "5.5.1", "Already authenticated");
/// AUTH inside a mail transaction (RFC 4954 §4).
pub const AUTH_IN_TRANSACTION: Reply =
    Reply::fixed(503, "5.5.1", "AUTH not allowed during a mail transaction");
/// An AUTH response line over the AUTH line limit.
pub const AUTH_LINE_TOO_LONG: Reply =
    Reply::fixed(500, "5.5.6", "Authentication exchange line is too long");
/// The per-session failure limit was reached; the connection closes.
pub const AUTH_TOO_MANY_FAILURES: Reply =
    Reply::fixed(421, "4.7.0", "Too many authentication failures");
/// MAIL before a successful AUTH (RFC 4954 §6); RCPT and DATA then have no transaction.
pub const AUTH_REQUIRED: Reply = Reply::fixed(530, "5.7.0", "Authentication required");

/// Wrong username or key: one text whichever part was wrong (adversarial AUTH-09), with the
/// hint users most often need.
pub fn auth_invalid(username: &str) -> Reply {
    Reply::dynamic(
        535,
        "5.7.8",
        format!(
            "Authentication credentials invalid (username must be \"{username}\", password an API key)"
        ),
    )
}

/// MAIL or AUTH before EHLO/HELO (also after STARTTLS, RFC 3207 §4.2).
pub const HELO_FIRST: Reply = Reply::fixed(503, "5.5.1", "Send EHLO or HELO first");
/// `EHLO` without a usable argument.
pub const EHLO_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: EHLO hostname");
/// `HELO` without a usable argument.
pub const HELO_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: HELO hostname");

/// A second MAIL inside a transaction.
pub const NESTED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Nested MAIL command");
/// MAIL without `FROM:` and a path.
pub const MAIL_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: MAIL FROM:<address>");
/// The reverse-path is not a valid address.
pub const BAD_SENDER: Reply = Reply::fixed(501, "5.1.7", "Bad sender address syntax");
/// RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets.
pub const SENDER_TOO_LONG: Reply = Reply::fixed(501, "5.1.7", "Sender address too long");
/// A sender at an address literal such as `[127.0.0.1]`.
pub const SENDER_LITERAL: Reply = Reply::fixed(
    550,
    "5.1.8",
    "Address literals are not accepted as sender domain",
);
/// RFC 6531 §3.4: a non-ASCII address needs the SMTPUTF8 parameter.
pub const NEED_SMTPUTF8: Reply = Reply::fixed(
    553,
    "5.6.7",
    "Must declare SMTPUTF8 to send unicode addresses",
);
/// RFC 1870 §6: declared or actual size over the limit.
pub const MESSAGE_TOO_BIG: Reply = Reply::fixed(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size",
);
/// `SIZE=` that is not a plain decimal number.
pub const BAD_SIZE: Reply = Reply::fixed(501, "5.5.4", "Bad message size syntax");
/// `BODY=` with a value that is not 7BIT, 8BITMIME or BINARYMIME.
pub const BAD_BODY: Reply = Reply::fixed(501, "5.5.4", "Bad BODY value: use 7BIT or 8BITMIME");
/// `BODY=BINARYMIME` needs CHUNKING, which we do not offer (RFC 3030).
pub const BINARYMIME_UNSUPPORTED: Reply =
    Reply::fixed(555, "5.5.4", "BODY=BINARYMIME is not supported");
/// `AUTH=` whose value is not xtext (RFC 4954 §5).
pub const BAD_AUTH_PARAM: Reply = Reply::fixed(501, "5.5.4", "Malformed AUTH parameter value");
/// The same MAIL parameter given twice.
pub const DUPLICATE_PARAM: Reply = Reply::fixed(501, "5.5.4", "Duplicate parameter");

/// RFC 5321 §4.1.1.11: 555 for a parameter we do not recognise.
pub fn unsupported_param(param: &str) -> Reply {
    Reply::dynamic(
        555,
        "5.5.4",
        format!("Unsupported parameter: {}", sanitize(param, 64)),
    )
}

/// RCPT before MAIL, or DATA without MAIL.
pub const NEED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Need MAIL command");
/// RCPT without `TO:` and a path.
pub const RCPT_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: RCPT TO:<address>");
/// The forward-path is not a valid address.
pub const BAD_RECIPIENT: Reply = Reply::fixed(501, "5.1.3", "Bad recipient address syntax");
/// RFC 5321 §4.5.3.1 length limits for a recipient.
pub const RECIPIENT_TOO_LONG: Reply = Reply::fixed(501, "5.1.3", "Recipient address too long");
/// A recipient at an address literal.
pub const RECIPIENT_LITERAL: Reply = Reply::fixed(
    550,
    "5.1.2",
    "Address literals are not accepted as recipient domain",
);
/// RFC 5321 §4.5.3.1.10: 452, and the earlier recipients stay valid.
pub const TOO_MANY_RECIPIENTS: Reply = Reply::fixed(452, "4.5.3", "Too many recipients");

/// DATA with MAIL but no RCPT attempted.
pub const NEED_RCPT: Reply = Reply::fixed(503, "5.5.1", "Need RCPT command");
/// DATA when every RCPT was refused (RFC 5321 §4.1.1.4 allows 554).
pub const NO_VALID_RECIPIENTS: Reply = Reply::fixed(554, "5.5.1", "No valid recipients");
/// `DATA` with an argument.
pub const DATA_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: DATA");
/// Bare LF inside DATA under the `reject` policy (Postfix `smtpd_forbid_bare_newline`).
pub const BARE_LF: Reply = Reply::fixed(550, "5.5.2", "Bare <LF> received");
/// Bare CR inside DATA under the `reject` policy.
pub const BARE_CR: Reply = Reply::fixed(550, "5.5.2", "Bare <CR> received");
/// The global budget of message bytes held in memory is spent.
pub const INSUFFICIENT_STORAGE: Reply = Reply::fixed(452, "4.3.1", "Insufficient system storage");
/// The per-connection message limit was reached; the next command closes.
pub const TOO_MANY_MESSAGES: Reply = Reply::fixed(
    452,
    "4.4.5",
    "Too many messages in this session, reconnect to send more",
);
/// Sent at the command after [`TOO_MANY_MESSAGES`], then the connection closes.
pub const TOO_MANY_MESSAGES_CLOSE: Reply = Reply::fixed(
    421,
    "4.4.5",
    "Too many messages in this session, closing connection",
);

/// The upstream accepted the message.
pub fn queued(id: &str) -> Reply {
    Reply::dynamic(250, "2.0.0", format!("OK: queued as {id}"))
}

/// Unknown verb.
pub const UNKNOWN_COMMAND: Reply = Reply::fixed(500, "5.5.2", "Command not recognized");
/// An empty command line.
pub const EMPTY_COMMAND: Reply = Reply::fixed(500, "5.5.2", "Empty command");
/// EXPN, TURN, ETRN, SEND, SOML, SAML: known, never offered.
pub const NOT_IMPLEMENTED: Reply = Reply::fixed(502, "5.5.1", "Command not implemented");
/// A BDAT chunk other than the last was received whole (RFC 3030 §2).
pub fn chunk_received(octets: u64) -> Reply {
    Reply::dynamic(250, "2.0.0", format!("{octets} octets received"))
}
/// BDAT whose size is not 1 to 20 decimal digits, or with words other than `LAST`: the
/// octets that follow cannot be framed, so we close (Postfix `521 5.5.4`).
pub const BDAT_SYNTAX: Reply =
    Reply::fixed(501, "5.5.4", "Syntax: BDAT size [LAST], closing connection");
/// DATA in a transaction that BDAT began (RFC 3030 §3).
pub const DATA_AFTER_BDAT: Reply = Reply::fixed(
    503,
    "5.5.1",
    "DATA cannot be mixed with BDAT in one transaction",
);
/// BDAT while CHUNKING is not offered: its payload follows at once, so we close.
pub const BDAT_UNSUPPORTED: Reply = Reply::fixed(
    521,
    "5.5.1",
    "CHUNKING is not supported, closing connection",
);
/// An HTTP request line on an SMTP port (ALPACA, misdirected health checks).
pub const HTTP_ON_SMTP: Reply =
    Reply::fixed(502, "5.7.0", "This is an SMTP server, not an HTTP server");
/// A command line longer than the limit; the rest of it is skipped.
pub const LINE_TOO_LONG: Reply = Reply::fixed(500, "5.5.2", "Line too long");
/// A command line that is not UTF-8 (adversarial ENV-10).
pub const BAD_UTF8: Reply = Reply::fixed(500, "5.5.2", "Invalid UTF-8 in command");
/// A command line with CR, NUL or other control characters inside (SMUG-15, XPROTO-03).
pub const CONTROL_CHARACTERS: Reply = Reply::fixed(
    501,
    "5.5.2",
    "Control characters are not allowed in commands",
);
/// A command line ended by a bare LF under the `reject` policy; the connection closes.
pub const BARE_LF_COMMAND: Reply = Reply::fixed(550, "5.5.2", "Bare <LF> received");
/// The per-session error limit was reached; the connection closes.
pub const TOO_MANY_ERRORS: Reply = Reply::fixed(421, "4.7.0", "Too many errors");
/// The client talked before the greeting on an `auto` listener (postscreen's pre-greet
/// test, adversarial PIPE-07); the connection closes.
pub const PREGREET: Reply = Reply::fixed(554, "5.5.0", "Pre-greeting traffic");

/// The client was silent past its deadline.
pub fn timeout(hostname: &str) -> Reply {
    Reply::dynamic(421, "4.4.2", format!("{hostname} Error: timeout exceeded"))
}

/// The greeting (no version number).
pub fn greeting(hostname: &str) -> Reply {
    Reply::plain(220, format!("{hostname} ESMTP SendPigeon relay"))
}

/// Draining: idle sessions and new connections get this, then close.
pub const SHUTTING_DOWN: Reply = Reply::fixed(421, "4.3.2", "Service shutting down");
/// Too many connections on this replica.
pub const TOO_BUSY: Reply = Reply::fixed(421, "4.4.5", "Too busy, try again later");
/// A panic or an unexpected failure while handling a message: the session survives.
pub const INTERNAL_ERROR: Reply = Reply::fixed(451, "4.3.0", "Internal error, try again later");
/// A session task failed (a bug): that client gets this, others are untouched (RES-09).
pub const INTERNAL_FAILURE: Reply =
    Reply::fixed(421, "4.3.0", "Internal error, closing connection");
/// `RSET` with an argument.
pub const RSET_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: RSET");
/// A TLS ClientHello on a STARTTLS port (adversarial TLS-09; the commonest user mistake).
pub const TLS_ON_PLAINTEXT: Reply = Reply::fixed(
    501,
    "5.5.1",
    "TLS handshake on a STARTTLS port: connect in plaintext and use STARTTLS, or use the implicit TLS port",
);
/// The outbox could not store the message (disk full, permissions): retry later.
pub const STORAGE_FAILURE: Reply =
    Reply::fixed(451, "4.3.0", "Could not store the message, try again later");
/// The upstream did not answer within `timeouts.upstream` (docs/upstream.md: 504/timeout).
pub const UPSTREAM_TIMEOUT: Reply = Reply::fixed(
    451,
    "4.4.1",
    "Upstream did not answer in time, try again later",
);

/// The upstream could not be reached (refused, reset, TLS or DNS failure).
pub const UPSTREAM_UNREACHABLE: Reply =
    Reply::fixed(451, "4.4.1", "Upstream unreachable, try again later");
/// The upstream's answer was cut off: whether it has the message is unknown, and a retry is
/// safe (same Idempotency-Key).
pub const UPSTREAM_CONNECTION_LOST: Reply =
    Reply::fixed(451, "4.4.2", "Upstream connection lost, try again later");

/// `limits.connections_per_ip` connections are already open from this address.
pub const TOO_MANY_FROM_ADDRESS: Reply =
    Reply::fixed(421, "4.7.0", "Too many connections from your address");
/// The address is cooling down after repeated AUTH failures.
pub const AUTH_COOLDOWN: Reply = Reply::fixed(
    421,
    "4.7.0",
    "Too many authentication failures from your address, try again later",
);

/// The top-level header section is over `limits.header_section` (adversarial DATA-11, DATA-12,
/// MIME-08). RFC 1870 §6 uses 552 for size; 5.3.4 is "message too big for system".
pub const HEADER_SECTION_TOO_BIG: Reply = Reply::fixed(
    552,
    "5.3.4",
    "Message header section exceeds fixed maximum size",
);
/// More `Received:` headers than `limits.received_headers` (adversarial DATA-13; RFC 5321 §6.3
/// asks for a hop limit; chasquid answers `554 5.4.6`).
pub const MAIL_LOOP: Reply = Reply::fixed(
    554,
    "5.4.6",
    "Too many Received headers: possible mail loop",
);
/// A message of zero bytes (adversarial DATA-05).
pub const EMPTY_MESSAGE: Reply = Reply::fixed(554, "5.6.0", "Message is empty");
/// A message whose first line is not a header field: a body without headers (DATA-05, DATA-07).
pub const NO_HEADER_SECTION: Reply = Reply::fixed(554, "5.6.0", "Message has no header section");
/// No `From:` and the null reverse-path `<>`: there is nobody to send as.
pub const NO_SENDER: Reply = Reply::fixed(
    554,
    "5.6.0",
    "Message has no From header and the envelope sender is empty",
);
/// `From:` holds a group (RFC 5322 §3.6.2 allows it only with `Sender:`; the API needs one).
pub const FROM_GROUP: Reply = Reply::fixed(
    554,
    "5.6.0",
    "From header must be a single mailbox, not a group",
);
/// `From:` without any address (`From: Jane`, `From: <>`, an empty field).
pub const FROM_NO_ADDRESS: Reply = Reply::fixed(554, "5.6.0", "From header has no email address");
/// mail-parser found nothing it could use, although the header section looked valid.
pub const UNPARSEABLE_MESSAGE: Reply = Reply::fixed(554, "5.6.0", "Message could not be parsed");
/// A header line that is neither `name: value` nor a folded continuation (DATA-07).
pub fn malformed_header_line(line: usize) -> Reply {
    Reply::dynamic(554, "5.6.0", format!("Malformed header line {line}"))
}
/// A header that RFC 5322 §3.6 allows once, given more than once (DATA-16).
pub fn duplicate_header(name: &str) -> Reply {
    Reply::dynamic(
        554,
        "5.6.0",
        format!("Message has more than one {name} header"),
    )
}
/// `From:` with several mailboxes (RFC 5322 §3.6.2 would need `Sender:`; the API takes one).
pub fn from_several_mailboxes(count: usize) -> Reply {
    Reply::dynamic(
        554,
        "5.6.0",
        format!("From header has {count} mailboxes; exactly one is required"),
    )
}
/// A MIME structure over one of the relay's safety caps (adversarial MIME-01..04).
pub fn mime_limit(detail: &str) -> Reply {
    Reply::dynamic(
        554,
        "5.6.0",
        format!("MIME structure exceeds safety limit: {detail}"),
    )
}
/// `X-SP-Track-Opens` / `X-SP-Track-Clicks` with a value other than true or false.
pub fn invalid_tracking_value(header: &str, value: &str) -> Reply {
    Reply::dynamic(
        554,
        "5.6.0",
        format!(
            "Invalid {header} value \"{}\": expected true or false",
            sanitize(value, 64)
        ),
    )
}
/// `X-SP-Idempotency-Key` empty, too long, not printable ASCII, or given twice differently.
pub const INVALID_IDEMPOTENCY_KEY: Reply = Reply::fixed(
    554,
    "5.6.0",
    "Invalid X-SP-Idempotency-Key header: expected one value of 1 to 256 printable ASCII characters",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_text_is_one_safe_line() {
        let reply = Reply::dynamic(554, "5.6.0", "bad\r\n250 2.0.0 Ok\x00\x1b[2J é");
        let mut out = Vec::new();
        reply.write_to(&mut out);
        assert_eq!(out, b"554 5.6.0 bad 250 2.0.0 Ok [2J ?\r\n");
    }

    #[test]
    fn long_text_is_cut() {
        let reply = Reply::dynamic(451, "4.3.0", "x".repeat(5000));
        assert_eq!(reply.text().len(), MAX_TEXT);
        assert!(reply.text().ends_with("..."));
    }
}
