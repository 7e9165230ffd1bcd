//! The `sluice` binary. The broker (`sluice serve`) arrives with the network layer; for now
//! the binary offers `sluice log inspect DIR`, which opens a partition directory with the
//! storage engine (running crash recovery) and prints what it found.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible streaming broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Storage engine tools.
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Opens a partition log directory (recovering it if needed) and prints its offsets,
    /// segments and the recovery report.
    Inspect {
        /// The partition directory.
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Log(LogCommand::Inspect { dir }) => inspect(dir),
    }
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
