//! The one HTTP client for the REST API, shared by every session (one connection pool) and by
//! the key check.
//!
//! rustls with ring, TLS 1.2 and 1.3, trusting the built-in Mozilla roots (webpki-roots: the
//! binary needs no CA bundle on disk, so it runs from a `scratch` image) plus an optional
//! private CA file. No redirects (a 3xx is a misconfiguration, answered 451), no proxy from
//! the environment.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{Config, ConfigError};

/// `User-Agent` of every request.
pub fn user_agent() -> String {
    format!("sendpigeon-relay/{}", env!("CARGO_PKG_VERSION"))
}

/// Builds the shared client; errors name the setting.
pub fn build(config: &Config) -> Result<reqwest::Client, ConfigError> {
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
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| ConfigError::new("upstream", e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(config.timeouts.upstream_connect.0)
        .user_agent(user_agent())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| ConfigError::new("upstream", format!("cannot build the HTTP client: {e}")))
}
