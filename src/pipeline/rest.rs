//! REST outcome → SMTP reply: the error table of docs/upstream.md, in one pure function.
//!
//! Rule: the sender must fix it → 5xx; retrying may succeed → 4xx. When the error body says
//! `retryable`, that decides the class and the enhanced code keeps its detail (a 429 with
//! `"retryable": false`, a spent monthly quota, becomes `550 5.7.1`). Texts carry the API's
//! `message`, reduced to one printable line of bounded length, and a request id for support.

use serde::Deserialize;

use crate::smtp::reply::{Reply, sanitize};

/// Most of an error body read and parsed; the rest is ignored (a huge body costs nothing).
pub const MAX_ERROR_BODY: usize = 16 * 1024;
/// Longest API message copied into a reply.
const MAX_MESSAGE: usize = 200;

/// The parts of `{"error": {...}}` the relay uses. Every field is optional: the body may be
/// missing, empty, not JSON, or another shape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Machine code, e.g. `domain_not_verified`.
    pub code: Option<String>,
    /// Human text, safe to show.
    pub message: Option<String>,
    /// Overrides the class of the reply when present.
    pub retryable: Option<bool>,
    /// Seconds, from the body.
    pub retry_after: Option<u64>,
    /// The API's request id.
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    retryable: Option<bool>,
    retry_after: Option<serde_json::Value>,
    request_id: Option<serde_json::Value>,
}

impl ApiError {
    /// Parses an error body leniently; anything unexpected yields empty fields.
    pub fn parse(body: &[u8]) -> ApiError {
        let Ok(Envelope { error: Some(e) }) = serde_json::from_slice::<Envelope>(body) else {
            return ApiError::default();
        };
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        ApiError {
            code: text(e.code),
            message: text(e.message),
            retryable: e.retryable,
            retry_after: e.retry_after.and_then(|v| v.as_u64()),
            request_id: text(e.request_id),
        }
    }
}

/// How the relay should treat a non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The reply to the client.
    pub reply: Reply,
    /// The relay itself is at fault (404/405/415/unknown status): log at error level.
    pub relay_fault: bool,
}

/// Maps a non-2xx status, its parsed error body and its `Retry-After` header (seconds) to
/// the reply. `request_id` is ours (`X-Request-Id`), used when the API gives none.
pub fn error_reply(
    status: u16,
    error: &ApiError,
    retry_after: Option<u64>,
    request_id: &str,
) -> ErrorReply {
    let code = error.code.as_deref().unwrap_or("");
    let message = error.message.as_deref().map(|m| sanitize(m, MAX_MESSAGE));
    let message = message.as_deref().filter(|m| !m.is_empty());
    let with = |default: &str| message.unwrap_or(default).to_string();
    let mut relay_fault = false;
    let (smtp, status_code, text): (u16, &'static str, String) = match status {
        400 => (554, "5.6.0", with("Message rejected by the API")),
        401 => (554, "5.7.8", "API key is no longer valid".into()),
        403 => (550, "5.7.1", with("Sender not allowed")),
        404 | 405 | 415 => {
            relay_fault = true;
            (451, "4.3.5", "Temporary configuration error".into())
        }
        409 if code.contains("reused") || code.contains("mismatch") => (
            554,
            "5.6.0",
            with("Idempotency key already used for a different message"),
        ),
        409 => (
            451,
            "4.3.0",
            with("An identical message is still being processed; retry shortly"),
        ),
        413 => (
            552,
            "5.3.4",
            with("Message size exceeds fixed maximum message size"),
        ),
        422 if code.contains("too_many_recipients") => (554, "5.5.3", with("Too many recipients")),
        422 if code.contains("from") || code.contains("sender") => {
            (554, "5.1.7", with("Invalid sender address"))
        }
        422 if code.contains("recipient") => (554, "5.1.3", with("Invalid recipient address")),
        422 => (554, "5.6.0", with("Message rejected by the API")),
        429 => {
            let base = with("Rate limit exceeded");
            let text = match error.retry_after.or(retry_after) {
                Some(secs) => format!("{base}; retry after {secs} s"),
                None => base,
            };
            (451, "4.7.1", text)
        }
        500 => (
            451,
            "4.3.0",
            "Temporary server error, try again later".into(),
        ),
        502 => (451, "4.4.2", "Upstream error, try again later".into()),
        503 => (
            451,
            "4.3.2",
            "Service temporarily unavailable, try again later".into(),
        ),
        504 => (451, "4.4.1", "Upstream timeout, try again later".into()),
        _ => {
            relay_fault = true;
            (451, "4.3.0", format!("Temporary error (HTTP {status})"))
        }
    };
    let (smtp, status_code) = match error.retryable {
        Some(true) if smtp >= 500 => (451, switch_class(status_code)),
        Some(false) if smtp < 500 => {
            let permanent = switch_class(status_code);
            (
                if permanent.starts_with("5.7.") {
                    550
                } else {
                    554
                },
                permanent,
            )
        }
        _ => (smtp, status_code),
    };
    let reference = error.request_id.as_deref().unwrap_or(request_id);
    let reference = sanitize(reference, 80);
    ErrorReply {
        reply: Reply::dynamic(smtp, status_code, format!("{text} (ref {reference})")),
        relay_fault,
    }
}

/// The same detail in the other class: `5.7.1` ↔ `4.7.1`. The enhanced codes used above are
/// all listed; anything else falls back to the generic one of the target class.
fn switch_class(status: &'static str) -> &'static str {
    const PAIRS: [(&str, &str); 12] = [
        ("5.6.0", "4.6.0"),
        ("5.7.8", "4.7.8"),
        ("5.7.1", "4.7.1"),
        ("5.3.5", "4.3.5"),
        ("5.3.0", "4.3.0"),
        ("5.3.4", "4.3.4"),
        ("5.5.3", "4.5.3"),
        ("5.1.7", "4.1.7"),
        ("5.1.3", "4.1.3"),
        ("5.4.2", "4.4.2"),
        ("5.3.2", "4.3.2"),
        ("5.4.1", "4.4.1"),
    ];
    for (permanent, transient) in PAIRS {
        if status == permanent {
            return transient;
        }
        if status == transient {
            return permanent;
        }
    }
    if status.starts_with('5') {
        "4.3.0"
    } else {
        "5.3.0"
    }
}

#[cfg(test)]
mod tests;
