//! `sendpigeon-relay`: parse arguments, load the configuration, start logging, run.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sendpigeon_relay::auth::KeysFile;
use sendpigeon_relay::cli::{Cli, Command, ConfigArgs};
use sendpigeon_relay::secret::ApiKey;
use sendpigeon_relay::{admin, config, server, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::HashKey => hash_key(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sendpigeon-relay: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: &ConfigArgs) -> Result<(), String> {
    let (config, origin) =
        config::load(args.config.as_deref(), &args.overrides()).map_err(|e| e.to_string())?;
    telemetry::init(config.log.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let relay = server::Relay::from_config(config).map_err(|e| with_origin(e, &origin))?;
        let bound = server::bind(&relay.config)
            .await
            .map_err(|e| with_origin(e, &origin))?;
        let admin = match relay.config.admin.address {
            Some(address) => Some(
                admin::bind(address)
                    .await
                    .map_err(|e| with_origin(e, &origin))?,
            ),
            None => None,
        };
        let relay = Arc::new(relay);
        if let Some(listener) = admin {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "admin endpoint listening");
            }
            tokio::spawn(admin::serve(
                listener,
                Arc::clone(&relay.metrics),
                relay.shutdown.clone(),
                relay.budget.clone(),
            ));
        }
        let budget = relay.config.effective_memory_budget();
        tracing::info!(
            memory_budget = budget.bytes,
            origin = %budget.origin,
            memory_wait = %humantime::format_duration(relay.config.limits.memory_wait.0),
            "memory budget {budget}"
        );
        for warning in config::warnings(&relay.config) {
            tracing::warn!(setting = warning.setting, "{}", warning.message);
        }
        tracing::info!(
            config = %origin,
            upstream = %relay.upstream.describe(),
            hostname = %relay.config.server.hostname,
            "sendpigeon-relay {} started",
            env!("CARGO_PKG_VERSION")
        );
        tokio::spawn(watch_signals(
            relay.shutdown.clone(),
            relay.config.server.shutdown_delay.0,
        ));
        tokio::spawn(watch_hangup(Arc::clone(&relay.reloader)));
        server::run(relay, bound).await;
        tracing::info!("stopped");
        Ok(())
    })
}

fn with_origin(mut e: config::ConfigError, origin: &str) -> String {
    e.origin = origin.to_string();
    e.to_string()
}

/// The first SIGTERM or SIGINT drains (after `server.shutdown_delay`); a second one stops at
/// once.
async fn watch_signals(shutdown: server::Shutdown, delay: std::time::Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    for first in [true, false] {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if first {
            if delay.is_zero() {
                tracing::info!("stop signal: draining (a second signal stops at once)");
            } else {
                tracing::info!(
                    delay = %humantime::format_duration(delay),
                    "stop signal: /readyz is 503 now, still serving; draining after server.shutdown_delay (a second signal stops at once)"
                );
            }
            let shutdown = shutdown.clone();
            tokio::spawn(async move { shutdown.stop_after(delay).await });
        } else {
            tracing::warn!("second stop signal: closing every session now");
            shutdown.force();
        }
    }
}

/// SIGHUP: check the certificate files now.
async fn watch_hangup(reloader: Arc<server::Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!(
            "cannot install the SIGHUP handler; certificates reload on file change only"
        );
        return;
    };
    while hup.recv().await.is_some() {
        let reloader = Arc::clone(&reloader);
        let changed = tokio::task::spawn_blocking(move || reloader.check("SIGHUP")).await;
        if matches!(changed, Ok(false)) {
            tracing::info!("SIGHUP: certificate files unchanged (or still broken)");
        }
    }
}

fn check_config(args: &ConfigArgs) -> Result<(), String> {
    let (config, origin) =
        config::load(args.config.as_deref(), &args.overrides()).map_err(|e| e.to_string())?;
    let upstream = config
        .upstream_target()
        .map_err(|e| format!("{origin}: upstream.url: {e}"))?;
    let effective = toml::to_string_pretty(&config).map_err(|e| e.to_string())?;
    for missing in config::missing_files(&config) {
        eprintln!(
            "sendpigeon-relay: warning: {origin}: {missing_setting}: {message} (serve will refuse to start without it)",
            missing_setting = missing.setting,
            message = missing.message
        );
    }
    for warning in config::warnings(&config) {
        eprintln!(
            "sendpigeon-relay: warning: {origin}: {setting}: {message}",
            setting = warning.setting,
            message = warning.message
        );
    }
    println!("# {origin}: OK");
    println!("# active upstream: {upstream:?}");
    // Not in the settings below when limits.memory_budget is left out: the value in effect
    // then depends on the container this runs in.
    println!("# memory budget: {}", config.effective_memory_budget());
    print!("{effective}");
    Ok(())
}

fn hash_key() -> Result<(), String> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the key from standard input: {e}"))?;
    let key = input.trim_end_matches(['\r', '\n']);
    if key.is_empty() || key.contains(['\r', '\n']) {
        return Err("expected exactly one key on standard input".into());
    }
    println!("{}", KeysFile::line_for(&ApiKey::new(key)));
    Ok(())
}
