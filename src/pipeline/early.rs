//! Failing early (docs/upstream.md "Failing early"): what the API has just refused, remembered
//! per replica so the next `MAIL FROM` of the same key (429), or of the same key and sender
//! domain (403), hears a temporary `451 4.7.1` before uploading anything.
//!
//! Keys are held as digests, never as keys. Entries last the `Retry-After` time (429, at most
//! [`MAX_HOLD`]; a 429 without one is not remembered) or [`MAX_HOLD`] (403); a 2xx for the key
//! (and domain) forgets them at once. The table is bounded: when full of live entries, a new
//! refusal is not remembered (that client just uploads and is refused as before).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;

use crate::secret::ApiKey;
use crate::smtp::SenderGate;
use crate::smtp::reply::{Reply, sanitize};

/// The longest an API answer is acted on.
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// Most refusals remembered at once.
const MAX_ENTRIES: usize = 10_000;
/// Longest API message copied into an early reply.
const MAX_MESSAGE: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    /// A 429 for the key.
    Key([u8; 32]),
    /// A 403 for the key and this (lowercase) `From` domain.
    Sender([u8; 32], String),
}

#[derive(Debug)]
struct Entry {
    until: Instant,
    message: String,
}

/// The remembered refusals, shared by the upstream (which records) and every session (which
/// asks).
#[derive(Debug)]
pub struct EarlyRefusals {
    entries: Mutex<HashMap<Subject, Entry>>,
    /// Entries in the table: the common case (none) costs no lock and no key digest.
    len: AtomicUsize,
    counter: IntCounterVec,
}

impl EarlyRefusals {
    /// `counter`: `early_refusals_total{reason}`.
    pub fn new(counter: IntCounterVec) -> EarlyRefusals {
        EarlyRefusals {
            entries: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
            counter,
        }
    }

    /// The API answered 429 for `key`, to retry after `retry_after` (none: not remembered).
    pub fn rate_limited(&self, key: &ApiKey, retry_after: Option<Duration>, message: &str) {
        let Some(hold) = retry_after.filter(|d| !d.is_zero()) else {
            return;
        };
        let message = text(message, "Rate limit exceeded");
        self.insert(Subject::Key(key.digest()), hold.min(MAX_HOLD), message);
    }

    /// The API answered 403 for `key` and a message whose `From` is in `domain`.
    pub fn sender_refused(&self, key: &ApiKey, domain: &str, message: &str) {
        if domain.is_empty() {
            return;
        }
        let message = text(message, "Sender not allowed");
        let subject = Subject::Sender(key.digest(), domain.to_ascii_lowercase());
        self.insert(subject, MAX_HOLD, message);
    }

    /// The API accepted a message of `key` from `domain`: forget what it refused.
    pub fn accepted(&self, key: &ApiKey, domain: Option<&str>) {
        if self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let digest = key.digest();
        self.update(|entries| {
            entries.remove(&Subject::Key(digest));
            if let Some(domain) = domain {
                entries.remove(&Subject::Sender(digest, domain.to_ascii_lowercase()));
            }
        });
    }

    fn insert(&self, subject: Subject, hold: Duration, message: String) {
        let now = Instant::now();
        self.update(|entries| {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&subject) {
                entries.retain(|_, e| e.until > now);
                if entries.len() >= MAX_ENTRIES {
                    return;
                }
            }
            let until = now + hold;
            entries.insert(subject, Entry { until, message });
        });
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<Subject, Entry>)) {
        if let Ok(mut entries) = self.entries.lock() {
            change(&mut entries);
            self.len.store(entries.len(), Ordering::Relaxed);
        }
    }
}

impl SenderGate for EarlyRefusals {
    fn refuse(&self, key: &ApiKey, mail_from: &str) -> Option<Reply> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let digest = key.digest();
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return None;
        };
        let reply = if let Some(e) = live(&mut entries, &Subject::Key(digest), now) {
            let left = (e.until - now).as_millis().div_ceil(1000);
            self.counter.with_label_values(&["rate_limited"]).inc();
            Some(Reply::dynamic(
                451,
                "4.7.1",
                format!("{}; retry after {left} s", e.message),
            ))
        } else {
            // The null sender has no domain: never refused for a 403.
            let subject = mail_from
                .rsplit_once('@')
                .map(|(_, d)| Subject::Sender(digest, d.to_ascii_lowercase()));
            subject
                .and_then(|subject| live(&mut entries, &subject, now))
                .map(|e| {
                    self.counter.with_label_values(&["sender_refused"]).inc();
                    Reply::dynamic(451, "4.7.1", &e.message)
                })
        };
        self.len.store(entries.len(), Ordering::Relaxed);
        reply
    }
}

/// The entry for `subject` while it lasts; an expired one is removed.
fn live<'a>(
    entries: &'a mut HashMap<Subject, Entry>,
    subject: &Subject,
    now: Instant,
) -> Option<&'a Entry> {
    if entries.get(subject).is_some_and(|e| e.until <= now) {
        entries.remove(subject);
    }
    entries.get(subject)
}

fn text(message: &str, default: &str) -> String {
    let message = sanitize(message, MAX_MESSAGE);
    if message.is_empty() {
        default.to_string()
    } else {
        message
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), from now; a date in the past
/// is zero. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    fn store() -> EarlyRefusals {
        EarlyRefusals::new(IntCounterVec::new(Opts::new("e", "e"), &["reason"]).unwrap())
    }

    #[test]
    fn a_429_refuses_the_key_until_retry_after_and_a_2xx_forgets() {
        let s = store();
        let (a, b) = (ApiKey::new("sk_live_a"), ApiKey::new("sk_live_b"));
        assert!(s.refuse(&a, "x@acme.com").is_none());
        s.rate_limited(&a, Some(Duration::from_secs(30)), "Too many\r\nrequests");
        let line = String::from_utf8(s.refuse(&a, "x@acme.com").unwrap().to_line()).unwrap();
        assert_eq!(line, "451 4.7.1 Too many requests; retry after 30 s\r\n");
        assert!(s.refuse(&a, "").is_some(), "the null sender too");
        assert!(s.refuse(&b, "x@acme.com").is_none(), "another key goes on");
        s.accepted(&a, None);
        assert!(s.refuse(&a, "x@acme.com").is_none());
        assert_eq!(s.counter.with_label_values(&["rate_limited"]).get(), 2);
    }

    #[test]
    fn a_429_without_retry_after_is_not_remembered_and_the_hold_is_capped() {
        let s = store();
        let a = ApiKey::new("sk_live_a");
        s.rate_limited(&a, None, "");
        assert!(s.refuse(&a, "x@acme.com").is_none());
        s.rate_limited(&a, Some(Duration::from_secs(3600)), "");
        let line = String::from_utf8(s.refuse(&a, "x@acme.com").unwrap().to_line()).unwrap();
        assert_eq!(line, "451 4.7.1 Rate limit exceeded; retry after 60 s\r\n");
    }

    #[test]
    fn a_403_refuses_the_key_and_domain_only() {
        let s = store();
        let (a, b) = (ApiKey::new("sk_live_a"), ApiKey::new("sk_live_b"));
        s.sender_refused(&a, "Acme.com", "Domain acme.com is not verified");
        let reply = s.refuse(&a, "billing@ACME.COM").unwrap();
        assert_eq!(
            reply.to_line(),
            b"451 4.7.1 Domain acme.com is not verified\r\n"
        );
        assert!(s.refuse(&a, "x@other.com").is_none());
        assert!(s.refuse(&a, "").is_none(), "never the null sender");
        assert!(s.refuse(&b, "x@acme.com").is_none());
        s.accepted(&a, Some("other.com"));
        assert!(s.refuse(&a, "x@acme.com").is_some(), "another domain's 2xx");
        s.accepted(&a, Some("acme.com"));
        assert!(s.refuse(&a, "x@acme.com").is_none());
    }

    #[test]
    fn retry_after_as_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 10:00:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
