//! Postfix (Debian's 3.7) as a legacy system uses the relay: as its smarthost, with SASL and
//! TLS, configured as docs/clients.md "Postfix and Exim as a smarthost" says. Every message
//! reaches the API exactly once, field by field; a wrong key is deferred (kept in Postfix's
//! queue, never lost, never sent). Needs root and postfix (`.ci/run` installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mock_api::{Answer, MockApi};
use common::mta::{self, run};
use common::relay::{KEY, TestRelay};
use serde_json::json;

/// A private Postfix instance (its own config, queue and log) relaying everything to
/// `relayhost`; stopped when dropped.
struct Postfix {
    dir: tempfile::TempDir,
}

impl Postfix {
    fn start(relayhost: &str, key: &str, ca: &Path, extra: &str) -> Postfix {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["etc", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        run("chown", &["postfix", &d.join("data").display().to_string()]);
        run("chmod", &["755", &d.display().to_string()]);
        // Postfix's own service table, without the port 25 listener (mail comes in by
        // sendmail) and without chroot (the queue is in a temporary directory, with no
        // /etc/hosts for the relay's name).
        let master = std::fs::read_to_string("/etc/postfix/master.cf.proto")
            .expect("postfix is installed (.ci/run)");
        let master: String = master
            .lines()
            .filter(|l| !l.starts_with("smtp      inet"))
            .map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                if l.starts_with(['#', ' ', '\t']) || fields.len() < 8 {
                    return format!("{l}\n");
                }
                let mut fields = fields;
                fields[4] = "n";
                format!("{}\n", fields.join(" "))
            })
            .collect();
        std::fs::write(d.join("etc/master.cf"), master).unwrap();
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {q}\n\
             data_directory = {data}\n\
             maillog_file_prefixes = /tmp, /var, {root}\n\
             maillog_file = {log}\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             myhostname = smarthost.test\n\
             mydestination =\n\
             alias_maps =\n\
             alias_database =\n\
             relayhost = {relayhost}\n\
             smtp_host_lookup = native\n\
             smtp_sasl_auth_enable = yes\n\
             smtp_sasl_password_maps = static:{{apikey:{key}}}\n\
             smtp_sasl_security_options = noanonymous\n\
             smtp_sasl_tls_security_options = noanonymous\n\
             smtp_tls_security_level = verify\n\
             smtp_tls_CAfile = {ca}\n\
             smtp_tls_verify_cert_match = hostname\n\
             message_size_limit = 26214400\n\
             {extra}\n",
            q = d.join("queue").display(),
            data = d.join("data").display(),
            root = d.display(),
            log = d.join("maillog").display(),
            ca = ca.display(),
        );
        std::fs::write(d.join("etc/main.cf"), main).unwrap();
        run(
            "postfix",
            &["-c", &d.join("etc").display().to_string(), "start"],
        );
        Postfix { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Hands a message to Postfix as a local program would.
    fn sendmail(&self, from: &str, to: &str, message: &str) {
        use std::io::Write;
        let mut child = Command::new("sendmail")
            .args(["-C", &self.config().display().to_string(), "-f", from, to])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sendmail");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// Waits until the log has `needle` (within 30 s).
    async fn wait_log(&self, needle: &str) -> String {
        mta::wait_log(&self.dir.path().join("maillog"), needle).await
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .args(["-c", &self.config().display().to_string(), "stop"])
            .output();
    }
}

const MESSAGE: &str = "From: Alerts <alerts@example.com>\n\
    To: ops@example.net\n\
    Subject: Disk almost full\n\
    Message-ID: <disk.42@example.com>\n\
    Date: Fri, 04 Dec 2026 10:00:00 +0000\n\
    \n\
    /var is at 91%.\n";

async fn relay_and_api() -> (MockApi, TestRelay) {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| Answer::json(200, json!({"id": "em_postfix"})));
    let base = api.base.clone();
    let relay = TestRelay::start(move |c| c.upstream.url = base).await;
    (api, relay)
}

/// The relay's name in its certificate, for `smtp_tls_security_level = verify`.
fn relayhost(addr: std::net::SocketAddr) -> String {
    format!("[localhost]:{}", addr.port())
}

#[tokio::test]
async fn postfix_relays_through_starttls_and_implicit_tls_exactly_once() {
    let (api, relay) = relay_and_api().await;
    for (addr, extra) in [
        (relay.starttls, ""),
        (relay.implicit, "smtp_tls_wrappermode = yes"),
    ] {
        let before = api.sends().len();
        let postfix = Postfix::start(&relayhost(addr), KEY, &relay.ca(), extra);
        postfix.sendmail("alerts@example.com", "ops@example.net", MESSAGE);
        let log = postfix.wait_log("status=sent").await;
        assert!(
            log.contains("status=sent (250 2.0.0 OK: queued as em_postfix)"),
            "{log}"
        );
        let sends = api.sends();
        assert_eq!(sends.len(), before + 1, "exactly once ({extra:?})");
        let body = sends[before].json();
        assert_eq!(
            body["from"],
            json!({"email": "alerts@example.com", "name": "Alerts"})
        );
        assert_eq!(body["to"], json!([{"email": "ops@example.net"}]));
        assert_eq!(body["subject"], "Disk almost full");
        assert_eq!(body["text"], "/var is at 91%.\n");
        assert_eq!(
            body["envelope"],
            json!({"mail_from": "alerts@example.com", "rcpt_to": ["ops@example.net"]})
        );
    }
}

#[tokio::test]
async fn postfix_defers_on_a_wrong_key_and_sends_nothing() {
    let (api, relay) = relay_and_api().await;
    let postfix = Postfix::start(
        &relayhost(relay.starttls),
        "sk_live_not_a_real_key",
        &relay.ca(),
        "",
    );
    postfix.sendmail("alerts@example.com", "ops@example.net", MESSAGE);
    let log = postfix.wait_log("status=deferred").await;
    assert!(log.contains("535 5.7.8"), "{log}");
    assert!(api.sends().is_empty());
    // Still in Postfix's queue: deferred, not bounced.
    assert!(!log.contains("status=bounced"), "{log}");
}
