//! What the smarthost tests (Postfix, Exim) share: running a setup command, and waiting for
//! a line in an MTA's log file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `program` and asserts it succeeded.
pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The log file's text so far ("" before it exists).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the log at `path` has `needle` (within 30 s); returns the whole log.
pub async fn wait_log(path: &Path, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let log = read_log(path);
        if log.contains(needle) {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {needle:?} in {}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
