//! Graceful shutdown (hostile-input family SHUT, docs/smtp.md): idle sessions get 421 4.3.2
//! at once, transfers in flight finish within the grace period, new connections are refused,
//! and nothing left at the end is ever answered 250.

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::mock_api::{Answer, MockApi};
use common::relay::{KEY, TestRelay, outbox_entries};
use sendpigeon_relay::config::HumanDuration;
use serde_json::json;

const SHUTTING_DOWN: &str = "421 4.3.2 Service shutting down\r\n";

#[tokio::test]
async fn an_idle_session_gets_421_at_once_and_the_drain_is_clean() {
    // SHUT-01.
    let mut relay = TestRelay::start(|_| {}).await;
    let (mut idle, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let (mut greeted, _) = Client::plain(relay.starttls).await;
    assert!(relay.shutdown.is_ready());
    relay.shutdown.drain();
    assert!(!relay.shutdown.is_ready());
    assert_eq!(idle.reply().await, SHUTTING_DOWN);
    assert_eq!(greeted.reply().await, SHUTTING_DOWN);
    assert!(idle.closed_within(Duration::from_secs(2)).await.0);
    assert!(relay.stopped().await, "clean drain");
}

#[tokio::test]
async fn a_transfer_in_flight_finishes_then_gets_421() {
    // SHUT-02.
    let mut relay =
        TestRelay::start(|c| c.server.shutdown_grace = HumanDuration(Duration::from_secs(10)))
            .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send("Subject: during the drain\r\n\r\nfirst half\r\n")
        .await;
    relay.shutdown.drain();
    // SHUT-03: a new connection during the drain is told so.
    let (_, refused) = Client::plain(relay.starttls).await;
    assert_eq!(refused, SHUTTING_DOWN);
    c.send("second half\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 OK: queued as "));
    assert_eq!(c.cmd("MAIL FROM:<s@sender.example>").await, SHUTTING_DOWN);
    assert_eq!(relay.messages().len(), 1);
    let started = Instant::now();
    assert!(relay.stopped().await);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_grace_period_ends_a_stalled_transfer_with_421_and_nothing_sent() {
    // SHUT-04.
    let mut relay =
        TestRelay::start(|c| c.server.shutdown_grace = HumanDuration(Duration::from_millis(400)))
            .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send("Subject: never finished\r\n\r\npart").await;
    relay.shutdown.drain();
    let (closed, seen) = c.closed_within(Duration::from_secs(3)).await;
    assert!(closed);
    assert_eq!(seen, SHUTTING_DOWN);
    assert!(!relay.stopped().await, "not a clean drain");
    assert!(outbox_entries(&relay.outbox()).is_empty());
}

#[tokio::test]
async fn a_slow_upstream_past_the_grace_period_is_never_answered_250() {
    let api = MockApi::start(KEY).await;
    api.answer_sends(KEY, |_| {
        Answer::json(200, json!({"id": "too_late"})).delayed(Duration::from_secs(5))
    });
    let base = api.base.clone();
    let mut relay = TestRelay::start(move |c| {
        c.upstream.url = base;
        c.server.shutdown_grace = HumanDuration(Duration::from_millis(500));
    })
    .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send("Subject: slow\r\n\r\nhello\r\n.\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.shutdown.drain();
    let started = Instant::now();
    assert_eq!(c.reply().await, SHUTTING_DOWN);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!relay.stopped().await);
}

#[tokio::test]
async fn a_second_signal_closes_everything_at_once() {
    // SHUT-05.
    let mut relay =
        TestRelay::start(|c| c.server.shutdown_grace = HumanDuration(Duration::from_secs(30)))
            .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send("Subject: x\r\n\r\npart").await;
    relay.shutdown.drain();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    relay.shutdown.force();
    relay.shutdown.force();
    assert_eq!(
        c.closed_within(Duration::from_secs(3)).await.1,
        SHUTTING_DOWN
    );
    assert!(!relay.stopped().await);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn shutdown_during_a_handshake_or_an_auth_exchange_is_clean() {
    // SHUT-06.
    let mut relay =
        TestRelay::start(|c| c.server.shutdown_grace = HumanDuration(Duration::from_millis(300)))
            .await;
    let (mut half, _) = Client::plain(relay.starttls).await;
    half.cmd("EHLO client.example").await;
    half.cmd("STARTTLS").await; // and never starts the handshake
    let (mut c, _) = Client::plain(relay.starttls).await;
    c.cmd("EHLO client.example").await;
    c.cmd("STARTTLS").await;
    let mut c = c.upgrade(&relay.ca()).await;
    c.cmd("EHLO client.example").await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    relay.shutdown.drain();
    assert!(half.closed_within(Duration::from_secs(3)).await.0);
    assert!(c.closed_within(Duration::from_secs(3)).await.0);
    relay.stopped().await;
}

#[tokio::test]
async fn a_forced_stop_cuts_the_auth_failure_delay_short() {
    // A failed AUTH waits `auth.failure_delay` before its 535; a forced stop ends that wait
    // with 421 at once instead of holding the session past the stop.
    let relay = TestRelay::start(|c| {
        c.auth.failure_delay = HumanDuration(Duration::from_secs(30));
        c.server.shutdown_grace = HumanDuration(Duration::from_millis(200));
    })
    .await;
    let (mut c, _) = Client::plain(relay.starttls).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    assert!(c.cmd("STARTTLS").await.starts_with("220"));
    let mut c = c.upgrade(&relay.ca()).await;
    assert!(c.cmd("EHLO client.example").await.starts_with("250"));
    c.send(format!(
        "AUTH PLAIN {}\r\n",
        common::client::plain("sk_live_wrong_key_000000")
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    relay.shutdown.drain();
    assert_eq!(c.reply().await, SHUTTING_DOWN);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the 30 s delay was not cut short"
    );
    assert!(c.closed_within(Duration::from_secs(2)).await.0);
}

/// Waits until every message's memory is given back: the upstream's work for it (mapping,
/// writing) has finished, whether or not its client is still waiting.
async fn upstream_work_done(relay: &TestRelay) {
    let started = Instant::now();
    while relay.relay.budget.used() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the upstream never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A message large enough that mapping and writing it outlive a 1 ms deadline.
fn large_message() -> String {
    format!(
        "From: s@sender.example\r\nSubject: large\r\n\r\n{}.\r\n",
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
            .repeat(60_000)
    )
}

#[tokio::test]
async fn an_outbox_write_past_the_deadline_never_lands_after_the_451() {
    // rest-api.md, The outbox: the rename is the commit point. The client heard 451 and will
    // retry; a file appearing afterwards would be a second copy.
    let relay = TestRelay::start(|c| {
        c.timeouts.upstream = HumanDuration(Duration::from_millis(1));
    })
    .await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send(large_message()).await;
    let reply = c.reply().await;
    assert!(reply.starts_with("451 4.4.1 "), "{reply}");
    upstream_work_done(&relay).await;
    assert!(
        outbox_entries(&relay.outbox()).is_empty(),
        "{:?}",
        outbox_entries(&relay.outbox())
    );
}

#[tokio::test]
async fn an_outbox_write_cut_by_a_forced_stop_never_lands_after_the_421() {
    let relay = TestRelay::start(|_| {}).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send(large_message()).await;
    relay.shutdown.force();
    let reply = c.reply().await;
    upstream_work_done(&relay).await;
    let files = outbox_entries(&relay.outbox());
    if reply.starts_with("250 ") {
        // The rename came first: the reply followed it.
        assert_eq!(files.len(), 1, "{files:?}");
    } else {
        assert_eq!(reply, SHUTTING_DOWN);
        assert!(files.is_empty(), "{files:?}");
    }
}

#[tokio::test]
async fn the_shutdown_delay_reports_unready_while_it_still_serves_then_drains() {
    // operations.md, Abuse limits: a balancer checking /readyz must see the replica go before
    // it refuses anyone.
    let relay = TestRelay::start(|_| {}).await;
    let shutdown = relay.shutdown.clone();
    tokio::spawn(async move { shutdown.stop_after(Duration::from_millis(1500)).await });
    let started = Instant::now();
    while relay.admin_get("/readyz").await.0 != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/readyz never turned 503"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Not ready, yet a new client is served in full.
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"), "{auth}");
    c.begin_message().await;
    c.send("Subject: during the delay\r\n\r\nhello\r\n.\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 "));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "too slow to tell"
    );
    // Then the drain: new connections are refused (421, or no listener once all is done).
    loop {
        let Ok(tcp) = tokio::net::TcpStream::connect(relay.starttls).await else {
            break;
        };
        let (_, greeting) = Client::greeted(tcp).await;
        if greeting == SHUTTING_DOWN {
            break;
        }
        assert!(greeting.starts_with("220 "), "{greeting}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the drain never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(outbox_entries(&relay.outbox()).len(), 1);
}
