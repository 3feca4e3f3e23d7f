//! A relay started in-process on loopback ports, with its own development CA, keys file and
//! outbox in a temporary directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sendpigeon_relay::config::{Config, HumanDuration, Listener, ListenerKind};
use sendpigeon_relay::server::{self, Relay};

use super::wait;

/// The key the test keys file accepts.
pub const KEY: &str = "sk_live_test_0123456789";

pub struct TestRelay {
    pub starttls: SocketAddr,
    pub implicit: SocketAddr,
    /// An `auto` listener (`auto_detect` 300 ms unless tuned).
    pub auto: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub relay: Arc<Relay>,
    pub shutdown: sendpigeon_relay::server::Shutdown,
    done: Option<tokio::task::JoinHandle<bool>>,
}

impl TestRelay {
    /// Starts a relay with the test defaults, adjusted by `tune`.
    pub async fn start(tune: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        let key_line =
            sendpigeon_relay::auth::KeysFile::line_for(&sendpigeon_relay::secret::ApiKey::new(KEY));
        std::fs::write(path("keys.txt"), format!("{key_line}\n")).expect("keys file");

        let mut config = Config::default();
        config.server.hostname = "relay.test".into();
        config.listeners = vec![
            Listener {
                kind: ListenerKind::Starttls,
                address: "127.0.0.1:0".parse().unwrap(),
                proxy_protocol: false,
                trusted_proxies: Vec::new(),
                auto_detect: sendpigeon_relay::config::AUTO_DETECT,
            },
            Listener {
                kind: ListenerKind::Implicit,
                address: "127.0.0.1:0".parse().unwrap(),
                proxy_protocol: false,
                trusted_proxies: Vec::new(),
                auto_detect: sendpigeon_relay::config::AUTO_DETECT,
            },
            Listener {
                kind: ListenerKind::Auto,
                address: "127.0.0.1:0".parse().unwrap(),
                proxy_protocol: false,
                trusted_proxies: Vec::new(),
                auto_detect: sendpigeon_relay::config::AUTO_DETECT,
            },
        ];
        config.tls.certificate = path("cert.pem");
        config.tls.key = path("key.pem");
        config.tls.development_ca = path("ca.pem");
        config.tls.generate_if_missing = true;
        config.auth.keys_file = path("keys.txt");
        config.auth.failure_delay = HumanDuration(std::time::Duration::from_millis(10));
        config.upstream.url = format!("outbox:{}", path("outbox").display());
        tune(&mut config);

        let relay = Relay::from_config(config).expect("relay config");
        let bound = server::bind(&relay.config).await.expect("bind");
        let addr = |kind| bound.iter().find(|b| b.kind == kind).map(|b| b.address);
        let starttls =
            addr(ListenerKind::Starttls).unwrap_or_else(|| "127.0.0.1:1".parse().unwrap());
        let implicit =
            addr(ListenerKind::Implicit).unwrap_or_else(|| "127.0.0.1:1".parse().unwrap());
        let auto = addr(ListenerKind::Auto).unwrap_or_else(|| "127.0.0.1:1".parse().unwrap());
        let admin_socket = sendpigeon_relay::admin::bind("127.0.0.1:0".parse().unwrap())
            .await
            .expect("admin bind");
        let admin = admin_socket.local_addr().unwrap();
        let relay = Arc::new(relay);
        tokio::spawn(sendpigeon_relay::admin::serve(
            admin_socket,
            Arc::clone(&relay.metrics),
            relay.shutdown.clone(),
            relay.budget.clone(),
        ));
        let shutdown = relay.shutdown.clone();
        let done = tokio::spawn(server::run(Arc::clone(&relay), bound));
        TestRelay {
            starttls,
            implicit,
            auto,
            admin,
            dir,
            relay,
            shutdown,
            done: Some(done),
        }
    }

    /// One series of `/metrics`, e.g. `early_refusals_total{reason="rate_limited"}` (the
    /// `sendpigeon_relay_` prefix added); 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        let (_, metrics) = self.admin_get("/metrics").await;
        let line = format!("sendpigeon_relay_{series} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    /// The `sessions` gauge series of this relay's listener at `addr`.
    pub fn sessions_series(&self, addr: SocketAddr) -> String {
        let kind = if addr == self.starttls {
            "starttls"
        } else if addr == self.implicit {
            "implicit"
        } else if addr == self.auto {
            "auto"
        } else {
            panic!("{addr} is not one of this relay's listeners")
        };
        format!("sessions{{listener=\"{kind}:{}\"}}", addr.port())
    }

    /// Waits (at most [`wait::DEADLINE`]) until `series` reads `value`.
    pub async fn wait_metric(&self, series: &str, value: u64) {
        wait::until(&format!("{series} = {value}"), wait::DEADLINE, || async {
            self.metric(series).await == value
        })
        .await;
    }

    /// Waits until the listener at `addr` has exactly `open` sessions. A session counts
    /// until its task ends, after it has released its per-address slot and done all it will
    /// ever do (delivered or not), so what a closed session did not do stays undone.
    pub async fn wait_sessions(&self, addr: SocketAddr, open: u64) {
        self.wait_metric(&self.sessions_series(addr), open).await;
    }

    /// GET on the admin endpoint: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(self.admin)
            .await
            .expect("admin connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// The JSON records in the outbox, oldest first (ids sort by time).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        read_outbox(&self.outbox())
    }
}

impl TestRelay {
    /// Waits for `run` to return after a drain; true for a clean drain.
    pub async fn stopped(&mut self) -> bool {
        match self.done.take() {
            Some(done) => done.await.unwrap_or(false),
            None => false,
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.shutdown.force();
    }
}

pub fn read_outbox(dir: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("valid JSON"))
        .collect()
}

/// Every file in the outbox, including temporary ones.
pub fn outbox_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
