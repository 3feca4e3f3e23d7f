//! Shared test support.
#![allow(dead_code)]
pub mod client;
pub mod clients;
pub mod logs;
pub mod mock_api;
pub mod mta;
pub mod relay;
pub mod transcript;
pub mod wait;
