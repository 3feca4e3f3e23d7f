//! The tokio driver around the sans-IO core: listeners, TLS, timeouts, the connection cap,
//! and the shared pieces every session uses ([`Relay`]).

mod abuse;
mod authenticate;
mod connection;
mod deliver;
mod detect;
mod listener;
mod memory;
pub mod proxy;
mod reload;
mod shutdown;
mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

pub use abuse::{Abuse, AbusePolicy, Denial};
pub use listener::run;
pub use reload::Reloader;
pub use shutdown::Shutdown;

use crate::auth::{ApiKeys, Authenticator, CachePolicy, KeysFile};
use crate::config::{Config, ConfigError, ListenerKind, UpstreamTarget, Verify};
use crate::memory::budget::MemoryBudget;
use crate::metrics::Metrics;
use crate::pipeline::early::EarlyRefusals;
use crate::pipeline::{HttpUpstream, Outbox, Renderer, Upstream, client};
use crate::smtp::{SenderGate, SessionConfig};

/// Everything sessions share. Built once at start from the configuration.
pub struct Relay {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The per-session settings derived from it.
    pub session: Arc<SessionConfig>,
    /// Message bytes held in memory across all sessions.
    pub budget: MemoryBudget,
    /// Woken whenever the budget gets memory back, for sessions waiting for it.
    pub memory_released: Arc<Notify>,
    /// Certificates and the rustls configuration.
    pub tls: tls::TlsSetup,
    /// Checks keys at AUTH.
    pub authenticator: Arc<dyn Authenticator>,
    /// Where accepted messages go.
    pub upstream: Arc<dyn Upstream>,
    /// Failing early at `MAIL FROM` (an http upstream's recent 429s and 403s).
    pub gate: Option<Arc<dyn SenderGate>>,
    /// One permit per open connection (`server.max_connections`).
    pub connections: Arc<Semaphore>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Drain and force signals, readiness, and the session tasks.
    pub shutdown: Shutdown,
    /// Per-client-address connection counts and AUTH-failure cool-downs.
    pub abuse: Arc<Abuse>,
    /// Reloads the certificate on SIGHUP and when its files change.
    pub reloader: Arc<Reloader>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("upstream", &self.upstream.describe())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Loads certificates (generating development ones when configured), the key store and
    /// the upstream. Errors name the setting.
    pub fn from_config(config: Config) -> Result<Relay, ConfigError> {
        if let Some(missing) = crate::config::missing_files(&config).into_iter().next() {
            return Err(missing);
        }
        let t = &config.tls;
        let renew = t.generate_if_missing
            && t.certificate.is_file()
            && tls::development_pair_needs_renewal(&t.certificate);
        if renew {
            tracing::info!(certificate = %t.certificate.display(), "the development certificate is near its end (or valid for over a year): making a new one");
        }
        if t.generate_if_missing && (!t.certificate.is_file() || !t.key.is_file() || renew) {
            tls::generate_development_pair(
                &t.certificate,
                &t.key,
                &t.development_ca,
                &config.server.hostname,
            )
            .map_err(|e| ConfigError::new("tls.generate_if_missing", e))?;
            tracing::warn!(
                certificate = %t.certificate.display(),
                key = %t.key.display(),
                ca = %t.development_ca.display(),
                "generated a DEVELOPMENT certificate (tls.generate_if_missing); clients must trust the development CA; never use this in production"
            );
        }
        let tls = tls::setup(tls::load_pair(&t.certificate, &t.key)?)?;
        let target = config
            .upstream_target()
            .map_err(|e| ConfigError::new("upstream.url", e))?;
        let metrics = Arc::new(Metrics::new());
        let memory_released = Arc::new(Notify::new());
        let released = Arc::clone(&memory_released);
        let renderer = Renderer::new(config.mime_limits(), metrics.without_identity.clone());
        let mut gate: Option<Arc<dyn SenderGate>> = None;
        let (upstream, api_keys): (Arc<dyn Upstream>, Option<ApiKeys>) = match target {
            UpstreamTarget::Http(base) => {
                let client = client::build(&config)?;
                let policy = CachePolicy {
                    valid: config.auth.cache_valid.0,
                    invalid: config.auth.cache_invalid.0,
                    entries: config.auth.cache_entries,
                };
                let keys = ApiKeys::new(client, &base, config.timeouts.key_check.0, policy);
                let early = Arc::new(EarlyRefusals::new(metrics.early_refusals.clone()));
                if config.upstream.fail_early {
                    gate = Some(Arc::clone(&early) as Arc<dyn SenderGate>);
                }
                let http = HttpUpstream::new(client::build_send(&config)?, &base, renderer, early)
                    .map_err(|e| ConfigError::new("upstream.url", e))?;
                (Arc::new(http), Some(keys))
            }
            UpstreamTarget::Outbox(dir) => {
                let outbox = Outbox::open(&dir, renderer)
                    .map_err(|e| ConfigError::new("upstream.url", e))?;
                (Arc::new(outbox), None)
            }
        };
        let authenticator: Arc<dyn Authenticator> = match (config.auth.verify, api_keys) {
            (Verify::Upstream, Some(keys)) => Arc::new(keys),
            (Verify::Upstream, None) => {
                return Err(ConfigError::new(
                    "auth.verify",
                    "\"upstream\" needs an http upstream",
                ));
            }
            (Verify::KeysFile, _) => Arc::new(
                KeysFile::load(&config.auth.keys_file)
                    .map_err(|e| ConfigError::new("auth.keys_file", e))?,
            ),
        };
        let mut reloader =
            Reloader::new(t.certificate.clone(), t.key.clone(), Arc::clone(&tls.certs));
        if t.generate_if_missing {
            reloader = reloader.renewing(t.development_ca.clone(), config.server.hostname.clone());
        }
        let reloader = Arc::new(reloader);
        Ok(Relay {
            reloader,
            gate,
            session: Arc::new(config.session_config()),
            budget: MemoryBudget::with_hook(
                config.effective_memory_budget().bytes,
                Arc::new(move || released.notify_waiters()),
            ),
            memory_released,
            connections: Arc::new(Semaphore::new(config.server.max_connections)),
            metrics,
            shutdown: Shutdown::new(),
            abuse: Arc::new(Abuse::new(AbusePolicy {
                connections_per_ip: config.limits.connections_per_ip,
                ipv6_prefix: config.limits.ipv6_prefix,
                auth_failures: config.limits.auth_failures_per_ip,
                auth_window: config.limits.auth_failure_window.0,
                cooldown: config.limits.auth_cooldown.0,
            })),
            config: Arc::new(config),
            tls,
            authenticator,
            upstream,
        })
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub struct Bound {
    /// What it speaks.
    pub kind: ListenerKind,
    /// The address actually bound (port 0 resolved).
    pub address: SocketAddr,
    /// Connections start with a PROXY header from one of `trusted_proxies`.
    pub proxy_protocol: bool,
    /// Networks allowed to send it.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// `auto`: the wait for a TLS client's first bytes.
    pub auto_detect: std::time::Duration,
    socket: TcpListener,
}

/// What a connection needs to know about the listener that accepted it.
#[derive(Debug)]
pub(crate) struct ListenerInfo {
    kind: ListenerKind,
    /// `auto`: the wait for a TLS client's first bytes.
    auto_detect: std::time::Duration,
    label: String,
    proxy_protocol: bool,
    trusted_proxies: Arc<[ipnet::IpNet]>,
}

impl Bound {
    fn info(&self) -> ListenerInfo {
        ListenerInfo {
            kind: self.kind,
            auto_detect: self.auto_detect,
            label: self.label(),
            proxy_protocol: self.proxy_protocol,
            trusted_proxies: Arc::clone(&self.trusted_proxies),
        }
    }

    /// `starttls:587`: the listener label in logs and metrics.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            ListenerKind::Starttls => "starttls",
            ListenerKind::Implicit => "implicit",
            ListenerKind::Auto => "auto",
        };
        format!("{kind}:{}", self.address.port())
    }
}

/// Binds every configured listener; the error names the address.
pub async fn bind(config: &Config) -> Result<Vec<Bound>, ConfigError> {
    let mut bound = Vec::new();
    for l in &config.listeners {
        let socket = TcpListener::bind(l.address).await.map_err(|e| {
            ConfigError::new("listeners", format!("cannot listen on {}: {e}", l.address))
        })?;
        let address = socket.local_addr().map_err(|e| {
            ConfigError::new("listeners", format!("cannot listen on {}: {e}", l.address))
        })?;
        bound.push(Bound {
            kind: l.kind,
            address,
            proxy_protocol: l.proxy_protocol,
            trusted_proxies: l.trusted_proxies.clone().into(),
            auto_detect: l.auto_detect.0,
            socket,
        });
    }
    Ok(bound)
}
