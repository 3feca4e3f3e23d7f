//! Waiting for a condition with a deadline, never sleeping a fixed time and hoping: a test
//! that asserts an absence first waits for a positive sign that the relay has done all it
//! would do (a metric, a log line, a reply), so the absence means something.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `condition` every 20 ms until it holds; fails the test, naming `what`, once
/// `within` has passed. A synchronous check is `|| std::future::ready(check())`.
pub async fn until<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
