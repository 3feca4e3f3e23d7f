//! Shared test support.
#![allow(dead_code)]
pub mod client;
pub mod clients;
pub mod logs;
pub mod mock_api;
pub mod mta;
pub mod process;
pub mod relay;
pub mod transcript;
pub mod wait;

/// A loopback port free at the time of the call (for processes that must bind a known port,
/// such as HAProxy's frontends or a relay restarted on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
