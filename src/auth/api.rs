//! Checking keys against the REST API: `GET {base}/v1/api-keys/current` with the key as
//! bearer (docs/upstream.md "Key verification"). 200 → valid; 401/403 → invalid; anything
//! else, a timeout or no connection → unavailable (`454 4.7.0`).
//!
//! Answers are cached in memory, keyed by the key's SHA-256 (never the key): valid ones for
//! `auth.cache_valid`, invalid ones for `auth.cache_invalid`, unavailable ones not at all. The
//! cache is bounded (`auth.cache_entries` of each kind, least recently used evicted first:
//! [`AnswerCache`]). Concurrent checks of one key share one request, so
//! a burst of connections with one key makes one call, and a flood of one wrong key does not
//! hammer the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::Authenticator;
use super::cache::{AnswerCache, Digest};
use crate::BoxFuture;
use crate::secret::ApiKey;
use crate::smtp::AuthOutcome;

/// Cache lifetimes and size.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// How long a valid answer is reused.
    pub valid: Duration,
    /// How long an invalid answer is reused.
    pub invalid: Duration,
    /// Most answers remembered, of each kind (valid, invalid).
    pub entries: usize,
}

/// Verifies keys with the API.
#[derive(Debug)]
pub struct ApiKeys {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    policy: CachePolicy,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    answers: AnswerCache,
    in_flight: HashMap<Digest, Arc<OnceCell<AuthOutcome>>>,
}

impl ApiKeys {
    /// `base` without a trailing slash.
    pub fn new(
        client: reqwest::Client,
        base: &str,
        timeout: Duration,
        policy: CachePolicy,
    ) -> ApiKeys {
        ApiKeys {
            client,
            url: format!("{base}/v1/api-keys/current"),
            timeout,
            policy,
            state: Mutex::new(State {
                answers: AnswerCache::new(policy.entries),
                in_flight: HashMap::new(),
            }),
        }
    }

    async fn check(&self, key: &ApiKey) -> AuthOutcome {
        let digest = key.digest();
        let cell = {
            let Ok(mut state) = self.state.lock() else {
                return AuthOutcome::Unavailable;
            };
            if let Some(outcome) = state.answers.get(&digest, Instant::now()) {
                return outcome;
            }
            Arc::clone(state.in_flight.entry(digest).or_default())
        };
        let outcome = *cell.get_or_init(|| self.ask(key)).await;
        if let Ok(mut state) = self.state.lock()
            && state
                .in_flight
                .get(&digest)
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            state.in_flight.remove(&digest);
            let ttl = match outcome {
                AuthOutcome::Valid => Some(self.policy.valid),
                AuthOutcome::Invalid => Some(self.policy.invalid),
                AuthOutcome::Unavailable => None,
            };
            if let Some(ttl) = ttl {
                state.answers.put(digest, outcome, Instant::now() + ttl);
            }
        }
        outcome
    }

    async fn ask(&self, key: &ApiKey) -> AuthOutcome {
        let response = self
            .client
            .get(&self.url)
            .bearer_auth(key.expose())
            .timeout(self.timeout)
            .send()
            .await;
        match response {
            Ok(r) => match r.status().as_u16() {
                200 => AuthOutcome::Valid,
                401 | 403 => AuthOutcome::Invalid,
                status => {
                    tracing::warn!(status, "key check: unexpected answer from the API");
                    AuthOutcome::Unavailable
                }
            },
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "key check: the API did not answer");
                AuthOutcome::Unavailable
            }
        }
    }
}

impl Authenticator for ApiKeys {
    fn verify<'a>(&'a self, key: &'a ApiKey) -> BoxFuture<'a, AuthOutcome> {
        Box::pin(self.check(key))
    }
}
