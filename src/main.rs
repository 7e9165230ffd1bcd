//! The `sluice` binary: `sluice serve` runs the broker; `sluice log inspect` opens a
//! partition directory with the storage engine; `sluice topic|produce|consume|cluster` are
//! an admin client for any Kafka broker (in `cli/`). Logic lives in the library crates and
//! `cli/`; this file wires configuration, logging and signals.

mod cli;
mod config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, LogCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_server = matches!(cli.command, Command::Serve(_) | Command::Log(_));
    // The client commands report failures themselves; their logs (librdkafka's included)
    // are for `SLUICE_LOG=debug`.
    let default_filter = if is_server { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(flags) => serve(&flags),
        Command::Log(LogCommand::Inspect { dir }) => inspect(dir),
        command => cli::run_client(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_server => {
            eprintln!("Error: {error:?}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(flags: &config::ServeFlags) -> anyhow::Result<()> {
    let config = config::resolve(flags)?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        kafka_addr = %config.kafka_addr,
        advertised = %format!("{}:{}", config.advertised_host, config.advertised_port),
        cores = config.cores,
        "starting sluice"
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let broker = sluice_net::server::start(config)?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tracing::info!("signal received: stopping (closing logs cleanly)");
    broker.shutdown();
    broker.join();
    tracing::info!("stopped");
    Ok(())
}

fn inspect(dir: PathBuf) -> anyhow::Result<()> {
    use sluice_engine::io::glommio_storage::GlommioStorage;
    use sluice_engine::{BatchCache, Log, LogConfig};
    let executor = glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let log = Log::open(GlommioStorage, &dir, LogConfig::default(), BatchCache::new(0)).await?;
            let offsets = log.offsets();
            let (segments, bytes) = log.size();
            println!("log start      {}", offsets.log_start);
            println!("log end        {}", offsets.log_end);
            println!("segments       {segments} ({bytes} bytes)");
            println!("recovery       {:?}", log.recovery_report());
            glommio::spawn_local(log.clone().run_flusher()).detach();
            log.close().await?;
            Ok::<(), anyhow::Error>(())
        })
        .map_err(|error| anyhow::anyhow!("{error}"))
        .context("starting a glommio executor (needs io_uring and locked memory: try `ulimit -l unlimited`)")?;
    executor
        .join()
        .map_err(|_| anyhow::anyhow!("executor thread panicked"))?
}
