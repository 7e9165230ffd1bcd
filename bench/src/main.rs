//! `sluice-bench`: command-line front end for the Sluice benchmarks.
//!
//! Results go to stdout (readable blocks, or one JSON object per line with `--json`);
//! progress and warnings go to stderr. To add a subcommand: add a variant with its args
//! struct to [`Command`] and an arm in [`run`] returning its result lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_bench::disk::{DiskOptions, measure_disk};
use sluice_bench::engine::{BatchSource, EngineOptions, EngineTuning, measure_engine};
use sluice_bench::limits::loopback_tcp;
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
    /// Storage engine append throughput and durable-ack latency, against the disk baseline
    /// measured first in the same run.
    Engine(EngineArgs),
    /// Machine limits: the disk baseline plus loopback TCP bandwidth.
    Limits(LimitsArgs),
    /// Produce records to a Kafka-protocol broker (librdkafka client).
    Produce(ProduceArgs),
    /// Consume a topic from the beginning (librdkafka client).
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// Bootstrap servers.
    #[arg(long, env = "SLUICE_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic (created if missing).
    #[arg(long, default_value = "sluice-bench")]
    topic: String,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Value size of each record.
    #[arg(long, default_value = "1KiB", value_parser = parse_size)]
    record_size: u64,
    /// Records to send.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// linger.ms of the producer.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// batch.size of the producer.
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u32,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    /// Bootstrap servers.
    #[arg(long, env = "SLUICE_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic.
    #[arg(long, default_value = "sluice-bench")]
    topic: String,
    /// Records to read from the beginning.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Label in the result name (e.g. cold, hot).
    #[arg(long, default_value = "run")]
    label: String,
}

#[derive(Debug, Args)]
struct EngineArgs {
    /// Directory on the disk to measure (temp files and log directories are created and
    /// removed there).
    #[arg(long)]
    dir: PathBuf,

    /// Batch sizes, comma-separated; one case per size and fsync mode.
    #[arg(long, value_delimiter = ',', default_value = "1KiB,16KiB,1MiB", value_parser = parse_size)]
    sizes: Vec<u64>,

    /// Bytes appended per throughput case.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    bytes_per_case: u64,

    /// fdatasync with group commit (`on`), never (`off`), or both.
    #[arg(long, value_enum, default_value_t = FsyncMode::Both)]
    fsync: FsyncMode,

    /// Most appends waiting for their durable ack at once.
    #[arg(long, default_value_t = 1024)]
    window_appends: usize,

    /// Most bytes waiting for their durable ack at once.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    window_bytes: u64,

    /// Yield to the reactor after this many appended bytes (0: only when blocked).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    yield_bytes: u64,

    /// Appends in each one-at-a-time durable-latency case (0 skips them).
    #[arg(long, default_value_t = 1000)]
    latency_samples: u64,

    /// Clone batches into a pool before timing, or clone each inside the timed loop.
    #[arg(long, value_enum, default_value_t = SourceArg::Pool)]
    batch_source: SourceArg,

    /// LogConfig::write_buffer_bytes: size of each direct-I/O write buffer.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    write_buffer_bytes: u64,

    /// LogConfig::unwritten_bytes_max: appended-but-unwritten bytes before appends wait.
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    unwritten_bytes_max: u64,

    /// LogConfig::preallocate_bytes: segment preallocation step.
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    preallocate_bytes: u64,

    /// LogConfig::segment_bytes.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    segment_bytes: u64,

    /// LogConfig::max_batch_bytes (must hold the largest batch).
    #[arg(long, default_value = "2MiB", value_parser = parse_size)]
    max_batch_bytes: u64,

    /// Batch cache budget of the shard.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    cache_bytes: u64,

    /// glommio I/O memory of the executor (default: unwritten max + 2 buffers + 4MiB).
    #[arg(long, value_parser = parse_size)]
    io_memory: Option<u64>,

    /// Bytes written by the disk baseline.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    disk_size: u64,

    /// Write + fdatasync rounds of the disk baseline.
    #[arg(long, default_value_t = 200)]
    fsync_samples: usize,

    /// Sequential writes the disk baseline keeps in flight. The engine keeps up to
    /// unwritten-bytes-max / write-buffer-bytes writes in flight (32 by default), and many
    /// devices only reach their bandwidth at such depths, so the baseline goes as deep.
    #[arg(long, default_value_t = 16)]
    disk_queue_depth: usize,

    /// Also measure the disk right before and after each throughput case and compare with
    /// their mean (`ratio_to_adjacent_disk`), for devices whose bandwidth drifts.
    #[arg(long)]
    disk_per_case: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FsyncMode {
    On,
    Off,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SourceArg {
    Pool,
    Clone,
}

#[derive(Debug, Args)]
struct LimitsArgs {
    /// Directory on the disk to measure.
    #[arg(long)]
    dir: PathBuf,

    /// Bytes written by the disk baseline.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    disk_size: u64,

    /// Sequential writes the disk measurement keeps in flight (deep: this is the limit).
    #[arg(long, default_value_t = 16)]
    queue_depth: usize,

    /// Seconds of loopback TCP streaming.
    #[arg(long, default_value_t = 2.0)]
    tcp_seconds: f64,
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

/// What a subcommand produced: result lines, and for humans an optional closing summary.
struct Output {
    results: Vec<ResultLine>,
    summary: Option<String>,
}

impl From<Vec<ResultLine>> for Output {
    fn from(results: Vec<ResultLine>) -> Self {
        Self {
            results,
            summary: None,
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Output> {
    match &cli.command {
        Command::Disk(a) => {
            let opts = DiskOptions {
                block_size: a.block_size,
                size: a.size,
                queue_depth: a.queue_depth,
                fsync_samples: a.fsync_samples,
                cpu: cli.cpu.0,
            };
            Ok(measure_disk(&a.dir, &opts)?.results().into())
        }
        Command::Engine(a) => {
            let report = measure_engine(&a.dir, &engine_options(a, cli.cpu.0)?)?;
            Ok(Output {
                results: report.results(),
                summary: Some(report.summary()),
            })
        }
        Command::Limits(a) => {
            let opts = DiskOptions {
                size: a.disk_size,
                queue_depth: a.queue_depth,
                cpu: cli.cpu.0,
                ..DiskOptions::default()
            };
            let mut results = measure_disk(&a.dir, &opts)?.results();
            anyhow::ensure!(
                a.tcp_seconds.is_finite() && a.tcp_seconds > 0.0,
                "--tcp-seconds must be positive"
            );
            results.push(loopback_tcp(std::time::Duration::from_secs_f64(
                a.tcp_seconds,
            ))?);
            Ok(results.into())
        }
        Command::Produce(a) => {
            let options = sluice_bench::kafka::ProduceOptions {
                brokers: a.brokers.clone(),
                topic: a.topic.clone(),
                partitions: a.partitions,
                record_size: usize::try_from(a.record_size)?,
                count: a.count,
                acks: a.acks.clone(),
                linger_ms: a.linger_ms,
                batch_size: a.batch_size,
            };
            Ok(vec![sluice_bench::kafka::produce(&options)?].into())
        }
        Command::Consume(a) => {
            let options = sluice_bench::kafka::ConsumeOptions {
                brokers: a.brokers.clone(),
                topic: a.topic.clone(),
                count: a.count,
                label: a.label.clone(),
            };
            Ok(vec![sluice_bench::kafka::consume(&options)?].into())
        }
    }
}

fn engine_options(a: &EngineArgs, cpu: Option<usize>) -> anyhow::Result<EngineOptions> {
    let usize_of = |v: u64, flag: &str| {
        usize::try_from(v).map_err(|_| anyhow::anyhow!("--{flag} {v} does not fit in memory"))
    };
    Ok(EngineOptions {
        sizes: a.sizes.clone(),
        bytes_per_case: a.bytes_per_case,
        fsync_modes: match a.fsync {
            FsyncMode::On => vec![true],
            FsyncMode::Off => vec![false],
            FsyncMode::Both => vec![true, false],
        },
        window_appends: a.window_appends,
        window_bytes: a.window_bytes,
        yield_bytes: a.yield_bytes,
        latency_samples: a.latency_samples,
        batch_source: match a.batch_source {
            SourceArg::Pool => BatchSource::Pool,
            SourceArg::Clone => BatchSource::Clone,
        },
        tuning: EngineTuning {
            segment_bytes: a.segment_bytes,
            max_batch_bytes: usize_of(a.max_batch_bytes, "max-batch-bytes")?,
            write_buffer_bytes: usize_of(a.write_buffer_bytes, "write-buffer-bytes")?,
            unwritten_bytes_max: usize_of(a.unwritten_bytes_max, "unwritten-bytes-max")?,
            preallocate_bytes: a.preallocate_bytes,
            cache_bytes: usize_of(a.cache_bytes, "cache-bytes")?,
            io_memory: a.io_memory.map(|v| usize_of(v, "io-memory")).transpose()?,
        },
        disk: DiskOptions {
            size: a.disk_size,
            fsync_samples: a.fsync_samples,
            queue_depth: a.disk_queue_depth,
            cpu,
            ..DiskOptions::default()
        },
        disk_per_case: a.disk_per_case,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(output) => {
            emit(&output.results, cli.json);
            if let (false, Some(summary)) = (cli.json, output.summary) {
                print!("{summary}");
            }
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
    fn disk_args_parse_sizes_and_globals() -> anyhow::Result<()> {
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
        let Command::Disk(a) = cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        assert_eq!(
            (a.block_size, a.size, a.queue_depth),
            (16 << 10, 1 << 30, 4)
        );
        assert!(
            Cli::try_parse_from(["sluice-bench", "disk", "--dir", "/", "--size", "1XB"]).is_err()
        );
        Ok(())
    }

    #[test]
    fn engine_args_map_to_options() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "sluice-bench",
            "engine",
            "--dir",
            "/tmp",
            "--sizes",
            "4KiB,1MiB",
            "--fsync",
            "on",
            "--write-buffer-bytes",
            "2MiB",
            "--io-memory",
            "64MiB",
            "--json",
        ])?;
        assert!(cli.json);
        let Command::Engine(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        let opts = engine_options(a, cli.cpu.0)?;
        assert_eq!(opts.sizes, vec![4 << 10, 1 << 20]);
        assert_eq!(opts.fsync_modes, vec![true]);
        assert_eq!(opts.bytes_per_case, 1 << 30);
        assert_eq!(opts.tuning.write_buffer_bytes, 2 << 20);
        assert_eq!(opts.tuning.io_memory, Some(64 << 20));
        assert_eq!(opts.tuning.unwritten_bytes_max, 32 << 20);
        assert_eq!(opts.batch_source, BatchSource::Pool);
        assert_eq!(opts.disk.cpu, Some(0));
        assert_eq!(opts.disk.queue_depth, 16);

        let cli = Cli::try_parse_from(["sluice-bench", "engine", "--dir", "/tmp"])?;
        let Command::Engine(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        let opts = engine_options(a, None)?;
        assert_eq!(opts.sizes, vec![1 << 10, 16 << 10, 1 << 20]);
        assert_eq!(opts.fsync_modes, vec![true, false]);
        assert!(
            Cli::try_parse_from(["sluice-bench", "engine", "--dir", "/", "--fsync", "maybe"])
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn limits_args_parse() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["sluice-bench", "limits", "--dir", "/tmp"])?;
        let Command::Limits(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        assert_eq!(
            (a.disk_size, a.queue_depth, a.tcp_seconds),
            (1 << 30, 16, 2.0)
        );
        Ok(())
    }
}
