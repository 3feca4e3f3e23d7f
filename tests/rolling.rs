//! A rolling deployment, as operators run one: the shipped HAProxy example
//! (`deploy/haproxy/haproxy.cfg`: send-proxy-v2, `/readyz` checks `inter 2s fall 3 rise 2`,
//! `option redispatch`) in front of two relay processes with `server.shutdown_delay = "6s"`,
//! each sent SIGTERM and started again in turn while clients keep sending, against a stand-in
//! API that deduplicates by Idempotency-Key (as the REST API does) and injects faults (503s,
//! slow answers); some clients also drop their connection in the middle of DATA, or right
//! after it without reading the reply, then send the same message again.
//!
//! Nothing may be lost (every `250` is at the API under the id it named) or doubled (one
//! Idempotency-Key per message, so the API created each message once), nothing
//! half-forwarded, both old processes exit 0, and the `421`s clients saw are printed
//! (`cargo nextest run --test rolling --no-capture`): a new connection greeted with `421`
//! means the balancer still sent traffic to a draining replica, which the shutdown delay
//! exists to prevent; an idle pooled connection told `421` when its replica drains is
//! normal SMTP and the client reconnects. Needs `haproxy` (`.ci/run` installs it).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::{Io, plain, tls_connector};
use common::free_port;
use common::mock_api::{Answer, MockApi};
use common::process::{admin_status, signal};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "sk_live_rolling_0001";
const CLIENTS: usize = 6;

/// One relay replica: its ports stay the same across restarts, as a host's would.
struct Replica {
    name: &'static str,
    submission: u16,
    submissions: u16,
    admin: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn new(name: &'static str, dir: &Path, api: &str) -> Replica {
        let (submission, submissions, admin) = (free_port(), free_port(), free_port());
        let d = dir.display();
        let config = format!(
            r#"[server]
hostname = "localhost"
shutdown_grace = "25s"
shutdown_delay = "6s"

[[listeners]]
kind = "starttls"
address = "127.0.0.1:{submission}"
proxy_protocol = true
trusted_proxies = ["127.0.0.1/32"]

[[listeners]]
kind = "auto"
address = "127.0.0.1:{submissions}"
proxy_protocol = true
trusted_proxies = ["127.0.0.1/32"]

[tls]
certificate = "{d}/cert.pem"
key = "{d}/key.pem"
generate_if_missing = true
development_ca = "{d}/ca.pem"

[auth]
verify = "upstream"

[upstream]
url = "{api}"

[admin]
address = "127.0.0.1:{admin}"

[log]
format = "json"
"#
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        Replica {
            name,
            submission,
            submissions,
            admin,
            config: path,
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts the binary (its log appended to `<name>.log`) and waits for `/readyz` 200.
    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sendpigeon-relay"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let admin = self.admin;
        wait_for(
            &format!("{} ready", self.name),
            Duration::from_secs(20),
            || admin_status(admin, "/readyz") == Some(200),
        )
        .await;
    }

    /// SIGTERM.
    fn terminate(&self) {
        signal(self.child.as_ref().unwrap(), "TERM");
    }

    /// Waits for the process to exit and returns its exit code.
    async fn exited(&mut self, within: Duration) -> Option<i32> {
        // The child stays in `self` until it has exited, so a timeout still kills it on drop.
        let what = format!("{} to exit after SIGTERM", self.name);
        let child = self.child.as_mut().unwrap();
        let mut status = None;
        wait_for(&what, within, || {
            status = child.try_wait().unwrap();
            status.is_some()
        })
        .await;
        self.child = None;
        status.and_then(|s| s.code())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a synchronous condition (a file, a status) with a deadline.
async fn wait_for(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    common::wait::until(what, within, || std::future::ready(condition())).await;
}

struct Haproxy {
    child: Child,
    socket: PathBuf,
    submission: SocketAddr,
    submissions: SocketAddr,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// The shipped example with only its addresses changed (and a stats socket added, for
    /// the test to see what HAProxy thinks of each server).
    fn start(dir: &Path, replicas: &[&Replica]) -> Haproxy {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read_to_string(root.join("deploy/haproxy/haproxy.cfg")).unwrap();
        let (submission, submissions) = (free_port(), free_port());
        let socket = dir.join("haproxy.sock");
        let mut config = shipped
            .replace(
                "    maxconn 20000\n",
                &format!(
                    "    maxconn 2000\n    stats socket {} level admin\n",
                    socket.display()
                ),
            )
            .replace("bind :587", &format!("bind 127.0.0.1:{submission}"))
            .replace("bind :465", &format!("bind 127.0.0.1:{submissions}"));
        for (host, replica) in ["10.0.1.11", "10.0.1.12"].iter().zip(replicas) {
            for (port, local) in [(2587, replica.submission), (2465, replica.submissions)] {
                config = config.replace(
                    &format!("{host}:{port} check port 9587"),
                    &format!("127.0.0.1:{local} check port {}", replica.admin),
                );
            }
        }
        assert!(
            !config.contains("10.0.1.") && config.contains("stats socket"),
            "the shipped haproxy.cfg changed shape; update tests/rolling.rs:\n{config}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haproxy is installed (.ci/run)");
        Haproxy {
            child,
            socket,
            submission: format!("127.0.0.1:{submission}").parse().unwrap(),
            submissions: format!("127.0.0.1:{submissions}").parse().unwrap(),
        }
    }

    /// Each server's status in every backend ("UP", "DOWN", "UP 1/2", ...), by server name.
    fn statuses(&self) -> HashMap<String, Vec<String>> {
        use std::io::{Read, Write};
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let Ok(mut socket) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return map;
        };
        if socket.write_all(b"show stat\n").is_err() {
            return map;
        }
        let mut text = String::new();
        let _ = socket.read_to_string(&mut text);
        // CSV: pxname, svname, ..., status is the 18th field.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() > 17 && fields[1].starts_with("relay") {
                map.entry(fields[1].to_string())
                    .or_default()
                    .push(fields[17].to_string());
            }
        }
        map
    }

    /// True when `server` is UP (or DOWN) in both backends.
    fn server_is(&self, server: &str, up: bool) -> bool {
        self.statuses().get(server).is_some_and(|states| {
            states.len() == 2
                && states
                    .iter()
                    .all(|s| if up { s == "UP" } else { s.starts_with("DOWN") })
        })
    }
}

/// What the stand-in API created, by Idempotency-Key: (id, subject, text).
type Created = Arc<Mutex<HashMap<String, (String, String, String)>>>;

/// The stand-in API's fault and replay counts.
#[derive(Default)]
struct ApiCounts {
    replays: AtomicUsize,
    injected_503: AtomicUsize,
}

/// The stand-in API: a replay of a key gets the first answer; every 11th new send is a
/// `503` with `Retry-After: 1`, every 5th is answered after 800 ms.
fn dedup_api(api: &MockApi) -> (Created, Arc<ApiCounts>) {
    let created: Created = Arc::default();
    let counts = Arc::new(ApiCounts::default());
    let (table, counted) = (Arc::clone(&created), Arc::clone(&counts));
    let sends = AtomicUsize::new(0);
    api.answer_sends(KEY, move |r| {
        let key = r
            .header("idempotency-key")
            .expect("every test message has a Message-ID, so a derived key")
            .to_string();
        let mut table = table.lock().unwrap();
        if let Some((id, _, _)) = table.get(&key) {
            counted.replays.fetch_add(1, Ordering::SeqCst);
            return Answer::json(200, serde_json::json!({ "id": id }));
        }
        let n = sends.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(11) {
            counted.injected_503.fetch_add(1, Ordering::SeqCst);
            return Answer::status(503, "").with_header("retry-after", "1");
        }
        let body = r.json();
        let id = format!("em_{n}");
        table.insert(
            key,
            (
                id.clone(),
                body["subject"].as_str().unwrap_or("").to_string(),
                body["text"].as_str().unwrap_or("").to_string(),
            ),
        );
        let answer = Answer::json(200, serde_json::json!({ "id": id }));
        if n.is_multiple_of(5) {
            answer.delayed(Duration::from_millis(800))
        } else {
            answer
        }
    });
    (created, counts)
}

fn subject(n: usize) -> String {
    format!("rolling {n}")
}

fn text(n: usize) -> String {
    let mut text = format!("Message {n} of the rolling deployment test.\r\n");
    for line in 0..40 {
        text.push_str(&format!(
            "line {line} of message {n}: the quick brown fox\r\n"
        ));
    }
    text
}

/// The message bytes: the same on every attempt, so a retry carries the same derived key.
fn message(n: usize) -> String {
    format!(
        "From: Rolling <s@sender.example>\r\nTo: r@rcpt.example\r\nSubject: {}\r\n\
         Message-ID: <{n}.rolling@client.example>\r\nDate: Sat, 05 Dec 2026 08:00:00 +0000\r\n\
         \r\n{}",
        subject(n),
        text(n)
    )
}

/// What the clients saw, summed.
#[derive(Default)]
struct Seen {
    /// message number → the id its `250` named.
    queued: Mutex<BTreeMap<usize, String>>,
    /// A new connection's greeting was `421`.
    greeting_421: AtomicUsize,
    /// A `421` later in a session (an idle pooled connection whose replica drains).
    session_421: AtomicUsize,
    /// `451` after the message (the API's injected 503s).
    after_data_4xx: AtomicUsize,
    /// Connections refused, reset or closed without a reply.
    broken: AtomicUsize,
    /// Attempts the client itself cut in the middle of DATA.
    dropped_mid_data: AtomicUsize,
    /// Attempts whose final reply the client never read (it closed after the final dot).
    reply_lost: AtomicUsize,
    attempts: AtomicUsize,
}

/// What a client does wrong on purpose.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Closes the connection halfway through the message.
    CutInData,
    /// Closes the connection right after the final dot, never reading the reply: the retry
    /// (the same bytes, so the same Idempotency-Key) must not double the message.
    LoseReply,
}

enum Failure {
    Reply(String),
    Io,
}

struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(to: SocketAddr, implicit: bool, ca: &Path) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect(to).await.map_err(|_| Failure::Io)?;
        let io: Box<dyn Io> = if implicit {
            Box::new(
                tls_connector(ca, rustls::ALL_VERSIONS)
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .map_err(|_| Failure::Io)?,
            )
        } else {
            Box::new(tcp)
        };
        Ok(Conn {
            io,
            buf: Vec::new(),
        })
    }

    async fn reply(&mut self) -> Result<String, Failure> {
        let mut text = String::new();
        loop {
            let line = loop {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=pos).collect();
                    break String::from_utf8_lossy(&line).into_owned();
                }
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout(Duration::from_secs(60), self.io.read(&mut chunk))
                    .await
                    .map_err(|_| Failure::Io)?
                    .map_err(|_| Failure::Io)?;
                if n == 0 {
                    return Err(Failure::Io);
                }
                self.buf.extend_from_slice(&chunk[..n]);
            };
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            text.push_str(&line);
            if last {
                return Ok(text);
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.io.write_all(bytes).await.map_err(|_| Failure::Io)?;
        self.io.flush().await.map_err(|_| Failure::Io)
    }

    /// Sends a command and expects a reply starting with `code`.
    async fn expect(&mut self, line: &str, code: &str) -> Result<String, Failure> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        let reply = self.reply().await?;
        if reply.starts_with(code) {
            Ok(reply)
        } else {
            Err(Failure::Reply(reply))
        }
    }

    /// Greeting, EHLO, STARTTLS when not implicit, EHLO, AUTH.
    async fn open(to: SocketAddr, implicit: bool, ca: &Path, seen: &Seen) -> Result<Conn, ()> {
        let mut conn = match Conn::connect(to, implicit, ca).await {
            Ok(conn) => conn,
            Err(_) => {
                seen.broken.fetch_add(1, Ordering::SeqCst);
                return Err(());
            }
        };
        let greeting = match conn.reply().await {
            Ok(greeting) => greeting,
            Err(_) => {
                seen.broken.fetch_add(1, Ordering::SeqCst);
                return Err(());
            }
        };
        if greeting.starts_with("421") {
            seen.greeting_421.fetch_add(1, Ordering::SeqCst);
            return Err(());
        }
        assert!(greeting.starts_with("220 "), "greeting: {greeting}");
        let mut conn = match conn.handshake(implicit, ca).await {
            Ok(conn) => conn,
            Err(failure) => {
                seen.count(failure, "before the message");
                return Err(());
            }
        };
        match conn
            .expect(&format!("AUTH PLAIN {}", plain(KEY)), "235")
            .await
        {
            Ok(_) => Ok(conn),
            Err(failure) => {
                seen.count(failure, "at AUTH");
                Err(())
            }
        }
    }

    async fn handshake(mut self, implicit: bool, ca: &Path) -> Result<Conn, Failure> {
        self.expect("EHLO client.example", "250").await?;
        if implicit {
            return Ok(self);
        }
        self.expect("STARTTLS", "220").await?;
        if !self.buf.is_empty() {
            return Err(Failure::Io);
        }
        let tls = tls_connector(ca, rustls::ALL_VERSIONS)
            .connect(ServerName::try_from("localhost").unwrap(), self.io)
            .await
            .map_err(|_| Failure::Io)?;
        let mut conn = Conn {
            io: Box::new(tls),
            buf: Vec::new(),
        };
        conn.expect("EHLO client.example", "250").await?;
        Ok(conn)
    }

    /// One transaction: true when the message was queued (recorded in `seen`); a fault
    /// instead drops the connection in the middle of the message or right after its end.
    async fn transaction(
        &mut self,
        n: usize,
        fault: Option<Fault>,
        seen: &Seen,
    ) -> Result<bool, Failure> {
        self.expect("MAIL FROM:<s@sender.example>", "250").await?;
        self.expect("RCPT TO:<r@rcpt.example>", "250").await?;
        self.expect("DATA", "354").await?;
        let message = message(n);
        if fault == Some(Fault::CutInData) {
            self.send(&message.as_bytes()[..message.len() / 2]).await?;
            seen.dropped_mid_data.fetch_add(1, Ordering::SeqCst);
            return Ok(false);
        }
        self.send(message.as_bytes()).await?;
        self.send(b".\r\n").await?;
        if fault == Some(Fault::LoseReply) {
            seen.reply_lost.fetch_add(1, Ordering::SeqCst);
            return Ok(false);
        }
        let reply = self.reply().await?;
        let Some(id) = reply.strip_prefix("250 2.0.0 OK: queued as ") else {
            return Err(Failure::Reply(reply));
        };
        seen.queued
            .lock()
            .unwrap()
            .insert(n, id.trim_end().to_string());
        Ok(true)
    }
}

impl Seen {
    fn count(&self, failure: Failure, when: &str) {
        match failure {
            Failure::Io => {
                self.broken.fetch_add(1, Ordering::SeqCst);
            }
            Failure::Reply(reply) if reply.starts_with("421") => {
                self.session_421.fetch_add(1, Ordering::SeqCst);
            }
            Failure::Reply(reply) if reply.starts_with('4') => {
                self.after_data_4xx.fetch_add(1, Ordering::SeqCst);
            }
            Failure::Reply(reply) => panic!("a permanent failure {when}: {reply}"),
        }
    }
}

/// A client: sends messages `first, first + CLIENTS, ...` until `stop`, each until it is
/// queued (retrying the same bytes after any temporary failure, as an MTA or a mail library
/// with retries does). Clients 0 and 1 keep their connection for up to 100 messages, 100 ms
/// apart, and through a `451` (a pool, as Nodemailer's `pool: true`), so a draining replica
/// tells them `421`; the others open one connection per message. Odd clients use implicit TLS on
/// 465, even ones STARTTLS on 587. Every 9th attempt of the others is cut in the middle of
/// DATA, every 13th closes without reading the final reply.
async fn client(
    first: usize,
    proxy: (SocketAddr, SocketAddr),
    ca: PathBuf,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) -> usize {
    let implicit = first % 2 == 1;
    let to = if implicit { proxy.1 } else { proxy.0 };
    let pooled = first < 2;
    let mut conn: Option<(Conn, usize)> = None;
    let mut n = first;
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= 40, "message {n} not queued after 40 attempts");
            let attempt = seen.attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let (mut c, used) = match conn.take() {
                Some(open) => open,
                None => match Conn::open(to, implicit, &ca, &seen).await {
                    Ok(c) => (c, 0),
                    Err(()) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            let fault = match attempt {
                _ if pooled => None,
                a if a % 9 == 0 => Some(Fault::CutInData),
                a if a % 13 == 0 => Some(Fault::LoseReply),
                _ => None,
            };
            match c.transaction(n, fault, &seen).await {
                Ok(true) => {
                    if pooled && used + 1 < 100 {
                        conn = Some((c, used + 1));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    } else {
                        let _ = c.expect("QUIT", "221").await;
                    }
                    break;
                }
                Ok(false) => {}
                Err(failure) => {
                    // A pooled client keeps its session after a 451 (RSET, then the retry).
                    let keep = matches!(&failure, Failure::Reply(r) if r.starts_with("451"));
                    seen.count(failure, "in a transaction");
                    if pooled && keep && c.expect("RSET", "250").await.is_ok() {
                        conn = Some((c, used + 1));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        sent += 1;
        n += CLIENTS;
    }
    if let Some((mut c, _)) = conn {
        let _ = c.expect("QUIT", "221").await;
    }
    sent
}

/// How many messages the clients have seen queued so far.
fn queued(seen: &Seen) -> usize {
    seen.queued.lock().unwrap().len()
}

/// Waits until `more` messages were queued (at most a minute).
async fn wait_for_traffic(seen: &Seen, more: usize) {
    let target = queued(seen) + more;
    wait_for("clients to make progress", Duration::from_secs(60), || {
        queued(seen) >= target
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_haproxy_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = MockApi::start(KEY).await;
    let (created, api_counts) = dedup_api(&api);
    let mut a = Replica::new("relay1", dir.path(), &api.base);
    let mut b = Replica::new("relay2", dir.path(), &api.base);
    // One after the other: the first makes the development certificate both use.
    a.start().await;
    b.start().await;
    let haproxy = Haproxy::start(dir.path(), &[&a, &b]);
    for server in ["relay1", "relay2"] {
        wait_for(
            &format!("HAProxy to see {server} up"),
            Duration::from_secs(20),
            || haproxy.server_is(server, true),
        )
        .await;
    }

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ca = dir.path().join("ca.pem");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|first| {
            tokio::spawn(client(
                first,
                (haproxy.submission, haproxy.submissions),
                ca.clone(),
                Arc::clone(&seen),
                Arc::clone(&stop),
            ))
        })
        .collect();
    wait_for_traffic(&seen, 30).await;

    let mut report = Vec::new();
    for replica in [&mut a, &mut b] {
        let before = queued(&seen);
        let started = Instant::now();
        replica.terminate();
        wait_for(
            &format!("HAProxy to mark {} down", replica.name),
            Duration::from_secs(20),
            || haproxy.server_is(replica.name, false),
        )
        .await;
        let marked_down = started.elapsed();
        let code = replica.exited(Duration::from_secs(40)).await;
        let exited = started.elapsed();
        assert_eq!(code, Some(0), "{} exit code", replica.name);
        replica.start().await;
        wait_for(
            &format!("HAProxy to see {} up again", replica.name),
            Duration::from_secs(20),
            || haproxy.server_is(replica.name, true),
        )
        .await;
        report.push(format!(
            "{}: marked down after {:.1} s, exited 0 after {:.1} s, back up after {:.1} s, {} messages queued meanwhile",
            replica.name,
            marked_down.as_secs_f64(),
            exited.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            queued(&seen) - before
        ));
        wait_for_traffic(&seen, 20).await;
    }

    stop.store(true, Ordering::SeqCst);
    let mut sent = 0;
    for c in clients {
        sent += c.await.unwrap();
    }

    // Nothing lost: every message a client saw queued is at the API, under the id the reply
    // named, with its whole text (nothing half-forwarded).
    let queued = seen.queued.lock().unwrap().clone();
    let created = created.lock().unwrap().clone();
    assert_eq!(queued.len(), sent, "every message was eventually queued");
    let by_subject: HashMap<&str, Vec<&(String, String, String)>> =
        created.values().fold(HashMap::new(), |mut map, entry| {
            map.entry(entry.1.as_str()).or_default().push(entry);
            map
        });
    for (n, id) in &queued {
        let entries = by_subject
            .get(subject(*n).as_str())
            .unwrap_or_else(|| panic!("message {n} was answered 250 ({id}) but is not at the API"));
        // Nothing doubled: one Idempotency-Key per message, so the API created it once.
        assert_eq!(entries.len(), 1, "message {n} created more than once");
        assert_eq!(&entries[0].0, id, "message {n}: the 250 named another id");
        assert_eq!(
            entries[0].2.replace("\r\n", "\n").trim_end(),
            text(*n).replace("\r\n", "\n").trim_end(),
            "message {n}: the text at the API differs"
        );
    }
    // And the API holds nothing no client saw queued.
    assert_eq!(
        created.len(),
        queued.len(),
        "the API holds messages no client saw queued"
    );
    let posts = api.sends().len();

    let greeting_421 = seen.greeting_421.load(Ordering::SeqCst);
    report.push(format!(
        "{} messages queued by {} clients in {} attempts; API: {} send requests, {} replays answered from the dedup table, \
         {} injected 503s; 421 to a new connection: {}, 421 to a pooled connection: {}, 4xx after the message (injected 503s): {}, \
         connections refused/reset/closed without a reply: {}, attempts cut in DATA by the client: {}, \
         final replies the client never read: {}",
        queued.len(),
        CLIENTS,
        seen.attempts.load(Ordering::SeqCst),
        posts,
        api_counts.replays.load(Ordering::SeqCst),
        api_counts.injected_503.load(Ordering::SeqCst),
        greeting_421,
        seen.session_421.load(Ordering::SeqCst),
        seen.after_data_4xx.load(Ordering::SeqCst),
        seen.broken.load(Ordering::SeqCst),
        seen.dropped_mid_data.load(Ordering::SeqCst),
        seen.reply_lost.load(Ordering::SeqCst),
    ));
    for line in &report {
        eprintln!("rolling: {line}");
    }
    // The shutdown delay outlasts HAProxy's checks, so it stops sending new connections to a
    // draining replica before that replica refuses them.
    assert_eq!(greeting_421, 0, "new connections were refused: {report:?}");
}
