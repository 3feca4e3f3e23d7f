//! The `auto` listener (docs/smtp.md "Listeners") over real sockets: a client that speaks
//! TLS first gets implicit TLS, a silent one the plaintext greeting after `auto_detect` and
//! STARTTLS as usual, one that talks first `554 5.5.0` and a close; after a PROXY header the
//! same; refusals before the session in the mode the client speaks. The real client programs
//! in both modes are in tests/clients.rs (`auto_port_*`).

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::relay::{KEY, TestRelay};
use sendpigeon_relay::config::{Config, HumanDuration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MESSAGE: &str =
    "From: s@sender.example\r\nTo: r@rcpt.example\r\nSubject: auto\r\n\r\nHi\r\n.\r\n";
const WAIT: Duration = Duration::from_millis(200);

fn auto_detect(wait: Duration) -> impl FnOnce(&mut Config) {
    move |c| {
        for l in &mut c.listeners {
            l.auto_detect = HumanDuration(wait);
        }
    }
}

/// AUTH, then one message; its final reply.
async fn authenticate_and_send(c: &mut Client) -> String {
    c.authenticate(KEY).await;
    c.begin_message().await;
    c.send(MESSAGE).await;
    c.reply().await
}

#[tokio::test]
async fn a_silent_client_gets_the_plaintext_greeting_after_auto_detect_and_starttls() {
    let relay = TestRelay::start(auto_detect(WAIT)).await;
    let started = Instant::now();
    let (mut c, greeting) = Client::plain(relay.auto).await;
    assert_eq!(greeting, "220 relay.test ESMTP SendPigeon relay\r\n");
    assert!(started.elapsed() >= WAIT, "{:?}", started.elapsed());
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(
        ehlo.contains("250 STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<s@sender.example>").await,
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    assert!(c.cmd("STARTTLS").await.starts_with("220 2.0.0"));
    let mut c = c.upgrade(&relay.ca()).await;
    assert!(
        authenticate_and_send(&mut c)
            .await
            .starts_with("250 2.0.0 OK: queued as ")
    );
    let messages = relay.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["source"]["tls"], "TLSv1.3");
    assert_eq!(
        relay
            .metric("auto_detect_total{result=\"plaintext\"}")
            .await,
        1
    );
    assert_eq!(relay.metric("auto_detect_total{result=\"tls\"}").await, 0);
}

#[tokio::test]
async fn a_client_speaking_tls_first_gets_implicit_tls_without_waiting() {
    // A 10 s auto_detect: a TLS client never waits for it.
    let relay = TestRelay::start(auto_detect(Duration::from_secs(10))).await;
    let started = Instant::now();
    let (mut c, greeting) = Client::tls(relay.auto, &relay.ca()).await;
    assert_eq!(greeting, "220 relay.test ESMTP SendPigeon relay\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        authenticate_and_send(&mut c)
            .await
            .starts_with("250 2.0.0 OK: queued as ")
    );
    assert_eq!(relay.messages().len(), 1);
    assert_eq!(relay.metric("auto_detect_total{result=\"tls\"}").await, 1);
}

#[tokio::test]
async fn talk_before_the_greeting_is_refused_and_closed() {
    let relay = TestRelay::start(auto_detect(Duration::from_secs(10))).await;
    let mut tcp = TcpStream::connect(relay.auto).await.unwrap();
    tcp.write_all(b"EHLO spam.example\r\nMAIL FROM:<x@y.example>\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("closed within 5 s")
        .ok();
    assert_eq!(out, b"554 5.5.0 Pre-greeting traffic\r\n");
    assert_eq!(
        relay.metric("auto_detect_total{result=\"pregreet\"}").await,
        1
    );
    // Others are untouched, in both modes.
    let (mut c, _) = Client::tls(relay.auto, &relay.ca()).await;
    assert!(authenticate_and_send(&mut c).await.starts_with("250 "));
}

#[tokio::test]
async fn after_a_proxy_header_the_first_bytes_still_decide() {
    let relay = TestRelay::start(|c| {
        for l in &mut c.listeners {
            l.proxy_protocol = true;
            l.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            l.auto_detect = HumanDuration(WAIT);
        }
    })
    .await;
    // The header and the ClientHello back to back: implicit TLS, the header's address.
    let mut tcp = TcpStream::connect(relay.auto).await.unwrap();
    tcp.write_all(b"PROXY TCP4 198.51.100.9 10.0.0.5 1234 465\r\n")
        .await
        .unwrap();
    let mut c = Client::tls_over(tcp, &relay.ca()).await;
    assert!(c.reply().await.starts_with("220 relay.test"));
    assert!(authenticate_and_send(&mut c).await.starts_with("250 "));
    // The header, then silence: the plaintext greeting.
    let mut tcp = TcpStream::connect(relay.auto).await.unwrap();
    tcp.write_all(b"PROXY TCP4 198.51.100.10 10.0.0.5 1234 587\r\n")
        .await
        .unwrap();
    let mut c = Client::from_tcp(tcp).await;
    assert!(c.cmd("EHLO client.example").await.contains("STARTTLS"));
    let ips: Vec<_> = relay
        .messages()
        .iter()
        .map(|m| m["source"]["client_ip"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips, ["198.51.100.9"]);
    assert_eq!(relay.metric("auto_detect_total{result=\"tls\"}").await, 1);
    assert_eq!(
        relay
            .metric("auto_detect_total{result=\"plaintext\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn a_refused_address_hears_421_in_plaintext_and_costs_no_handshake_in_tls() {
    let relay = TestRelay::start(|c| {
        c.limits.connections_per_ip = 1;
        auto_detect(WAIT)(c);
    })
    .await;
    let (_held, _) = Client::tls(relay.auto, &relay.ca()).await;
    // A plaintext client hears the 421 in plaintext.
    let (_, greeting) = Client::plain(relay.auto).await;
    assert_eq!(
        greeting,
        "421 4.7.0 Too many connections from your address\r\n"
    );
    // A TLS client cannot read a plaintext 421, and a refused address must not cost a
    // handshake: closed before it, on the `auto` and the implicit listener alike.
    for addr in [relay.auto, relay.implicit] {
        assert!(
            common::client::tls_handshake_refused(addr, &relay.ca(), b"").await,
            "a refused address got a TLS handshake"
        );
    }
    assert_eq!(
        relay
            .metric("connections_rejected_total{reason=\"per_ip\"}")
            .await,
        3
    );
}
