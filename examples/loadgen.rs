//! A load generator for the relay, and a stand-in REST API fast enough not to be the
//! bottleneck. Used for the README's performance numbers.
//!
//! ```text
//! cargo run --release --example loadgen -- mock-api 127.0.0.1:18080
//! cargo run --release --example loadgen -- send --target 127.0.0.1:2587 --ca certs/dev-ca.pem \
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
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => a.target = value(),
            "--ca" => a.ca = value(),
            "--key" => a.key = value(),
            "--connections" => a.connections = value().parse().expect("number"),
            "--per-connection" => a.per_connection = value().parse().expect("number"),
            "--messages" => a.messages = value().parse().expect("number"),
            "--size" => a.size = value().parse().expect("number"),
            "--implicit" => a.implicit = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("mock-api") => mock_api(&args.next().unwrap_or_else(|| "127.0.0.1:18080".into())).await,
        Some("send") => send(parse(args)).await,
        _ => eprintln!("usage: loadgen mock-api ADDR | loadgen send [flags]"),
    }
}

async fn mock_api(addr: &str) {
    use axum::routing::{get, post};
    let counter = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/v1/api-keys/current", get(|| async { "{\"key_id\":\"key_1\"}" }))
        .route(
            "/v1/emails",
            post(move |body: axum::body::Bytes| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move {
                    drop(body);
                    format!("{{\"id\":\"em_{n}\"}}")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    eprintln!("mock API on {addr}");
    axum::serve(listener, app).await.expect("serve");
}

fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: Load <load@sender.example>\r\nTo: r@rcpt.example\r\nSubject: load\r\n\r\n".to_vec();
    let line = [vec![b'x'; 76], b"\r\n".to_vec()].concat();
    while m.len() + line.len() <= size {
        m.extend_from_slice(&line);
    }
    m.extend_from_slice(b".\r\n");
    m
}

async fn send(a: Args) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&a.ca).expect("--ca") {
        roots.add(cert.expect("ca")).expect("ca");
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let a = Arc::new(a);
    let body = Arc::new(message(a.size));
    let sent = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (a, tls, body, sent, latencies) = (a.clone(), tls.clone(), body.clone(), sent.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while sent.load(Ordering::Relaxed) < a.messages {
                if let Err(e) = session(&a, &tls, &body, &sent, &mut mine).await {
                    eprintln!("session failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
    let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or_default();
    let n = l.len();
    println!(
        "messages {n} in {elapsed:.2} s: {:.0} msg/s, {:.1} MB/s; end-of-data latency p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / elapsed,
        (n * a.size) as f64 / elapsed / 1e6,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn session(
    a: &Args,
    tls: &Arc<rustls::ClientConfig>,
    body: &[u8],
    sent: &AtomicUsize,
    latencies: &mut Vec<Duration>,
) -> std::io::Result<()> {
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let name = ServerName::try_from("localhost").expect("name");
    let tcp = TcpStream::connect(&a.target).await?;
    tcp.set_nodelay(true)?;
    let mut io: BufReader<Dyn> = if a.implicit {
        BufReader::new(Box::new(connector.connect(name, tcp).await?))
    } else {
        let mut plain = BufReader::new(tcp);
        reply(&mut plain).await?;
        plain.get_mut().write_all(b"EHLO load.example\r\nSTARTTLS\r\n").await?;
        reply(&mut plain).await?;
        reply(&mut plain).await?;
        let tcp = plain.into_inner();
        let mut io: BufReader<Dyn> = BufReader::new(Box::new(connector.connect(name, tcp).await?));
        io.get_mut().write_all(b"EHLO load.example\r\n").await?;
        reply(&mut io).await?;
        io
    };
    if a.implicit {
        reply(&mut io).await?;
        io.get_mut().write_all(b"EHLO load.example\r\n").await?;
        reply(&mut io).await?;
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("\0apikey\0{}", a.key));
    io.get_mut().write_all(format!("AUTH PLAIN {auth}\r\n").as_bytes()).await?;
    expect(&mut io, "235").await?;
    for _ in 0..a.per_connection {
        if sent.fetch_add(1, Ordering::Relaxed) >= a.messages {
            break;
        }
        io.get_mut()
            .write_all(b"MAIL FROM:<load@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\nDATA\r\n")
            .await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "354").await?;
        io.get_mut().write_all(body).await?;
        let t = Instant::now();
        expect(&mut io, "250").await?;
        latencies.push(t.elapsed());
    }
    io.get_mut().write_all(b"QUIT\r\n").await?;
    let _ = reply(&mut io).await;
    Ok(())
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
