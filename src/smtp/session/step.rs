//! What the session tells the driver and what it hands over: the next [`Step`], the key to
//! check, the message to deliver, a message it refused itself, and what kind of wait to time.

use crate::memory::budget::Reservation;
use crate::secret::ApiKey;
use crate::smtp::envelope::Envelope;
use crate::smtp::reply::Reply;

/// What the driver must do next.
#[derive(Debug)]
pub enum Step {
    /// Flush the output, then read more input and call `process` again.
    NeedInput,
    /// Flush the output (it is large), then call `process` again with the rest of the input.
    Flush,
    /// Flush the `220`, drop all buffered input, run the TLS handshake, then call
    /// [`Session::tls_established`](super::Session::tls_established) (or close if it failed).
    StartTls,
    /// Check the key, then call [`Session::auth_finished`](super::Session::auth_finished).
    Authenticate(AuthRequest),
    /// Flush the output, then read nothing until memory is released: call
    /// [`Session::retry_memory`](super::Session::retry_memory) after each release (and `process` once it says true), or
    /// [`Session::memory_timed_out`](super::Session::memory_timed_out) when `limits.memory_wait` has passed.
    WaitMemory,
    /// Map and hand the message to the upstream, then call [`Session::delivered`](super::Session::delivered).
    Deliver(Box<Delivery>),
    /// Flush the output and close the connection.
    Close,
}

/// A key to verify.
#[derive(Debug)]
pub struct AuthRequest {
    /// `None` when the username, authzid or key prefix was already wrong: the driver answers
    /// with the same failure delay as for a wrong key (AUTH-09), without asking anyone.
    pub key: Option<ApiKey>,
}

/// The answer of the key store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// `235`.
    Valid,
    /// `535`, counted.
    Invalid,
    /// `454`: the key store or API could not say.
    Unavailable,
}

/// One received message, ready for mapping and delivery.
#[derive(Debug)]
pub struct Delivery {
    /// As accepted at MAIL and RCPT.
    pub envelope: Envelope,
    /// Un-stuffed, CRLF line endings only.
    pub message: Vec<u8>,
    /// The memory budget share held by `message`; drop it with the message.
    pub reservation: Reservation,
    /// The key the client authenticated with.
    pub key: ApiKey,
    /// 1 for the first message of the session, for `X-Request-Id`.
    pub transaction: u32,
    /// The sanitised EHLO/HELO name.
    pub helo: String,
}

/// A message the session refused by itself at the end of DATA (size, memory, bare line
/// endings), for the driver's metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMessage {
    /// Bytes received (un-stuffed).
    pub size: usize,
    /// What the client was told.
    pub reply: Reply,
    /// Why, for the metrics.
    pub reason: RefusalReason,
}

/// Why a message was refused, named where the refusal is decided (never read back from a
/// reply code): the `reason` label of `messages_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// Over `limits.message_size` or the header section cap.
    Size,
    /// A bare CR or LF under the `reject` policy.
    BareLineEnding,
    /// The memory budget could not hold it.
    Memory,
    /// The message itself: MIME structure, headers, control fields.
    Content,
    /// A bug or an unexpected local failure (a panic, the outbox's disk).
    Internal,
    /// The upstream refused it, failed or did not answer in time.
    Upstream,
    /// The relay was stopping.
    Shutdown,
}

impl RefusalReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::Size => "size",
            RefusalReason::BareLineEnding => "bare_line_ending",
            RefusalReason::Memory => "memory",
            RefusalReason::Content => "content",
            RefusalReason::Internal => "internal",
            RefusalReason::Upstream => "upstream",
            RefusalReason::Shutdown => "shutdown",
        }
    }
}

/// What kind of wait the driver should time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Waiting for a command line (or an AUTH response).
    Command {
        /// After AUTH the idle timeout is longer (RFC 5321 §4.5.3.2.7).
        authenticated: bool,
        /// Part of the line was already consumed (an over-long line being skipped): keep the
        /// line's deadline rather than starting a new one.
        mid_line: bool,
    },
    /// Receiving message data.
    Data,
    /// Waiting for memory; input is not read.
    Memory,
}
