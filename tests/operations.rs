//! Running behind a load balancer: PROXY protocol (adversarial PROXY-01..07), the per-address
//! connection cap and AUTH cool-down (RES-01, RES-04, AUTH-23), the admin endpoint and its
//! metrics parsed by the Prometheus client library's parser.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::client::{Client, plain, tls_handshake_refused};
use common::relay::{KEY, TestRelay};
use sendpigeon_relay::config::{Config, HumanDuration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MESSAGE: &str = "From: s@sender.example\r\nSubject: hi\r\n\r\nHello\r\n.\r\n";

fn behind_proxy(trusted: &str) -> impl FnOnce(&mut Config) {
    let trusted = trusted.to_string();
    move |c| {
        for l in &mut c.listeners {
            l.proxy_protocol = true;
            l.trusted_proxies = vec![trusted.parse().unwrap()];
        }
        c.timeouts.proxy_header = HumanDuration(Duration::from_millis(500));
    }
}

/// A plaintext connection that first writes `header`, then reads the greeting.
async fn connect_with(addr: SocketAddr, header: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(header).await.unwrap();
    tcp
}

/// Reads everything until the server closes (at most 3 s).
async fn read_all(tcp: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut out)).await;
    out
}

/// Submits one message over a connection that already sent its PROXY header.
async fn submit_after_header(relay: &TestRelay, tcp: TcpStream) -> serde_json::Value {
    submit_on(relay, Client::from_tcp(tcp).await).await
}

/// STARTTLS, AUTH and one message on a greeted plaintext client; the outbox record.
async fn submit_on(relay: &TestRelay, mut c: Client) -> serde_json::Value {
    c.cmd("EHLO client.example").await;
    c.cmd("STARTTLS").await;
    let mut c = c.upgrade(&relay.ca()).await;
    c.cmd("EHLO client.example").await;
    assert!(
        c.cmd(&format!("AUTH PLAIN {}", plain(KEY)))
            .await
            .starts_with("235")
    );
    c.begin_message().await;
    c.send(MESSAGE).await;
    let reply = c.reply().await;
    let id = reply.trim_end().rsplit(' ').next().unwrap().to_string();
    relay
        .messages()
        .into_iter()
        .find(|m| m["relay"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record for {reply}"))
}

fn v2_header(src: SocketAddr, dst: SocketAddr, local: bool) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.push(if local { 0x20 } else { 0x21 });
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => panic!("mixed families"),
    }
    out
}

#[tokio::test]
async fn proxy_v1_and_v2_carry_the_client_address() {
    let relay = TestRelay::start(behind_proxy("127.0.0.0/8")).await;
    let v1 = connect_with(
        relay.starttls,
        b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 587\r\n",
    )
    .await;
    assert_eq!(
        submit_after_header(&relay, v1).await["source"]["client_ip"],
        "203.0.113.7"
    );

    let src: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
    let dst: SocketAddr = "[2001:db8::2]:587".parse().unwrap();
    let v2 = connect_with(relay.starttls, &v2_header(src, dst, false)).await;
    assert_eq!(
        submit_after_header(&relay, v2).await["source"]["client_ip"],
        "2001:db8::1"
    );

    // v2 LOCAL (the balancer's own health check): the real peer.
    let local = connect_with(
        relay.starttls,
        &v2_header(
            "1.2.3.4:1".parse().unwrap(),
            "5.6.7.8:2".parse().unwrap(),
            true,
        ),
    )
    .await;
    assert_eq!(
        submit_after_header(&relay, local).await["source"]["client_ip"],
        "127.0.0.1"
    );
}

#[tokio::test]
async fn a_proxy_header_and_a_client_hello_in_one_segment() {
    // PROXY-05 on the implicit TLS port.
    let relay = TestRelay::start(behind_proxy("127.0.0.0/8")).await;
    let tcp = connect_with(
        relay.implicit,
        b"PROXY TCP4 198.51.100.9 10.0.0.5 1234 465\r\n",
    )
    .await;
    let mut c = Client::tls_over(tcp, &relay.ca()).await;
    assert!(c.reply().await.starts_with("220 relay.test"));
    c.cmd("EHLO client.example").await;
    assert!(
        c.cmd(&format!("AUTH PLAIN {}", plain(KEY)))
            .await
            .starts_with("235")
    );
    c.begin_message().await;
    c.send(MESSAGE).await;
    assert!(c.reply().await.starts_with("250 "));
    assert_eq!(relay.messages()[0]["source"]["client_ip"], "198.51.100.9");
}

#[tokio::test]
async fn untrusted_missing_and_malformed_headers_close_the_connection() {
    // PROXY-01: only 10.0.0.0/8 may send headers; we are 127.0.0.1.
    let relay = TestRelay::start(behind_proxy("10.0.0.0/8")).await;
    let mut tcp = connect_with(relay.starttls, b"PROXY TCP4 6.6.6.6 10.0.0.5 1234 587\r\n").await;
    assert!(
        read_all(&mut tcp).await.is_empty(),
        "no greeting for an untrusted peer"
    );

    let relay = TestRelay::start(behind_proxy("127.0.0.0/8")).await;
    // PROXY-02: no header at all.
    let mut tcp = connect_with(relay.starttls, b"").await;
    assert!(read_all(&mut tcp).await.is_empty());
    // PROXY-03 and PROXY-04.
    let long = [b"PROXY TCP4 1.2.3.4 4.3.2.1 123 ".to_vec(), vec![b'9'; 200]].concat();
    let truncated_v2 = v2_header(
        "1.2.3.4:1".parse().unwrap(),
        "5.6.7.8:2".parse().unwrap(),
        false,
    )[..20]
        .to_vec();
    for header in [
        &b"PROXY TCP4 1.2.3.4 4.3.2.1 123456 321\r\n"[..],
        b"PROXY TCP6 1.2.3.4 4.3.2.1 123 321\r\n",
        b"PROXY TCP4 ::ffff:1.2.3.4 4.3.2.1 123 321\r\n",
        b"PROXY TCP4 1.2.3.4\r\n",
        b"PROXY BLAH\r\n",
        b"PROXY\r\n",
        b"EHLO client.example\r\n",
        &long,
        &truncated_v2,
    ] {
        let mut tcp = connect_with(relay.starttls, header).await;
        let got = read_all(&mut tcp).await;
        assert!(
            !got.starts_with(b"220"),
            "a greeting after {:?}",
            String::from_utf8_lossy(header)
        );
    }
    // PROXY-07: a health check that connects and closes leaves the relay serving.
    drop(TcpStream::connect(relay.starttls).await.unwrap());
    let tcp = connect_with(relay.starttls, b"PROXY TCP4 192.0.2.1 10.0.0.5 1 587\r\n").await;
    assert_eq!(
        submit_after_header(&relay, tcp).await["source"]["client_ip"],
        "192.0.2.1"
    );
}

#[tokio::test]
async fn a_proxy_line_mid_session_is_just_an_unknown_command() {
    // PROXY-06.
    let relay = TestRelay::start(behind_proxy("127.0.0.0/8")).await;
    let tcp = connect_with(relay.starttls, b"PROXY TCP4 192.0.2.10 10.0.0.5 1 587\r\n").await;
    let mut c = Client::from_tcp(tcp).await;
    assert_eq!(
        c.cmd("PROXY TCP4 1.2.3.4 10.0.0.5 1 587").await,
        "500 5.5.2 Command not recognized\r\n"
    );
    let record = submit_on(&relay, c).await;
    assert_eq!(record["source"]["client_ip"], "192.0.2.10");
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    // RES-01 and RES-04, with addresses from PROXY headers.
    let relay = TestRelay::start(|c| {
        behind_proxy("127.0.0.0/8")(c);
        c.limits.connections_per_ip = 2;
    })
    .await;
    let header = |ip: &str| format!("PROXY TCP4 {ip} 10.0.0.5 1 587\r\n").into_bytes();
    let mut first =
        Client::from_tcp(connect_with(relay.starttls, &header("192.0.2.50")).await).await;
    let _second = Client::from_tcp(connect_with(relay.starttls, &header("192.0.2.50")).await).await;
    let mut third = connect_with(relay.starttls, &header("192.0.2.50")).await;
    assert_eq!(
        read_all(&mut third).await,
        b"421 4.7.0 Too many connections from your address\r\n"
    );
    // IPv4-mapped IPv6 counts as the same address.
    let src: SocketAddr = "[::ffff:192.0.2.50]:1".parse().unwrap();
    let mut mapped = connect_with(
        relay.starttls,
        &v2_header(src, "[::1]:2".parse().unwrap(), false),
    )
    .await;
    assert_eq!(
        read_all(&mut mapped).await,
        b"421 4.7.0 Too many connections from your address\r\n"
    );
    // Another address is fine; a freed slot is reusable.
    let _other = Client::from_tcp(connect_with(relay.starttls, &header("192.0.2.51")).await).await;
    first.cmd("QUIT").await;
    // The slot is free once the first session has ended: the second and the other address's
    // are all that stay open (the refused ones ended on their own).
    relay.wait_sessions(relay.starttls, 2).await;
    let _again = Client::from_tcp(connect_with(relay.starttls, &header("192.0.2.50")).await).await;
}

/// A STARTTLS session from `ip` (through a PROXY header) that tries each of `keys`, all wrong.
async fn wrong_keys_from(relay: &TestRelay, ip: &str, keys: &[&str]) {
    let tcp = connect_with(relay.starttls, &proxy_v1(ip)).await;
    let mut c = Client::from_tcp(tcp).await;
    c.cmd("EHLO client.example").await;
    c.cmd("STARTTLS").await;
    let mut c = c.upgrade(&relay.ca()).await;
    c.cmd("EHLO client.example").await;
    for key in keys {
        let reply = c.cmd(&format!("AUTH PLAIN {}", plain(key))).await;
        assert!(reply.starts_with("535"), "{reply}");
    }
}

fn proxy_v1(ip: &str) -> Vec<u8> {
    format!("PROXY TCP4 {ip} 10.0.0.5 1 587\r\n").into_bytes()
}

#[tokio::test]
async fn different_wrong_keys_from_one_address_start_a_cooldown() {
    // AUTH-23 across connections: four different wrong keys (operations.md, Abuse limits).
    let relay = TestRelay::start(|c| {
        behind_proxy("127.0.0.0/8")(c);
        c.limits.auth_failures_per_ip = 4;
        c.limits.auth_cooldown = HumanDuration(Duration::from_millis(800));
    })
    .await;
    wrong_keys_from(
        &relay,
        "203.0.113.66",
        &["sk_live_wrong1", "sk_live_wrong2"],
    )
    .await;
    wrong_keys_from(
        &relay,
        "203.0.113.66",
        &["sk_live_wrong3", "sk_live_wrong4"],
    )
    .await;
    let mut cooled = connect_with(relay.starttls, &proxy_v1("203.0.113.66")).await;
    assert_eq!(
        read_all(&mut cooled).await,
        b"421 4.7.0 Too many authentication failures from your address, try again later\r\n"
    );
    // A TLS client cannot read a plaintext 421: on the implicit-TLS and `auto` listeners the
    // connection closes before any handshake, without a reply.
    for addr in [relay.implicit, relay.auto] {
        let refused = tls_handshake_refused(addr, &relay.ca(), &proxy_v1("203.0.113.66")).await;
        assert!(refused, "a cooled address got a TLS handshake");
    }
    assert_eq!(
        relay
            .metric("connections_rejected_total{reason=\"auth_cooldown\"}")
            .await,
        3
    );
    // Others are untouched, and the cool-down ends (waited for, not slept through).
    let ok = connect_with(relay.starttls, &proxy_v1("203.0.113.67")).await;
    submit_after_header(&relay, ok).await;
    let started = std::time::Instant::now();
    loop {
        let tcp = connect_with(relay.starttls, &proxy_v1("203.0.113.66")).await;
        let (c, greeting) = Client::greeted(tcp).await;
        if greeting.starts_with("220 ") {
            submit_on(&relay, c).await;
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the cool-down never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_wrong_key_retried_never_locks_out_the_address() {
    // A Postfix smarthost with a stale key and a dozen queued messages retries it again and
    // again: answered 535 every time, never a cool-down for the address.
    let relay = TestRelay::start(|c| {
        behind_proxy("127.0.0.0/8")(c);
        c.limits.auth_failures_per_ip = 3;
    })
    .await;
    for _ in 0..4 {
        wrong_keys_from(&relay, "203.0.113.70", &["sk_live_stale", "sk_live_stale"]).await;
    }
    let ok = connect_with(relay.starttls, &proxy_v1("203.0.113.70")).await;
    submit_after_header(&relay, ok).await;
    assert_eq!(
        relay
            .metric("connections_rejected_total{reason=\"auth_cooldown\"}")
            .await,
        0
    );
}

#[tokio::test]
async fn the_admin_endpoint_and_metrics_that_move() {
    let relay = TestRelay::start(|c| c.limits.connections_per_ip = 1).await;
    assert_eq!(relay.admin_get("/healthz").await.0, 200);
    assert_eq!(relay.admin_get("/readyz").await.0, 200);
    let before = parse_metrics(&relay.admin_get("/metrics").await.1);
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    c.begin_message().await;
    c.send(MESSAGE).await;
    assert!(c.reply().await.starts_with("250 "));
    let (_busy, refused) = Client::plain(relay.starttls).await;
    assert!(refused.starts_with("421 4.7.0"));
    drop(c);
    let (mut bad, _) = Client::submission(relay.starttls, &relay.ca(), "sk_live_nope").await;
    bad.cmd("QUIT").await;
    let (status, text) = relay.admin_get("/metrics").await;
    assert_eq!(status, 200);
    let after = parse_metrics(&text);
    let get = |m: &serde_json::Value, key: &str| m[key].as_f64().unwrap_or(0.0);
    assert_eq!(
        get(&after, "sendpigeon_relay_messages_accepted_total")
            - get(&before, "sendpigeon_relay_messages_accepted_total"),
        1.0
    );
    assert_eq!(
        get(&after, "sendpigeon_relay_auth_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        get(&after, "sendpigeon_relay_auth_total{result=\"failed\"}"),
        1.0
    );
    assert!(
        get(
            &after,
            "sendpigeon_relay_tls_handshakes_total{result=\"ok\"}"
        ) >= 2.0
    );
    assert_eq!(
        get(
            &after,
            "sendpigeon_relay_connections_rejected_total{reason=\"per_ip\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "sendpigeon_relay_upstream_requests_total{outcome=\"written\"}"
        ),
        1.0
    );
    assert_eq!(
        get(&after, "sendpigeon_relay_message_size_bytes_count"),
        1.0
    );
    assert!(get(&after, "sendpigeon_relay_received_bytes_total") > 20.0);
    assert!(!text.contains("sender.example") && !text.contains(KEY) && !text.contains("127.0.0.1"));
    relay.shutdown.drain();
    assert_eq!(
        relay.admin_get("/readyz").await,
        (503, "draining\n".to_string())
    );
    assert_eq!(relay.admin_get("/healthz").await.0, 200);
}

/// Parses the exposition with `prometheus_client`'s parser (PyPI): {"name{labels}": value}.
fn parse_metrics(text: &str) -> serde_json::Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_rotated_certificate_is_used_by_new_handshakes_only() {
    // TLS-07: rotate while a session is open; then a broken pair keeps the last good one.
    let logs = common::logs::capture();
    let relay =
        TestRelay::start(|c| c.tls.reload_interval = HumanDuration(Duration::from_millis(100)))
            .await;
    let (mut open, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"));
    let dir = relay.dir.path();
    let new_ca = dir.join("ca-2.pem");
    sendpigeon_relay::server::tls::generate_development_pair(
        &dir.join("cert.pem"),
        &dir.join("key.pem"),
        &new_ca,
        "relay.test",
    )
    .unwrap();
    common::wait::until(
        "new handshakes to use the new certificate",
        common::wait::DEADLINE,
        || tls_handshake_ok(relay.implicit, &new_ca),
    )
    .await;
    assert!(
        !tls_handshake_ok(relay.implicit, &relay.ca()).await,
        "the old certificate is still served"
    );
    // The session opened before the rotation carries on.
    assert_eq!(open.cmd("NOOP").await, "250 2.0.0 OK\r\n");
    // A broken pair: refused, the last good certificate stays. (The rotation's own files,
    // written one after another, may have been seen half-written and refused too: count.)
    const REFUSED: &str = "TLS certificate reload failed";
    let refused_before = logs.count(REFUSED);
    std::fs::write(
        dir.join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    logs.wait_for(REFUSED, refused_before, common::wait::DEADLINE)
        .await;
    assert!(tls_handshake_ok(relay.implicit, &new_ca).await);
    assert_eq!(open.cmd("NOOP").await, "250 2.0.0 OK\r\n");
}

async fn tls_handshake_ok(addr: SocketAddr, ca: &std::path::Path) -> bool {
    let tcp = TcpStream::connect(addr).await.unwrap();
    common::client::tls_connector(ca, rustls::ALL_VERSIONS)
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .is_ok()
}
