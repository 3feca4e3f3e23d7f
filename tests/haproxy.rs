//! HAProxy (Debian's) in front of the relay, sending PROXY v1 and v2 as in production: the
//! client address the relay records is the one HAProxy saw, not HAProxy's own. The client
//! connects from 127.0.0.2 so the two differ. Needs `haproxy` (`.ci/run` installs it).

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::client::{Client, plain};
use common::free_port;
use common::relay::{KEY, TestRelay};
use tokio::net::{TcpSocket, TcpStream};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts HAProxy with one frontend per (name, backend address, server option).
async fn haproxy(
    dir: &std::path::Path,
    routes: &[(&str, SocketAddr, &str)],
) -> (Haproxy, Vec<SocketAddr>) {
    let mut config = String::from(
        "global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n",
    );
    let mut fronts = Vec::new();
    for (name, backend, option) in routes {
        let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        config.push_str(&format!(
            "frontend {name}\n  bind {front}\n  default_backend {name}_relay\nbackend {name}_relay\n  server relay {backend} {option}\n"
        ));
        fronts.push(front);
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy is installed (.ci/run)");
    for front in &fronts {
        for _ in 0..100 {
            if TcpStream::connect(front).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (Haproxy(child), fronts)
}

/// A connection from 127.0.0.2.
async fn from_127_0_0_2(to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

async fn submit(mut c: Client) -> String {
    c.cmd("EHLO client.example").await;
    assert!(
        c.cmd(&format!("AUTH PLAIN {}", plain(KEY)))
            .await
            .starts_with("235")
    );
    c.begin_message().await;
    c.send("From: s@sender.example\r\nSubject: via haproxy\r\n\r\nhi\r\n.\r\n")
        .await;
    let reply = c.reply().await;
    assert!(reply.starts_with("250 "), "{reply}");
    reply.trim_end().rsplit(' ').next().unwrap().to_string()
}

#[tokio::test]
async fn haproxy_sends_proxy_v1_and_v2_and_the_client_address_is_kept() {
    let relay = TestRelay::start(|c| {
        for l in &mut c.listeners {
            l.proxy_protocol = true;
            l.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        }
    })
    .await;
    let (_haproxy, fronts) = haproxy(
        relay.dir.path(),
        &[
            ("v1", relay.starttls, "send-proxy"),
            ("v2", relay.starttls, "send-proxy-v2"),
            ("v2tls", relay.implicit, "send-proxy-v2"),
            ("v2auto", relay.auto, "send-proxy-v2"),
        ],
    )
    .await;
    let mut ids = Vec::new();
    for front in &fronts[..2] {
        let mut c = Client::from_tcp(from_127_0_0_2(*front).await).await;
        c.cmd("EHLO client.example").await;
        c.cmd("STARTTLS").await;
        ids.push(submit(c.upgrade(&relay.ca()).await).await);
    }
    let mut c = Client::tls_over(from_127_0_0_2(fronts[2]).await, &relay.ca()).await;
    assert!(c.reply().await.starts_with("220 "));
    ids.push(submit(c).await);
    // The auto listener behind PROXY v2, in both TLS modes.
    let mut c = Client::tls_over(from_127_0_0_2(fronts[3]).await, &relay.ca()).await;
    assert!(c.reply().await.starts_with("220 "));
    ids.push(submit(c).await);
    let mut c = Client::from_tcp(from_127_0_0_2(fronts[3]).await).await;
    c.cmd("EHLO client.example").await;
    c.cmd("STARTTLS").await;
    ids.push(submit(c.upgrade(&relay.ca()).await).await);
    assert_eq!(relay.metric("auto_detect_total{result=\"tls\"}").await, 1);

    let records = relay.messages();
    for id in &ids {
        let record = records
            .iter()
            .find(|r| r["relay"]["id"] == id.as_str())
            .unwrap();
        assert_eq!(record["source"]["client_ip"], "127.0.0.2", "{record}");
    }

    // Straight to the relay, skipping HAProxy, from an untrusted address: closed, no banner.
    let mut direct = from_127_0_0_2(relay.starttls).await;
    let mut got = Vec::new();
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(Duration::from_secs(3), direct.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}
