//! Failing early (docs/upstream.md "Failing early"), through real TLS sessions against a
//! recording stand-in API: after a 429 the key's next `MAIL FROM` hears `451 4.7.1` at once
//! for the `Retry-After` time (seconds or an HTTP date), after a 403 the key and `From`
//! domain do for 60 s, a 2xx forgets, pipelined commands after the refusal get `503`, and
//! nothing is uploaded meanwhile. Waits are on conditions, never fixed sleeps.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::client::Client;
use common::mock_api::{Answer, MockApi};
use common::relay::{KEY, TestRelay};
use serde_json::json;

fn message(from: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: r@rcpt.example\r\nSubject: {subject}\r\n\
         Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nHello\r\n.\r\n"
    )
}

/// MAIL FROM `from`, RCPT, DATA, the message; the final reply.
async fn send_from(c: &mut Client, envelope_from: &str, body: &str) -> String {
    let mail = c.cmd(&format!("MAIL FROM:<{envelope_from}>")).await;
    assert_eq!(mail, "250 2.1.0 Sender OK\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<r@rcpt.example>").await,
        "250 2.1.5 Recipient OK\r\n"
    );
    assert!(c.cmd("DATA").await.starts_with("354 "));
    c.send(body).await;
    c.reply().await
}

/// A relay on `api` and an authenticated session on it.
async fn session_on(api: &MockApi, fail_early: bool) -> (TestRelay, Client) {
    let base = api.base.clone();
    let relay = TestRelay::start(move |c| {
        c.upstream.url = base;
        c.upstream.fail_early = fail_early;
    })
    .await;
    let (c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    (relay, c)
}

/// A message from `from` (envelope and `From:`); the final reply.
async fn send_as(c: &mut Client, from: &str, subject: &str) -> String {
    send_from(c, from, &message(from, subject)).await
}

/// Repeats `MAIL FROM:<from>` (with RSET after a 250) until it is accepted; the time it took.
async fn until_accepted(c: &mut Client, from: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = c.cmd(&format!("MAIL FROM:<{from}>")).await;
        if reply.starts_with("250") {
            assert_eq!(c.cmd("RSET").await, "250 2.0.0 OK\r\n");
            return started.elapsed();
        }
        assert!(reply.starts_with("451 4.7.1 "), "{reply}");
        assert!(started.elapsed() < within, "still refused after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn after_a_429_the_next_mail_from_is_refused_until_retry_after() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| {
        Answer::json(
            429,
            json!({"error": {"code": "rate_limited", "message": "Slow down"}}),
        )
        .with_header("retry-after", "1")
    });
    let (relay, mut c) = session_on(&api, true).await;
    let first = send_as(&mut c, "s@sender.example", "a").await;
    assert!(
        first.starts_with("451 4.7.1 Slow down; retry after 1 s (ref "),
        "{first}"
    );

    // Pipelined: the refusal, then no transaction for RCPT and DATA; nothing uploaded.
    c.send("MAIL FROM:<s@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\nDATA\r\n")
        .await;
    assert_eq!(c.reply().await, "451 4.7.1 Slow down; retry after 1 s\r\n");
    assert_eq!(c.reply().await, "503 5.5.1 Need MAIL command\r\n");
    assert_eq!(c.reply().await, "503 5.5.1 Need MAIL command\r\n");
    assert_eq!(api.sends().len(), 1);
    // Another connection with the same key is refused too (per replica, by key).
    let (mut other, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(
        other
            .cmd("MAIL FROM:<x@elsewhere.example>")
            .await
            .starts_with("451 4.7.1 Slow down; retry after ")
    );

    // Accepted again once Retry-After has passed, and not before.
    let waited = until_accepted(&mut c, "s@sender.example", Duration::from_secs(5)).await;
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(
        relay
            .metric("early_refusals_total{reason=\"rate_limited\"}")
            .await
            >= 2
    );
    assert_eq!(api.sends().len(), 1);
}

#[tokio::test]
async fn a_retry_after_http_date_is_honoured_in_the_reply_and_the_hold() {
    let api = MockApi::start(KEY).await;
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    api.answer_sends(KEY, move |_| {
        Answer::json(429, json!({"error": {"message": "Quota"}})).with_header("retry-after", &at)
    });
    let (_relay, mut c) = session_on(&api, true).await;
    let first = send_as(&mut c, "s@sender.example", "a").await;
    // The date has one-second resolution: 2 to 3 s from now.
    assert!(
        first.starts_with("451 4.7.1 Quota; retry after 2 s")
            || first.starts_with("451 4.7.1 Quota; retry after 3 s"),
        "{first}"
    );
    let early = c.cmd("MAIL FROM:<s@sender.example>").await;
    assert!(
        early.starts_with("451 4.7.1 Quota; retry after "),
        "{early}"
    );
    let waited = until_accepted(&mut c, "s@sender.example", Duration::from_secs(6)).await;
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
}

#[tokio::test]
async fn a_2xx_for_the_key_forgets_a_429() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |r| {
        if r.json()["subject"] == "limit" {
            Answer::json(429, json!({"error": {"message": "Slow down"}}))
                .with_header("retry-after", "60")
        } else {
            Answer::json(202, json!({"id": "em_1"}))
        }
    });
    // B is inside a transaction before the 429 arrives.
    let (relay, mut b) = session_on(&api, true).await;
    b.begin_message().await;
    let (mut a, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let limited = send_as(&mut a, "s@sender.example", "limit").await;
    assert!(limited.starts_with("451 4.7.1 Slow down"), "{limited}");
    assert!(
        a.cmd("MAIL FROM:<s@sender.example>")
            .await
            .starts_with("451 4.7.1 Slow down; retry after 60 s")
    );
    b.send(message("s@sender.example", "fine")).await;
    assert_eq!(b.reply().await, "250 2.0.0 OK: queued as em_1\r\n");
    assert_eq!(
        a.cmd("MAIL FROM:<s@sender.example>").await,
        "250 2.1.0 Sender OK\r\n"
    );
}

#[tokio::test]
async fn after_a_403_the_key_and_from_domain_are_refused_but_not_others() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |r| {
        let from = r.json()["from"]["email"].as_str().unwrap_or("").to_string();
        if from.ends_with("@unverified.example") {
            Answer::json(
                403,
                json!({"error": {"code": "domain_not_verified", "message": "Domain unverified.example is not verified"}}),
            )
        } else {
            Answer::json(202, json!({"id": "em_ok"}))
        }
    });
    let (relay, mut c) = session_on(&api, true).await;
    let first = send_as(&mut c, "app@unverified.example", "a").await;
    assert!(
        first.starts_with("550 5.7.1 Domain unverified.example is not verified"),
        "{first}"
    );
    // The same domain, any case: a temporary 451, never a 5xx.
    assert_eq!(
        c.cmd("MAIL FROM:<billing@UNVERIFIED.example>").await,
        "451 4.7.1 Domain unverified.example is not verified\r\n"
    );
    // The null sender and other domains go on.
    assert_eq!(c.cmd("MAIL FROM:<>").await, "250 2.1.0 Sender OK\r\n");
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 OK\r\n");
    let other = send_as(&mut c, "app@fine.example", "b").await;
    assert_eq!(other, "250 2.0.0 OK: queued as em_ok\r\n");
    assert!(
        c.cmd("MAIL FROM:<app@unverified.example>")
            .await
            .starts_with("451 4.7.1")
    );
    assert_eq!(
        relay
            .metric("early_refusals_total{reason=\"sender_refused\"}")
            .await,
        2
    );

    // The API now accepts that From domain (verified meanwhile): a 2xx forgets the pair.
    api.answer_sends(KEY, |_| Answer::json(202, json!({"id": "em_now"})));
    let verified = send_from(
        &mut c,
        "bounce@fine.example",
        &message("app@unverified.example", "c"),
    )
    .await;
    assert_eq!(verified, "250 2.0.0 OK: queued as em_now\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<app@unverified.example>").await,
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(api.sends().len(), 3);
}

#[tokio::test]
async fn fail_early_false_uploads_every_message() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| {
        Answer::json(429, json!({"error": {"message": "Slow down"}}))
            .with_header("retry-after", "60")
    });
    let (relay, mut c) = session_on(&api, false).await;
    for _ in 0..2 {
        let reply = send_as(&mut c, "s@sender.example", "a").await;
        assert!(
            reply.starts_with("451 4.7.1 Slow down; retry after 60 s (ref "),
            "{reply}"
        );
    }
    assert_eq!(api.sends().len(), 2);
    assert_eq!(
        relay
            .metric("early_refusals_total{reason=\"rate_limited\"}")
            .await,
        0
    );
}
