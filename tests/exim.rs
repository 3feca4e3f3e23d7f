//! Exim (Debian's 4.96 `exim4-daemon-light`) as a legacy system uses the relay: as its
//! smarthost, with SASL and TLS, configured as docs/clients.md "Postfix and Exim as a
//! smarthost" says. Exim's smtp transport sends BDAT when CHUNKING is offered: its log line
//! carries `K` when it did. Every message reaches the API exactly once, field by field; a
//! wrong key and a failing API are deferred (kept in Exim's queue, never lost) and a queue
//! run after the API is back delivers once. Needs root and the unpacked Exim that
//! `scripts/install-test-deps.sh` puts in /opt/exim4 (its package conflicts with Postfix's).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::mock_api::{Answer, MockApi};
use common::mta::{self, run};
use common::relay::{KEY, TestRelay};
use serde_json::json;

/// Where `scripts/install-test-deps.sh` unpacks Exim; `EXIM` overrides.
fn exim_binary() -> PathBuf {
    let path = std::env::var_os("EXIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/exim4/usr/sbin/exim4"));
    assert!(
        path.exists(),
        "{} is missing (run scripts/install-test-deps.sh)",
        path.display()
    );
    path
}

/// A private Exim: its own configuration, spool and log in a temporary directory, routing
/// everything to the relay at `localhost:port`. Nothing runs between calls: each injection
/// delivers in the foreground, and a queue run is asked for explicitly.
struct Exim {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Exim {
    fn new(port: u16, key: &str, ca: &Path, implicit_tls: bool) -> Exim {
        let binary = exim_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["spool", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            run("chmod", &["777", &d.join(sub).display().to_string()]);
        }
        run("chmod", &["755", &d.display().to_string()]);
        // The settings an admin adds to a stock Exim smarthost router and transport.
        let config = format!(
            "exim_path = {exim}\n\
             keep_environment =\n\
             primary_hostname = smarthost.test\n\
             spool_directory = {spool}\n\
             log_file_path = {log}/%slog\n\
             begin routers\n\
             smarthost:\n  driver = manualroute\n  transport = remote_smtp\n\
             \x20 route_list = * localhost::{port} byname\n  self = send\n  no_more\n\
             begin transports\n\
             remote_smtp:\n  driver = smtp\n  allow_localhost\n\
             \x20 hosts_require_tls = *\n  hosts_require_auth = *\n\
             \x20 tls_verify_hosts = *\n  tls_verify_certificates = {ca}\n{smtps}\
             begin authenticators\n\
             plain:\n  driver = plaintext\n  public_name = PLAIN\n\
             \x20 client_send = ^apikey^{key}\n\
             begin retry\n\
             * * F,1h,10m\n",
            exim = binary.display(),
            spool = d.join("spool").display(),
            log = d.join("log").display(),
            ca = ca.display(),
            smtps = if implicit_tls {
                "  protocol = smtps\n"
            } else {
                ""
            },
        );
        std::fs::write(d.join("exim.conf"), config).unwrap();
        Exim { dir, binary }
    }

    /// Runs Exim with this configuration on a blocking thread, so the relay in this runtime
    /// goes on serving it.
    async fn exim(&self, args: &[&str], stdin: &str) {
        let mut command = Command::new(&self.binary);
        command
            .arg("-C")
            .arg(self.dir.path().join("exim.conf"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let stdin = stdin.to_string();
        let finished = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = command.spawn().expect("exim");
            // Exim may stop reading early (a configuration error): its output says why.
            let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
            child.wait_with_output().unwrap()
        });
        let out = tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("exim finished within 60 s")
            .unwrap();
        assert!(
            out.status.success(),
            "exim {args:?}: {}{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Hands a message to Exim as a local program would (`sendmail -oi`: a lone dot is
    /// content); it delivers before returning.
    async fn sendmail(&self, from: &str, to: &str, message: &str) {
        self.exim(&["-odf", "-oi", "-f", from, to], message).await;
    }

    /// One forced queue run (`exim -qff`), in the foreground.
    async fn queue_run(&self) {
        self.exim(&["-qff"], "").await;
    }

    fn log(&self) -> String {
        mta::read_log(&self.dir.path().join("log/mainlog"))
    }

    /// Waits until the log has `needle` (within 30 s).
    async fn wait_log(&self, needle: &str) -> String {
        mta::wait_log(&self.dir.path().join("log/mainlog"), needle).await
    }
}

/// A cron report as a legacy box sends it: LF line endings, a dot line, a long body.
fn message() -> String {
    format!(
        "From: Cron Daemon <cron@example.com>\n\
         To: ops@example.net\n\
         Subject: Nightly backup report\n\
         Message-ID: <backup.7@example.com>\n\
         Date: Sat, 05 Dec 2026 03:00:00 +0000\n\
         \n\
         Backup finished.\n\
         .\n\
         {}",
        "12345 files copied\n".repeat(20_000)
    )
}

async fn relay_and_api() -> (MockApi, TestRelay) {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| Answer::json(200, json!({"id": "em_exim"})));
    let base = api.base.clone();
    let relay = TestRelay::start(move |c| c.upstream.url = base).await;
    (api, relay)
}

fn check_fields(body: &serde_json::Value) {
    assert_eq!(
        body["from"],
        json!({"email": "cron@example.com", "name": "Cron Daemon"})
    );
    assert_eq!(body["to"], json!([{"email": "ops@example.net"}]));
    assert_eq!(body["subject"], "Nightly backup report");
    let text = body["text"].as_str().expect("text");
    assert!(text.starts_with("Backup finished.\n.\n12345 files copied\n"));
    assert_eq!(text.matches("12345 files copied\n").count(), 20_000);
    assert_eq!(
        body["envelope"],
        json!({"mail_from": "cron@example.com", "rcpt_to": ["ops@example.net"]})
    );
}

#[tokio::test]
async fn exim_sends_bdat_through_starttls_and_implicit_tls_exactly_once() {
    let (api, relay) = relay_and_api().await;
    for (addr, implicit) in [(relay.starttls, false), (relay.implicit, true)] {
        let before = api.sends().len();
        let exim = Exim::new(addr.port(), KEY, &relay.ca(), implicit);
        exim.sendmail("cron@example.com", "ops@example.net", &message())
            .await;
        let log = exim.wait_log("Completed").await;
        // `K`: the message went as BDAT (CHUNKING); `CV=yes`: the certificate was verified;
        // `A=plain`: authenticated.
        let delivery = log
            .lines()
            .find(|l| l.contains(" => ops@example.net "))
            .unwrap_or_else(|| panic!("no delivery line:\n{log}"));
        assert!(delivery.contains(" CV=yes "), "{delivery}");
        assert!(delivery.contains(" A=plain "), "{delivery}");
        assert!(
            delivery.contains(" K C=\"250 2.0.0 OK: queued as em_exim\""),
            "not sent with BDAT: {delivery}"
        );
        let sends = api.sends();
        assert_eq!(
            sends.len(),
            before + 1,
            "exactly once (implicit: {implicit})"
        );
        check_fields(&sends[before].json());
    }
}

#[tokio::test]
async fn exim_defers_on_a_wrong_key_and_sends_nothing() {
    let (api, relay) = relay_and_api().await;
    let exim = Exim::new(
        relay.starttls.port(),
        "sk_live_not_a_real_key",
        &relay.ca(),
        false,
    );
    exim.sendmail("cron@example.com", "ops@example.net", &message())
        .await;
    let log = exim.wait_log(" == ops@example.net ").await;
    assert!(log.contains("535 5.7.8"), "{log}");
    assert!(!log.contains(" ** "), "bounced: {log}");
    assert!(api.sends().is_empty());
}

#[tokio::test]
async fn a_failing_api_is_deferred_and_the_next_queue_run_delivers_once() {
    let (api, relay) = relay_and_api().await;
    let down = Arc::new(AtomicBool::new(true));
    let is_down = Arc::clone(&down);
    api.answer_sends(KEY, move |_| {
        if is_down.load(Ordering::SeqCst) {
            Answer::json(
                503,
                json!({"error": {"code": "unavailable", "message": "Maintenance"}}),
            )
        } else {
            Answer::json(200, json!({"id": "em_exim"}))
        }
    });
    let exim = Exim::new(relay.starttls.port(), KEY, &relay.ca(), false);
    exim.sendmail("cron@example.com", "ops@example.net", &message())
        .await;
    let log = exim.wait_log(" == ops@example.net ").await;
    assert!(log.contains("451 4."), "{log}");
    assert_eq!(api.sends().len(), 1, "one attempt, refused");

    down.store(false, Ordering::SeqCst);
    exim.queue_run().await;
    let log = exim
        .wait_log(" K C=\"250 2.0.0 OK: queued as em_exim\"")
        .await;
    assert!(log.contains("Completed"), "{log}");
    let sends = api.sends();
    assert_eq!(sends.len(), 2, "one more attempt, accepted");
    check_fields(&sends[1].json());
    // The same message both times: the API can tell the retry by its Idempotency-Key.
    assert_eq!(
        sends[0].header("idempotency-key"),
        sends[1].header("idempotency-key")
    );
}
