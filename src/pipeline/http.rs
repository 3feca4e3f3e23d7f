//! The REST upstream: `POST {base}/v1/emails` (docs/upstream.md "Send").
//!
//! A large message is mapped off the async workers (parsing 25 MB and hashing it for the
//! Idempotency-Key take milliseconds), a small one on the worker (see `render.rs`); the
//! request body is then streamed from the parsed
//! message in 64 KiB chunks with an exact `Content-Length`, so the JSON is never held whole
//! and the message is held once. The reply is `250` only after a 2xx; every other outcome,
//! including transport failures and a body cut off after a 2xx, is a 4xx or 5xx from
//! [`super::rest::error_reply`], and a retry is safe because it carries the same
//! Idempotency-Key (a message without identity carries none, docs/upstream.md).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use super::client::{SendClient, user_agent};
use super::early::{EarlyRefusals, parse_retry_after};
use super::render::{Prepared, Renderer};
use super::rest::{self, ApiError};
use super::{Accepted, DeliveryError, Submission, Upstream, safe_id, status_class};
use crate::BoxFuture;
use crate::secret::ApiKey;
use crate::smtp::RefusalReason;
use crate::smtp::reply::{self, Reply};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Largest success body read (it only needs `id`).
const MAX_SUCCESS_BODY: usize = 64 * 1024;

/// Sends messages to the REST API.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    client: SendClient,
    base: Arc<str>,
    /// `{base}/v1/emails`, parsed once.
    send_uri: Uri,
    user_agent: HeaderValue,
    renderer: Renderer,
    /// What the API just refused, for failing early at `MAIL FROM`.
    early: Arc<EarlyRefusals>,
}

impl HttpUpstream {
    /// `base` without a trailing slash, e.g. `https://api.sendpigeon.dev`. The request's
    /// deadline is the caller's (`timeouts.upstream` in `server::deliver`).
    pub fn new(
        client: SendClient,
        base: &str,
        renderer: Renderer,
        early: Arc<EarlyRefusals>,
    ) -> Result<Self, String> {
        let send_uri = format!("{base}/v1/emails")
            .parse::<Uri>()
            .map_err(|e| format!("{base} is not a usable base URL: {e}"))?;
        let user_agent = HeaderValue::try_from(user_agent()).map_err(|e| e.to_string())?;
        Ok(HttpUpstream {
            client,
            base: base.into(),
            send_uri,
            user_agent,
            renderer,
            early,
        })
    }

    async fn send(&self, sub: Submission) -> Result<Accepted, DeliveryError> {
        let Prepared {
            body,
            idempotency_key,
            key,
            request_id,
            reservation,
            from_domain,
            ..
        } = self.renderer.prepare_off_workers(sub).await?;
        // Header values built from owned strings, each without a second copy.
        let owned = |text: String| HeaderValue::from_maybe_shared(Bytes::from(text));
        let mut bearer = owned(format!("Bearer {}", key.expose())).map_err(|_| {
            DeliveryError::new(
                reply::INTERNAL_ERROR,
                RefusalReason::Internal,
                "key not a header value",
            )
        })?;
        bearer.set_sensitive(true);
        let mut request = Request::post(self.send_uri.clone())
            .header(AUTHORIZATION, bearer)
            .header(CONTENT_TYPE, JSON)
            .header(USER_AGENT, self.user_agent.clone());
        if let Ok(id) = owned(request_id.clone()) {
            request = request.header(X_REQUEST_ID, id);
        }
        if let Some(Ok(idempotency_key)) = idempotency_key.map(owned) {
            request = request.header(IDEMPOTENCY_KEY, idempotency_key);
        }
        let request = request.body(body).map_err(|e| {
            DeliveryError::new(
                reply::INTERNAL_ERROR,
                RefusalReason::Internal,
                format!("request not built: {e}"),
            )
        })?;
        let result = match self.client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let (result, refusal) = answer(response, &request_id).await;
                self.remember(status, &result, refusal, &key, from_domain.as_deref());
                result
            }
            Err(e) => Err(transport_error(&e)),
        };
        drop(reservation);
        result
    }
}

impl HttpUpstream {
    /// Failing early: a 429 refuses the key, a 403 the key and `From` domain, a 2xx forgets.
    fn remember(
        &self,
        status: u16,
        result: &Result<Accepted, DeliveryError>,
        refusal: Option<Refusal>,
        key: &ApiKey,
        from_domain: Option<&str>,
    ) {
        match (status, result, refusal) {
            (200..=299, Ok(_), _) => self.early.accepted(key, from_domain),
            (429, Err(_), Some(r)) => self.early.rate_limited(key, r.retry_after, &r.message),
            (403, Err(_), Some(r)) => {
                if let Some(domain) = from_domain {
                    self.early.sender_refused(key, domain, &r.message);
                }
            }
            _ => {}
        }
    }
}

impl Upstream for HttpUpstream {
    fn deliver(&self, submission: Submission) -> BoxFuture<'_, Result<Accepted, DeliveryError>> {
        Box::pin(self.send(submission))
    }

    fn describe(&self) -> String {
        self.base.to_string()
    }
}

#[derive(Deserialize)]
struct Created {
    id: Option<serde_json::Value>,
}

/// What an error answer said, for failing early.
struct Refusal {
    /// `Retry-After` (the body's `retry_after` first, then the header: seconds or a date).
    retry_after: Option<Duration>,
    /// The API's `message`, as given.
    message: String,
}

async fn answer(
    response: Response<Incoming>,
    request_id: &str,
) -> (Result<Accepted, DeliveryError>, Option<Refusal>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    if (200..300).contains(&status) {
        return (accepted(response, status, request_id).await, None);
    }
    // A body we cannot read is the same as no body: the status decides.
    let body = read_prefix(response.into_body(), rest::MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let error = ApiError::parse(&body);
    let retry_after = error.retry_after.map(Duration::from_secs).or(retry_after);
    // Seconds, rounded up: a date 1.2 s away is "retry after 2 s".
    let retry_secs = retry_after.map(|d| d.as_millis().div_ceil(1000) as u64);
    let outcome = rest::error_reply(status, &error, retry_secs, request_id);
    let detail = format!(
        "HTTP {status} code={:?} message={:?}",
        error.code.as_deref().unwrap_or(""),
        crate::smtp::reply::sanitize(error.message.as_deref().unwrap_or(""), 200)
    );
    if outcome.relay_fault {
        tracing::error!(
            status,
            "the API refused the request as malformed or unknown: check upstream.url ({detail})"
        );
    }
    let refusal = Refusal {
        retry_after,
        message: error.message.unwrap_or_default(),
    };
    let error = DeliveryError::upstream(outcome.reply, detail, status_class(status));
    (Err(error), Some(refusal))
}

/// A 2xx: the id from up to 64 KiB of the body.
async fn accepted(
    response: Response<Incoming>,
    status: u16,
    request_id: &str,
) -> Result<Accepted, DeliveryError> {
    let body = read_prefix(response.into_body(), MAX_SUCCESS_BODY)
        .await
        .map_err(|e| {
            DeliveryError::new(
                reply::UPSTREAM_CONNECTION_LOST,
                RefusalReason::Upstream,
                format!("HTTP {status}, then the body failed: {e}"),
            )
        })?;
    let id = serde_json::from_slice::<Created>(&body)
        .ok()
        .and_then(|c| c.id)
        .and_then(|id| id.as_str().map(safe_id))
        .filter(|id| !id.is_empty());
    Ok(Accepted {
        outcome: "2xx",
        id: match id {
            Some(id) => id,
            None => {
                tracing::warn!(status, "the API accepted the message without an id");
                safe_id(request_id)
            }
        },
    })
}

/// Reads at most `max` bytes of the body.
async fn read_prefix(mut body: Incoming, max: usize) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue; // trailers
        };
        let room = max - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// Connection refused, reset, TLS or DNS failure, connect timeout: `451 4.4.1`, never a 250.
pub fn transport_error(e: &hyper_util::client::legacy::Error) -> DeliveryError {
    let timed_out = timed_out(e);
    let what = if timed_out {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let reply: Reply = if timed_out {
        reply::UPSTREAM_TIMEOUT
    } else {
        reply::UPSTREAM_UNREACHABLE
    };
    let outcome = if timed_out { "timeout" } else { "error" };
    DeliveryError::upstream(
        reply,
        format!("upstream {what}: {}", crate::telemetry::error_chain(e)),
        outcome,
    )
}

/// Whether an I/O timeout (`timeouts.upstream_connect`) is among the error's causes.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::timed_out;

    /// A connect timeout is reported by hyper as a connect error with an I/O `TimedOut`
    /// among its causes: that is "did not answer in time", not "unreachable".
    #[test]
    fn a_timeout_is_found_among_the_causes() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let timeout = Wrapper(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(timed_out(&timeout));
        assert!(!timed_out(&refused));
    }
}
