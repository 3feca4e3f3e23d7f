//! TLS for both listener kinds: rustls (ring), TLS 1.2 and 1.3 only, the certificate served
//! through a resolver so a new pair can replace it without touching open sessions, and the
//! development CA + certificate generator (rcgen) used only when the configuration asks.
//!
//! Cheap handshakes (measured; see docs/smtp.md "TLS"): AES-128-GCM/SHA-256 is preferred
//! (this CPU has no SHA-512 instructions), session tickets and the session cache allow
//! resumption, and the generated development certificate is ECDSA P-256.

use std::fs;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigError;

/// The TLS settings shared by every listener.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The rustls configuration handed to each handshake.
    pub config: Arc<ServerConfig>,
    /// The certificate store behind `config`, for reloads.
    pub certs: Arc<CertStore>,
}

/// Holds the current certificate and key; handshakes read it, a reload replaces it.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Replaces the pair used by new handshakes.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut current) = self.current.write() {
            *current = key;
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| Arc::clone(&key))
    }
}

fn crypto_provider() -> Arc<CryptoProvider> {
    let mut p = provider::default_provider();
    // Prefer AES-128-GCM with SHA-256: ~9% less server CPU per handshake here than the
    // AES-256/SHA-384 suite rustls lists first.
    p.cipher_suites.sort_by_key(|suite| match suite.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 1,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 2,
        _ => 3,
    });
    Arc::new(p)
}

/// Loads a PEM chain and key into a signing pair; errors name the setting.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect())
        .map_err(|e| {
            ConfigError::new(
                "tls.certificate",
                format!("{}: not a PEM certificate chain ({e})", cert_path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            "tls.certificate",
            format!("{}: no CERTIFICATE block found", cert_path.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        ConfigError::new(
            "tls.key",
            format!("{}: not a PEM private key ({e})", key_path.display()),
        )
    })?;
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| ConfigError::new("tls.key", format!("{}: {e}", key_path.display())))?;
    let pair = CertifiedKey::new(certs, signing_key);
    pair.keys_match().map_err(|e| {
        ConfigError::new(
            "tls.key",
            format!(
                "{} does not belong to {}: {e}",
                key_path.display(),
                cert_path.display()
            ),
        )
    })?;
    Ok(Arc::new(pair))
}

/// Builds the rustls server configuration around `pair`.
pub fn setup(pair: Arc<CertifiedKey>) -> Result<TlsSetup, ConfigError> {
    let certs = Arc::new(CertStore {
        current: RwLock::new(pair),
    });
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::new("tls", e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    config.ticketer =
        provider::Ticketer::new().map_err(|e| ConfigError::new("tls", e.to_string()))?;
    // TLS 1.3 0-RTT data is never accepted (adversarial TLS-05): replayable commands.
    config.max_early_data_size = 0;
    // Our suite order, not the client's: most clients list AES-256/SHA-384 first, and the
    // AES-128/SHA-256 suite costs less per handshake (see `crypto_provider`).
    config.ignore_client_order = true;
    Ok(TlsSetup {
        config: Arc::new(config),
        certs,
    })
}

/// `TLSv1.3` / `TLSv1.2` for logs and `source.tls`.
pub fn version_name(version: Option<ProtocolVersion>) -> &'static str {
    match version {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    }
}

/// How long a generated development certificate (and its CA) is valid: Mozilla's
/// "intermediate" profile allows at most 366 days (operations.md, TLS).
pub const DEVELOPMENT_VALIDITY: time::Duration = time::Duration::days(365);

/// A generated certificate this close to its end is made again (at start and at every
/// `tls.reload_interval`), so a long-running development relay never serves an expired one.
pub const DEVELOPMENT_RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// Whether the development certificate at `cert_path` must be made again: it ends within
/// [`DEVELOPMENT_RENEW_BEFORE`], or it was made valid for longer than
/// [`DEVELOPMENT_VALIDITY`] allows (by an older version). A file that cannot be read or
/// parsed is left alone: loading it reports the problem.
pub fn development_pair_needs_renewal(cert_path: &Path) -> bool {
    let Some((not_before, not_after)) = validity(cert_path) else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc();
    not_after - now < DEVELOPMENT_RENEW_BEFORE
        || not_after - not_before > DEVELOPMENT_VALIDITY + time::Duration::days(1)
}

/// The validity period (not before, not after) of the first certificate in a PEM file.
fn validity(cert_path: &Path) -> Option<(time::OffsetDateTime, time::OffsetDateTime)> {
    let pem = fs::read(cert_path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let v = cert.validity();
    Some((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

/// Creates a development CA (certificate only; its key is discarded so nothing else can be
/// signed with it) and an ECDSA P-256 server certificate it signs, valid for `localhost`,
/// `127.0.0.1`, `::1` and `hostname`, both for [`DEVELOPMENT_VALIDITY`] from now. Writes PEM
/// files; the key file is made owner-only.
pub fn generate_development_pair(
    cert_path: &Path,
    key_path: &Path,
    ca_path: &Path,
    hostname: &str,
) -> Result<(), String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let err = |e: rcgen::Error| e.to_string();
    // An hour back for clocks a little behind.
    let not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let not_after = not_before + DEVELOPMENT_VALIDITY;
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.not_before = not_before;
    ca.not_after = not_after;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sendpigeon-relay development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !names.iter().any(|n| n == hostname) {
        names.push(hostname.to_string());
    }
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut leaf = CertificateParams::new(names).map_err(err)?;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.distinguished_name.push(DnType::CommonName, hostname);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;

    for path in [cert_path, key_path, ca_path] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    let write = |path: &Path, text: String| {
        fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(key_path, leaf_key.serialize_pem())?;
    restrict(key_path)?;
    write(cert_path, format!("{}{}", leaf_cert.pem(), ca_cert.pem()))?;
    write(ca_path, ca_cert.pem())?;
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(path: &Path, not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
        fs::write(path, params.self_signed(&key).unwrap().pem()).unwrap();
    }

    #[test]
    fn a_generated_pair_is_valid_for_a_year_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = (
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
            dir.path().join("ca.pem"),
        );
        generate_development_pair(&cert, &key, &ca, "relay.test").unwrap();
        let now = time::OffsetDateTime::now_utc();
        for path in [&cert, &ca] {
            let (not_before, not_after) = validity(path).unwrap();
            let lifetime = not_after - not_before;
            assert!(lifetime <= time::Duration::days(366), "{lifetime}");
            assert!(not_before <= now && now <= not_after);
        }
        assert!(!development_pair_needs_renewal(&cert));
        assert!(load_pair(&cert, &key).is_ok());
    }

    #[test]
    fn a_pair_near_its_end_or_valid_for_too_long_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        let now = time::OffsetDateTime::now_utc();
        // Ends in ten days.
        self_signed(
            &path,
            now - time::Duration::days(300),
            now + time::Duration::days(10),
        );
        assert!(development_pair_needs_renewal(&path));
        // An older version's ~2 100 years.
        self_signed(
            &path,
            now - time::Duration::days(1),
            now + time::Duration::days(365 * 2000),
        );
        assert!(development_pair_needs_renewal(&path));
        // Half a year left of a year.
        self_signed(
            &path,
            now - time::Duration::days(180),
            now + time::Duration::days(185),
        );
        assert!(!development_pair_needs_renewal(&path));
        // Not a certificate, or no file: left to the loader to report.
        fs::write(&path, "not a certificate").unwrap();
        assert!(!development_pair_needs_renewal(&path));
        assert!(!development_pair_needs_renewal(
            &dir.path().join("missing.pem")
        ));
    }
}
