//! Failing early (docs/upstream.md "Failing early"): before a transaction starts, the session
//! asks whether the API has just refused this key, or this key and sender domain, so that a
//! client about to be refused hears it at `MAIL FROM` instead of after uploading the message.
//! The memory of those answers (and its clock) lives outside the sans-IO core.

use std::fmt::Debug;

use crate::secret::ApiKey;
use crate::smtp::reply::Reply;

/// Answers `MAIL FROM` early when the API has just refused the same thing.
pub trait SenderGate: Send + Sync + Debug {
    /// The temporary reply for a transaction of `key` from the envelope sender `mail_from`
    /// (`""` for the null sender), or `None` to go on.
    fn refuse(&self, key: &ApiKey, mail_from: &str) -> Option<Reply>;
}
