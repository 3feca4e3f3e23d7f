//! The key check's answer cache: bounded, least recently used evicted first, and valid and
//! invalid answers kept apart, so a spray of wrong keys (each a new invalid answer) only ever
//! evicts other invalid answers, never a key a client is using.

use std::num::NonZeroUsize;
use std::time::Instant;

use lru::LruCache;

use crate::smtp::AuthOutcome;

/// A key's SHA-256: the cache never holds a key.
pub type Digest = [u8; 32];

/// Remembered answers, each until its expiry.
#[derive(Debug)]
pub struct AnswerCache {
    valid: LruCache<Digest, Instant>,
    invalid: LruCache<Digest, Instant>,
}

impl AnswerCache {
    /// At most `entries` answers of each kind.
    pub fn new(entries: usize) -> AnswerCache {
        let cap = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        AnswerCache {
            valid: LruCache::new(cap),
            invalid: LruCache::new(cap),
        }
    }

    /// The answer for `digest` if one is remembered and not expired at `now` (it becomes the
    /// most recently used).
    pub fn get(&mut self, digest: &Digest, now: Instant) -> Option<AuthOutcome> {
        for (cache, outcome) in [
            (&mut self.valid, AuthOutcome::Valid),
            (&mut self.invalid, AuthOutcome::Invalid),
        ] {
            match cache.get(digest) {
                Some(until) if *until > now => return Some(outcome),
                Some(_) => {
                    cache.pop(digest);
                }
                None => {}
            }
        }
        None
    }

    /// Remembers `outcome` for `digest` until `until`; a full cache of that kind drops its
    /// least recently used answer. `Unavailable` is never remembered.
    pub fn put(&mut self, digest: Digest, outcome: AuthOutcome, until: Instant) {
        let (cache, other) = match outcome {
            AuthOutcome::Valid => (&mut self.valid, &mut self.invalid),
            AuthOutcome::Invalid => (&mut self.invalid, &mut self.valid),
            AuthOutcome::Unavailable => return,
        };
        other.pop(&digest);
        cache.put(digest, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(n: u8) -> Digest {
        [n; 32]
    }

    #[test]
    fn a_spray_of_wrong_keys_never_evicts_a_valid_one() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut cache = AnswerCache::new(4);
        for n in 1..=4 {
            cache.put(key(n), AuthOutcome::Valid, later);
        }
        for n in 100..=200 {
            cache.put(key(n), AuthOutcome::Invalid, later);
        }
        for n in 1..=4 {
            assert_eq!(cache.get(&key(n), now), Some(AuthOutcome::Valid));
        }
        // The newest wrong keys are still answered from the cache.
        assert_eq!(cache.get(&key(200), now), Some(AuthOutcome::Invalid));
        assert_eq!(cache.get(&key(100), now), None);
    }

    #[test]
    fn a_full_cache_drops_the_least_recently_used_not_everything() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut cache = AnswerCache::new(3);
        for n in 1..=3 {
            cache.put(key(n), AuthOutcome::Valid, later);
        }
        // Key 1 is used again: key 2 is now the least recently used.
        assert_eq!(cache.get(&key(1), now), Some(AuthOutcome::Valid));
        cache.put(key(4), AuthOutcome::Valid, later);
        assert_eq!(cache.get(&key(2), now), None);
        for n in [1, 3, 4] {
            assert_eq!(cache.get(&key(n), now), Some(AuthOutcome::Valid), "key {n}");
        }
    }

    #[test]
    fn expired_answers_are_forgotten_and_a_new_answer_replaces_the_old() {
        let now = Instant::now();
        let mut cache = AnswerCache::new(8);
        cache.put(key(1), AuthOutcome::Valid, now + Duration::from_secs(1));
        assert_eq!(cache.get(&key(1), now + Duration::from_secs(2)), None);
        cache.put(key(2), AuthOutcome::Invalid, now + Duration::from_secs(60));
        cache.put(key(2), AuthOutcome::Valid, now + Duration::from_secs(60));
        assert_eq!(cache.get(&key(2), now), Some(AuthOutcome::Valid));
        cache.put(
            key(3),
            AuthOutcome::Unavailable,
            now + Duration::from_secs(60),
        );
        assert_eq!(cache.get(&key(3), now), None);
    }
}
