//! sendpigeon-relay: an SMTP submission server in front of the SendPigeon REST send pipeline.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod message;
pub mod pipeline;
pub mod secret;
pub mod server;
pub mod smtp;
pub mod telemetry;
