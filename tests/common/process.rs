//! Helpers for tests that run the relay binary as a process: signals and the admin
//! endpoint's status codes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::time::Duration;

/// Sends `signal` (`"TERM"`, `"HUP"`, ...) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// GET `path` on the admin endpoint at loopback `port`: its status code, or None when nothing
/// answers (not listening yet, or gone).
pub fn admin_status(port: u16, path: &str) -> Option<u16> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    let _ = tcp.read_to_string(&mut text);
    text.get(9..12).and_then(|s| s.parse().ok())
}
