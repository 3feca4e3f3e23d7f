//! Mapping a submission and serialising its request body, shared by every upstream.

use std::io::Write;

use serde::Serialize;

use super::{DeliveryError, Submission, idempotency};
use crate::message::{MimeLimits, SendRequest, map_message};
use crate::smtp::reply;

/// Maps the submission's message and calls `write` with the request and its
/// Idempotency-Key (the message's `X-SP-Idempotency-Key`, else the derived one).
pub fn with_request<R>(
    sub: &Submission,
    limits: &MimeLimits,
    write: impl FnOnce(&SendRequest<'_>, &str) -> std::io::Result<R>,
) -> Result<R, DeliveryError> {
    let result = map_message(
        &sub.message,
        &sub.envelope,
        &sub.source,
        limits,
        |request| {
            let key = match request.idempotency_key.as_deref() {
                Some(key) => key.to_string(),
                None => idempotency::derived_key(&sub.key, &sub.envelope, &sub.message),
            };
            write(request, &key)
        },
    );
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(DeliveryError::new(
            reply::INTERNAL_ERROR,
            format!("writing the request failed: {e}"),
        )),
        Err(e) => {
            let reply = e.reply();
            Err(DeliveryError::new(
                reply,
                format!("mapping refused the message: {e}"),
            ))
        }
    }
}

/// Serialises `value` as compact JSON into `out`.
pub fn write_json(out: impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(out, value).map_err(std::io::Error::other)
}
