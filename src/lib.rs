//! sendpigeon-relay: an SMTP submission server in front of the SendPigeon REST send pipeline.
//!
//! Layout: [`smtp`] is the sans-IO protocol core; [`server`] the tokio driver (listeners,
//! TLS, timeouts, shutdown); [`message`] maps a MIME message to the REST request; [`memory`]
//! bounds the message bytes held; [`pipeline`] is the upstream (REST API or outbox); [`auth`]
//! checks keys; [`config`], [`cli`], [`telemetry`], [`metrics`] and [`admin`] are the
//! operational edges.
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what the `dyn` traits of [`auth`] and [`pipeline`] return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod pipeline;
pub mod secret;
pub mod server;
pub mod smtp;
pub mod telemetry;
