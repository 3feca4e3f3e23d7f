//! A load generator for the relay, and a stand-in REST API fast enough not to be the
//! bottleneck. Used for the README's performance numbers.
//!
//! ```text
//! cargo run --release --ignore-rust-version --example loadgen -- mock-api 127.0.0.1:18080
//! cargo run --release --ignore-rust-version --example loadgen -- send --target 127.0.0.1:2587 --ca certs/dev-ca.pem \
//!     --connections 50 --per-connection 1 --messages 2000 --size 4096
//! ```
//!
//! `send` opens `--connections` concurrent sessions; each does EHLO, STARTTLS (or implicit TLS
//! with `--implicit`), EHLO, AUTH PLAIN, then sends `--per-connection` messages of about
//! `--size` bytes with MAIL/RCPT/DATA pipelined, reconnecting until `--messages` are sent.
//! It prints messages per second, MB per second and the end-of-data latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

type Dyn = Box<dyn Io>;
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Args {
    target: String,
    ca: String,
    key: String,
    connections: usize,
    per_connection: usize,
    messages: usize,
    size: usize,
    implicit: bool,
    attachment: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        target: "127.0.0.1:2587".into(),
        ca: "certs/dev-ca.pem".into(),
        key: "sk_live_dev_sendpigeon_local_0001".into(),
        connections: 50,
        per_connection: 1,
        messages: 2000,
        size: 4096,
        implicit: false,
        attachment: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--target" => a.target = value(),
            "--ca" => a.ca = value(),
            "--key" => a.key = value(),
            "--connections" => a.connections = value().parse().expect("number"),
            "--per-connection" => a.per_connection = value().parse().expect("number"),
            "--messages" => a.messages = value().parse().expect("number"),
            "--size" => a.size = value().parse().expect("number"),
            "--implicit" => a.implicit = true,
            "--attachment" => a.attachment = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("mock-api") => {
            mock_api(&args.next().unwrap_or_else(|| "127.0.0.1:18080".into())).await
        }
        Some("send") => send(parse(args)).await,
        Some("idle") => idle(parse(args)).await,
        _ => {
            eprintln!("usage: loadgen mock-api ADDR | loadgen send [flags] | loadgen idle [flags]")
        }
    }
}

async fn mock_api(addr: &str) {
    use axum::routing::{get, post};
    let counter = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/v1/api-keys/current",
            get(|| async { "{\"key_id\":\"key_1\"}" }),
        )
        .route(
            "/v1/emails",
            post(move |body: axum::body::Bytes| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    drop(body);
                    format!("{{\"id\":\"em_{n}\"}}")
                }
            }),
        )
        // Bodies of 25 MB messages are ~35 MB of JSON.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    eprintln!("mock API on {addr}");
    axum::serve(listener, app).await.expect("serve");
}

/// A text message of about `size` bytes, or (with `attachment`) a short text part and a
/// base64 PDF-typed attachment making up the rest, as large transactional mails are.
fn message(size: usize, attachment: bool) -> Vec<u8> {
    let mut m =
        b"From: Load <load@sender.example>\r\nTo: r@rcpt.example\r\nSubject: load\r\n".to_vec();
    if attachment {
        m.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n");
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let raw: Vec<u8> = (0..size.saturating_sub(600) / 4 * 3)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        for chunk in encoded.as_bytes().chunks(76) {
            m.extend_from_slice(chunk);
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b"--b1--\r\n.\r\n");
        return m;
    }
    m.extend_from_slice(b"\r\n");
    let line = [vec![b'x'; 76], b"\r\n".to_vec()].concat();
    while m.len() + line.len() <= size {
        m.extend_from_slice(&line);
    }
    m.extend_from_slice(b".\r\n");
    m
}

async fn send(a: Args) {
    let tls = client_config(&a.ca);
    let a = Arc::new(a);
    let body = Arc::new(message(a.size, a.attachment));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (a, tls, body, sent, latencies, failures) = (
            a.clone(),
            tls.clone(),
            body.clone(),
            sent.clone(),
            latencies.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while sent.load(Ordering::Relaxed) < a.messages && failures.load(Ordering::Relaxed) < 10
            {
                if let Err(e) = session(&a, &tls, &body, &sent, &mut mine).await {
                    eprintln!("session failed: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let n = l.len();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        println!("{failed} sessions failed: the numbers below are not a clean run");
    }
    println!(
        "messages {n} in {elapsed:.2} s: {:.0} msg/s, {:.1} MB/s; end-of-data latency p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / elapsed,
        (n * a.size) as f64 / elapsed / 1e6,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

/// Opens `--connections` authenticated sessions and keeps them idle (for memory per idle
/// session), printing "ready" once all are up; runs until killed.
async fn idle(a: Args) {
    let tls = client_config(&a.ca);
    let mut held = Vec::new();
    for _ in 0..a.connections {
        match open(&a, &tls).await {
            Ok(io) => held.push(io),
            Err(e) => eprintln!("session failed: {e}"),
        }
    }
    println!("ready: {} idle authenticated sessions", held.len());
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

fn client_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("--ca") {
        roots.add(cert.expect("ca")).expect("ca");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

async fn session(
    a: &Args,
    tls: &Arc<rustls::ClientConfig>,
    body: &[u8],
    sent: &AtomicUsize,
    latencies: &mut Vec<Duration>,
) -> std::io::Result<()> {
    let mut io = open(a, tls).await?;
    for _ in 0..a.per_connection {
        if sent.fetch_add(1, Ordering::Relaxed) >= a.messages {
            break;
        }
        io.get_mut()
            .write_all(b"MAIL FROM:<load@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\nDATA\r\n")
            .await?;
        io.get_mut().flush().await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "354").await?;
        io.get_mut().write_all(body).await?;
        // TLS buffers records until flushed: without this the end of data may never leave.
        io.get_mut().flush().await?;
        let t = Instant::now();
        expect(&mut io, "250").await?;
        latencies.push(t.elapsed());
    }
    io.get_mut().write_all(b"QUIT\r\n").await?;
    io.get_mut().flush().await?;
    let _ = reply(&mut io).await;
    Ok(())
}

/// Connects, reaches TLS (STARTTLS or implicit) and authenticates.
async fn open(a: &Args, tls: &Arc<rustls::ClientConfig>) -> std::io::Result<BufReader<Dyn>> {
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let name = ServerName::try_from("localhost").expect("name");
    let tcp = TcpStream::connect(&a.target).await?;
    tcp.set_nodelay(true)?;
    let mut io: BufReader<Dyn> = if a.implicit {
        let mut io: BufReader<Dyn> = BufReader::new(Box::new(connector.connect(name, tcp).await?));
        reply(&mut io).await?;
        io
    } else {
        let mut plain = BufReader::new(tcp);
        reply(&mut plain).await?;
        plain
            .get_mut()
            .write_all(b"EHLO load.example\r\nSTARTTLS\r\n")
            .await?;
        reply(&mut plain).await?;
        reply(&mut plain).await?;
        BufReader::new(Box::new(connector.connect(name, plain.into_inner()).await?))
    };
    io.get_mut().write_all(b"EHLO load.example\r\n").await?;
    io.get_mut().flush().await?;
    reply(&mut io).await?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("\0apikey\0{}", a.key));
    io.get_mut()
        .write_all(format!("AUTH PLAIN {auth}\r\n").as_bytes())
        .await?;
    io.get_mut().flush().await?;
    expect(&mut io, "235").await?;
    Ok(io)
}

async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        all.push_str(&line);
        if last {
            return Ok(all);
        }
    }
}

async fn expect<R: AsyncBufReadExt + Unpin>(r: &mut R, code: &str) -> std::io::Result<()> {
    let got = reply(r).await?;
    if got.starts_with(code) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("expected {code}, got {got}")))
    }
}
