//! `sluice-bench`: command-line front end for the Sluice benchmarks.
//!
//! Results go to stdout (readable blocks, or one JSON object per line with `--json`);
//! progress and warnings go to stderr. To add a subcommand: add a variant with its args
//! struct to [`Command`] and an arm in [`run`] returning its result lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sluice_bench::disk::{DiskOptions, measure_disk};
use sluice_bench::report::{ResultLine, emit};
use sluice_bench::size::parse_size;

#[derive(Debug, Parser)]
#[command(name = "sluice-bench", version, about = "Sluice benchmarks")]
struct Cli {
    /// Print exactly one JSON object per result on stdout (progress stays on stderr).
    #[arg(long, global = true)]
    json: bool,

    /// CPU to pin the benchmark executor to, or `any` to leave it unpinned.
    #[arg(long, global = true, default_value = "0", value_parser = parse_cpu)]
    cpu: CpuChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raw disk baseline: sequential O_DIRECT write MB/s and fdatasync latency.
    Disk(DiskArgs),
}

#[derive(Debug, Args)]
struct DiskArgs {
    /// Directory on the disk to measure (a temp file is created and removed there).
    #[arg(long)]
    dir: PathBuf,

    /// Size of each sequential write (multiple of 4KiB).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    block_size: u64,

    /// Total bytes to write.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,

    /// Sequential writes kept in flight.
    #[arg(long, default_value_t = 4)]
    queue_depth: usize,

    /// Number of 4KiB write + fdatasync rounds.
    #[arg(long, default_value_t = 200)]
    fsync_samples: usize,
}

/// `--cpu` value: a CPU number or no pinning.
#[derive(Debug, Clone, Copy)]
struct CpuChoice(Option<usize>);

fn parse_cpu(s: &str) -> Result<CpuChoice, String> {
    match s {
        "any" | "none" => Ok(CpuChoice(None)),
        n => n
            .parse()
            .map(|cpu| CpuChoice(Some(cpu)))
            .map_err(|_| format!("expected a CPU number or `any`, got {n:?}")),
    }
}

fn run(cli: &Cli) -> anyhow::Result<Vec<ResultLine>> {
    match &cli.command {
        Command::Disk(a) => {
            let opts = DiskOptions {
                block_size: a.block_size,
                size: a.size,
                queue_depth: a.queue_depth,
                fsync_samples: a.fsync_samples,
                cpu: cli.cpu.0,
            };
            Ok(measure_disk(&a.dir, &opts)?.results())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(results) => {
            emit(&results, cli.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Not `{e:?}`: that appends a backtrace whenever RUST_BACKTRACE is set.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn disk_args_parse_sizes_and_globals() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "sluice-bench",
            "disk",
            "--dir",
            "/tmp",
            "--block-size",
            "16KiB",
            "--size",
            "1GiB",
            "--json",
            "--cpu",
            "any",
        ])?;
        assert!(cli.json);
        assert_eq!(cli.cpu.0, None);
        let Command::Disk(a) = cli.command;
        assert_eq!(
            (a.block_size, a.size, a.queue_depth),
            (16 << 10, 1 << 30, 4)
        );
        assert!(
            Cli::try_parse_from(["sluice-bench", "disk", "--dir", "/", "--size", "1XB"]).is_err()
        );
        Ok(())
    }
}
