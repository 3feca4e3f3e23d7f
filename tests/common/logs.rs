//! The in-process relay's log events, captured so a test can wait for a line (a reload
//! refused, a session ended) instead of sleeping. One global subscriber per test process,
//! installed by the first [`capture`]; later calls share it.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::wait;

/// The captured text (every event at INFO and above, one line each, no colours).
#[derive(Clone, Debug)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per process) and returns the capture.
pub fn capture() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("another global tracing subscriber is installed");
        Logs(buf)
    })
    .clone()
}

impl Logs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// How many captured lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits (at most `within`) until `needle` has been logged more than `seen` times.
    pub async fn wait_for(&self, needle: &str, seen: usize, within: Duration) {
        wait::until(
            &format!("log line {needle:?} #{}", seen + 1),
            within,
            || std::future::ready(self.count(needle) > seen),
        )
        .await;
    }
}
