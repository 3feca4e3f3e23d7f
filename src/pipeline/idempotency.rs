//! The Idempotency-Key derived when the message carries no `X-SP-Idempotency-Key`.
//!
//! It is a digest of the API key, the envelope and the exact message bytes, and nothing from
//! the session (client address, TLS version, HELO, session id, time): a client that resends
//! the same bytes after a lost or late 250, on a new connection or to another replica, sends
//! the same key, and the REST API answers the replay with the first response instead of
//! sending twice (docs/upstream.md "Idempotency-Key").

use ring::digest::{Context, SHA256};

use crate::secret::{ApiKey, hex};
use crate::smtp::Envelope;

/// `smtp-` and 64 hex digits.
pub fn derived_key(key: &ApiKey, envelope: &Envelope, message: &[u8]) -> String {
    let mut ctx = Context::new(&SHA256);
    ctx.update(b"sendpigeon-relay idempotency v1\0");
    // Every field is length-prefixed so no two different inputs share a byte stream.
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(key.expose().as_bytes());
    field(envelope.mail_from.as_bytes());
    field(&(envelope.rcpt_to.len() as u64).to_be_bytes());
    for rcpt in &envelope.rcpt_to {
        field(rcpt.as_bytes());
    }
    field(message);
    format!("smtp-{}", hex(ctx.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(from: &str, to: &[&str]) -> Envelope {
        Envelope {
            mail_from: from.into(),
            rcpt_to: to.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn stable_for_the_same_input_and_different_otherwise() {
        let key = ApiKey::new("sk_live_a");
        let a = derived_key(&key, &env("s@x", &["r@y"]), b"hello");
        assert_eq!(a, derived_key(&key, &env("s@x", &["r@y"]), b"hello"));
        assert_eq!(a.len(), 69);
        assert_ne!(a, derived_key(&key, &env("s@x", &["r@y"]), b"hello!"));
        assert_ne!(a, derived_key(&key, &env("s@x", &["r@y", "q@y"]), b"hello"));
        assert_ne!(
            a,
            derived_key(&ApiKey::new("sk_live_b"), &env("s@x", &["r@y"]), b"hello")
        );
        // Field boundaries matter.
        assert_ne!(
            derived_key(&key, &env("s@x", &["ab"]), b"c"),
            derived_key(&key, &env("s@x", &["a"]), b"bc")
        );
    }
}
