//! The REST upstream, driven by a real SMTP client over TLS against a recording HTTP server:
//! every row of the error table, transport failures, timeouts, the shared pool, the key-check
//! cache and the Idempotency-Key.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::client::{Client, plain};
use common::mock_api::{Answer, MockApi};
use common::relay::{KEY, TestRelay};
use sendpigeon_relay::config::{HumanDuration, Verify};
use serde_json::json;

const MESSAGE: &str = "From: Sender <s@sender.example>\r\nTo: r@rcpt.example\r\nSubject: hi\r\n\
    Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nHello\r\n";

async fn relay_for(
    api: &MockApi,
    tune: impl FnOnce(&mut sendpigeon_relay::config::Config),
) -> TestRelay {
    let base = api.base.clone();
    TestRelay::start(move |c| {
        c.upstream.url = base;
        tune(c);
    })
    .await
}

/// MAIL, RCPT, DATA, the message, the final reply.
async fn send(c: &mut Client, message: &str) -> String {
    c.begin_message().await;
    c.send(format!("{message}.\r\n")).await;
    c.reply().await
}

#[tokio::test]
async fn a_message_becomes_one_post_with_the_contract_headers() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| {
        Answer::json(202, json!({"id": "em_01J8<script>/../x"}))
    });
    let relay = relay_for(&api, |_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert_eq!(
        send(&mut c, MESSAGE).await,
        "250 2.0.0 OK: queued as em_01J8script..x\r\n"
    );
    let sends = api.sends();
    assert_eq!(sends.len(), 1);
    let r = &sends[0];
    assert_eq!(r.path, "/v1/emails");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("user-agent"),
        Some(format!("sendpigeon-relay/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert!(r.header("idempotency-key").unwrap().starts_with("smtp-"));
    let request_id = r.header("x-request-id").unwrap();
    assert!(request_id.ends_with(".1"), "{request_id}");
    let body = r.json();
    assert_eq!(
        body["envelope"],
        json!({"mail_from": "s@sender.example", "rcpt_to": ["r@rcpt.example"]})
    );
    assert_eq!(
        body["source"]["session_id"],
        request_id.trim_end_matches(".1")
    );
    assert!(
        body.get("relay").is_none(),
        "the outbox-only object is not sent"
    );
    assert!(relay.messages().is_empty(), "nothing written to an outbox");
}

#[tokio::test]
async fn every_row_of_the_error_table_over_smtp() {
    let api = MockApi::start(KEY).await;
    // Each row in turn on one session: failing early would answer the rows after the 403 and
    // the 429s at MAIL FROM (tests/failing_early.rs covers that).
    let relay = relay_for(&api, |c| c.upstream.fail_early = false).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let e = |code: &str, message: &str| json!({"error": {"code": code, "message": message}});
    let rows: Vec<(Answer, &str)> = vec![
        (
            Answer::json(400, e("invalid_request", "No body")),
            "554 5.6.0 No body",
        ),
        (
            Answer::json(401, e("revoked_api_key", "Revoked")),
            "554 5.7.8 API key is no longer valid",
        ),
        (
            Answer::json(403, e("domain_not_verified", "Verify sender.example")),
            "550 5.7.1 Verify sender.example",
        ),
        (
            Answer::status(404, ""),
            "451 4.3.5 Temporary configuration error",
        ),
        (
            Answer::status(405, ""),
            "451 4.3.5 Temporary configuration error",
        ),
        (
            Answer::status(415, ""),
            "451 4.3.5 Temporary configuration error",
        ),
        (
            Answer::json(409, e("idempotency_in_progress", "Still working")),
            "451 4.3.0 Still working",
        ),
        (
            Answer::json(409, e("idempotency_key_reused", "Other payload")),
            "554 5.6.0 Other payload",
        ),
        (
            Answer::json(413, e("payload_too_large", "Too large")),
            "552 5.3.4 Too large",
        ),
        (
            Answer::json(422, e("too_many_recipients", "Max 50")),
            "554 5.5.3 Max 50",
        ),
        (
            Answer::json(422, e("invalid_from_address", "Bad sender")),
            "554 5.1.7 Bad sender",
        ),
        (
            Answer::json(422, e("invalid_recipient", "Bad recipient")),
            "554 5.1.3 Bad recipient",
        ),
        (
            Answer::json(422, e("invalid_attachment", "Bad attachment")),
            "554 5.6.0 Bad attachment",
        ),
        (
            Answer::json(429, e("rate_limit_exceeded", "Slow down"))
                .with_header("retry-after", "12"),
            "451 4.7.1 Slow down; retry after 12 s",
        ),
        (
            Answer::json(
                429,
                json!({"error": {"code": "monthly_quota_exceeded", "message": "Quota spent", "retryable": false}}),
            ),
            "550 5.7.1 Quota spent",
        ),
        (
            Answer::json(500, e("internal_error", "boom")),
            "451 4.3.0 Temporary server error, try again later",
        ),
        (
            Answer::status(502, "<html>bad gateway</html>"),
            "451 4.4.2 Upstream error, try again later",
        ),
        (
            Answer::status(503, "").with_header("retry-after", "30"),
            "451 4.3.2 Service temporarily unavailable, try again later",
        ),
        (
            Answer::status(504, ""),
            "451 4.4.1 Upstream timeout, try again later",
        ),
        (
            Answer::status(418, "teapot"),
            "451 4.3.0 Temporary error (HTTP 418)",
        ),
        (
            Answer::status(302, ""),
            "451 4.3.0 Temporary error (HTTP 302)",
        ),
        (
            Answer::json(400, json!({"error": {"message": "bad\r\n250 2.0.0 Ok"}})),
            "554 5.6.0 bad 250 2.0.0 Ok",
        ),
        (
            Answer::status(400, ""),
            "554 5.6.0 Message rejected by the API",
        ),
        (
            Answer::status(400, "not json at all"),
            "554 5.6.0 Message rejected by the API",
        ),
    ];
    for (answer, expected) in rows {
        let answer_for_send = answer.clone();
        api.answer_sends(KEY, move |_| answer_for_send.clone());
        let reply = send(&mut c, MESSAGE).await;
        assert!(
            reply.starts_with(&format!("{expected} (ref ")),
            "expected {expected:?}, got {reply:?}"
        );
        assert!(reply.ends_with(")\r\n") && reply.lines().count() == 1);
    }
    // The session is still fine afterwards.
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK\r\n");
}

#[tokio::test]
async fn a_huge_error_body_is_read_only_in_part() {
    let api = MockApi::start(KEY).await;
    let huge = format!(
        "{{\"error\": {{\"message\": \"{}\"}}}}",
        "x".repeat(20 * 1024 * 1024)
    );
    api.answer_sends(KEY, move |_| Answer::status(403, &huge));
    let relay = relay_for(&api, |_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let reply = send(&mut c, MESSAGE).await;
    // The message is not parseable from a 16 KiB prefix: the row's default text.
    assert!(
        reply.starts_with("550 5.7.1 Sender not allowed (ref "),
        "{reply}"
    );
}

#[tokio::test]
async fn a_slow_upstream_gets_451_within_the_timeout() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| {
        Answer::json(200, json!({"id": "late"})).delayed(Duration::from_secs(5))
    });
    let relay = relay_for(&api, |c| {
        c.timeouts.upstream = HumanDuration(Duration::from_millis(700))
    })
    .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let started = Instant::now();
    let reply = send(&mut c, MESSAGE).await;
    assert!(reply.starts_with("451 4.4.1 "), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Never a hang: the same session can try again at once.
    api.answer_sends(KEY, |_| Answer::json(200, json!({"id": "em_ok"})));
    assert_eq!(
        send(&mut c, MESSAGE).await,
        "250 2.0.0 OK: queued as em_ok\r\n"
    );
}

#[tokio::test]
async fn an_upstream_that_closes_early_never_gets_a_250() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\": \"em".to_vec(),
            "451 4.4.2 ",
        ),
        (Vec::new(), "451 4.4.1 "),
        (b"HTTP/1.1 20".to_vec(), "451 4.4.1 "),
        (b"garbage garbage\r\n\r\n".to_vec(), "451 4.4.1 "),
    ];
    for (raw, expected) in cases {
        api.answer_sends(KEY, move |_| Answer::Raw(raw.clone()));
        let reply = send(&mut c, MESSAGE).await;
        assert!(
            reply.starts_with(expected),
            "expected {expected:?}, got {reply:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_and_tls_failures_are_temporary() {
    // Connection refused: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = TestRelay::start(|c| c.upstream.url = format!("http://{closed}")).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(
        send(&mut c, MESSAGE)
            .await
            .starts_with("451 4.4.1 Upstream unreachable")
    );

    // TLS to a server that answers in plaintext.
    let plaintext = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_base = format!("https://{}", plaintext.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut tcp, _)) = plaintext.accept().await {
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let relay = TestRelay::start(move |c| c.upstream.url = tls_base).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let reply = send(&mut c, MESSAGE).await;
    assert!(
        reply.starts_with("451 4.4.1 Upstream unreachable"),
        "{reply}"
    );

    // A name that does not resolve.
    let relay = TestRelay::start(|c| {
        c.upstream.url = "https://relay-test.invalid".into();
        c.timeouts.upstream_connect = HumanDuration(Duration::from_secs(2));
    })
    .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(send(&mut c, MESSAGE).await.starts_with("451 4.4."));
}

#[tokio::test]
async fn sessions_share_one_connection_pool() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |_| {}).await;
    for _ in 0..5 {
        let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
        assert!(send(&mut c, MESSAGE).await.starts_with("250 "));
    }
    assert_eq!(
        api.connections.load(Ordering::SeqCst),
        1,
        "sequential sessions reuse one connection"
    );
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (addr, ca) = (relay.starttls, relay.ca());
        tasks.push(tokio::spawn(async move {
            let (mut c, _) = Client::submission(addr, &ca, KEY).await;
            send(&mut c, MESSAGE).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().starts_with("250 "));
    }
    assert_eq!(api.sends().len(), 15);
    assert!(api.connections.load(Ordering::SeqCst) <= 11);
}

#[tokio::test]
async fn key_checks_are_cached_and_shared() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |c| {
        c.auth.verify = Verify::Upstream;
        c.auth.cache_valid = HumanDuration(Duration::from_millis(600));
        c.auth.cache_invalid = HumanDuration(Duration::from_millis(600));
    })
    .await;
    // A burst of connections with one key: one call.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (addr, ca) = (relay.starttls, relay.ca());
        tasks.push(tokio::spawn(async move {
            Client::submission(addr, &ca, KEY).await.1
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "235 2.7.0 Authentication successful\r\n");
    }
    assert_eq!(api.key_checks(), 1);

    // A flood of one wrong key: one call while the negative answer is cached.
    for _ in 0..4 {
        let (_, reply) = Client::submission(relay.starttls, &relay.ca(), "sk_live_wrong").await;
        assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    }
    assert_eq!(api.key_checks(), 2);

    // The key is revoked: refused once the positive answer expires.
    api.answer(|r| {
        if r.method == "GET" {
            Answer::json(401, json!({"error": {"code": "revoked_api_key"}}))
        } else {
            Answer::json(200, json!({"id": "x"}))
        }
    });
    assert!(
        Client::submission(relay.starttls, &relay.ca(), KEY)
            .await
            .1
            .starts_with("235")
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        Client::submission(relay.starttls, &relay.ca(), KEY)
            .await
            .1
            .starts_with("535 5.7.8 ")
    );
}

#[tokio::test]
async fn key_check_failures_are_temporary() {
    // 500 from the API, and an API that cannot be reached: 454, and nothing cached.
    let api = MockApi::start(KEY).await;
    api.answer(|_| Answer::status(500, "boom"));
    let relay = relay_for(&api, |c| c.auth.verify = Verify::Upstream).await;
    let (_, reply) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert_eq!(reply, "454 4.7.0 Temporary authentication failure\r\n");
    let (_, reply) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert_eq!(reply, "454 4.7.0 Temporary authentication failure\r\n");
    assert_eq!(api.key_checks(), 2);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = TestRelay::start(move |c| {
        c.upstream.url = format!("http://{closed}");
        c.auth.verify = Verify::Upstream;
    })
    .await;
    let (_, reply) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert_eq!(reply, "454 4.7.0 Temporary authentication failure\r\n");
}

#[tokio::test]
async fn the_idempotency_key_follows_the_bytes() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |_| {}).await;
    let once = |message: &'static str| {
        let (addr, ca) = (relay.starttls, relay.ca());
        async move {
            let (mut c, _) = Client::submission(addr, &ca, KEY).await;
            send(&mut c, message).await
        }
    };
    once(MESSAGE).await;
    once(MESSAGE).await; // resent after a "lost 250", on a new connection
    once("From: s@sender.example\r\nSubject: other\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nHello\r\n").await;
    once("From: s@sender.example\r\nX-SP-Idempotency-Key: order-42/attempt\r\nSubject: x\r\n\r\nHi\r\n").await;
    let sends = api.sends();
    let keys: Vec<&str> = sends
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys[0], keys[1], "the same bytes carry the same key");
    assert_ne!(keys[0], keys[2], "different bytes, a different key");
    assert_eq!(keys[3], "order-42/attempt");
    assert_ne!(
        sends[0].header("x-request-id"),
        sends[1].header("x-request-id")
    );
    let forwarded = sends[3].json()["headers"].to_string();
    assert!(
        !forwarded.to_ascii_lowercase().contains("idempotency"),
        "{forwarded}"
    );

    // An invalid header value is refused before any request.
    let (addr, ca) = (relay.starttls, relay.ca());
    let (mut c, _) = Client::submission(addr, &ca, KEY).await;
    let long = format!(
        "From: s@sender.example\r\nX-SP-Idempotency-Key: {}\r\n\r\nHi\r\n",
        "k".repeat(300)
    );
    let reply = send(&mut c, &long).await;
    assert!(reply.starts_with("554 5.6.0 "), "{reply}");
    assert_eq!(api.sends().len(), 4);
    let _ = plain;
}

/// Repeated alerts are never deduplicated away (docs/upstream.md, Idempotency-Key): against a
/// stand-in that deduplicates on the Idempotency-Key as the real API does (a replay gets the
/// first response and delivers nothing), three identical messages without a Message-ID or
/// Date are three deliveries, while a message with a Message-ID sent twice (a retry after a
/// lost 250) is one. Identity is read from the top-level header only: the same fields in the
/// body do not count. Each message without identity is counted in the metrics.
#[tokio::test]
async fn messages_without_identity_are_never_deduplicated() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let api = MockApi::start(KEY).await;
    let delivered = Arc::new(Mutex::new(Vec::<String>::new()));
    let first_answers = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    {
        let delivered = Arc::clone(&delivered);
        api.answer_sends(KEY, move |r| {
            let mut seen = first_answers.lock().unwrap();
            if let Some(id) = r.header("idempotency-key").and_then(|k| seen.get(k)) {
                return Answer::json(200, json!({ "id": id }));
            }
            let mut delivered = delivered.lock().unwrap();
            let id = format!("em_{}", delivered.len() + 1);
            delivered.push(r.json()["subject"].as_str().unwrap_or("").to_string());
            if let Some(key) = r.header("idempotency-key") {
                seen.insert(key.to_string(), id.clone());
            }
            Answer::json(200, json!({ "id": id }))
        });
    }
    let relay = relay_for(&api, |_| {}).await;
    let alert = "From: cron@sender.example\r\nTo: ops@rcpt.example\r\nSubject: disk full\r\n\r\n\
                 Message-ID: <not-a-header@body>\r\nDate: not a header either\r\n";
    let mail = "From: s@sender.example\r\nTo: r@rcpt.example\r\nSubject: invoice\r\n\
                Message-ID: <invoice-7@sender.example>\r\n\r\nHello\r\n";
    let mut replies = Vec::new();
    for message in [alert, alert, alert, mail, mail] {
        let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
        replies.push(send(&mut c, message).await);
    }
    assert!(replies.iter().all(|r| r.starts_with("250 ")), "{replies:?}");
    assert_eq!(replies[3], replies[4], "the retry gets the first answer");
    assert_eq!(
        *delivered.lock().unwrap(),
        ["disk full", "disk full", "disk full", "invoice"]
    );
    let sends = api.sends();
    assert!(
        sends[..3]
            .iter()
            .all(|r| r.header("idempotency-key").is_none())
    );
    assert!(sends[3].header("idempotency-key").is_some());
    let (_, metrics) = relay.admin_get("/metrics").await;
    assert!(
        metrics.contains("sendpigeon_relay_messages_without_identity_total 3"),
        "{metrics}"
    );
}

/// The fixtures as they are on the wire: each `.eml` with its golden JSON, skipping those
/// with bare LF line endings or no final CRLF (SMTP would change their bytes; the mapping
/// test covers them).
fn wire_fixtures() -> Vec<(std::path::PathBuf, Vec<u8>, serde_json::Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/messages");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for eml in names {
        let raw = std::fs::read(&eml).unwrap();
        let golden: serde_json::Value =
            serde_json::from_slice(&std::fs::read(eml.with_extension("json")).unwrap()).unwrap();
        let bare = raw.iter().enumerate().any(|(i, &b)| {
            (b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
                || (b == b'\r' && raw.get(i + 1) != Some(&b'\n'))
        });
        if !bare && raw.ends_with(b"\r\n") {
            out.push((eml, raw, golden));
        }
    }
    out
}

/// Sends one fixture through SMTP over TLS with its envelope; returns the reply to the dot.
async fn submit_fixture(relay: &TestRelay, eml: &std::path::Path, raw: &[u8]) -> String {
    let envelope: serde_json::Value = std::fs::read(eml.with_extension("envelope.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(json!({"mail_from": "bounces@example.com", "rcpt_to": ["jane@example.com"]}));
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let utf8 = if envelope.to_string().is_ascii() {
        ""
    } else {
        " SMTPUTF8"
    };
    let from = envelope["mail_from"].as_str().unwrap();
    assert!(
        c.cmd(&format!("MAIL FROM:<{from}>{utf8}"))
            .await
            .starts_with("250"),
        "{eml:?}"
    );
    for rcpt in envelope["rcpt_to"].as_array().unwrap() {
        assert!(
            c.cmd(&format!("RCPT TO:<{}>", rcpt.as_str().unwrap()))
                .await
                .starts_with("250")
        );
    }
    assert!(c.cmd("DATA").await.starts_with("354"));
    let mut stuffed = Vec::with_capacity(raw.len() + 64);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    stuffed.extend_from_slice(b".\r\n");
    c.send(&stuffed).await;
    c.reply().await
}

/// The mapping golden files, sent for real: each fixture that maps to a request goes through
/// SMTP over TLS, and the body the API receives equals the golden JSON field by field (all
/// but `source`, which describes this session).
#[tokio::test]
async fn golden_fixtures_reach_the_api_field_by_field() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |c| {
        c.limits.header_section = sendpigeon_relay::config::Size(16 * 1024)
    })
    .await;
    let mut compared = 0;
    for (eml, raw, golden) in wire_fixtures() {
        if golden.get("error").is_some() {
            continue;
        }
        let reply = submit_fixture(&relay, &eml, &raw).await;
        assert!(reply.starts_with("250 "), "{eml:?}: {reply}");
        let sent = api.sends().pop().unwrap().json();
        let mut expected = golden.clone();
        expected["source"] = sent["source"].clone();
        assert_eq!(sent, expected, "{eml:?}");
        compared += 1;
    }
    eprintln!("compared {compared} fixtures");
    assert!(compared >= 50, "only {compared} fixtures were compared");
}

/// The golden files that are refused, sent for real: each gets exactly its golden reply after
/// the final dot, and nothing reaches the API — a message the parser cut short at a limit
/// (too many parts, nesting too deep) included.
#[tokio::test]
async fn refused_fixtures_never_reach_the_api() {
    let api = MockApi::start(KEY).await;
    let relay = relay_for(&api, |c| {
        c.limits.header_section = sendpigeon_relay::config::Size(16 * 1024)
    })
    .await;
    let mut refused = Vec::new();
    for (eml, raw, golden) in wire_fixtures() {
        let Some(error) = golden.get("error").and_then(|e| e.as_str()) else {
            continue;
        };
        let reply = submit_fixture(&relay, &eml, &raw).await;
        assert_eq!(reply, format!("{error}\r\n"), "{eml:?}");
        refused.push(eml.file_stem().unwrap().to_string_lossy().into_owned());
    }
    assert!(api.sends().is_empty());
    for limit in [
        "mime-too-many-parts",
        "mime-nesting-too-deep",
        "mime-nesting-51-levels",
    ] {
        assert!(
            refused.iter().any(|r| r == limit),
            "{limit} not sent: {refused:?}"
        );
    }
}
