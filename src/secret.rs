//! The API key as a secret value: it can be used, never printed.
//!
//! `ApiKey` has no `Display`, and its `Debug` shows only a fingerprint, so a stray `{:?}` in
//! a log line or a panic message cannot leak it (adversarial AUTH-27). Comparisons go through
//! fixed-length SHA-256 digests in constant time (AUTH-26).

use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

/// A client's API key (the SMTP password).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Box<str>);

impl ApiKey {
    /// Wraps a key taken from an AUTH exchange or from standard input.
    pub fn new(key: impl Into<Box<str>>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, for the `Authorization` header and the idempotency digest only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the key: what the keys file stores.
    pub fn digest(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }

    /// A short, domain-separated digest that identifies the key in logs and the outbox
    /// without revealing it or its keys-file digest.
    pub fn fingerprint(&self) -> String {
        let mut input = b"sendpigeon-relay fingerprint\0".to_vec();
        input.extend_from_slice(self.0.as_bytes());
        hex(&sha256(&input)[..6])
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(fp:{})", self.fingerprint())
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Constant-time equality of two digests.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sk_live_supersecret");
        let shown = format!("{key:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("sk_live"), "{shown}");
        assert_eq!(key.fingerprint().len(), 12);
    }

    #[test]
    fn digest_matches_known_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
