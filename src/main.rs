//! `sendpigeon-relay`: parse arguments, load the configuration, start logging, run.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sendpigeon_relay::auth::KeysFile;
use sendpigeon_relay::cli::{Cli, Command, ConfigArgs};
use sendpigeon_relay::secret::ApiKey;
use sendpigeon_relay::{config, server, telemetry};

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
        tracing::info!(
            config = %origin,
            upstream = %relay.upstream.describe(),
            hostname = %relay.config.server.hostname,
            "sendpigeon-relay {} started",
            env!("CARGO_PKG_VERSION")
        );
        server::run(Arc::new(relay), bound, stop_signal()).await;
        tracing::info!("stopped");
        Ok(())
    })
}

fn with_origin(mut e: config::ConfigError, origin: &str) -> String {
    e.origin = origin.to_string();
    e.to_string()
}

/// SIGINT or SIGTERM. This build stops accepting and exits; open sessions end with it.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("stop signal received");
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
    println!("# {origin}: OK");
    println!("# active upstream: {upstream:?}");
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
