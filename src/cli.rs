//! The command line (clap): `serve`, `check-config`, `hash-key`, `--version`. The important
//! settings can also come from `SENDPIGEON_RELAY_*` environment variables (containers).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

/// SMTP submission relay in front of the SendPigeon REST send pipeline.
#[derive(Debug, Parser)]
#[command(name = "sendpigeon-relay", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay.
    Serve(ConfigArgs),
    /// Validate the configuration and print the effective settings.
    CheckConfig(ConfigArgs),
    /// Read an API key on standard input and print its keys-file line.
    HashKey,
}

/// Where the configuration comes from, and overrides of its most important settings.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file [default: config/relay.toml, else the embedded development copy].
    #[arg(long, env = "SENDPIGEON_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Replace the listeners: `KIND=ADDRESS[@proxy=CIDR+CIDR][@auto_detect=300ms]`, e.g.
    /// `--listen starttls=0.0.0.0:587@proxy=10.0.0.0/8 --listen auto=0.0.0.0:465`. Refused
    /// when it would drop the PROXY protocol the file's listeners require (`@proxy=off` to
    /// mean it).
    #[arg(long, env = "SENDPIGEON_RELAY_LISTEN", value_delimiter = ',')]
    pub listen: Vec<String>,
    /// Upstream: `https://HOST` (the REST API) or `outbox:DIR`.
    #[arg(long, env = "SENDPIGEON_RELAY_UPSTREAM")]
    pub upstream: Option<String>,
    /// Host name in the greeting and EHLO reply.
    #[arg(long, env = "SENDPIGEON_RELAY_HOSTNAME")]
    pub hostname: Option<String>,
    /// Log format.
    #[arg(long, env = "SENDPIGEON_RELAY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain.
    #[arg(long, env = "SENDPIGEON_RELAY_TLS_CERTIFICATE")]
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "SENDPIGEON_RELAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// How keys are checked: `keys-file` or `upstream`.
    #[arg(long, env = "SENDPIGEON_RELAY_AUTH_VERIFY")]
    pub auth_verify: Option<crate::config::Verify>,
    /// The keys file (SHA-256 digests) for `--auth-verify keys-file`.
    #[arg(long, env = "SENDPIGEON_RELAY_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// Address of the admin endpoint (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "SENDPIGEON_RELAY_ADMIN")]
    pub admin: Option<std::net::SocketAddr>,
}

impl ConfigArgs {
    /// The overrides these arguments carry.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            hostname: self.hostname.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            log_format: self.log_format,
            tls_certificate: self.tls_certificate.clone(),
            tls_key: self.tls_key.clone(),
            auth_verify: self.auth_verify,
            keys_file: self.keys_file.clone(),
            admin: self.admin,
        }
    }
}
