//! Certificate reload without restart (docs/smtp.md "TLS"): on SIGHUP and whenever the
//! certificate or key file changes, checked every `tls.reload_interval`. New handshakes use
//! the new pair; open sessions keep theirs. A pair that does not load (broken PEM, key not
//! matching) is refused with an error log, and the old one stays.
//!
//! Changes are detected by the files' content, not their modification time, so a Kubernetes
//! secret update (which swaps a symlink to a new directory) is seen like any other write.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Shutdown;
use super::tls::{CertStore, load_pair};
use crate::secret::sha256;

/// Watches one certificate and key pair.
#[derive(Debug)]
pub struct Reloader {
    certificate: PathBuf,
    key: PathBuf,
    store: Arc<CertStore>,
    /// Digest of the files' contents as last loaded (or last seen broken).
    seen: Mutex<[u8; 32]>,
    /// `tls.generate_if_missing`: the development CA's path and the hostname, to make the
    /// pair again when it nears its end.
    renew: Option<(PathBuf, String)>,
}

impl Reloader {
    /// Starts from the pair loaded at start-up.
    pub fn new(certificate: PathBuf, key: PathBuf, store: Arc<CertStore>) -> Reloader {
        let seen = Mutex::new(fingerprint(&certificate, &key));
        Reloader {
            certificate,
            key,
            store,
            seen,
            renew: None,
        }
    }

    /// Development only: makes the pair again (with its CA at `ca`) when it nears its end.
    pub fn renewing(mut self, ca: PathBuf, hostname: String) -> Reloader {
        self.renew = Some((ca, hostname));
        self
    }

    /// Loads the files again if their contents changed. Returns true when a new pair is in use.
    pub fn check(&self, why: &str) -> bool {
        if let Some((ca, hostname)) = &self.renew
            && super::tls::development_pair_needs_renewal(&self.certificate)
        {
            match super::tls::generate_development_pair(&self.certificate, &self.key, ca, hostname)
            {
                Ok(()) => {
                    tracing::warn!(certificate = %self.certificate.display(), ca = %ca.display(), "the development certificate neared its end: made a new one (clients must trust the new development CA)")
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not make a new development certificate")
                }
            }
        }
        let now = fingerprint(&self.certificate, &self.key);
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if *seen == now {
            return false;
        }
        *seen = now;
        match load_pair(&self.certificate, &self.key) {
            Ok(pair) => {
                self.store.replace(pair);
                tracing::info!(trigger = why, certificate = %self.certificate.display(), "TLS certificate reloaded: new handshakes use it");
                true
            }
            Err(e) => {
                tracing::error!(trigger = why, error = %e, "TLS certificate reload failed: keeping the previous certificate");
                false
            }
        }
    }

    /// Polls every `interval` until the relay is forced to stop.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.forced() => return,
            }
            let this = Arc::clone(&self);
            // File reads are blocking; keep them off the async workers.
            let _ = tokio::task::spawn_blocking(move || this.check("file change")).await;
        }
    }
}

/// A digest of both files' contents; unreadable files count as empty, so a file that comes
/// back is noticed.
fn fingerprint(certificate: &PathBuf, key: &PathBuf) -> [u8; 32] {
    let mut both = std::fs::read(certificate).unwrap_or_default();
    both.push(0);
    both.extend(std::fs::read(key).unwrap_or_default());
    sha256(&both)
}
