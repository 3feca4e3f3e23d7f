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
//! `idle` opens `--connections` authenticated sessions and holds them.
//!
//! The message is lines of text; `--html` makes it a text/plain and text/html
//! multipart/alternative (as transactional mail is), `--attachment` adds a base64 attachment
//! making up the size. `--no-pipelining` waits for each reply before the next command (EHLO,
//! STARTTLS, MAIL, RCPT, DATA), as most SMTP client libraries do.
//!
//! Measuring the relay (what `scripts/bench.sh` uses): `--watch-pid PID` reads the relay's
//! CPU time (utime + stime in `/proc/PID/stat`) before and after the load and reports it per
//! accepted message, and samples its RSS (`VmRSS`, `RssAnon`) every 20 ms plus `VmHWM` (reset
//! through `/proc/PID/clear_refs` first) for the peak. With `--watch-pid`, `idle` measures the
//! relay's RSS before the sessions and `--settle-ms` (default 2000) after the last one is up,
//! prints the growth per session, closes the sessions with QUIT and exits instead of holding
//! them. `--json` prints the results as one line of flat JSON on stdout (the human-readable
//! lines go to stderr then).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    html: bool,
    pipelining: bool,
    watch_pid: Option<u32>,
    json: bool,
    settle: Duration,
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
        html: false,
        pipelining: true,
        watch_pid: None,
        json: false,
        settle: Duration::from_millis(2000),
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
            "--html" => a.html = true,
            "--no-pipelining" => a.pipelining = false,
            "--watch-pid" => a.watch_pid = Some(value().parse().expect("pid")),
            "--json" => a.json = true,
            "--settle-ms" => a.settle = Duration::from_millis(value().parse().expect("number")),
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
            eprintln!(
                "usage: loadgen mock-api ADDR | loadgen send [flags] | loadgen idle [flags]\n\
                 flags: --target ADDR --ca PEM --key KEY --connections N --per-connection K\n\
                 --messages N --size BYTES --implicit --attachment --html --no-pipelining\n\
                 --watch-pid PID --json --settle-ms MS (see the top of examples/loadgen.rs)"
            )
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
/// base64 PDF-typed attachment making up the rest, as large transactional mails are. With
/// `html`, the text is a multipart/alternative of a text/plain and a text/html part (with an
/// attachment: about 1.5 KB and 2.5 KB, as in a receipt). It has a `Date` and a
/// `Message-ID`, as every client library adds, so the relay derives an Idempotency-Key (a
/// SHA-256 over the message: about 6 ms of CPU per 10 MiB).
fn message(size: usize, attachment: bool, html: bool) -> Vec<u8> {
    let mut m =
        b"From: Load <load@sender.example>\r\nTo: r@rcpt.example\r\nSubject: load\r\nDate: Fri, 04 Dec 2026 09:30:00 +0000\r\nMessage-ID: <load.1@sender.example>\r\n".to_vec();
    if attachment {
        m.extend_from_slice(
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n",
        );
        if html {
            alternative(&mut m, 1500, 2500);
        } else {
            m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nSee the attachment.\r\n");
        }
        m.extend_from_slice(b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n");
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        // Whole base64 lines (76 characters + CRLF = 57 bytes) filling `size` with the rest.
        let lines = size.saturating_sub(m.len() + b"--b1--\r\n".len()) / 78;
        let raw: Vec<u8> = (0..lines.max(1) * 57)
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
    if html {
        m.extend_from_slice(b"MIME-Version: 1.0\r\n");
        // The two parts share what is left after the headers and the boundaries (~300 bytes).
        let text = size.saturating_sub(m.len() + 320);
        alternative(&mut m, text * 45 / 100, text - text * 45 / 100);
        m.extend_from_slice(b".\r\n");
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

/// A multipart/alternative entity (its Content-Type header onwards): a text/plain part of
/// about `text` bytes and a text/html part of about `html` bytes, lines of words.
fn alternative(m: &mut Vec<u8>, text: usize, html: usize) {
    m.extend_from_slice(b"Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    words(m, text, "", "");
    m.extend_from_slice(b"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n");
    words(m, html.saturating_sub(30), "<p>", "</p>");
    m.extend_from_slice(b"</body></html>\r\n--b2--\r\n");
}

/// Lines of words (none starting with "."), each wrapped in `pre` and `post`, until about
/// `n` bytes are added.
fn words(m: &mut Vec<u8>, n: usize, pre: &str, post: &str) {
    const WORDS: &[&str] = &[
        "your",
        "order",
        "has",
        "shipped",
        "and",
        "will",
        "arrive",
        "on",
        "thursday",
        "thank",
        "you",
        "for",
        "shopping",
        "with",
        "us",
        "invoice",
        "account",
        "payment",
        "receipt",
        "tracking",
        "number",
        "questions",
        "reply",
        "to",
        "this",
        "email",
        "the",
        "team",
    ];
    let end = m.len() + n;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    while m.len() < end {
        let mut line = String::from(pre);
        while line.len() < 66 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            line.push_str(WORDS[(seed % WORDS.len() as u64) as usize]);
            line.push(' ');
        }
        line.pop();
        line.push_str(post);
        line.push_str("\r\n");
        m.extend_from_slice(line.as_bytes());
    }
}

async fn send(a: Args) {
    let tls = client_config(&a.ca);
    let a = Arc::new(a);
    let body = Arc::new(message(a.size, a.attachment, a.html));
    // The message as submitted: without the terminating ".\r\n" (no line starts with ".").
    let bytes_per_message = body.len() - 3;
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.messages)));
    let watch = a.watch_pid.map(Watch::start);
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
    let relay = watch.map(Watch::finish);
    let mut l = latencies.lock().await.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    let n = l.len();
    let failed = failures.load(Ordering::Relaxed);
    let (p50, p99) = (pct(0.5), pct(0.99));
    let msgs_per_s = n as f64 / elapsed;
    let mb_per_s = (n * bytes_per_message) as f64 / elapsed / 1e6;
    let mut human = Vec::new();
    if failed > 0 {
        human.push(format!(
            "{failed} sessions failed: the numbers below are not a clean run"
        ));
    }
    human.push(format!(
        "messages {n} in {elapsed:.2} s: {msgs_per_s:.0} msg/s, {mb_per_s:.1} MB/s; end-of-data latency p50 {p50:.2} ms, p99 {p99:.2} ms",
    ));
    let cpu_ms_per_msg = relay
        .as_ref()
        .and_then(|r| r.cpu_s)
        .map(|c| if n > 0 { c * 1e3 / n as f64 } else { 0.0 });
    if let Some(r) = &relay {
        human.push(format!(
            "relay pid {}: CPU {} ms per message; peak RSS {} MB ({} MB anonymous), VmHWM {} MB",
            r.pid,
            opt(cpu_ms_per_msg, 3),
            opt(Some(r.rss_peak_kb as f64 / 1024.0), 1),
            opt(Some(r.anon_peak_kb as f64 / 1024.0), 1),
            opt(r.hwm_kb.map(|k| k as f64 / 1024.0), 1),
        ));
    }
    let record = serde_json::json!({
        "mode": "send",
        "connections": a.connections,
        "per_connection": a.per_connection,
        "messages": n,
        "failed_sessions": failed,
        "bytes_per_message": bytes_per_message,
        "elapsed_s": round3(elapsed),
        "msgs_per_s": round3(msgs_per_s),
        "mb_per_s": round3(mb_per_s),
        "p50_ms": round3(p50),
        "p99_ms": round3(p99),
        "relay_pid": a.watch_pid,
        "relay_cpu_s": relay.as_ref().and_then(|r| r.cpu_s).map(round3),
        "relay_cpu_ms_per_msg": cpu_ms_per_msg.map(round3),
        "relay_rss_peak_kb": relay.as_ref().map(|r| r.rss_peak_kb),
        "relay_anon_peak_kb": relay.as_ref().map(|r| r.anon_peak_kb),
        "relay_hwm_kb": relay.as_ref().and_then(|r| r.hwm_kb),
    });
    report(a.json, &human, &record);
}

/// Opens `--connections` authenticated sessions and keeps them idle (for memory per idle
/// session), printing "ready" once all are up; runs until killed. With `--watch-pid`:
/// measures the relay's RSS growth per session after `--settle-ms`, then QUITs and returns.
async fn idle(a: Args) {
    let tls = client_config(&a.ca);
    let before = a.watch_pid.and_then(memory_kb);
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..a.connections {
        match open(&a, &tls).await {
            Ok(io) => held.push(io),
            Err(e) => eprintln!("session failed: {e}"),
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    let ready = format!("ready: {} idle authenticated sessions", held.len());
    let Some(pid) = a.watch_pid else {
        println!("{ready}");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    };
    eprintln!("{ready} ({open_s:.1} s)");
    tokio::time::sleep(a.settle).await;
    let during = memory_kb(pid);
    let n = held.len();
    let per = |f: fn(&(u64, u64)) -> u64| match (&before, &during) {
        (Some(b), Some(d)) if n > 0 => Some((f(d) as f64 - f(b) as f64) / n as f64),
        _ => None,
    };
    let (kb, anon_kb) = (per(|m| m.0), per(|m| m.1));
    let human = vec![format!(
        "{n} idle sessions on relay pid {pid}: RSS {} -> {} MB, {} KB per session ({} KB anonymous)",
        opt(before.map(|m| m.0 as f64 / 1024.0), 1),
        opt(during.map(|m| m.0 as f64 / 1024.0), 1),
        opt(kb, 1),
        opt(anon_kb, 1),
    )];
    let record = serde_json::json!({
        "mode": "idle",
        "sessions": a.connections,
        "established": n,
        "open_s": round3(open_s),
        "relay_pid": pid,
        "relay_rss_before_kb": before.map(|m| m.0),
        "relay_rss_idle_kb": during.map(|m| m.0),
        "relay_anon_before_kb": before.map(|m| m.1),
        "relay_anon_idle_kb": during.map(|m| m.1),
        "kb_per_session": kb.map(round3),
        "anon_kb_per_session": anon_kb.map(round3),
    });
    for io in &mut held {
        let _ = io.get_mut().write_all(b"QUIT\r\n").await;
        let _ = io.get_mut().flush().await;
    }
    for mut io in held {
        let _ = tokio::time::timeout(Duration::from_secs(5), reply(&mut io)).await;
    }
    report(a.json, &human, &record);
}

/// Human-readable lines on stdout; or, with `--json`, those on stderr and one JSON line on
/// stdout.
fn report(json: bool, human: &[String], record: &serde_json::Value) {
    for line in human {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if json {
        println!("{record}");
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

// ------------------------------------------------------------ the relay's process, from /proc

/// Fields of `/proc/PID/stat` after the `(comm)` field: [0] = state, [11] = utime,
/// [12] = stime (in clock ticks; the process's threads included).
fn cpu_s(pid: u32, tick: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / tick)
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// One `Key:   123 kB` line of `/proc/PID/status`.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (VmRSS, RssAnon) in KiB.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        status_kb(&s, "VmRSS:")?,
        status_kb(&s, "RssAnon:").unwrap_or(0),
    ))
}

/// Watches the relay during a load: CPU time before and after, RSS sampled in a thread.
struct Watch {
    pid: u32,
    tick: f64,
    cpu0: Option<f64>,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, u64)>,
}

struct Watched {
    pid: u32,
    cpu_s: Option<f64>,
    rss_peak_kb: u64,
    anon_peak_kb: u64,
    /// VmHWM, when it could be reset before the load (else it would be the lifetime peak).
    hwm_kb: Option<u64>,
}

impl Watch {
    fn start(pid: u32) -> Watch {
        let tick = clock_ticks();
        // "5" resets the peak RSS (VmHWM) to the current RSS; needs rights over the process.
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (mut rss, mut anon) = (0, 0);
            while !halt.load(Ordering::Relaxed) {
                if let Some((r, a)) = memory_kb(pid) {
                    rss = rss.max(r);
                    anon = anon.max(a);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (rss, anon)
        });
        let cpu0 = cpu_s(pid, tick);
        Watch {
            pid,
            tick,
            cpu0,
            hwm_reset,
            stop,
            sampler,
        }
    }

    fn finish(self) -> Watched {
        // Let the relay finish closing the last sessions before reading its CPU time.
        std::thread::sleep(Duration::from_millis(200));
        let cpu1 = cpu_s(self.pid, self.tick);
        self.stop.store(true, Ordering::Relaxed);
        let (rss_peak_kb, anon_peak_kb) = self.sampler.join().unwrap_or((0, 0));
        let hwm_kb = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| status_kb(&s, "VmHWM:"))
            .filter(|_| self.hwm_reset);
        Watched {
            pid: self.pid,
            cpu_s: match (self.cpu0, cpu1) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            rss_peak_kb,
            anon_peak_kb,
            hwm_kb,
        }
    }
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
        const ENVELOPE: [(&[u8], &str); 3] = [
            (b"MAIL FROM:<load@sender.example>\r\n", "250"),
            (b"RCPT TO:<r@rcpt.example>\r\n", "250"),
            (b"DATA\r\n", "354"),
        ];
        if a.pipelining {
            io.get_mut()
                .write_all(&ENVELOPE.map(|(c, _)| c).concat())
                .await?;
            io.get_mut().flush().await?;
            for (_, code) in ENVELOPE {
                expect(&mut io, code).await?;
            }
        } else {
            for (command, code) in ENVELOPE {
                io.get_mut().write_all(command).await?;
                io.get_mut().flush().await?;
                expect(&mut io, code).await?;
            }
        }
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
        if a.pipelining {
            plain
                .get_mut()
                .write_all(b"EHLO load.example\r\nSTARTTLS\r\n")
                .await?;
            reply(&mut plain).await?;
        } else {
            plain.get_mut().write_all(b"EHLO load.example\r\n").await?;
            reply(&mut plain).await?;
            plain.get_mut().write_all(b"STARTTLS\r\n").await?;
        }
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
