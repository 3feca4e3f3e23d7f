//! End to end against the real binary: the README's swaks smoke test and Python smtplib
//! (STARTTLS and implicit TLS, text + html, an attachment, an inline image, Cc and Bcc, a
//! non-ASCII subject, the tracking headers), with the outbox JSON checked field by field.
//! Needs `swaks` and `python3` (`.ci/run` installs swaks).

mod common;

use common::process::{admin_status, signal};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The documented development key (config/dev-keys.txt holds its digest).
const DEV_KEY: &str = "sk_live_dev_sendpigeon_local_0001";

struct Running {
    child: Child,
    starttls: u16,
    implicit: u16,
    admin: u16,
    dir: tempfile::TempDir,
    logs: Arc<Mutex<String>>,
}

impl Running {
    /// Starts the binary on free loopback ports with the shipped development settings,
    /// its certificates and outbox in a temporary directory, JSON logs.
    fn start() -> Running {
        Running::start_under(&[])
    }

    /// Starts the binary through `wrapper` (e.g. `prlimit --nofile=...`).
    fn start_under(wrapper: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read_to_string(root.join("config/relay.toml")).unwrap();
        let config = shipped
            .replace("127.0.0.1:2587", "127.0.0.1:0")
            .replace("127.0.0.1:2465", "127.0.0.1:0")
            .replace("127.0.0.1:9587", "127.0.0.1:0")
            .replace("\"certs/", &format!("\"{}/", dir.path().display()))
            .replace(
                "config/dev-keys.txt",
                &root.join("config/dev-keys.txt").display().to_string(),
            )
            .replace(
                "outbox:var/outbox",
                &format!("outbox:{}", dir.path().join("outbox").display()),
            )
            .replace("format = \"text\"", "format = \"json\"");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, config).unwrap();
        let binary = env!("CARGO_BIN_EXE_sendpigeon-relay");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut starttls, mut implicit, mut admin) = (0, 0, 0);
        let logs = Arc::new(Mutex::new(String::new()));
        while starttls == 0 || implicit == 0 || admin == 0 {
            let line = lines
                .next()
                .expect("relay exited before listening")
                .unwrap();
            logs.lock().unwrap().push_str(&line);
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if event["message"] == "admin endpoint listening" {
                admin = port_of(&event);
            }
            if event["message"] == "listening" {
                // In the order of the shipped file: 2587 (STARTTLS clients), then 2465
                // (implicit TLS); both are `auto` there, so either mode works on either.
                let port = port_of(&event);
                if starttls == 0 {
                    starttls = port;
                } else {
                    implicit = port;
                }
            }
        }
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        Running {
            child,
            starttls,
            implicit,
            admin,
            dir,
            logs,
        }
    }

    /// Waits (at most [`common::wait::DEADLINE`]) until the log has `needle`.
    async fn wait_log(&self, needle: &str) {
        common::wait::until(
            &format!("{needle:?} in the log"),
            common::wait::DEADLINE,
            || std::future::ready(self.logs.lock().unwrap().contains(needle)),
        )
        .await;
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("dev-ca.pem")
    }

    /// The outbox record for the queue id in a `250 ... queued as <id>` reply.
    fn record(&self, reply: &str) -> Value {
        let id = reply
            .split("queued as ")
            .nth(1)
            .unwrap_or_else(|| panic!("not queued: {reply}"))
            .split_whitespace()
            .next()
            .unwrap();
        let path = self.dir.path().join("outbox").join(format!("{id}.json"));
        let record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(record["relay"]["id"], id);
        record
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn swaks(args: &[&str]) -> String {
    let out = Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks is installed (.ci/run)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "swaks failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn final_reply(transcript: &str) -> String {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("<~  "))
        .find(|l| l.contains("queued as"))
        .unwrap_or_else(|| panic!("no queued reply in:\n{transcript}"))
        .to_string()
}

#[test]
fn readme_swaks_smoke_test_and_variants() {
    let relay = Running::start();
    let server = format!("127.0.0.1:{}", relay.starttls);
    let implicit = format!("127.0.0.1:{}", relay.implicit);
    let base = |server: &str, tls: &str| {
        vec![
            "--server".to_string(),
            server.to_string(),
            tls.to_string(),
            "--auth-user".into(),
            "apikey".into(),
            "--auth-password".into(),
            DEV_KEY.into(),
            "--from".into(),
            "hello@yourdomain.com".into(),
            "--to".into(),
            "test@example.com".into(),
            "--header".into(),
            "Subject: Test SMTP".into(),
            "--body".into(),
            "Hello from SMTP".into(),
        ]
    };
    // The README's command (swaks picks AUTH LOGIN), then PLAIN, LOGIN and implicit TLS.
    let runs: Vec<Vec<String>> = vec![
        base(&server, "--tls"),
        [
            base(&server, "--tls"),
            vec!["--auth".into(), "PLAIN".into()],
        ]
        .concat(),
        [
            base(&server, "--tls"),
            vec!["--auth".into(), "LOGIN".into()],
        ]
        .concat(),
        base(&implicit, "--tlsc"),
    ];
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let transcript = swaks(&args);
        let record = relay.record(&final_reply(&transcript));
        assert_eq!(record["from"], json!({"email": "hello@yourdomain.com"}));
        assert_eq!(record["to"], json!([{"email": "test@example.com"}]));
        assert_eq!(record["subject"], "Test SMTP");
        assert!(
            record["text"]
                .as_str()
                .unwrap()
                .starts_with("Hello from SMTP"),
            "{record}"
        );
        assert!(record.get("html").is_none() || record["html"].is_null());
        assert_eq!(
            record["envelope"],
            json!({"mail_from": "hello@yourdomain.com", "rcpt_to": ["test@example.com"]})
        );
        assert_eq!(record["tracking"], json!({"opens": null, "clicks": null}));
        assert_eq!(record["source"]["tls"], "TLSv1.3");
        let names: Vec<&str> = record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"Message-Id") && names.contains(&"X-Mailer"),
            "{names:?}"
        );
    }
    let logs = relay.logs.lock().unwrap().clone();
    assert!(
        !logs.contains(DEV_KEY) && !logs.contains("c2tfbGl2ZV9kZXZf"),
        "the key reached the logs"
    );
}

#[test]
fn python_smtplib_documentation_and_rich_messages() {
    let relay = Running::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/smtplib_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(relay.starttls.to_string())
        .arg(relay.implicit.to_string())
        .arg(relay.ca())
        .arg(DEV_KEY)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Value = serde_json::from_slice(&out.stdout).unwrap();

    let doc = relay.record(replies["doc"].as_str().unwrap());
    assert_eq!(doc["subject"], "Docs snippet");
    assert_eq!(doc["html"], "<h1>Hello from SendPigeon</h1>\n");
    assert!(
        doc.get("text").is_none() || doc["text"].is_null(),
        "text is never synthesised from html"
    );
    assert_eq!(doc["to"], json!([{"email": "test@example.com"}]));

    for (case, tls) in [("rich_starttls", "TLSv1.3"), ("rich_implicit", "TLSv1.3")] {
        let m = relay.record(replies[case].as_str().unwrap());
        assert_eq!(
            m["from"],
            json!({"email": "billing@acme.example", "name": "Zoë Müller"})
        );
        assert_eq!(
            m["to"],
            json!([{"email": "jane@example.com", "name": "Jane Doe"}])
        );
        assert_eq!(m["cc"], json!([{"email": "ops@acme.example"}]));
        assert_eq!(m["bcc"], json!([{"email": "audit@acme.example"}]));
        assert_eq!(
            m["reply_to"],
            json!([{"email": "support@acme.example", "name": "Acme Support"}])
        );
        assert_eq!(m["subject"], "Grüße — Rechnung №1234 für Zoë");
        assert_eq!(m["text"], "Hi Jane,\nyour invoice is attached.\n");
        let html = m["html"].as_str().unwrap();
        assert_eq!(m["tracking"], json!({"opens": true, "clicks": false}));
        assert_eq!(m["envelope"]["mail_from"], "billing@acme.example");
        let mut rcpts: Vec<&str> = m["envelope"]["rcpt_to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        rcpts.sort();
        assert_eq!(
            rcpts,
            ["audit@acme.example", "jane@example.com", "ops@acme.example"]
        );
        assert_eq!(m["source"]["tls"], tls);

        let headers = m["headers"].as_array().unwrap();
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h["name"] == name)
                .map(|h| h["value"].clone())
        };
        assert_eq!(
            header("Message-ID"),
            Some(json!(format!("<{case}.1234@acme.example>")))
        );
        assert_eq!(header("X-Entity-Ref-ID"), Some(json!("invoice-1234")));
        assert_eq!(
            header("List-Unsubscribe"),
            Some(json!("<https://acme.example/u/abc>"))
        );
        assert!(headers.iter().all(|h| {
            !h["name"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .starts_with("x-sp-")
        }));
        assert!(
            headers
                .iter()
                .all(|h| !h["name"].as_str().unwrap().eq_ignore_ascii_case("bcc"))
        );

        let attachments = m["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 2, "{attachments:?}");
        let logo = attachments
            .iter()
            .find(|a| a["filename"] == "logo.png")
            .expect("inline image");
        assert_eq!(logo["content_type"], "image/png");
        assert_eq!(logo["disposition"], "inline");
        let cid = logo["content_id"].as_str().unwrap();
        assert!(
            html.contains(&format!("cid:{cid}")),
            "html {html} refers to cid {cid}"
        );
        let pdf = attachments
            .iter()
            .find(|a| a["filename"] == "invoice.pdf")
            .expect("pdf");
        assert_eq!(pdf["content_type"], "application/pdf");
        assert_eq!(pdf["disposition"], "attachment");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(pdf["content"].as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"%PDF-1.4\n") && bytes.ends_with(b"%%EOF\n"));
    }
}

/// The port of the `address` field of a "listening" log event.
fn port_of(event: &Value) -> u16 {
    let address = event["address"].as_str().expect("address in the log event");
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

#[tokio::test]
async fn sigterm_drains_then_the_process_exits_zero() {
    use common::client::{Client, plain};
    let mut relay = Running::start();
    assert_eq!(admin_status(relay.admin, "/readyz"), Some(200));
    let addr = format!("127.0.0.1:{}", relay.starttls).parse().unwrap();
    let (mut idle, _) = Client::plain(addr).await;
    let (mut busy, _) = Client::plain(addr).await;
    busy.cmd("EHLO client.example").await;
    busy.cmd("STARTTLS").await;
    let mut busy = busy.upgrade(&relay.ca()).await;
    busy.cmd("EHLO client.example").await;
    assert!(
        busy.cmd(&format!("AUTH PLAIN {}", plain(DEV_KEY)))
            .await
            .starts_with("235")
    );
    busy.cmd("MAIL FROM:<s@sender.example>").await;
    busy.cmd("RCPT TO:<r@rcpt.example>").await;
    busy.cmd("DATA").await;
    busy.send("Subject: in flight\r\n\r\nfirst half\r\n").await;

    signal(&relay.child, "TERM");
    assert_eq!(idle.reply().await, "421 4.3.2 Service shutting down\r\n");
    assert_eq!(admin_status(relay.admin, "/readyz"), Some(503));
    assert_eq!(admin_status(relay.admin, "/healthz"), Some(200));
    busy.send("second half\r\n.\r\n").await;
    assert!(busy.reply().await.starts_with("250 2.0.0 OK: queued as "));
    assert_eq!(
        busy.cmd("NOOP").await,
        "421 4.3.2 Service shutting down\r\n"
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = relay.child.wait().unwrap();
        (status, relay)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0));
    // The log reader thread may still be catching up with the last lines.
    status.1.wait_log("drained: every session ended").await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let relay = Running::start();
    let dir = relay.dir.path();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", relay.implicit).parse().unwrap();
    let handshake = |ca: PathBuf| async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        common::client::tls_connector(&ca, rustls::ALL_VERSIONS)
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .is_ok()
    };
    assert!(handshake(relay.ca()).await);
    // New files in place; the shipped reload_interval (30 s) will not notice them in time.
    let new_ca = dir.join("ca-2.pem");
    sendpigeon_relay::server::tls::generate_development_pair(
        &dir.join("dev-cert.pem"),
        &dir.join("dev-key.pem"),
        &new_ca,
        "localhost",
    )
    .unwrap();
    assert!(!handshake(new_ca.clone()).await, "reloaded before SIGHUP");
    signal(&relay.child, "HUP");
    common::wait::until(
        "SIGHUP to reload the certificate",
        common::wait::DEADLINE,
        || handshake(new_ca.clone()),
    )
    .await;
    assert!(!handshake(relay.ca()).await);
}

#[tokio::test]
async fn the_accept_loop_survives_running_out_of_file_descriptors() {
    // RES-03: with 64 descriptors, 80 connections exhaust them; accept fails with EMFILE,
    // backs off, and serves again once descriptors are free.
    let relay = Running::start_under(&["prlimit", "--nofile=64:64"]);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", relay.starttls).parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    relay.wait_log("accept failed").await;
    drop(held);
    // The connection waits in the backlog until the accept loop, backing off, has
    // descriptors again.
    let (mut c, greeting) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        common::client::Client::plain(addr),
    )
    .await
    .expect("a greeting once descriptors are free");
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK\r\n");
}
