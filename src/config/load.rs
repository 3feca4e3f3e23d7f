//! Reading the configuration: the file (or the embedded default), then command-line and
//! environment overrides, then validation. Every error is one line naming the setting.

use std::path::{Path, PathBuf};

use super::{Config, Listener, ListenerKind, LogFormat};
use crate::memory::limit::CgroupLimit;

/// The shipped development configuration, used when no file is given and
/// `config/relay.toml` is not in the working directory.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/relay.toml");

/// The default configuration file.
pub const DEFAULT_PATH: &str = "config/relay.toml";

/// A configuration that cannot be used: where, which setting, and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {setting}: {message}")]
pub struct ConfigError {
    /// The file (or "embedded default", or "command line").
    pub origin: String,
    /// The setting, e.g. `limits.message_size`; empty for file-level problems.
    pub setting: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl ConfigError {
    /// An error about `setting`; the origin is filled in by the loader or the caller.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: String::new(),
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Settings given on the command line or in `SENDPIGEON_RELAY_*` variables; they win over
/// the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--listen KIND=ADDR` (replaces all `[[listeners]]`).
    pub listen: Vec<String>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--tls-certificate`.
    pub tls_certificate: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--auth-verify`.
    pub auth_verify: Option<super::Verify>,
    /// `--keys-file`.
    pub keys_file: Option<PathBuf>,
    /// `--admin`.
    pub admin: Option<std::net::SocketAddr>,
}

/// Loads `path`, or `config/relay.toml`, or the embedded default; applies `overrides`;
/// validates. Returns the configuration and a description of where it came from.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<(Config, String), ConfigError> {
    let (origin, text) = match path {
        Some(path) => (path.display().to_string(), read(path)?),
        None if Path::new(DEFAULT_PATH).exists() => {
            (DEFAULT_PATH.to_string(), read(Path::new(DEFAULT_PATH))?)
        }
        None => ("embedded default".to_string(), EMBEDDED_DEFAULT.to_string()),
    };
    let config = load_str(&text, overrides).map_err(|mut e| {
        e.origin = origin.clone();
        e
    })?;
    Ok((config, origin))
}

/// Parses, overrides and validates configuration text, with the memory limit of the
/// container this process runs in (the default of `limits.memory_budget` derives from it).
pub fn load_str(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    load_str_with_limit(text, overrides, crate::memory::limit::memory_limit())
}

/// [`load_str`] with the container's memory limit given instead of detected (tests).
///
/// The limit is recorded here, before validation, because the budget in effect must be
/// checked against `limits.message_size` and is then read from the finished configuration
/// by `serve` and `check-config` alike.
pub fn load_str_with_limit(
    text: &str,
    overrides: &Overrides,
    container_limit: Option<CgroupLimit>,
) -> Result<Config, ConfigError> {
    let mut config = parse(text)?;
    apply(&mut config, overrides)?;
    config.container_memory_limit = container_limit;
    super::validate::validate(&config)?;
    Ok(config)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: path.display().to_string(),
        setting: String::new(),
        message: format!("cannot read the configuration file: {e}"),
    })
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::parse(text)
        .map_err(|e| ConfigError::new(line_of(text, &e), e.message().to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let setting = e.path().to_string();
        let inner = e.into_inner();
        let setting = if setting == "." {
            line_of(text, &inner)
        } else {
            setting
        };
        ConfigError::new(setting, inner.message().to_string())
    })
}

fn line_of(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}")
        }
        None => "syntax".to_string(),
    }
}

fn apply(config: &mut Config, o: &Overrides) -> Result<(), ConfigError> {
    if let Some(hostname) = &o.hostname {
        config.server.hostname = hostname.clone();
    }
    if !o.listen.is_empty() {
        let listeners: Vec<Listener> = o
            .listen
            .iter()
            .map(|spec| parse_listen(spec))
            .collect::<Result<_, _>>()?;
        // Behind a PROXY-sending balancer, listeners without PROXY would read the header as
        // commands and answer every client 500: never dropped silently.
        if let Some(behind) = config.listeners.iter().find(|l| l.proxy_protocol)
            && let Some((spec, _)) = o
                .listen
                .iter()
                .zip(&listeners)
                .find(|(spec, l)| !l.proxy_protocol && !spec.contains("@proxy=off"))
        {
            return Err(ConfigError::new(
                "listen",
                format!(
                    "{spec:?} drops the PROXY protocol that the configuration's listener on {} \
                     requires; add @proxy=CIDR (e.g. {spec}@proxy=10.0.0.0/8) to keep it, or \
                     @proxy=off to turn it off",
                    behind.address
                ),
            ));
        }
        config.listeners = listeners;
    }
    if let Some(upstream) = &o.upstream {
        config.upstream.url = upstream.clone();
    }
    if let Some(format) = o.log_format {
        config.log.format = format;
    }
    if let Some(path) = &o.tls_certificate {
        config.tls.certificate = path.clone();
    }
    if let Some(path) = &o.tls_key {
        config.tls.key = path.clone();
    }
    if let Some(verify) = o.auth_verify {
        config.auth.verify = verify;
    }
    if let Some(path) = &o.keys_file {
        config.auth.keys_file = path.clone();
    }
    if let Some(address) = o.admin {
        config.admin.address = Some(address);
    }
    Ok(())
}

/// `KIND=ADDRESS[@OPTION...]`: KIND is `starttls`, `implicit` or `auto`; options are
/// `proxy=CIDR[+CIDR...]` (require a PROXY header from these networks), `proxy=off`, and
/// `auto_detect=DURATION`. E.g. `starttls=0.0.0.0:587@proxy=10.0.0.0/8+172.16.0.0/12`.
fn parse_listen(spec: &str) -> Result<Listener, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "listen",
            format!(
                "invalid listener {spec:?} ({why}); write KIND=ADDRESS[@proxy=CIDR+CIDR][@auto_detect=300ms], \
                 e.g. starttls=0.0.0.0:587@proxy=10.0.0.0/8"
            ),
        )
    };
    let mut parts = spec.split('@');
    let head = parts.next().unwrap_or_default();
    let (kind, address) = head.split_once('=').ok_or_else(|| bad("no KIND="))?;
    let kind = match kind {
        "starttls" => ListenerKind::Starttls,
        "implicit" => ListenerKind::Implicit,
        "auto" => ListenerKind::Auto,
        _ => return Err(bad("KIND is starttls, implicit or auto")),
    };
    let address = address.parse().map_err(|_| bad("not an address:port"))?;
    let mut listener = Listener {
        kind,
        address,
        proxy_protocol: false,
        trusted_proxies: Vec::new(),
        auto_detect: super::AUTO_DETECT,
    };
    for option in parts {
        match option.split_once('=') {
            Some(("proxy", "off")) => listener.proxy_protocol = false,
            Some(("proxy", networks)) => {
                listener.proxy_protocol = true;
                listener.trusted_proxies = networks
                    .split('+')
                    .map(|n| {
                        n.parse()
                            .map_err(|_| bad("proxy= takes networks like 10.0.0.0/8"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            Some(("auto_detect", duration)) => {
                listener.auto_detect = humantime::parse_duration(duration)
                    .map(super::HumanDuration)
                    .map_err(|_| bad("auto_detect= takes a duration like 300ms"))?;
            }
            _ => return Err(bad("options are @proxy=... and @auto_detect=...")),
        }
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::limit::{BudgetOrigin, CgroupVersion};

    const MIB: u64 = 1 << 20;

    fn listen(text: &str, specs: &[&str]) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            listen: specs.iter().map(|s| s.to_string()).collect(),
            ..Overrides::default()
        };
        load_str_with_limit(text, &overrides, None)
    }

    #[test]
    fn listen_expresses_proxy_protocol_and_auto_detect() {
        let config = listen(
            EMBEDDED_DEFAULT,
            &[
                "starttls=0.0.0.0:587@proxy=10.0.0.0/8+172.16.0.0/12",
                "auto=[::]:465@auto_detect=250ms@proxy=10.0.0.0/8",
                "implicit=127.0.0.1:2465",
            ],
        )
        .unwrap();
        let l = &config.listeners;
        assert_eq!(l.len(), 3);
        assert!(l[0].proxy_protocol);
        assert_eq!(
            l[0].trusted_proxies,
            vec![
                "10.0.0.0/8".parse().unwrap(),
                "172.16.0.0/12".parse().unwrap()
            ]
        );
        assert_eq!(l[1].kind, ListenerKind::Auto);
        assert_eq!(l[1].auto_detect.0, std::time::Duration::from_millis(250));
        assert!(l[1].proxy_protocol);
        assert!(!l[2].proxy_protocol);
        for bad in [
            "starttls=0.0.0.0:587@proxy=ten",
            "starttls=0.0.0.0:587@tls=on",
            "starttls=0.0.0.0:587@auto_detect=soon",
            "smtps=0.0.0.0:465",
        ] {
            let e = listen(EMBEDDED_DEFAULT, &[bad]).unwrap_err();
            assert_eq!(e.setting, "listen", "{bad}");
        }
    }

    #[test]
    fn listen_never_drops_the_configured_proxy_protocol_silently() {
        // Behind a PROXY-sending balancer, listeners without PROXY answer every client 500.
        let behind = EMBEDDED_DEFAULT.replacen(
            "address = \"127.0.0.1:2587\"",
            "address = \"127.0.0.1:2587\"\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/8\"]",
            1,
        );
        let e = listen(&behind, &["starttls=0.0.0.0:587"]).unwrap_err();
        assert_eq!(e.setting, "listen");
        assert!(e.message.contains("@proxy=off"), "{}", e.message);
        assert!(listen(&behind, &["starttls=0.0.0.0:587@proxy=10.0.0.0/8"]).is_ok());
        assert!(listen(&behind, &["starttls=0.0.0.0:587@proxy=off"]).is_ok());
        // Without PROXY in the file, plain specs are fine.
        assert!(listen(EMBEDDED_DEFAULT, &["starttls=0.0.0.0:587"]).is_ok());
    }

    fn with_limit(text: &str, mib: u64) -> Result<Config, ConfigError> {
        let limit = CgroupLimit {
            bytes: mib * MIB,
            version: CgroupVersion::V2,
        };
        load_str_with_limit(text, &Overrides::default(), Some(limit))
    }

    #[test]
    fn the_budget_defaults_to_a_share_of_the_container_limit() {
        let config = with_limit(EMBEDDED_DEFAULT, 2560).unwrap();
        let budget = config.effective_memory_budget();
        assert_eq!(budget.bytes, 1792 << 20);
        assert!(matches!(budget.origin, BudgetOrigin::Cgroup(_)));
        assert_eq!(
            config.limits.memory_wait.0,
            std::time::Duration::from_secs(60)
        );

        let config = load_str_with_limit(EMBEDDED_DEFAULT, &Overrides::default(), None).unwrap();
        assert_eq!(config.effective_memory_budget().bytes, 1 << 30);
    }

    #[test]
    fn a_configured_budget_wins_over_the_container_limit() {
        let text = EMBEDDED_DEFAULT.replace("[limits]", "[limits]\nmemory_budget = \"40MiB\"");
        let config = with_limit(&text, 48).unwrap();
        let budget = config.effective_memory_budget();
        assert_eq!(
            (budget.bytes, budget.origin),
            (40 << 20, BudgetOrigin::Configured)
        );
    }

    #[test]
    fn a_container_limit_too_small_for_a_message_is_refused_naming_the_cgroup() {
        let e = with_limit(EMBEDDED_DEFAULT, 48).unwrap_err();
        assert_eq!(e.setting, "limits.memory_budget");
        assert_eq!(
            e.message,
            "70% of the cgroup v2 memory limit 48 MiB is 33.6 MiB, below the 37.67 MiB a 25 MiB \
             message needs (limits.message_size); set limits.memory_budget or raise the \
             container's memory limit"
        );
    }

    #[test]
    fn a_configured_budget_too_small_is_refused() {
        let text = EMBEDDED_DEFAULT.replace("[limits]", "[limits]\nmemory_budget = \"30MiB\"");
        let e = load_str_with_limit(&text, &Overrides::default(), None).unwrap_err();
        assert_eq!(e.setting, "limits.memory_budget");
        assert!(
            e.message.starts_with("30 MiB is below the 37.67 MiB"),
            "{}",
            e.message
        );
    }

    #[test]
    fn memory_wait_must_be_a_positive_duration() {
        let text = EMBEDDED_DEFAULT.replace("memory_wait = \"60s\"", "memory_wait = \"0s\"");
        let e = load_str_with_limit(&text, &Overrides::default(), None).unwrap_err();
        assert_eq!(
            (e.setting.as_str(), e.message.as_str()),
            ("limits.memory_wait", "must be longer than 0s")
        );
        let text = EMBEDDED_DEFAULT.replace("memory_wait = \"60s\"", "memory_wait = \"abc\"");
        let e = load_str_with_limit(&text, &Overrides::default(), None).unwrap_err();
        assert_eq!(e.setting, "limits.memory_wait");
    }
}
