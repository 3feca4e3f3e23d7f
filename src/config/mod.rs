//! The configuration: one TOML file, every setting with its default in this file, unknown
//! keys and invalid values refused at start with an error that names the setting.
//!
//! Relative paths are taken relative to the working directory, like most command-line tools;
//! the shipped `config/relay.toml` assumes the repository root. README "Configuration" lists
//! every setting.

mod load;
mod units;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{ConfigError, Overrides, load, load_str, load_str_with_limit};
pub use units::{HumanDuration, Size};
pub use validate::{missing_files, warnings};

use crate::memory::limit::{CgroupLimit, EffectiveBudget};
use crate::smtp::data::BareLfPolicy;

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`.
    pub server: Server,
    /// `[[listeners]]`: at least one.
    pub listeners: Vec<Listener>,
    /// `[tls]`.
    pub tls: Tls,
    /// `[auth]`.
    pub auth: Auth,
    /// `[limits]`.
    pub limits: Limits,
    /// `[timeouts]`.
    pub timeouts: Timeouts,
    /// `[upstream]`.
    pub upstream: Upstream,
    /// `[log]`.
    pub log: Log,
    /// `[admin]`.
    pub admin: Admin,
    /// The container's memory limit, found when the configuration is loaded ([`load`]); not a
    /// setting, never read from or written to the file. `limits.memory_budget` left out
    /// derives from it: read the budget in effect with [`Config::effective_memory_budget`].
    /// A configuration built in code (tests) has none, so its default budget does not depend
    /// on the machine the tests run on.
    #[serde(skip)]
    pub container_memory_limit: Option<CgroupLimit>,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Our name in the greeting and EHLO reply.
    pub hostname: String,
    /// Connections open at once across all listeners; more get `421 4.4.5`.
    pub max_connections: usize,
    /// After SIGTERM, how long sessions in DATA or waiting on the upstream may finish
    /// (below Kubernetes' default 30 s termination grace period).
    pub shutdown_grace: HumanDuration,
    /// Offer CHUNKING (BDAT, RFC 3030) after TLS.
    pub chunking: bool,
    /// After SIGTERM, how long `/readyz` says 503 while sessions are still accepted, before
    /// the drain: for a health-checking balancer outside Kubernetes (whose `preStop` pause
    /// does the same).
    pub shutdown_delay: HumanDuration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            hostname: "localhost".into(),
            max_connections: 10_000,
            shutdown_grace: HumanDuration::secs(25),
            chunking: true,
            shutdown_delay: HumanDuration::secs(0),
        }
    }
}

/// `[admin]`: the HTTP endpoint for probes and metrics.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// `/healthz`, `/readyz`, `/metrics` on this address; not set: no admin endpoint.
    pub address: Option<SocketAddr>,
}

/// `[[listeners]]`: one listening socket.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `starttls` (plaintext greeting, STARTTLS required), `implicit` (TLS first) or `auto`
    /// (either, told apart by the client's first bytes).
    pub kind: ListenerKind,
    /// Address and port, e.g. `0.0.0.0:587`.
    pub address: SocketAddr,
    /// Every connection must start with a PROXY protocol v1 or v2 header (behind a load
    /// balancer); the header's address is the client's.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Networks allowed to send that header, e.g. `["10.0.0.0/8"]`; other peers are closed.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `auto` listeners: how long a silent client is waited for before the plaintext greeting
    /// (a TLS client speaks first). Every STARTTLS client waits this long for the greeting.
    #[serde(default = "default_auto_detect")]
    pub auto_detect: HumanDuration,
}

/// The measured default of `auto_detect` (docs/smtp.md "Listeners").
pub const AUTO_DETECT: HumanDuration = HumanDuration::millis(300);

fn default_auto_detect() -> HumanDuration {
    AUTO_DETECT
}

/// The kinds of listener (docs/smtp.md "Listeners").
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// RFC 3207.
    Starttls,
    /// RFC 8314.
    Implicit,
    /// Either: a TLS ClientHello first means implicit TLS, silence the plaintext greeting.
    Auto,
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1; ECDSA or RSA).
    pub key: PathBuf,
    /// Development only: when the certificate or key is missing, create a development CA
    /// (written to `development_ca`) and a certificate it signs. Never on in production.
    pub generate_if_missing: bool,
    /// Where the generated development CA certificate goes (clients trust this file).
    pub development_ca: PathBuf,
    /// How often the certificate and key files are checked for changes (a renewed secret,
    /// a Kubernetes symlink swap); SIGHUP checks at once.
    pub reload_interval: HumanDuration,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            certificate: "certs/dev-cert.pem".into(),
            key: "certs/dev-key.pem".into(),
            generate_if_missing: false,
            development_ca: "certs/dev-ca.pem".into(),
            reload_interval: HumanDuration::secs(30),
        }
    }
}

/// `[auth]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// The one accepted username.
    pub username: String,
    /// A key must start with one of these.
    pub key_prefixes: Vec<String>,
    /// How keys are checked: `keys-file` (SHA-256 digests in `keys_file`).
    pub verify: Verify,
    /// One lower-case hex SHA-256 digest per line (`sendpigeon-relay hash-key` prints one);
    /// `#` starts a comment.
    pub keys_file: PathBuf,
    /// Failed AUTH attempts per session before `421 4.7.0` and close.
    pub max_failures: u32,
    /// Wait before answering a failed AUTH: slows guessing and hides which part was wrong.
    pub failure_delay: HumanDuration,
    /// With `verify = "upstream"`: how long a key the API accepted is trusted without asking.
    pub cache_valid: HumanDuration,
    /// With `verify = "upstream"`: how long a key the API refused stays refused.
    pub cache_invalid: HumanDuration,
    /// With `verify = "upstream"`: most answers remembered at once, of each kind (valid,
    /// invalid); the least recently used goes first.
    pub cache_entries: usize,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            username: "apikey".into(),
            key_prefixes: vec!["sk_live_".into()],
            verify: Verify::KeysFile,
            keys_file: "config/dev-keys.txt".into(),
            max_failures: 3,
            failure_delay: HumanDuration::secs(1),
            cache_valid: HumanDuration::secs(60),
            cache_invalid: HumanDuration::secs(10),
            cache_entries: 10_000,
        }
    }
}

/// Where keys are checked.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// Against `keys_file`.
    KeysFile,
    /// `GET {upstream}/v1/api-keys/current` (needs an http upstream).
    Upstream,
}

/// `[limits]` (docs/limits-and-timeouts.md; none of them may be 0).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message after un-stuffing; advertised as `SIZE`.
    pub message_size: Size,
    /// Recipients per message.
    pub recipients: usize,
    /// Longest command line including CRLF (RFC 5321 minimum 512).
    pub command_line: usize,
    /// Longest AUTH line including CRLF.
    pub auth_line: usize,
    /// Largest top-level header section of a message.
    pub header_section: Size,
    /// Most MIME parts in a message.
    pub mime_parts: usize,
    /// Deepest MIME nesting.
    pub mime_depth: usize,
    /// Most `Received:` headers (a loop beyond).
    pub received_headers: usize,
    /// Protocol errors per session before `421 4.7.0`.
    pub errors: u32,
    /// NOOP/RSET/VRFY/HELP/EHLO between messages before each counts as an error.
    pub junk_commands: u32,
    /// Messages per connection.
    pub messages_per_connection: u32,
    /// Message bytes held in memory across all sessions. Not set (the default): a share of
    /// the container's memory limit, else 1 GiB; [`Config::effective_memory_budget`] is the
    /// value in effect.
    pub memory_budget: Option<Size>,
    /// When the budget is spent, how long a session stops reading (TCP backpressure) before
    /// `452 4.3.1`; paused time does not count against `timeouts.data_min_rate`.
    pub memory_wait: HumanDuration,
    /// Bare CR/LF in DATA: `normalize` (to CRLF) or `reject` (`550 5.5.2`).
    pub bare_lf: BareLfPolicy,
    /// Connections open at once from one client address; more get `421 4.7.0`.
    pub connections_per_ip: usize,
    /// IPv6 clients are counted by this prefix length.
    pub ipv6_prefix: u8,
    /// AUTH failures from one address within `auth_failure_window` that start a cool-down.
    pub auth_failures_per_ip: usize,
    /// The window those failures are counted in.
    pub auth_failure_window: HumanDuration,
    /// During the cool-down every connection from the address gets `421 4.7.0`.
    pub auth_cooldown: HumanDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_size: Size(26_214_400),
            recipients: 50,
            command_line: 2048,
            auth_line: 12_288,
            header_section: Size(1 << 20),
            mime_parts: 1000,
            mime_depth: 50,
            received_headers: 50,
            errors: 10,
            junk_commands: 100,
            messages_per_connection: 1000,
            memory_budget: None,
            memory_wait: HumanDuration::secs(60),
            bare_lf: BareLfPolicy::Normalize,
            connections_per_ip: 50,
            ipv6_prefix: 64,
            auth_failures_per_ip: 10,
            auth_failure_window: HumanDuration::secs(300),
            auth_cooldown: HumanDuration::secs(300),
        }
    }
}

/// `[timeouts]` (docs/limits-and-timeouts.md "Timeouts").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TLS handshake, on connect (implicit) or after STARTTLS.
    pub tls_handshake: HumanDuration,
    /// Next command before AUTH; also the deadline for one whole command line.
    pub command: HumanDuration,
    /// Next command after AUTH (RFC 5321 §4.5.3.2.7).
    pub command_authenticated: HumanDuration,
    /// Each read during DATA.
    pub data_read: HumanDuration,
    /// Minimum average DATA rate in bytes per second, enforced after `data_rate_grace`.
    pub data_min_rate: Size,
    /// How long DATA may run before the minimum rate applies.
    pub data_rate_grace: HumanDuration,
    /// Writing replies to a client that does not read.
    pub write: HumanDuration,
    /// A whole session.
    pub session: HumanDuration,
    /// The upstream call after the end of data.
    pub upstream: HumanDuration,
    /// Connecting to the upstream.
    pub upstream_connect: HumanDuration,
    /// The key check at AUTH against the API.
    pub key_check: HumanDuration,
    /// The PROXY protocol header on listeners that require one.
    pub proxy_header: HumanDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tls_handshake: HumanDuration::secs(30),
            command: HumanDuration::secs(60),
            command_authenticated: HumanDuration::secs(300),
            data_read: HumanDuration::secs(180),
            data_min_rate: Size(1024),
            data_rate_grace: HumanDuration::secs(30),
            write: HumanDuration::secs(60),
            session: HumanDuration::secs(30 * 60),
            upstream: HumanDuration::secs(20),
            upstream_connect: HumanDuration::secs(5),
            key_check: HumanDuration::secs(10),
            proxy_header: HumanDuration::secs(5),
        }
    }
}

/// `[upstream]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    /// `https://api.sendpigeon.dev` (the REST API) or `outbox:DIR` (JSON files in DIR).
    pub url: String,
    /// Extra PEM CA certificates to trust for the API, besides the built-in Mozilla roots
    /// (for a private API endpoint). Empty: none.
    pub ca_file: Option<PathBuf>,
    /// Failing early (docs/upstream.md): after the API's 429 for a key, or 403 for a key and
    /// `From` domain, answer that key's next `MAIL FROM` with `451 4.7.1` at once, for at most
    /// 60 s, instead of taking a message the API is about to refuse.
    pub fail_early: bool,
    /// Accept a plain `http://` URL to a host that is not loopback. Every client's API key
    /// travels in the requests, so only for a trusted private network (rest-api.md).
    pub allow_http: bool,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            url: "outbox:var/outbox".into(),
            ca_file: None,
            fail_early: true,
            allow_http: false,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// A URL whose host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Which upstream `[upstream] url` selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// The local outbox directory.
    Outbox(PathBuf),
    /// The REST API at this base URL (no trailing slash).
    Http(String),
}

impl Config {
    /// The upstream the URL selects (validated at load).
    pub fn upstream_target(&self) -> Result<UpstreamTarget, String> {
        let url = self.upstream.url.as_str();
        if let Some(dir) = url.strip_prefix("outbox:") {
            return if dir.is_empty() {
                Err("outbox: needs a directory, e.g. \"outbox:var/outbox\"".into())
            } else {
                Ok(UpstreamTarget::Outbox(PathBuf::from(dir)))
            };
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "unsupported upstream {url:?}: use \"https://HOST\" for the REST API or \"outbox:DIR\""
            ));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if parsed.host_str().is_none() || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "{url:?} must be a base URL like \"https://api.sendpigeon.dev\""
            ));
        }
        if parsed.scheme() == "http" && !self.upstream.allow_http && !is_loopback(&parsed) {
            return Err(format!(
                "{url:?} is plain http to a host that is not loopback: every client's API key \
                 would cross the network in clear text. Use https://, or set \
                 upstream.allow_http = true for a trusted private network"
            ));
        }
        Ok(UpstreamTarget::Http(url.trim_end_matches('/').to_string()))
    }

    /// The memory budget in effect and where it came from: `limits.memory_budget` when set,
    /// else 70% of the container's memory limit found at load, else 1 GiB. Everything that
    /// sizes or reports the budget reads it here, so `serve` and `check-config` agree.
    pub fn effective_memory_budget(&self) -> EffectiveBudget {
        crate::memory::limit::effective_budget_with(
            self.limits.memory_budget.map(Size::bytes),
            self.container_memory_limit,
        )
    }

    /// The session settings derived from this configuration.
    pub fn session_config(&self) -> crate::smtp::SessionConfig {
        crate::smtp::SessionConfig {
            hostname: self.server.hostname.clone(),
            max_message_size: self.limits.message_size.bytes(),
            max_recipients: self.limits.recipients,
            command_line_limit: self.limits.command_line,
            auth_line_limit: self.limits.auth_line,
            max_errors: self.limits.errors,
            max_junk_commands: self.limits.junk_commands,
            max_messages: self.limits.messages_per_connection,
            max_auth_failures: self.auth.max_failures,
            auth_username: self.auth.username.clone(),
            key_prefixes: self.auth.key_prefixes.clone(),
            bare_lf: self.limits.bare_lf,
            chunking: self.server.chunking,
        }
    }

    /// The MIME caps derived from this configuration.
    pub fn mime_limits(&self) -> crate::message::MimeLimits {
        crate::message::MimeLimits {
            header_section: self.limits.header_section.bytes(),
            parts: self.limits.mime_parts,
            depth: self.limits.mime_depth,
            received_headers: self.limits.received_headers,
        }
    }
}
