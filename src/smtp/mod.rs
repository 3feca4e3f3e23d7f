//! The sans-IO SMTP core: bytes in, actions out, results back in. No tokio, no sockets, no
//! clock, no HTTP (CI checks this with a grep).

pub mod envelope;
pub mod reply;

pub use envelope::Envelope;
pub use reply::Reply;
pub mod address;
pub mod budget;
pub mod command;
pub mod data;
pub mod line;
pub mod sasl;
pub mod session;

pub use session::{AuthOutcome, AuthRequest, Delivery, Session, SessionConfig, Step, Wait};
