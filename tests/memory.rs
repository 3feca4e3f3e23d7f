//! The memory budget over real sockets: when it is spent a session stops reading (TCP
//! backpressure) and goes on once memory is released, its pause not counted against
//! `data_min_rate`; after `limits.memory_wait` it answers `452 4.3.1` after the final dot and
//! stays usable; the waits are counted in the metrics.
//!
//! The relay takes 1 MiB messages under a 3.5 MiB budget: the small pool is 896 KiB and a
//! large reservation (the cost bound of a 1 MiB message, 1.25 MiB) fits twice in the rest, so
//! two messages of 800 KB in DATA hold the large pool and a third must wait.

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::relay::{KEY, TestRelay};
use common::wait;
use sendpigeon_relay::config::{HumanDuration, Size};

const BODY: usize = 800_000;

async fn relay(memory_wait: Duration) -> TestRelay {
    TestRelay::start(|c| {
        c.limits.message_size = Size(1 << 20);
        c.limits.memory_budget = Some(Size(3_670_016));
        c.limits.memory_wait = HumanDuration(memory_wait);
        // A session that counted its pause would fall below this rate.
        c.timeouts.data_rate_grace = HumanDuration(Duration::from_secs(1));
        c.timeouts.data_min_rate = Size(500_000);
    })
    .await
}

/// A session in DATA that has sent `BODY` bytes of its message, and no end yet.
async fn holding(relay: &TestRelay) -> Client {
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"), "{auth}");
    c.begin_message().await;
    c.send(format!("Subject: held\r\n\r\n{}\r\n", "h".repeat(BODY)))
        .await;
    c
}

/// Waits until the relay holds at least `bytes` of message data (the held sessions' bodies
/// have been read in), so that what follows meets a spent budget.
async fn held(relay: &TestRelay, bytes: usize) {
    wait::until(&format!("{bytes} bytes held"), wait::DEADLINE, || async {
        relay.metric("memory_budget_used_bytes").await >= bytes as u64
    })
    .await;
}

fn message() -> String {
    format!("Subject: waits\r\n\r\n{}\r\n.\r\n", "w".repeat(BODY))
}

async fn metric(relay: &TestRelay, line: &str) -> bool {
    let (_, metrics) = relay.admin_get("/metrics").await;
    metrics.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_session_waits_for_memory_and_goes_on_when_it_is_released() {
    let relay = relay(Duration::from_secs(20)).await;
    let mut a = holding(&relay).await;
    let mut b = holding(&relay).await;
    // The relay has taken both bodies in: the third must then wait.
    held(&relay, 2 * BODY).await;

    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    let started = Instant::now();
    let release_after = Duration::from_secs(2);
    let (_, a_reply) = tokio::join!(c.send(message()), async {
        tokio::time::sleep(release_after).await;
        a.send(".\r\n").await;
        a.reply().await
    });
    assert!(a_reply.starts_with("250 2.0.0 OK: queued as "), "{a_reply}");
    let reply = c.reply().await;
    assert!(reply.starts_with("250 2.0.0 OK: queued as "), "{reply}");
    assert!(
        started.elapsed() >= release_after,
        "the third message was taken in before memory was released"
    );
    b.send(".\r\n").await;
    assert!(b.reply().await.starts_with("250 "));
    assert_eq!(relay.messages().len(), 3);
    assert!(
        metric(
            &relay,
            "sendpigeon_relay_memory_waits_total{outcome=\"granted\"} 1"
        )
        .await
    );
    assert!(metric(&relay, "sendpigeon_relay_memory_budget_used_bytes 0").await);
}

#[tokio::test]
async fn after_memory_wait_the_message_gets_452_and_the_session_goes_on() {
    let relay = relay(Duration::from_secs(1)).await;
    let mut a = holding(&relay).await;
    let mut b = holding(&relay).await;
    held(&relay, 2 * BODY).await;

    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send(message()).await;
    assert_eq!(c.reply().await, "452 4.3.1 Insufficient system storage\r\n");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 OK\r\n");
    assert!(
        metric(
            &relay,
            "sendpigeon_relay_memory_waits_total{outcome=\"timeout\"} 1"
        )
        .await
    );
    assert!(
        metric(
            &relay,
            "sendpigeon_relay_messages_refused_total{class=\"4xx\",reason=\"memory\"} 1"
        )
        .await
    );

    // The holders were never disturbed.
    for held in [&mut a, &mut b] {
        held.send(".\r\n").await;
        assert!(held.reply().await.starts_with("250 "));
    }
    // And with memory free again, the same client's next message goes through.
    c.begin_message().await;
    c.send(message()).await;
    assert!(c.reply().await.starts_with("250 "));
    assert_eq!(relay.messages().len(), 3);
}

#[tokio::test]
async fn the_first_grant_is_waited_for_before_354() {
    // A budget so small that two held messages spend the small pool too: DATA itself waits.
    let relay = TestRelay::start(|c| {
        c.limits.message_size = Size(1 << 20);
        c.limits.memory_budget = Some(Size(1_900_000));
        c.limits.memory_wait = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let mut a = holding(&relay).await;
    held(&relay, BODY).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let (mut d, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    // c takes what is left of the small pool; d's DATA waits, then gets 452, no 354.
    c.begin_message().await;
    assert!(
        d.cmd("MAIL FROM:<s@sender.example>")
            .await
            .starts_with("250")
    );
    assert!(d.cmd("RCPT TO:<r@rcpt.example>").await.starts_with("250"));
    let started = Instant::now();
    assert_eq!(
        d.cmd("DATA").await,
        "452 4.3.1 Insufficient system storage\r\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(d.cmd("RSET").await, "250 2.0.0 OK\r\n");
    c.send("Subject: small\r\n\r\nHi\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 "));
    a.send(".\r\n").await;
    assert!(a.reply().await.starts_with("250 "));
}
