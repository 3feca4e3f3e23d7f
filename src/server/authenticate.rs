//! The AUTH step: the key checked by the configured store under a forced stop, the outcome
//! counted and logged, a failure recorded against the client's address (the AUTH cool-down)
//! and answered after `auth.failure_delay` — the same delay whichever part was wrong
//! (AUTH-09), which slows guessing. The key itself is never logged: only its fingerprint,
//! recorded on the session span once it is valid.

use std::net::IpAddr;

use super::Relay;
use crate::smtp::{AuthOutcome, AuthRequest};

/// Checks the key of `request` from `client_ip`; `None` when the relay was forced to stop
/// first (the session then answers `421 4.3.2`).
pub(super) async fn check(
    relay: &Relay,
    client_ip: IpAddr,
    request: AuthRequest,
) -> Option<AuthOutcome> {
    let verify = async {
        match &request.key {
            Some(key) => relay.authenticator.verify(key).await,
            None => AuthOutcome::Invalid,
        }
    };
    let outcome = tokio::select! {
        outcome = verify => outcome,
        _ = relay.shutdown.forced() => return None,
    };
    let result = match outcome {
        AuthOutcome::Valid => "ok",
        AuthOutcome::Invalid => "failed",
        AuthOutcome::Unavailable => "temp_failed",
    };
    relay.metrics.auth.with_label_values(&[result]).inc();
    match (&outcome, &request.key) {
        (AuthOutcome::Valid, Some(key)) => {
            tracing::Span::current().record("key", key.fingerprint());
            tracing::info!("authenticated");
        }
        (AuthOutcome::Unavailable, _) => tracing::warn!("key check unavailable"),
        _ => {
            tracing::info!("authentication failed");
            let credential = request.key.as_ref().map(|key| key.digest());
            if relay.abuse.auth_failed(client_ip, credential) {
                tracing::warn!("too many AUTH failures from this address: cool-down starts");
            }
            // The delay ends early only for a forced stop, which answers 421 instead.
            tokio::select! {
                _ = tokio::time::sleep(relay.config.auth.failure_delay.0) => {}
                _ = relay.shutdown.forced() => return None,
            }
        }
    }
    Some(outcome)
}
