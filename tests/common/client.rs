//! A minimal SMTP client for tests: real TCP, real rustls (trusting the test CA), exact
//! bytes on the wire, and replies read whole (multi-line aware).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

pub fn tls_connector(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Connects, writes `prelude` (a PROXY header, or nothing), and tries a TLS handshake: true
/// when the server closed without completing it.
pub async fn tls_handshake_refused(addr: SocketAddr, ca: &Path, prelude: &[u8]) -> bool {
    use tokio::io::AsyncWriteExt;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(prelude).await.expect("prelude");
    tls_connector(ca, rustls::ALL_VERSIONS)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .is_err()
}

impl Client {
    /// Connects in plaintext and reads the greeting.
    pub async fn plain(addr: SocketAddr) -> (Client, String) {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            io: Box::new(tcp),
            buf: Vec::new(),
        };
        let greeting = c.reply().await;
        (c, greeting)
    }

    /// Wraps a connected plaintext socket (after a PROXY header) and reads the greeting.
    pub async fn from_tcp(tcp: TcpStream) -> Client {
        let (c, greeting) = Client::greeted(tcp).await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        c
    }

    /// Wraps a connected plaintext socket and reads the first reply, whatever it is.
    pub async fn greeted(tcp: TcpStream) -> (Client, String) {
        let mut c = Client {
            io: Box::new(tcp),
            buf: Vec::new(),
        };
        let greeting = c.reply().await;
        (c, greeting)
    }

    /// TLS over a connected socket (implicit TLS after a PROXY header); nothing read yet.
    pub async fn tls_over(tcp: TcpStream, ca: &Path) -> Client {
        let tls = tls_connector(ca, rustls::ALL_VERSIONS)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        Client {
            io: Box::new(tls),
            buf: Vec::new(),
        }
    }

    /// Connects with implicit TLS and reads the greeting.
    pub async fn tls(addr: SocketAddr, ca: &Path) -> (Client, String) {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let tls = tls_connector(ca, rustls::ALL_VERSIONS)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let mut c = Client {
            io: Box::new(tls),
            buf: Vec::new(),
        };
        let greeting = c.reply().await;
        (c, greeting)
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io.write_all(bytes.as_ref()).await.expect("write");
        self.io.flush().await.expect("flush");
    }

    /// Sends bytes; false when the connection is gone.
    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> bool {
        self.io.write_all(bytes.as_ref()).await.is_ok() && self.io.flush().await.is_ok()
    }

    /// Sends a line (CRLF added) and returns the whole reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Reads one whole reply (all its lines), within 30 s.
    pub async fn reply(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.reply_inner())
            .await
            .expect("reply within 30 s")
    }

    async fn reply_inner(&mut self) -> String {
        let mut text = String::new();
        loop {
            let line = self
                .line()
                .await
                .expect("connection closed while reading a reply");
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            text.push_str(&line);
            if last {
                return text;
            }
        }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True when the server closes the connection (EOF or reset) within `wait`, after
    /// returning whatever it sent first.
    pub async fn closed_within(&mut self, wait: Duration) -> (bool, String) {
        let mut seen = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        let result = tokio::time::timeout(wait, async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.io.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.push_str(&String::from_utf8_lossy(&chunk[..n])),
                }
            }
        })
        .await;
        (result.is_ok(), seen)
    }

    /// Nothing arrives within `wait` (the connection stays open and silent).
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 1];
        tokio::time::timeout(wait, self.io.read(&mut chunk))
            .await
            .is_err()
    }

    /// MAIL FROM `s@sender.example`, RCPT TO `r@rcpt.example`, DATA: checks each exact
    /// reply, leaving the session waiting for message data.
    pub async fn begin_message(&mut self) {
        assert_eq!(
            self.cmd("MAIL FROM:<s@sender.example>").await,
            "250 2.1.0 Sender OK\r\n"
        );
        assert_eq!(
            self.cmd("RCPT TO:<r@rcpt.example>").await,
            "250 2.1.5 Recipient OK\r\n"
        );
        assert_eq!(
            self.cmd("DATA").await,
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    /// Upgrades after a `220` to STARTTLS.
    pub async fn upgrade(self, ca: &Path) -> Client {
        self.upgrade_with(ca, rustls::ALL_VERSIONS).await
    }

    pub async fn upgrade_with(
        self,
        ca: &Path,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Client {
        assert!(
            self.buf.is_empty(),
            "plaintext left over before the handshake"
        );
        let io = self.io;
        let tls = tls_connector(ca, versions)
            .connect(ServerName::try_from("localhost").unwrap(), UpgradeIo(io))
            .await
            .expect("TLS handshake after STARTTLS");
        Client {
            io: Box::new(tls),
            buf: Vec::new(),
        }
    }

    /// EHLO (inside TLS: AUTH offered) and AUTH PLAIN with `key`, which must succeed.
    pub async fn authenticate(&mut self, key: &str) {
        let ehlo = self.cmd("EHLO client.example").await;
        assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
        let auth = self.cmd(&format!("AUTH PLAIN {}", plain(key))).await;
        assert!(auth.starts_with("235"), "{auth}");
    }

    /// EHLO, STARTTLS, handshake, EHLO, AUTH PLAIN with `key`: returns the AUTH reply.
    pub async fn submission(addr: SocketAddr, ca: &Path, key: &str) -> (Client, String) {
        let (mut c, greeting) = Client::plain(addr).await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        assert!(c.cmd("EHLO client.example").await.starts_with("250"));
        assert!(c.cmd("STARTTLS").await.starts_with("220 2.0.0"));
        let mut c = c.upgrade(ca).await;
        assert!(
            c.cmd("EHLO client.example")
                .await
                .contains("AUTH PLAIN LOGIN")
        );
        let auth = c.cmd(&format!("AUTH PLAIN {}", plain(key))).await;
        (c, auth)
    }
}

/// Boxed I/O as a concrete type for the TLS connector.
pub struct UpgradeIo(Box<dyn Io>);

impl AsyncRead for UpgradeIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradeIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Base64 of `\0apikey\0<key>`.
pub fn plain(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0apikey\0{key}"))
}
