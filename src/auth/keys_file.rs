//! The local keys file: one lower-case hex SHA-256 digest per line, `#` comments.
//!
//! Only digests are stored, so the file is not a secret. A presented key is hashed and
//! compared with every digest in constant time, without stopping at the first match
//! (adversarial AUTH-26).

use std::path::Path;

use subtle::{Choice, ConstantTimeEq};

use super::Authenticator;
use crate::BoxFuture;
use crate::secret::{ApiKey, hex};
use crate::smtp::AuthOutcome;

/// The digests of the accepted keys.
#[derive(Debug, Clone)]
pub struct KeysFile {
    digests: Vec<[u8; 32]>,
}

impl KeysFile {
    /// Reads and parses the file; the error names the line.
    pub fn load(path: &Path) -> Result<KeysFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        KeysFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<KeysFile, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let digest = parse_digest(line).ok_or_else(|| {
                format!("line {}: expected a 64-character hex SHA-256 digest", i + 1)
            })?;
            digests.push(digest);
        }
        Ok(KeysFile { digests })
    }

    /// The line `hash-key` prints for a key.
    pub fn line_for(key: &ApiKey) -> String {
        hex(&key.digest())
    }

    /// Number of keys (for the start-up log).
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when the file lists no key.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    fn contains(&self, key: &ApiKey) -> bool {
        let digest = key.digest();
        let mut found = Choice::from(0);
        for known in &self.digests {
            found |= known.ct_eq(&digest);
        }
        found.into()
    }
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Authenticator for KeysFile {
    fn verify<'a>(&'a self, key: &'a ApiKey) -> BoxFuture<'a, AuthOutcome> {
        let outcome = if self.contains(key) {
            AuthOutcome::Valid
        } else {
            AuthOutcome::Invalid
        };
        Box::pin(std::future::ready(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let key = ApiKey::new("sk_live_dev_sendpigeon_local_0001");
        let text = format!("# comment\n\n{}  # dev key\n", KeysFile::line_for(&key));
        let file = KeysFile::parse(&text).unwrap();
        assert_eq!(file.len(), 1);
        assert!(file.contains(&key));
        assert!(!file.contains(&ApiKey::new("sk_live_other")));
        assert_eq!(
            KeysFile::line_for(&key),
            "a0c116bdcee65b28250f5be7b540e9c992f68bc64e57a166f9da2f0b3ecad991"
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let err = KeysFile::parse("abc\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(KeysFile::parse(&"g".repeat(64)).is_err());
    }
}
