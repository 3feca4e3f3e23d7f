//! sendpigeon-relay: an SMTP submission server in front of the SendPigeon REST send pipeline.
#![forbid(unsafe_code)]

pub mod message;
pub mod secret;
pub mod smtp;
