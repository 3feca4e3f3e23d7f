//! The HTTP clients for the REST API: one for the send path, one for the key check, both
//! trusting the same roots.
//!
//! rustls with ring, TLS 1.2 and 1.3, trusting the built-in Mozilla roots (webpki-roots: the
//! binary needs no CA bundle on disk, so it runs from a `scratch` image) plus an optional
//! private CA file. No redirects (a 3xx is a misconfiguration, answered 451), no proxy from
//! the environment.
//!
//! Sends go through hyper's pooled client directly, shared by every session (one connection
//! pool): reqwest, built on the same client, costs about 35 allocations and a URL parse and
//! format per request on top of it, ~7% of the relay's CPU on a pooled 4 KiB message
//! (measured with heaptrack and perf, docs/upstream.md). The key check is rare (answers are
//! cached) and keeps reqwest.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{Config, ConfigError};
use crate::message::RequestBody;

/// An idle pooled connection to the API is closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// The send path's client: pooled HTTP/1.1 over TCP or TLS, bodies streamed from the message.
pub type SendClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// `User-Agent` of every request.
pub fn user_agent() -> String {
    format!("sendpigeon-relay/{}", env!("CARGO_PKG_VERSION"))
}

/// The TLS client configuration both clients use; errors name the setting.
fn tls_config(config: &Config) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &config.upstream.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .and_then(|iter| iter.collect())
            .map_err(|e| ConfigError::new("upstream.ca_file", format!("{}: {e}", ca.display())))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                ConfigError::new("upstream.ca_file", format!("{}: {e}", ca.display()))
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| ConfigError::new("upstream", e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The send path's client. Connecting (TCP, not TLS) is bounded by `timeouts.upstream_connect`;
/// the whole request by `timeouts.upstream` around it (`server::deliver`).
pub fn build_send(config: &Config) -> Result<SendClient, ConfigError> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(config.timeouts.upstream_connect.0));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(config)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .build(connector))
}

/// The key check's client.
pub fn build(config: &Config) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(config)?)
        .connect_timeout(config.timeouts.upstream_connect.0)
        .user_agent(user_agent())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .map_err(|e| ConfigError::new("upstream", format!("cannot build the HTTP client: {e}")))
}
