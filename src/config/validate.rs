//! Checks that need more than a type: ranges, relations between settings, files that must
//! exist. "0 means unlimited" does not exist here: every limit must be at least 1.

use std::collections::HashSet;

use super::{Config, ConfigError, UpstreamTarget, Verify};
use crate::memory::limit::{BudgetOrigin, human_size};

pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    let err = |setting: &str, message: String| Err(ConfigError::new(setting, message));

    let host = &c.server.hostname;
    if host.is_empty()
        || host.len() > 255
        || !host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
    {
        return err(
            "server.hostname",
            format!("{host:?} is not a host name (letters, digits, dots and hyphens)"),
        );
    }
    positive("server.max_connections", c.server.max_connections as u64)?;

    if c.listeners.is_empty() {
        return err(
            "listeners",
            "at least one [[listeners]] entry is needed".into(),
        );
    }
    let mut seen = HashSet::new();
    if let Some(admin) = c.admin.address {
        seen.insert(admin);
    }
    for listener in &c.listeners {
        // Port 0 (any free port, used by tests) may appear more than once.
        if listener.proxy_protocol && listener.trusted_proxies.is_empty() {
            return err(
                "listeners",
                format!(
                    "{}: proxy_protocol needs trusted_proxies (the load balancer's networks)",
                    listener.address
                ),
            );
        }
        if listener.address.port() != 0 && !seen.insert(listener.address) {
            return err("listeners", format!("{} is listed twice", listener.address));
        }
    }

    let a = &c.auth;
    if a.username.is_empty() || !a.username.chars().all(|ch| ch.is_ascii_graphic()) {
        return err(
            "auth.username",
            "must be non-empty printable ASCII without spaces".into(),
        );
    }
    if a.key_prefixes.is_empty() || a.key_prefixes.iter().any(|p| p.is_empty()) {
        return err(
            "auth.key_prefixes",
            "list at least one non-empty prefix, e.g. [\"sk_live_\"]".into(),
        );
    }
    positive("auth.max_failures", a.max_failures.into())?;
    positive("auth.cache_entries", a.cache_entries as u64)?;
    if a.verify == Verify::Upstream && !matches!(c.upstream_target(), Ok(UpstreamTarget::Http(_))) {
        return err(
            "auth.verify",
            "\"upstream\" needs an http upstream (upstream.url = \"https://...\"); use \"keys-file\" with the outbox".into(),
        );
    }

    let l = &c.limits;
    for (setting, value) in [
        ("limits.recipients", l.recipients as u64),
        ("limits.header_section", l.header_section.0),
        ("limits.mime_parts", l.mime_parts as u64),
        ("limits.mime_depth", l.mime_depth as u64),
        ("limits.received_headers", l.received_headers as u64),
        ("limits.errors", l.errors.into()),
        ("limits.junk_commands", l.junk_commands.into()),
        (
            "limits.messages_per_connection",
            l.messages_per_connection.into(),
        ),
        ("limits.connections_per_ip", l.connections_per_ip as u64),
        ("limits.auth_failures_per_ip", l.auth_failures_per_ip as u64),
    ] {
        positive(setting, value)?;
    }
    if l.message_size.0 < 1024 {
        return err("limits.message_size", "must be at least 1024 bytes".into());
    }
    // RFC 5321 §4.5.3.1.4: servers must accept command lines of 512 octets.
    for (setting, value) in [
        ("limits.command_line", l.command_line),
        ("limits.auth_line", l.auth_line),
    ] {
        if value < 512 {
            return err(
                setting,
                format!("{value} is below the RFC 5321 minimum of 512"),
            );
        }
    }
    memory_budget(c)?;

    let t = &c.timeouts;
    for (setting, span) in [
        ("timeouts.tls_handshake", t.tls_handshake),
        ("timeouts.command", t.command),
        ("timeouts.command_authenticated", t.command_authenticated),
        ("timeouts.data_read", t.data_read),
        ("timeouts.write", t.write),
        ("timeouts.session", t.session),
        ("timeouts.upstream", t.upstream),
        ("timeouts.upstream_connect", t.upstream_connect),
        ("timeouts.key_check", t.key_check),
        ("server.shutdown_grace", c.server.shutdown_grace),
        ("timeouts.proxy_header", t.proxy_header),
        ("tls.reload_interval", c.tls.reload_interval),
        ("limits.auth_failure_window", l.auth_failure_window),
        ("limits.auth_cooldown", l.auth_cooldown),
        ("limits.memory_wait", l.memory_wait),
    ] {
        if span.0.is_zero() {
            return err(setting, "must be longer than 0s".into());
        }
    }
    positive("timeouts.data_min_rate", t.data_min_rate.0)?;
    if l.ipv6_prefix == 0 || l.ipv6_prefix > 128 {
        return err(
            "limits.ipv6_prefix",
            format!("{} is not a prefix length (1 to 128)", l.ipv6_prefix),
        );
    }

    if let Err(message) = c.upstream_target() {
        return err("upstream.url", message);
    }
    Ok(())
}

/// Settings that work but are likely mistakes: `check-config` prints them as warnings and
/// `serve` logs them at start.
pub fn warnings(c: &Config) -> Vec<ConfigError> {
    let mut found = Vec::new();
    let (upstream, grace) = (c.timeouts.upstream.0, c.server.shutdown_grace.0);
    if upstream >= grace {
        found.push(ConfigError::new(
            "timeouts.upstream",
            format!(
                "{} is not below server.shutdown_grace ({}): one stalled API call turns a drain \
                 into a full-grace wait ending in 421; keep it below (default 20s against 25s)",
                humantime::format_duration(upstream),
                humantime::format_duration(grace)
            ),
        ));
    }
    found
}

/// Files the configuration names that are not there. `serve` refuses to start with any;
/// `check-config` reports them as warnings, since a production configuration is usually
/// checked where its mounted secrets do not exist.
pub fn missing_files(c: &Config) -> Vec<ConfigError> {
    let mut files = Vec::new();
    if !c.tls.generate_if_missing {
        files.push(("tls.certificate", &c.tls.certificate));
        files.push(("tls.key", &c.tls.key));
    }
    if c.auth.verify == Verify::KeysFile {
        files.push(("auth.keys_file", &c.auth.keys_file));
    }
    if let Some(ca) = &c.upstream.ca_file {
        files.push(("upstream.ca_file", ca));
    }
    files
        .into_iter()
        .filter(|(_, path)| !path.is_file())
        .map(|(setting, path)| {
            ConfigError::new(setting, format!("{} does not exist", path.display()))
        })
        .collect()
}

/// The budget in effect must hold the largest message with the share kept for first grants
/// ([`crate::memory::minimum_budget`]); otherwise a message of `limits.message_size` could
/// never be received. When the value came from the container's limit, the error says so,
/// since the fix may be the container's limit rather than this file.
fn memory_budget(c: &Config) -> Result<(), ConfigError> {
    let budget = c.effective_memory_budget();
    let message_size = c.limits.message_size.bytes();
    let needed = crate::memory::minimum_budget(message_size);
    if budget.bytes >= needed {
        return Ok(());
    }
    let (have, needed, message) = (
        human_size(budget.bytes as u64),
        human_size(needed as u64),
        human_size(message_size as u64),
    );
    let text = match budget.origin {
        BudgetOrigin::Configured => format!(
            "{have} is below the {needed} a {message} message needs (limits.message_size); raise it or lower limits.message_size"
        ),
        BudgetOrigin::Cgroup(_) => format!(
            "{origin} is {have}, below the {needed} a {message} message needs (limits.message_size); set limits.memory_budget or raise the container's memory limit",
            origin = budget.origin
        ),
        BudgetOrigin::Default => format!(
            "the default {have} is below the {needed} a {message} message needs (limits.message_size); set limits.memory_budget"
        ),
    };
    Err(ConfigError::new("limits.memory_budget", text))
}

fn positive(setting: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(
            setting,
            "must be at least 1 (there is no \"0 means unlimited\")",
        ));
    }
    Ok(())
}
