//! The `auto` listener's first decision (docs/smtp.md "Listeners"): a TLS client speaks
//! first (a ClientHello's record type is 0x16), an SMTP client waits for the greeting. The
//! first byte is peeked, never consumed, so the TLS handshake or the session reads it as usual.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

/// TLS record type of a handshake message (the ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// What the client did before the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstMove {
    /// A TLS record: implicit TLS.
    Tls,
    /// Nothing within `auto_detect`: the plaintext greeting, STARTTLS as usual.
    Silent,
    /// Other bytes before the greeting (pre-greeting talk): `554 5.5.0`, close.
    Talk,
    /// The client closed.
    Closed,
}

/// Waits up to `wait` for the client's first byte.
pub async fn first_move(tcp: &TcpStream, wait: Duration) -> io::Result<FirstMove> {
    let mut first = [0u8; 1];
    Ok(
        match tokio::time::timeout(wait, tcp.peek(&mut first)).await {
            Err(_) => FirstMove::Silent,
            Ok(Ok(0)) => FirstMove::Closed,
            Ok(Ok(_)) if first[0] == TLS_HANDSHAKE => FirstMove::Tls,
            Ok(Ok(_)) => FirstMove::Talk,
            Ok(Err(e)) => return Err(e),
        },
    )
}
