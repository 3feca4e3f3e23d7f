//! A memory-flood load generator: many clients at once, each sending large messages, and
//! every outcome counted. It drives the measurement of `scripts/memory-flood.sh` ("200 clients
//! each sending 25 MB at once get `250` or `452 4.3.1`, and the process is never killed for
//! memory"), and can be pointed at any running relay.
//!
//! ```text
//! cargo run --release --ignore-rust-version --example flood -- \
//!     --target 127.0.0.1:2587 --ca certs/dev-ca.pem --key sk_live_dev_sendpigeon_local_0001 \
//!     --clients 200 --messages 400 --size 24MiB [--implicit] [--declare-size] [--timeout 600]
//! ```
//!
//! Each client connects once (STARTTLS, or implicit TLS with `--implicit`), authenticates with
//! AUTH PLAIN as `apikey`, then sends messages one after another — MAIL, RCPT, DATA, the data,
//! each command's reply awaited before the next, no pipelining — until `--messages` have been
//! claimed from a shared counter. A message number is claimed once and gets exactly one
//! outcome: `250` accepted, `452` at DATA, `452` after the final dot, another reply (its stage
//! and text are printed), or a connection error. A client whose session closed or failed
//! reconnects; a message is never retried. `--declare-size` adds `SIZE=` to MAIL (the relay
//! then reserves the whole message before `354`).
//!
//! The message is a realistic `--size` bytes (`24MiB`, `25000000`, …): its own `Date` and
//! `Message-ID`, a short text part and one base64 attachment of random bytes in 76-character
//! lines, dot-stuffed. The bulk is built once and shared.
//!
//! Every refusal is printed to stderr as it happens, a progress line every 10 s; the summary
//! goes to stdout, ending with one `flood: key=value ...` line for scripts. The exit status is
//! non-zero only for usage errors: judging the numbers is the caller's business.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Conn = BufReader<Box<dyn Io>>;
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const USAGE: &str = "usage: flood --target HOST:PORT --ca CA.pem [--key KEY] [--clients N] \
[--messages N] [--size BYTES|NKiB|NMiB|NGiB] [--implicit] [--declare-size] [--timeout SECONDS]";

/// Consecutive failed session openings after which a client gives up.
const MAX_OPEN_FAILURES: usize = 20;

struct Args {
    target: String,
    ca: String,
    key: String,
    clients: usize,
    messages: usize,
    size: usize,
    implicit: bool,
    declare_size: bool,
    timeout: Duration,
}

fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(factor)
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        target: String::new(),
        ca: String::new(),
        key: "sk_live_dev_sendpigeon_local_0001".into(),
        clients: 200,
        messages: 400,
        size: 24 << 20,
        implicit: false,
        declare_size: false,
        timeout: Duration::from_secs(600),
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: not a positive number: {v}"))
        };
        match flag.as_str() {
            "--target" => a.target = value()?,
            "--ca" => a.ca = value()?,
            "--key" => a.key = value()?,
            "--clients" => a.clients = number(value()?)?,
            "--messages" => a.messages = number(value()?)?,
            "--size" => {
                let v = value()?;
                a.size = parse_size(&v)
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| format!("--size: want bytes (at least 1024) or NMiB: {v}"))?
            }
            "--timeout" => a.timeout = Duration::from_secs(number(value()?)? as u64),
            "--implicit" => a.implicit = true,
            "--declare-size" => a.declare_size = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.target.is_empty() || a.ca.is_empty() {
        return Err("--target and --ca are required".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("flood: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let tls = match client_config(&args.ca) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("flood: --ca {}: {e}", args.ca);
            std::process::exit(2);
        }
    };
    run(Arc::new(args), tls).await;
}

/// How one claimed message ended.
enum Outcome {
    Accepted { end_latency: Duration },
    Refused452AtData(String),
    Refused452AfterData(String),
    Other { stage: &'static str, reply: String },
    Error { stage: &'static str, error: String },
}

#[derive(Default)]
struct Stats {
    accepted: usize,
    refused_data: usize,
    refused_end: usize,
    /// 452 replies by their text (enhanced code and words).
    refused_texts: BTreeMap<String, usize>,
    /// Other replies by "stage: code text".
    other: BTreeMap<String, usize>,
    /// Errors by "stage: error".
    errors: BTreeMap<String, usize>,
    /// Failed session openings (connect, TLS, EHLO, AUTH) that held no message.
    open_failures: BTreeMap<String, usize>,
    /// Messages that got an outcome (every claimed message must).
    accounted: usize,
    /// Final dot flushed → reply, for accepted messages.
    end_latency: Vec<Duration>,
    /// `354` → final dot flushed: how long the data took to go out (backpressure included).
    data_time: Vec<Duration>,
    /// MAIL → last reply, every message that reached the end of data.
    transaction: Vec<Duration>,
    /// Seconds since the start at which each 452 came, for the timeline.
    refusal_times: Vec<f64>,
    sessions_opened: usize,
}

struct Shared {
    args: Arc<Args>,
    tls: Arc<rustls::ClientConfig>,
    body: Arc<Vec<u8>>,
    /// Message numbers handed out; a number at or past `--messages` is never sent.
    next: AtomicUsize,
    stats: Mutex<Stats>,
    started: Instant,
    run_id: String,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

async fn run(args: Arc<Args>, tls: Arc<rustls::ClientConfig>) {
    let built = Instant::now();
    let body = Arc::new(message_body(args.size.saturating_sub(HEADER_LEN)));
    let message_size = HEADER_LEN + unstuffed_len(&body);
    println!(
        "flood: {} clients, {} messages of {} bytes ({:.2} MiB, built in {:.1} s) to {} ({}){}",
        args.clients,
        args.messages,
        message_size,
        message_size as f64 / f64::from(1 << 20),
        built.elapsed().as_secs_f64(),
        args.target,
        if args.implicit {
            "implicit TLS"
        } else {
            "STARTTLS"
        },
        if args.declare_size {
            ", SIZE= declared"
        } else {
            ""
        },
    );
    let shared = Arc::new(Shared {
        args: args.clone(),
        tls,
        body,
        next: AtomicUsize::new(0),
        stats: Mutex::new(Stats::default()),
        started: Instant::now(),
        run_id: format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        ),
    });
    let progress = tokio::spawn(progress(shared.clone()));
    let clients: Vec<_> = (0..args.clients)
        .map(|id| tokio::spawn(client(shared.clone(), id)))
        .collect();
    for c in clients {
        if let Err(e) = c.await {
            eprintln!("flood: a client task failed: {e}");
        }
    }
    progress.abort();
    let elapsed = shared.elapsed();
    report(&shared, message_size, elapsed);
}

async fn progress(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let claimed = shared
            .next
            .load(Ordering::Relaxed)
            .min(shared.args.messages);
        let s = shared.stats();
        eprintln!(
            "[{:6.1}s] accepted {} | 452 at DATA {} | 452 after data {} | other {} | errors {} | in flight {}",
            shared.elapsed(),
            s.accepted,
            s.refused_data,
            s.refused_end,
            s.other.values().sum::<usize>(),
            s.errors.values().sum::<usize>(),
            claimed - s.accounted,
        );
    }
}

async fn client(shared: Arc<Shared>, id: usize) {
    let args = &shared.args;
    let mut failures = 0;
    'sessions: while shared.next.load(Ordering::Relaxed) < args.messages {
        let mut conn = match tokio::time::timeout(args.timeout, open(args, &shared.tls)).await {
            Ok(Ok(conn)) => {
                failures = 0;
                shared.stats().sessions_opened += 1;
                conn
            }
            result => {
                let error = match result {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                if failures == 0 {
                    // The first of a streak; the summary counts them all.
                    eprintln!(
                        "[{:6.1}s] client {id}: session failed to open: {error}",
                        shared.elapsed()
                    );
                }
                *shared.stats().open_failures.entry(error).or_default() += 1;
                failures += 1;
                if failures >= MAX_OPEN_FAILURES {
                    eprintln!("client {id}: {failures} failed openings in a row, giving up");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let n = shared.next.fetch_add(1, Ordering::Relaxed);
            if n >= args.messages {
                let _ = quit(&mut conn).await;
                return;
            }
            let started = Instant::now();
            let outcome = match tokio::time::timeout(
                args.timeout,
                transaction(&shared, &mut conn, n),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Error {
                    stage: "transaction",
                    error: format!("no outcome within {} s", args.timeout.as_secs()),
                },
            };
            let keep = record(&shared, id, n, started, &outcome);
            if !keep {
                continue 'sessions;
            }
            if matches!(
                outcome,
                Outcome::Refused452AtData(_) | Outcome::Other { .. }
            ) {
                // The transaction may still be open on the server's side.
                match command(&mut conn, b"RSET\r\n").await {
                    Ok(r) if r.starts_with("250") => {}
                    _ => continue 'sessions,
                }
            }
        }
    }
}

/// Records a message's outcome; false when the session is unusable after it.
fn record(shared: &Shared, id: usize, n: usize, started: Instant, outcome: &Outcome) -> bool {
    let t = shared.elapsed();
    let mut s = shared.stats();
    s.accounted += 1;
    let mut keep = true;
    match outcome {
        Outcome::Accepted { end_latency } => {
            s.accepted += 1;
            s.end_latency.push(*end_latency);
            s.transaction.push(started.elapsed());
        }
        Outcome::Refused452AtData(text) | Outcome::Refused452AfterData(text) => {
            let at_data = matches!(outcome, Outcome::Refused452AtData(_));
            if at_data {
                s.refused_data += 1;
            } else {
                s.refused_end += 1;
                s.transaction.push(started.elapsed());
            }
            *s.refused_texts.entry(text.clone()).or_default() += 1;
            s.refusal_times.push(t);
            eprintln!(
                "[{t:6.1}s] client {id} message {n}: {} {} (after {:.1} s in the transaction)",
                if at_data {
                    "452 at DATA:"
                } else {
                    "452 after data:"
                },
                text,
                started.elapsed().as_secs_f64()
            );
        }
        Outcome::Other { stage, reply } => {
            eprintln!("[{t:6.1}s] client {id} message {n}: {stage}: {reply}");
            *s.other.entry(format!("{stage}: {reply}")).or_default() += 1;
            keep = !reply.starts_with("421");
        }
        Outcome::Error { stage, error } => {
            eprintln!("[{t:6.1}s] client {id} message {n}: {stage}: error: {error}");
            *s.errors.entry(format!("{stage}: {error}")).or_default() += 1;
            keep = false;
        }
    }
    keep
}

async fn transaction(shared: &Shared, conn: &mut Conn, n: usize) -> Outcome {
    let args = &shared.args;
    let header = message_header(&shared.run_id, n);
    let mail = if args.declare_size {
        format!(
            "MAIL FROM:<flood@sender.example> SIZE={}\r\n",
            header.len() + unstuffed_len(&shared.body)
        )
    } else {
        "MAIL FROM:<flood@sender.example>\r\n".to_string()
    };
    for (stage, line) in [
        ("MAIL", mail.as_bytes()),
        ("RCPT", b"RCPT TO:<flood@rcpt.example>\r\n".as_slice()),
    ] {
        match command(conn, line).await {
            Ok(r) if r.starts_with("250") => {}
            Ok(r) => return other(stage, &r),
            Err(e) => return error(stage, e),
        }
    }
    match command(conn, b"DATA\r\n").await {
        Ok(r) if r.starts_with("354") => {}
        Ok(r) if r.starts_with("452") => return Outcome::Refused452AtData(text(&r)),
        Ok(r) => return other("DATA", &r),
        Err(e) => return error("DATA", e),
    }
    let data_started = Instant::now();
    let write = async {
        let io = conn.get_mut();
        io.write_all(&header).await?;
        io.write_all(&shared.body).await?;
        // TLS buffers records until flushed: without it the end of data may never leave.
        io.flush().await
    };
    if let Err(e) = write.await {
        // The server may have said why before it closed (a 421, say): read it if it is there.
        return match tokio::time::timeout(Duration::from_secs(2), reply(conn)).await {
            Ok(Ok(r)) => other("data", &r),
            _ => error("data", e),
        };
    }
    let flushed = Instant::now();
    shared.stats().data_time.push(flushed - data_started);
    match reply(conn).await {
        Ok(r) if r.starts_with("250") => Outcome::Accepted {
            end_latency: flushed.elapsed(),
        },
        Ok(r) if r.starts_with("452") => Outcome::Refused452AfterData(text(&r)),
        Ok(r) => other("end of data", &r),
        Err(e) => error("end of data", e),
    }
}

fn other(stage: &'static str, reply: &str) -> Outcome {
    Outcome::Other {
        stage,
        reply: text(reply),
    }
}

fn error(stage: &'static str, e: std::io::Error) -> Outcome {
    Outcome::Error {
        stage,
        error: e.to_string(),
    }
}

/// A reply on one line, without its line ends, cut to 120 characters.
fn text(reply: &str) -> String {
    let one: String = reply
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" / ");
    one.chars().take(120).collect()
}

async fn command(conn: &mut Conn, line: &[u8]) -> std::io::Result<String> {
    conn.get_mut().write_all(line).await?;
    conn.get_mut().flush().await?;
    reply(conn).await
}

async fn quit(conn: &mut Conn) -> std::io::Result<()> {
    tokio::time::timeout(Duration::from_secs(5), command(conn, b"QUIT\r\n"))
        .await
        .map_err(|_| std::io::Error::other("QUIT timed out"))?
        .map(drop)
}

fn client_config(ca: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no certificate in the file".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects, reaches TLS (STARTTLS or implicit) and authenticates.
async fn open(a: &Args, tls: &Arc<rustls::ClientConfig>) -> std::io::Result<Conn> {
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(&a.target).await?;
    tcp.set_nodelay(true)?;
    let mut conn: Conn = if a.implicit {
        let mut conn: Conn = BufReader::new(Box::new(connector.connect(name, tcp).await?));
        want(reply(&mut conn).await?, "220")?;
        conn
    } else {
        let mut plain = BufReader::new(tcp);
        want(reply(&mut plain).await?, "220")?;
        plain.get_mut().write_all(b"EHLO flood.example\r\n").await?;
        want(reply(&mut plain).await?, "250")?;
        plain.get_mut().write_all(b"STARTTLS\r\n").await?;
        want(reply(&mut plain).await?, "220")?;
        BufReader::new(Box::new(connector.connect(name, plain.into_inner()).await?))
    };
    want(command(&mut conn, b"EHLO flood.example\r\n").await?, "250")?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("\0apikey\0{}", a.key));
    want(
        command(&mut conn, format!("AUTH PLAIN {auth}\r\n").as_bytes()).await?,
        "235",
    )?;
    Ok(conn)
}

fn want(reply: String, code: &str) -> std::io::Result<()> {
    if reply.starts_with(code) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "expected {code}, got {}",
            text(&reply)
        )))
    }
}

async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        all.push_str(&line);
        if last {
            return Ok(all);
        }
    }
}

/// Length of every message's own header block (fixed: the numbers are zero-padded).
const HEADER_LEN: usize = 216;

/// The header fields that differ per message: `Date` and a unique `Message-ID`, so each is a
/// distinct message to the relay and the API (its own idempotency key).
fn message_header(run_id: &str, n: usize) -> Vec<u8> {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 2026 00:00:00 +0000".into());
    let mut h = format!(
        "From: Flood <flood@sender.example>\r\nTo: flood@rcpt.example\r\n\
         Subject: flood {n:08}\r\nDate: {date}\r\n\
         Message-ID: <{n:08}.{run_id:0>16}@flood.sender.example>\r\n"
    )
    .into_bytes();
    // Pad to the fixed length with an extra header (the date's length can vary by a byte).
    let pad = HEADER_LEN.saturating_sub(h.len() + "X-Flood: \r\n".len());
    h.extend_from_slice(format!("X-Flood: {}\r\n", "x".repeat(pad)).as_bytes());
    h
}

/// The rest of the message, about `size` bytes before dot-stuffing: MIME headers, a short
/// text part and a base64 attachment of random bytes in 76-character lines; dot-stuffed and
/// ending with the final `.` line.
fn message_body(size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + 1024);
    m.extend_from_slice(
        b"MIME-Version: 1.0\r\n\
          Content-Type: multipart/mixed; boundary=\"=_flood_boundary_7f3a\"\r\n\
          \r\n\
          This is a multi-part message in MIME format.\r\n\
          \r\n\
          --=_flood_boundary_7f3a\r\n\
          Content-Type: text/plain; charset=utf-8\r\n\
          Content-Transfer-Encoding: 7bit\r\n\
          \r\n\
          Hello,\r\n\
          \r\n\
          the quarterly archive is attached.\r\n\
          .hidden lines starting with a dot must be stuffed.\r\n\
          \r\n\
          -- \r\n\
          Flood\r\n\
          \r\n\
          --=_flood_boundary_7f3a\r\n\
          Content-Type: application/zip; name=\"archive.zip\"\r\n\
          Content-Transfer-Encoding: base64\r\n\
          Content-Disposition: attachment; filename=\"archive.zip\"\r\n\
          \r\n",
    );
    let tail = b"\r\n--=_flood_boundary_7f3a--\r\n";
    // Base64 takes 57 raw bytes to a 76-character line plus CRLF (78 bytes).
    let room = size.saturating_sub(m.len() + tail.len());
    let raw_len = room / 78 * 57 + (room % 78).saturating_sub(2) / 4 * 3;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut raw = Vec::with_capacity(raw_len + 8);
    while raw.len() < raw_len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        raw.extend_from_slice(&seed.to_le_bytes());
    }
    raw.truncate(raw_len);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
    let lines: Vec<&[u8]> = encoded.as_bytes().chunks(76).collect();
    for (i, line) in lines.iter().enumerate() {
        m.extend_from_slice(line);
        if i + 1 < lines.len() {
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(tail);
    let mut stuffed = dot_stuff(&m);
    stuffed.extend_from_slice(b".\r\n");
    stuffed
}

/// RFC 5321 4.5.2: a line starting with `.` gets one more. `text` starts at a line start.
fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut line_start = true;
    for &b in text {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out
}

/// The size of the message the relay receives from a stuffed body: without the final `.`
/// line and without the stuffing dots.
fn unstuffed_len(stuffed: &[u8]) -> usize {
    let body = &stuffed[..stuffed.len() - 3];
    let stuffing = body
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b".."))
        .count();
    body.len() - stuffing
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64()
}

fn report(shared: &Shared, message_size: usize, elapsed: f64) {
    let args = &shared.args;
    let mut guard = shared.stats();
    let s = &mut *guard;
    let claimed = shared.next.load(Ordering::Relaxed).min(args.messages);
    let not_attempted = args.messages - claimed;
    let unaccounted = claimed.saturating_sub(s.accounted);
    let other: usize = s.other.values().sum();
    let errors: usize = s.errors.values().sum();
    let open_failures: usize = s.open_failures.values().sum();
    for v in [&mut s.end_latency, &mut s.data_time, &mut s.transaction] {
        v.sort();
    }
    s.refusal_times
        .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let accepted_bytes = s.accepted * message_size;
    let mb_s = accepted_bytes as f64 / elapsed / 1e6;
    println!("== flood summary");
    println!(
        "messages:           {} asked, {claimed} attempted",
        args.messages
    );
    println!(
        "accepted (250):     {} ({:.1}%)",
        s.accepted,
        100.0 * s.accepted as f64 / args.messages as f64
    );
    println!("452 at DATA:        {}", s.refused_data);
    println!("452 after data:     {}", s.refused_end);
    for (t, n) in &s.refused_texts {
        println!("    {n:4} x {t}");
    }
    if let (Some(first), Some(last)) = (s.refusal_times.first(), s.refusal_times.last()) {
        println!("    452s came between {first:.1} s and {last:.1} s after the start");
    }
    println!("other replies:      {other}");
    for (t, n) in &s.other {
        println!("    {n:4} x {t}");
    }
    println!("errors:             {errors}");
    for (t, n) in &s.errors {
        println!("    {n:4} x {t}");
    }
    println!("not attempted:      {not_attempted}");
    println!("unaccounted:        {unaccounted}");
    println!(
        "sessions:           {} opened, {open_failures} failed to open",
        s.sessions_opened
    );
    for (t, n) in &s.open_failures {
        println!("    {n:4} x {t}");
    }
    println!(
        "elapsed:            {elapsed:.1} s; accepted {:.1} MB/s ({:.2} msg/s)",
        mb_s,
        s.accepted as f64 / elapsed
    );
    println!(
        "end-of-data latency (accepted): p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        percentile(&s.end_latency, 0.5),
        percentile(&s.end_latency, 0.99),
        percentile(&s.end_latency, 1.0)
    );
    println!(
        "data sending time (354 to final dot flushed, waits included): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        percentile(&s.data_time, 0.5),
        percentile(&s.data_time, 0.99),
        percentile(&s.data_time, 1.0)
    );
    println!(
        "transaction time (MAIL to final reply): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        percentile(&s.transaction, 0.5),
        percentile(&s.transaction, 0.99),
        percentile(&s.transaction, 1.0)
    );
    println!(
        "flood: messages={} attempted={claimed} accepted={} refused_452_data={} refused_452_end={} \
         other={other} errors={errors} not_attempted={not_attempted} unaccounted={unaccounted} \
         open_failures={open_failures} elapsed_s={elapsed:.1} mb_s={mb_s:.1} \
         eod_p50_s={:.3} eod_p99_s={:.3} message_bytes={message_size}",
        args.messages,
        s.accepted,
        s.refused_data,
        s.refused_end,
        percentile(&s.end_latency, 0.5),
        percentile(&s.end_latency, 0.99),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("24MiB"), Some(24 << 20));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("2 KiB"), Some(2048));
        assert_eq!(parse_size("24XB"), None);
    }

    #[test]
    fn the_message_has_the_asked_size_and_is_stuffed() {
        let header = message_header("abc", 7);
        assert_eq!(header.len(), HEADER_LEN);
        for size in [10_000, 1 << 20, (1 << 20) + 77] {
            let body = message_body(size - HEADER_LEN);
            let total = HEADER_LEN + unstuffed_len(&body);
            assert!(total <= size && size - total < 80, "{size} -> {total}");
            assert!(body.ends_with(b"\r\n.\r\n"));
            assert!(
                body.windows(4).any(|w| w == b"\n..h"),
                "the dot line is stuffed"
            );
        }
    }
}
