//! Shared test support.
pub mod transcript;
