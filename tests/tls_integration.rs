//! Over real TCP and TLS: both listener kinds, a rustls client trusting the test CA, the
//! outbox checked after each exchange. Case names: docs/smtp.md "Hostile input".

mod common;

use std::time::Duration;

use common::client::{Client, plain};
use common::relay::{KEY, TestRelay, outbox_entries};
use sendpigeon_relay::config::{HumanDuration, Size};

const MESSAGE: &str = "From: Sender <s@sender.example>\r\nTo: r@rcpt.example\r\nSubject: hi\r\n\
    Message-ID: <tls-1@sender.example>\r\n\r\nHello\r\n.\r\n";

async fn send_one(c: &mut Client) -> String {
    c.begin_message().await;
    c.send(MESSAGE).await;
    c.reply().await
}

fn queued_id(reply: &str) -> String {
    reply
        .strip_prefix("250 2.0.0 OK: queued as ")
        .unwrap_or_else(|| panic!("not queued: {reply}"))
        .trim_end()
        .to_string()
}

#[tokio::test]
async fn starttls_submission_lands_in_the_outbox() {
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert_eq!(auth, "235 2.7.0 Authentication successful\r\n");
    let id = queued_id(&send_one(&mut c).await);
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");

    let messages = relay.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["relay"]["id"], id.as_str());
    assert_eq!(m["envelope"]["mail_from"], "s@sender.example");
    assert_eq!(
        m["envelope"]["rcpt_to"],
        serde_json::json!(["r@rcpt.example"])
    );
    assert_eq!(m["source"]["type"], "smtp");
    assert_eq!(m["source"]["client_ip"], "127.0.0.1");
    assert_eq!(m["source"]["tls"], "TLSv1.3");
    assert_eq!(m["source"]["helo"], "client.example");
    assert!(
        m["relay"]["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("smtp-")
    );
    let record = serde_json::to_string(m).unwrap();
    assert!(!record.contains(KEY), "the key must never be written");
    assert!(
        std::path::Path::new(&relay.outbox())
            .join(format!("{id}.json"))
            .is_file()
    );
}

#[tokio::test]
async fn implicit_tls_submission() {
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, greeting) = Client::tls(relay.implicit, &relay.ca()).await;
    assert_eq!(greeting, "220 relay.test ESMTP SendPigeon relay\r\n");
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN\r\n") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert_eq!(c.cmd("STARTTLS").await, "503 5.5.1 TLS already active\r\n");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", plain(KEY))).await,
        "235 2.7.0 Authentication successful\r\n"
    );
    queued_id(&send_one(&mut c).await);
    assert_eq!(relay.messages().len(), 1);
}

#[tokio::test]
async fn tls_1_2_clients_are_served() {
    // Laravel 8 / SwiftMailer negotiate TLS 1.2 only (docs/smtp.md "TLS").
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    c.cmd("EHLO client.example").await;
    c.cmd("STARTTLS").await;
    let mut c = c
        .upgrade_with(&relay.ca(), &[&rustls::version::TLS12])
        .await;
    c.cmd("EHLO client.example").await;
    assert!(
        c.cmd(&format!("AUTH PLAIN {}", plain(KEY)))
            .await
            .starts_with("235")
    );
    queued_id(&send_one(&mut c).await);
    assert_eq!(relay.messages()[0]["source"]["tls"], "TLSv1.2");
}

#[tokio::test]
async fn auth_is_never_offered_or_accepted_before_tls() {
    // AUTH-01, AUTH-02, AUTH-03.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(
        !ehlo.contains("AUTH") && ehlo.ends_with("250 STARTTLS\r\n"),
        "{ehlo}"
    );
    let refused = "530 5.7.0 Must issue a STARTTLS command first\r\n";
    assert_eq!(c.cmd(&format!("AUTH PLAIN {}", plain(KEY))).await, refused);
    assert_eq!(c.cmd("MAIL FROM:<s@sender.example>").await, refused);
    assert!(relay.messages().is_empty());
}

#[tokio::test]
async fn plaintext_injected_after_starttls_is_discarded() {
    // TLS-INJ-01: "STARTTLS\r\nNOOP\r\n" in one write; nothing answers the NOOP inside TLS.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    c.cmd("EHLO client.example").await;
    c.send("STARTTLS\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await, "220 2.0.0 Ready to start TLS\r\n");
    let mut c = c.upgrade(&relay.ca()).await;
    // Replies come in order: an answer to the injected NOOP would come before this one.
    let first = c.cmd("EHLO client.example").await;
    assert!(
        first.starts_with("250-relay.test\r\n"),
        "the injected NOOP was answered: {first:?}"
    );
}

#[tokio::test]
async fn a_failed_handshake_gets_no_plaintext_reply() {
    // TLS-INJ-07 and TLS-08.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    c.cmd("EHLO client.example").await;
    assert!(c.cmd("STARTTLS").await.starts_with("220"));
    c.send("EHLO x\r\n").await;
    let (closed, seen) = c.closed_within(Duration::from_secs(5)).await;
    assert!(closed);
    assert!(
        !seen.starts_with(|ch: char| ch.is_ascii_digit()),
        "plaintext reply: {seen:?}"
    );

    let mut tcp = tokio::net::TcpStream::connect(relay.implicit)
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"EHLO x\r\n").await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"220"),
        "a plaintext banner on the implicit port"
    );
}

#[tokio::test]
async fn size_limit_is_exact_and_the_session_survives() {
    // DATA-02 at the real limit: 26 214 400 bytes pass, 26 214 401 get 552 after the dot.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let header = "Subject: big\r\n\r\n";
    for (size, expect_ok) in [(26_214_400usize, true), (26_214_401, false)] {
        // Lines of 1000 bytes; the last line makes up the exact total (CRLFs included).
        let mut body = Vec::with_capacity(size + 8);
        body.extend_from_slice(header.as_bytes());
        let line = [vec![b'x'; 998], b"\r\n".to_vec()].concat();
        while body.len() + line.len() < size - 2 {
            body.extend_from_slice(&line);
        }
        body.resize(size - 2, b'y');
        body.extend_from_slice(b"\r\n");
        assert_eq!(body.len(), size);
        assert!(
            c.cmd("MAIL FROM:<s@sender.example>")
                .await
                .starts_with("250")
        );
        assert!(c.cmd("RCPT TO:<r@rcpt.example>").await.starts_with("250"));
        assert!(c.cmd("DATA").await.starts_with("354"));
        c.send(&body).await;
        c.send(".\r\n").await;
        let reply = c.reply().await;
        if expect_ok {
            queued_id(&reply);
        } else {
            assert_eq!(
                reply,
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
            );
        }
    }
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK\r\n");
    let messages = relay.messages();
    assert_eq!(messages.len(), 1);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_data_sends_nothing() {
    // TMO-06, TLS-12.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.cmd("MAIL FROM:<s@sender.example>").await;
    c.cmd("RCPT TO:<r@rcpt.example>").await;
    c.cmd("DATA").await;
    c.send("Subject: half\r\n\r\nthis message never ends\r\n")
        .await;
    drop(c);
    // Once the session has ended it has done all it will do.
    relay.wait_sessions(relay.starttls, 0).await;
    assert!(
        outbox_entries(&relay.outbox()).is_empty(),
        "{:?}",
        outbox_entries(&relay.outbox())
    );
}

#[tokio::test]
async fn idle_clients_time_out_with_421() {
    // TMO-01.
    let relay =
        TestRelay::start(|c| c.timeouts.command = HumanDuration(Duration::from_millis(500))).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    assert_eq!(
        c.reply().await,
        "421 4.4.2 relay.test Error: timeout exceeded\r\n"
    );
    assert!(c.closed_within(Duration::from_secs(2)).await.0);
}

#[tokio::test]
async fn a_command_trickled_byte_by_byte_still_has_one_deadline() {
    // TMO-02: the deadline covers the whole line; bytes arriving do not extend it.
    let relay =
        TestRelay::start(|c| c.timeouts.command = HumanDuration(Duration::from_millis(800))).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    let started = std::time::Instant::now();
    for b in b"NOOP NOOP NOOP NOOP".iter() {
        if !c.try_send([*b]).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_millis(1200) {
            break;
        }
    }
    let (closed, seen) = c.closed_within(Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(seen, "421 4.4.2 relay.test Error: timeout exceeded\r\n");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn slow_data_is_cut_below_the_minimum_rate() {
    // TMO-03.
    let relay = TestRelay::start(|c| {
        c.timeouts.data_rate_grace = HumanDuration(Duration::from_millis(300));
        c.timeouts.data_min_rate = Size(10_000);
    })
    .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.cmd("MAIL FROM:<s@sender.example>").await;
    c.cmd("RCPT TO:<r@rcpt.example>").await;
    c.cmd("DATA").await;
    let mut closed = false;
    for _ in 0..30 {
        c.send("x\r\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (gone, seen) = c.closed_within(Duration::from_millis(10)).await;
        if gone || !seen.is_empty() {
            assert!(seen.starts_with("421 4.4.2"), "{seen}");
            closed = true;
            break;
        }
    }
    assert!(closed, "a slow sender was never cut");
    relay.wait_sessions(relay.starttls, 0).await;
    assert!(outbox_entries(&relay.outbox()).is_empty());
}

#[tokio::test]
async fn the_global_connection_cap_answers_421() {
    // RES-03.
    let relay = TestRelay::start(|c| c.server.max_connections = 1).await;
    let (_first, greeting) = Client::plain(relay.starttls).await;
    assert!(greeting.starts_with("220"));
    let (mut second, busy) = Client::plain(relay.starttls).await;
    assert_eq!(busy, "421 4.4.5 Too busy, try again later\r\n");
    assert!(second.closed_within(Duration::from_secs(2)).await.0);
}

#[tokio::test]
async fn an_endless_line_closes_the_connection() {
    // LIM-03: memory stays bounded and the connection ends.
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    let chunk = vec![b'A'; 64 * 1024];
    for _ in 0..40 {
        let sent = tokio::time::timeout(Duration::from_secs(2), c.try_send(&chunk)).await;
        if !matches!(sent, Ok(true)) {
            break;
        }
    }
    let (closed, seen) = c.closed_within(Duration::from_secs(5)).await;
    assert!(closed);
    assert_eq!(seen, "500 5.5.2 Line too long\r\n");
}

#[tokio::test]
async fn three_wrong_keys_close_the_session() {
    // AUTH-23 over a real socket; the key never appears in any reply.
    let relay = TestRelay::start(|_| {}).await;
    let wrong = "sk_live_wrong_wrong_wrong";
    let (mut c, first) = Client::submission(relay.starttls, &relay.ca(), wrong).await;
    assert!(first.starts_with("535 5.7.8 "), "{first}");
    assert!(
        c.cmd(&format!("AUTH PLAIN {}", plain(wrong)))
            .await
            .starts_with("535")
    );
    let last = c.cmd(&format!("AUTH PLAIN {}", plain(wrong))).await;
    let (closed, rest) = c.closed_within(Duration::from_secs(2)).await;
    let all = format!("{first}{last}{rest}");
    assert!(closed);
    assert!(
        all.contains("421 4.7.0 Too many authentication failures\r\n"),
        "{all}"
    );
    assert!(!all.contains(wrong) && !all.contains(&plain(wrong)));
}

#[tokio::test]
async fn one_stuck_session_does_not_hold_up_others() {
    let relay = TestRelay::start(|_| {}).await;
    let (mut stuck, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    stuck.cmd("MAIL FROM:<s@sender.example>").await;
    stuck.cmd("RCPT TO:<r@rcpt.example>").await;
    stuck.cmd("DATA").await;
    stuck.send("Subject: slow\r\n\r\npart").await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (addr, ca) = (relay.starttls, relay.ca());
        handles.push(tokio::spawn(async move {
            let (mut c, _) = Client::submission(addr, &ca, KEY).await;
            queued_id(&send_one(&mut c).await)
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(relay.messages().len(), 8);
}

#[tokio::test]
async fn an_rsa_certificate_chain_is_served_too() {
    // The development generator makes ECDSA; production chains are often RSA.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("rsa.crt"), dir.path().join("rsa.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (c2, k2) = (cert.clone(), key.clone());
    let relay = TestRelay::start(move |c| {
        c.tls.generate_if_missing = false;
        c.tls.certificate = c2;
        c.tls.key = k2;
    })
    .await;
    let (mut c, greeting) = Client::tls(relay.implicit, &cert).await;
    assert!(greeting.starts_with("220 "));
    assert!(
        c.cmd("EHLO client.example")
            .await
            .contains("AUTH PLAIN LOGIN")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_and_older_are_refused() {
    // TLS-01: openssl, allowed to offer TLS 1.1 (security level 0), is refused by the server;
    // the same client with TLS 1.2 gets through, so the refusal is the server's.
    let relay = TestRelay::start(|_| {}).await;
    let address = relay.implicit.to_string();
    let handshake = move |version: &'static str| {
        let address = address.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &address,
                    version,
                    "-cipher",
                    "DEFAULT@SECLEVEL=0",
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("openssl");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let old = handshake("-tls1_1").await.unwrap();
    assert!(old.contains("alert"), "{old}");
    assert!(!old.contains("New, TLSv1.1"), "{old}");
    let current = handshake("-tls1_2").await.unwrap();
    assert!(current.contains("New, TLSv1.2"), "{current}");
}
