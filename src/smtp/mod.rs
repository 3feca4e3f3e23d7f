//! The sans-IO SMTP core: bytes in, steps out, results back in.
//!
//! It knows SMTP and nothing else: no async runtime, no sockets, no clock, no HTTP (CI greps
//! for them). [`Session`] is the state machine; [`line`] and [`data`] frame command lines and
//! message data; [`command`], [`address`] and [`sasl`] parse what the client says; [`reply`]
//! is the one catalogue of what the relay answers. Message memory is bounded by
//! `crate::memory`. The driver in `crate::server` owns the sockets and the timers.

pub mod address;
pub mod command;
pub mod data;
pub mod envelope;
pub mod line;
pub mod reply;
pub mod sasl;
pub mod session;

pub use envelope::Envelope;
pub use reply::Reply;
pub use session::{
    AuthOutcome, AuthRequest, Delivery, RefusalReason, RefusedMessage, SenderGate, Session,
    SessionConfig, Step, Wait,
};
