//! The client compatibility suite's harness: a relay with the HTTP upstream pointing at the
//! recording mock API, the client programs of `tests/clients/` run against it as separate
//! processes, and field-by-field checks of what the mock API received (`expected`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod expected;
pub use expected::*;

use super::mock_api::{Answer, MockApi, Recorded};
use super::relay::{KEY, TestRelay};

/// How long one client run may take (the 25 MB cases included) before it is killed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Swaks,
    Smtplib,
    Nodemailer,
    ActionMailer,
    Laravel,
    Go,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Swaks => "swaks",
            Client::Smtplib => "smtplib",
            Client::Nodemailer => "nodemailer",
            Client::ActionMailer => "actionmailer",
            Client::Laravel => "laravel",
            Client::Go => "go",
        }
    }
}

/// What one run of a client program printed.
#[derive(Debug)]
pub struct Run {
    pub case: String,
    /// The JSON line the program printed (swaks: `{"ok": exit 0, "transcript": ...}`).
    pub out: Value,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.out["ok"] == true
    }

    /// A string field the program printed.
    pub fn field(&self, name: &str) -> &str {
        self.out[name]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no {name} in {}", self.case, self.out))
    }

    /// The library's error text; panics if the run succeeded.
    pub fn error(&self) -> &str {
        assert!(
            !self.ok(),
            "{}: expected an error, the client succeeded: {}",
            self.case,
            self.out
        );
        self.field("error")
    }
}

/// The queue id in a `250 2.0.0 OK: queued as <id>` reply.
pub fn queue_id(reply: &str) -> &str {
    let id = reply
        .trim_end()
        .strip_prefix("250 2.0.0 OK: queued as ")
        .unwrap_or_else(|| panic!("not a queued reply: {reply:?}"));
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "{reply:?}"
    );
    id
}

pub struct Suite {
    pub client: Client,
    pub api: MockApi,
    pub relay: TestRelay,
    /// invoice.pdf, logo.png, big.bin, and the compiled Go client.
    pub files: tempfile::TempDir,
    /// The id the mock API answered, by the request's X-Request-Id.
    ids: Arc<Mutex<HashMap<String, String>>>,
    go_binary: Option<PathBuf>,
    /// Both the STARTTLS and the implicit-TLS port are the relay's `auto` listener.
    auto: bool,
}

impl Suite {
    /// [`Suite::start`], with the client's STARTTLS and implicit-TLS settings both pointing at
    /// the relay's `auto` listener.
    pub async fn start_auto(client: Client) -> Suite {
        Suite {
            auto: true,
            ..Suite::start(client).await
        }
    }

    /// A relay whose upstream is the mock API (keys checked by the API too, as in
    /// production), and the client's program ready to run.
    pub async fn start(client: Client) -> Suite {
        preflight(client);
        let api = MockApi::start(KEY).await;
        let ids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let counter = Arc::new(AtomicUsize::new(0));
        let (answered, tag) = (Arc::clone(&ids), client.name());
        api.answer_sends(KEY, move |r| {
            // Ids with every character the reply keeps ([A-Za-z0-9._-]), unique per send.
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let id = format!("em_{n:02}.{tag}-Q");
            let request_id = r.header("x-request-id").unwrap_or_default().to_string();
            answered.lock().unwrap().insert(request_id, id.clone());
            Answer::json(200, json!({"id": id, "status": "queued"}))
        });
        let base = api.base.clone();
        let relay = TestRelay::start(move |c| {
            c.upstream.url = base;
            c.auth.verify = sendpigeon_relay::config::Verify::Upstream;
        })
        .await;
        let files = tempfile::tempdir().expect("tempdir");
        std::fs::write(files.path().join("invoice.pdf"), PDF).unwrap();
        std::fs::write(files.path().join("logo.png"), PNG).unwrap();
        let big: Vec<u8> = (0..BIG_ATTACHMENT).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(files.path().join("big.bin"), big).unwrap();
        let go_binary = (client == Client::Go).then(|| build_go(files.path()));
        Suite {
            client,
            api,
            relay,
            files,
            ids,
            go_binary,
            auto: false,
        }
    }

    /// Runs one case of the client's program, trusting the test CA.
    pub async fn run(&self, case: &str) -> Run {
        self.run_with(case, true).await
    }

    /// Runs one case; `trust_ca: false` leaves the client with its default trust store only.
    pub async fn run_with(&self, case: &str, trust_ca: bool) -> Run {
        let mut command = self.command(case, trust_ca);
        let case = case.to_string();
        let client = self.client;
        tokio::task::spawn_blocking(move || run_process(client, &case, &mut command))
            .await
            .unwrap()
    }

    fn command(&self, case: &str, trust_ca: bool) -> Command {
        let dir = clients_dir();
        let ca = self.relay.ca();
        let mut command = match self.client {
            Client::Swaks => {
                let mut c = Command::new("bash");
                c.arg(dir.join("swaks.sh"));
                c
            }
            Client::Smtplib => {
                let mut c = Command::new("python3");
                c.arg(dir.join("smtplib_client.py"));
                c
            }
            Client::Nodemailer => {
                let mut c = Command::new("node");
                c.arg(dir.join("nodemailer/client.js"));
                c
            }
            Client::ActionMailer => {
                let mut c = Command::new("ruby");
                c.arg(dir.join("action_mailer.rb"));
                c
            }
            Client::Laravel => {
                let mut c = Command::new("php");
                if trust_ca {
                    // php.ini's openssl.cafile, given on the command line.
                    c.arg("-d").arg(format!("openssl.cafile={}", ca.display()));
                }
                c.arg(dir.join("laravel_mailer.php"));
                c
            }
            Client::Go => Command::new(self.go_binary.as_ref().unwrap()),
        };
        command.arg(case);
        for name in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "NODE_EXTRA_CA_CERTS",
            "CA_FILE",
        ] {
            command.env_remove(name);
        }
        if trust_ca {
            command.env("CA_FILE", &ca);
            if self.client == Client::Go {
                command.env("SSL_CERT_FILE", &ca);
            }
        }
        let (starttls, implicit) = if self.auto {
            (self.relay.auto.port(), self.relay.auto.port())
        } else {
            (self.relay.starttls.port(), self.relay.implicit.port())
        };
        command
            .env("SMTP_HOST", "localhost")
            .env("SMTP_PORT", starttls.to_string())
            .env("SMTPS_PORT", implicit.to_string())
            .env("API_KEY", KEY)
            .env("FILES", self.files.path())
            // Laravel's .env
            .env("MAIL_MAILER", "smtp")
            .env("MAIL_HOST", "localhost")
            .env("MAIL_PORT", starttls.to_string())
            .env("MAIL_USERNAME", "apikey")
            .env("MAIL_PASSWORD", KEY)
            .env("MAIL_ENCRYPTION", "tls");
        command
    }

    /// Every send the mock API received so far.
    pub fn sends(&self) -> Vec<Recorded> {
        self.api.sends()
    }

    /// The id the mock API answered to this send.
    pub fn answered_id(&self, send: &Recorded) -> String {
        let request_id = send.header("x-request-id").expect("X-Request-Id");
        self.ids
            .lock()
            .unwrap()
            .get(request_id)
            .cloned()
            .unwrap_or_else(|| panic!("no answer recorded for {request_id}"))
    }

    /// Runs a case that must deliver exactly one message: returns the run and the one
    /// request it caused, after checking the request's contract headers.
    pub async fn deliver_one(&self, case: &str) -> (Run, Recorded) {
        let before = self.sends().len();
        let run = self.run(case).await;
        assert!(
            run.ok(),
            "{:?} {case}: the client failed: {}\n{}",
            self.client,
            run.out,
            run.stderr
        );
        let sends = self.sends();
        assert_eq!(
            sends.len() - before,
            1,
            "{:?} {case}: the message must reach the API exactly once",
            self.client
        );
        let send = sends[before].clone();
        check_contract(&send);
        (run, send)
    }

    /// Runs a case that must fail: returns the library's error after checking that no
    /// message reached the API.
    pub async fn refused(&self, case: &str) -> String {
        self.refused_with(case, true).await
    }

    pub async fn refused_with(&self, case: &str, trust_ca: bool) -> String {
        let before = self.sends().len();
        let run = self.run_with(case, trust_ca).await;
        assert_eq!(
            self.sends().len(),
            before,
            "{:?} {case}: nothing may reach the API ({})",
            self.client,
            run.out
        );
        run.error().to_string()
    }
}

/// The headers the relay sends with every request, and the session id in the body matching
/// the request id.
pub fn check_contract(send: &Recorded) {
    assert_eq!(
        (send.method.as_str(), send.path.as_str()),
        ("POST", "/v1/emails")
    );
    assert_eq!(
        send.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(send.header("content-type"), Some("application/json"));
    // Present only for a message with its own identity (a Message-ID or Date); then derived.
    assert!(
        send.header("idempotency-key")
            .is_none_or(|k| k.starts_with("smtp-") && k.len() == 69),
        "{:?}",
        send.headers
    );
    let body = send.json();
    let request_id = send.header("x-request-id").unwrap();
    let session = body["source"]["session_id"].as_str().unwrap();
    assert!(
        request_id.starts_with(&format!("{session}.")),
        "{request_id} / {session}"
    );
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

const INSTALL: &str = "run tests/clients/install.sh";

/// Fails with a clear message when the client is not installed (never skips).
fn preflight(client: Client) {
    let (program, version_arg) = match client {
        Client::Swaks => ("swaks", "--version"),
        Client::Smtplib => ("python3", "--version"),
        Client::Nodemailer => ("node", "--version"),
        Client::ActionMailer => ("ruby", "--version"),
        Client::Laravel => ("php", "--version"),
        Client::Go => ("go", "version"),
    };
    let found = Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{program} is not installed ({INSTALL})");
    let library = match client {
        Client::Nodemailer => Some(clients_dir().join("nodemailer/node_modules/nodemailer")),
        Client::Laravel => Some(PathBuf::from(
            "/usr/share/php/Symfony/Component/Mailer/autoload.php",
        )),
        _ => None,
    };
    if let Some(path) = library {
        assert!(path.exists(), "{} is missing ({INSTALL})", path.display());
    }
    if client == Client::ActionMailer {
        let loads = Command::new("ruby")
            .args(["-e", "require 'action_mailer'"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(loads, "Ruby cannot load action_mailer ({INSTALL})");
    }
}

/// Compiles the Go client (stdlib only, no network) into `dir`, with a build cache kept in
/// the target directory between runs.
fn build_go(dir: &Path) -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let binary = dir.join("go-client");
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(clients_dir().join("go/main.go"))
        .env("GOCACHE", cache.join("cache"))
        .env("GOPATH", cache.join("path"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("go build");
    assert!(
        out.status.success(),
        "go build failed ({INSTALL}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

fn run_process(client: Client, case: &str, command: &mut Command) -> Run {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{client:?}: cannot start {command:?}: {e} ({INSTALL})"));
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{client:?} {case} (pid {pid}) took over {CLIENT_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let out = if client == Client::Swaks {
        // swaks marks the server's errors `<~*` / `<**` in its transcript, and writes its
        // own as `***` lines on stderr.
        let error: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("<~*") || l.starts_with("<**"))
            .chain(stderr.lines().filter(|l| l.starts_with("***")))
            .collect();
        json!({"ok": status.success(), "transcript": stdout, "error": error.join("\n")})
    } else {
        let line = stdout.lines().rev().find(|l| l.starts_with('{'));
        match line.and_then(|l| serde_json::from_str(l).ok()) {
            Some(value) if status.success() => value,
            _ => panic!(
                "{client:?} {case}: the program failed ({status}); is the client installed? \
                 ({INSTALL})\nstdout:\n{stdout}\nstderr:\n{stderr}"
            ),
        }
    };
    Run {
        case: case.to_string(),
        out,
        stderr,
    }
}
