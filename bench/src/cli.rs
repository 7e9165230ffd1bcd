//! The `sluice-bench` command line: argument parsing and dispatch for every subcommand.
//!
//! Results go to the given writer (stdout for the binary): readable blocks or tables, or
//! one JSON object per line with `--json`; progress and warnings go to stderr. To add a
//! subcommand: add a variant with its args struct to [`Command`] and an arm in `execute`
//! returning its result lines. The binary is a thin wrapper around [`main_with_env`]; tests
//! call [`run_args`] to go through exactly the same parsing and output.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::disk::{DiskOptions, measure_disk};
use crate::engine::{BatchSource, EngineOptions, EngineTuning, measure_engine};
use crate::hdr::{self, HdrFormat};
use crate::limits::{cores, loopback_tcp, loopback_tcp_with, summary};
use crate::load::consumer::StartAt;
use crate::load::keys::KeyDist;
use crate::load::{self, ConsumerSpec, Limit, LoadOptions, ProducerSpec};
use crate::report::{ResultLine, format_table, write_results};
use crate::size::parse_size;

/// The parsed command line.
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
    /// Machine limits side by side: the disk baseline, loopback TCP bandwidth, cores.
    Limits(LimitsArgs),
    /// Loopback TCP bandwidth: one writer and one reader thread, large writes.
    Net(NetArgs),
    /// Produce to a Kafka-protocol broker: records/s, MB/s, send → ack latency.
    Produce(ProduceArgs),
    /// Consume a topic: records/s, MB/s.
    Consume(ConsumeArgs),
    /// Produce and consume at once: send → ack and publish → receive (end-to-end) latency.
    E2e(E2eArgs),
    /// A Kafka endpoint that discards produced records, to measure the load tool's ceiling.
    Sink(SinkArgs),
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

/// Where the clients connect and what they load.
#[derive(Debug, Args)]
struct ConnArgs {
    /// Bootstrap servers.
    #[arg(long, env = "SLUICE_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic.
    #[arg(long, default_value = "sluice-bench")]
    topic: String,
    /// Extra librdkafka property for every client, KEY=VALUE (repeatable).
    #[arg(short = 'X', long = "client-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    client_config: Vec<(String, String)>,
}

/// `compression.type` of the producers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// What the producers send.
#[derive(Debug, Args)]
struct ProducerArgs {
    /// Value size of each record (at least 16 bytes for e2e: the send time is stamped in).
    #[arg(long, default_value = "1KiB", value_parser = parse_size)]
    record_size: u64,
    /// Keys: none, round-robin:N (record i gets key i mod N) or random:N.
    #[arg(long, default_value = "none")]
    keys: KeyDist,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Producers, each its own client (connections) and thread.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: String,
    /// batch.size of the producers, bytes.
    #[arg(long, default_value = "1000000", value_parser = parse_size)]
    batch_size: u64,
    /// linger.ms of the producers.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// compression.type of the producers.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Total records per second over all producers, open-loop: every record has a fixed
    /// intended send time and its latency counts from it (default: as fast as possible).
    #[arg(long, value_name = "RECORDS_PER_SEC")]
    rate: Option<f64>,
}

/// How the consumers read.
#[derive(Debug, Args)]
struct ConsumerArgs {
    /// Consumers, each its own client (connections) and thread.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Subscribe in this consumer group instead of assigning partitions directly; given
    /// without a name, a fresh group is made up.
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "")]
    group: Option<String>,
}

/// How long a load run lasts and what it reports.
#[derive(Debug, Args)]
struct RunArgs {
    /// Measured records (sent by produce and e2e, read by consume); 1000000 unless
    /// --duration is given.
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Run this long after the warmup (seconds, or with a unit: 500ms, 30s, 2m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Leading time whose records are not counted (seconds or with a unit).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    warmup: Duration,
    /// Appended to the result names (produce.LABEL).
    #[arg(long)]
    label: Option<String>,
    /// Consumers stop after this long without a record (seconds or with a unit).
    #[arg(long, default_value = "10", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// No progress line each second on stderr.
    #[arg(long)]
    no_progress: bool,
}

/// Where the latency histogram goes.
#[derive(Debug, Args)]
struct HdrArgs {
    /// Write the latency histogram to FILE (e2e: the end-to-end one; the ack one goes to
    /// FILE with `.ack` before its extension).
    #[arg(long, value_name = "FILE")]
    hdr_out: Option<PathBuf>,
    /// Format of --hdr-out: percentile-distribution text (ms) or HdrHistogram V2 binary (ns).
    #[arg(long, value_enum, default_value_t = HdrFormat::Percentiles)]
    hdr_format: HdrFormat,
}

#[derive(Debug, Args)]
struct ProduceArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    producer: ProducerArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    hdr: HdrArgs,
}

/// Where `consume` starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FromArg {
    Beginning,
    End,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    /// Start at the beginning of each partition, or at its end (only new records).
    #[arg(long, value_enum, default_value_t = FromArg::Beginning)]
    from: FromArg,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct E2eArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    producer: ProducerArgs,
    #[command(flatten)]
    consumer: ConsumerArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    hdr: HdrArgs,
}

#[derive(Debug, Args)]
struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9093")]
    listen: String,
    /// Partitions of every topic it reports.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Stop after this long (seconds or with a unit; default: run until killed).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

#[derive(Debug, Args)]
struct NetArgs {
    /// How long to stream (seconds or with a unit).
    #[arg(long, default_value = "2", value_parser = parse_duration)]
    duration: Duration,
    /// Size of each write and read.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    chunk_size: u64,
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

/// `KEY=VALUE` of `-X`.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `--acks`: `0`, `1`, `all` (or its alias `-1`).
fn parse_acks(s: &str) -> Result<String, String> {
    match s {
        "0" | "1" | "all" => Ok(s.to_string()),
        "-1" => Ok("all".to_string()),
        _ => Err(format!("expected 0, 1 or all, got {s:?}")),
    }
}

/// A duration: seconds (`10`, `2.5`) or a number with `ms`, `s` or `m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected seconds (10, 2.5) or 500ms / 30s / 2m, got {s:?}"))?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("expected a non-negative duration, got {s:?}"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// What a subcommand produced: result lines, how to show them to humans, and latency
/// histograms to write.
struct Output {
    results: Vec<ResultLine>,
    /// Printed after the results in human mode.
    summary: Option<String>,
    /// Show the results as one table (load commands) instead of blocks.
    table: bool,
}

impl From<Vec<ResultLine>> for Output {
    fn from(results: Vec<ResultLine>) -> Self {
        Self {
            results,
            summary: None,
            table: false,
        }
    }
}

fn execute(cli: &Cli) -> anyhow::Result<Output> {
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
                table: false,
            })
        }
        Command::Limits(a) => {
            let opts = DiskOptions {
                size: a.disk_size,
                queue_depth: a.queue_depth,
                cpu: cli.cpu.0,
                ..DiskOptions::default()
            };
            anyhow::ensure!(
                a.tcp_seconds.is_finite() && a.tcp_seconds > 0.0,
                "--tcp-seconds must be positive"
            );
            let mut results = measure_disk(&a.dir, &opts)?.results();
            results.push(loopback_tcp(Duration::from_secs_f64(a.tcp_seconds))?);
            results.push(cores());
            let summary = Some(summary(&results));
            Ok(Output {
                results,
                summary,
                table: false,
            })
        }
        Command::Net(a) => {
            anyhow::ensure!(!a.duration.is_zero(), "--duration must be positive");
            let chunk = usize::try_from(a.chunk_size)?;
            Ok(vec![loopback_tcp_with(a.duration, chunk)?].into())
        }
        Command::Sink(a) => Ok(vec![crate::sink::run(&a.listen, a.partitions, a.duration)?].into()),
        Command::Produce(a) => {
            let mut options = load_options(&a.conn, &a.run);
            options.producer = Some(producer_spec(&a.producer)?);
            run_load(&options, Some(&a.hdr))
        }
        Command::Consume(a) => {
            let mut options = load_options(&a.conn, &a.run);
            options.consumer = Some(consumer_spec(
                &a.consumer,
                match a.from {
                    FromArg::Beginning => StartAt::Beginning,
                    FromArg::End => StartAt::End,
                },
            ));
            run_load(&options, None)
        }
        Command::E2e(a) => {
            let mut options = load_options(&a.conn, &a.run);
            options.producer = Some(producer_spec(&a.producer)?);
            options.consumer = Some(consumer_spec(&a.consumer, StartAt::End));
            run_load(&options, Some(&a.hdr))
        }
    }
}

fn load_options(conn: &ConnArgs, run: &RunArgs) -> LoadOptions {
    let mut options = LoadOptions::new(&conn.brokers, &conn.topic);
    options.client_config.clone_from(&conn.client_config);
    options.limit = match (run.count, run.duration) {
        (_, Some(d)) => Limit::Duration(d),
        (Some(n), None) => Limit::Count(n),
        (None, None) => Limit::Count(1_000_000),
    };
    options.warmup = run.warmup;
    options.label.clone_from(&run.label);
    options.idle_timeout = run.idle_timeout;
    options.progress = !run.no_progress;
    options
}

fn producer_spec(a: &ProducerArgs) -> anyhow::Result<ProducerSpec> {
    Ok(ProducerSpec {
        producers: a.producers,
        record_size: usize::try_from(a.record_size)?,
        keys: a.keys,
        partitions: a.partitions,
        acks: a.acks.clone(),
        batch_size: u32::try_from(a.batch_size)
            .map_err(|_| anyhow::anyhow!("--batch-size must be below 4GiB"))?,
        linger_ms: a.linger_ms,
        compression: a.compression.as_str().to_string(),
        rate: a.rate,
    })
}

fn consumer_spec(a: &ConsumerArgs, start: StartAt) -> ConsumerSpec {
    let group = a.group.as_ref().map(|g| {
        if g.is_empty() {
            fresh_group()
        } else {
            g.clone()
        }
    });
    ConsumerSpec {
        consumers: a.consumers,
        group,
        start,
    }
}

/// A consumer group name no other run uses.
fn fresh_group() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("sluice-bench-{}-{nanos}", std::process::id())
}

fn run_load(options: &LoadOptions, hdr_args: Option<&HdrArgs>) -> anyhow::Result<Output> {
    let report = load::run(options)?;
    if let Some(HdrArgs {
        hdr_out: Some(path),
        hdr_format,
    }) = hdr_args
    {
        match (&report.e2e, &report.ack) {
            (Some(e2e), ack) => {
                hdr::write_file(e2e.histogram(), path, *hdr_format)?;
                if let Some(ack) = ack {
                    hdr::write_file(ack.histogram(), &with_infix(path, "ack"), *hdr_format)?;
                }
            }
            (None, Some(ack)) => hdr::write_file(ack.histogram(), path, *hdr_format)?,
            (None, None) => {}
        }
    }
    let notes = report
        .results
        .iter()
        .map(|r| {
            let extras: Vec<String> = r
                .extra
                .iter()
                .map(|(k, v)| format!("{k}={}", trim_number(*v)))
                .chain(r.tags.iter().map(|(k, v)| format!("{k}={v}")))
                .collect();
            format!(
                "{}: {} records, {:.1} MB in {:.3} s; {}\n",
                r.name,
                r.ops,
                r.bytes as f64 / crate::report::MB,
                r.duration_s,
                extras.join(" ")
            )
        })
        .collect::<String>();
    Ok(Output {
        results: report.results,
        summary: Some(notes),
        table: true,
    })
}

/// `12.0` → `12`, `1.23456` → `1.235`.
fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `lat.hgrm` + `ack` → `lat.ack.hgrm`; `lat` + `ack` → `lat.ack`.
fn with_infix(path: &Path, infix: &str) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{infix}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{infix}"),
    };
    path.with_file_name(name)
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

fn write_output(cli: &Cli, output: &Output, out: &mut dyn Write) -> anyhow::Result<()> {
    if cli.json {
        write_results(out, &output.results, true)?;
    } else if output.table {
        write!(out, "{}", format_table(&output.results))?;
        if let Some(summary) = &output.summary {
            write!(out, "\n{summary}")?;
        }
    } else {
        write_results(out, &output.results, false)?;
        if let Some(summary) = &output.summary {
            write!(out, "{summary}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Parses `args` (the program name first) and runs the subcommand, writing its results to
/// `out`.
///
/// # Errors
/// Invalid arguments (with clap's message), or the subcommand failed.
pub fn run_args<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let output = execute(&cli)?;
    write_output(&cli, &output, out)
}

/// The binary's entry point: parses the process arguments (exiting with clap's message on
/// bad ones), runs, prints results to stdout and errors to stderr, and returns the exit
/// code.
pub fn main_with_env() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result =
        execute(&cli).and_then(|output| write_output(&cli, &output, &mut std::io::stdout().lock()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not `{e:?}`: that appends a backtrace whenever RUST_BACKTRACE is set.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
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

    fn parse(args: &[&str]) -> anyhow::Result<Cli> {
        Ok(Cli::try_parse_from(
            std::iter::once("sluice-bench").chain(args.iter().copied()),
        )?)
    }

    #[test]
    fn produce_args_map_to_load_options() -> anyhow::Result<()> {
        let cli = parse(&[
            "produce",
            "--brokers",
            "h:1",
            "--topic",
            "t",
            "--record-size",
            "512",
            "--keys",
            "random:100",
            "--partitions",
            "3",
            "--producers",
            "4",
            "--acks",
            "-1",
            "--batch-size",
            "64KiB",
            "--linger-ms",
            "2",
            "--compression",
            "zstd",
            "--rate",
            "50000",
            "--duration",
            "30s",
            "--warmup",
            "500ms",
            "-X",
            "socket.nagle.disable=true",
            "--client-config",
            "client.id=x=y",
            "--hdr-out",
            "/tmp/h.hgrm",
            "--hdr-format",
            "v2",
            "--json",
        ])?;
        assert!(cli.json);
        let Command::Produce(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        let options = load_options(&a.conn, &a.run);
        assert_eq!(
            (options.brokers.as_str(), options.topic.as_str()),
            ("h:1", "t")
        );
        assert_eq!(options.limit, Limit::Duration(Duration::from_secs(30)));
        assert_eq!(options.warmup, Duration::from_millis(500));
        assert_eq!(
            options.client_config,
            [
                ("socket.nagle.disable".to_string(), "true".to_string()),
                ("client.id".to_string(), "x=y".to_string())
            ]
        );
        let spec = producer_spec(&a.producer)?;
        assert_eq!(spec.record_size, 512);
        assert_eq!(spec.keys, KeyDist::Random(100));
        assert_eq!((spec.partitions, spec.producers), (3, 4));
        assert_eq!(spec.acks, "all");
        assert_eq!((spec.batch_size, spec.linger_ms), (64 << 10, 2));
        assert_eq!(spec.compression, "zstd");
        assert_eq!(spec.rate, Some(50_000.0));
        assert_eq!(a.hdr.hdr_out.as_deref(), Some(Path::new("/tmp/h.hgrm")));
        assert_eq!(a.hdr.hdr_format, HdrFormat::V2);
        Ok(())
    }

    #[test]
    fn load_defaults() -> anyhow::Result<()> {
        let cli = parse(&["produce"])?;
        let Command::Produce(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        let options = load_options(&a.conn, &a.run);
        assert_eq!(options.limit, Limit::Count(1_000_000));
        assert_eq!(options.warmup, Duration::ZERO);
        assert!(options.progress);
        let spec = producer_spec(&a.producer)?;
        assert_eq!((spec.record_size, spec.acks.as_str()), (1024, "all"));
        assert_eq!(
            (spec.keys, spec.rate, spec.producers),
            (KeyDist::None, None, 1)
        );
        assert_eq!(a.hdr.hdr_format, HdrFormat::Percentiles);

        let cli = parse(&[
            "consume",
            "--count",
            "5",
            "--consumers",
            "2",
            "--no-progress",
        ])?;
        let Command::Consume(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        assert_eq!(a.from, FromArg::Beginning);
        let options = load_options(&a.conn, &a.run);
        assert_eq!(options.limit, Limit::Count(5));
        assert!(!options.progress);
        let spec = consumer_spec(&a.consumer, StartAt::Beginning);
        assert_eq!((spec.consumers, spec.group), (2, None));
        Ok(())
    }

    #[test]
    fn group_flag_names_or_makes_up_a_group() -> anyhow::Result<()> {
        for (args, named) in [
            (vec!["e2e", "--group", "g1"], Some("g1")),
            (vec!["e2e", "--group"], None),
        ] {
            let cli = parse(&args)?;
            let Command::E2e(a) = &cli.command else {
                anyhow::bail!("parsed as {:?}", cli.command);
            };
            let group = consumer_spec(&a.consumer, StartAt::End).group;
            match named {
                Some(name) => assert_eq!(group.as_deref(), Some(name)),
                None => assert!(group.is_some_and(|g| g.starts_with("sluice-bench-"))),
            }
        }
        Ok(())
    }

    #[test]
    fn bad_load_args_are_rejected() {
        for args in [
            vec!["produce", "--acks", "2"],
            vec!["produce", "--keys", "hash:4"],
            vec!["produce", "--keys", "random:0"],
            vec!["produce", "--compression", "brotli"],
            vec!["produce", "--count", "5", "--duration", "5"],
            vec!["produce", "--duration", "-1"],
            vec!["produce", "--warmup", "soon"],
            vec!["produce", "-X", "novalue"],
            vec!["produce", "--record-size", "1XB"],
            vec!["consume", "--from", "middle"],
            vec!["consume", "--rate", "5"],
            vec!["net", "--chunk-size", "big"],
        ] {
            assert!(parse(&args).is_err(), "{args:?} should not parse");
        }
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("inf").is_err());
    }

    #[test]
    fn net_args_parse() -> anyhow::Result<()> {
        let cli = parse(&["net", "--duration", "1", "--chunk-size", "256KiB"])?;
        let Command::Net(a) = &cli.command else {
            anyhow::bail!("parsed as {:?}", cli.command);
        };
        assert_eq!(
            (a.duration, a.chunk_size),
            (Duration::from_secs(1), 256 << 10)
        );
        Ok(())
    }

    #[test]
    fn net_json_output_is_one_object_per_line() -> anyhow::Result<()> {
        let mut out = Vec::new();
        run_args(
            [
                "sluice-bench",
                "--json",
                "net",
                "--duration",
                "50ms",
                "--chunk-size",
                "64KiB",
            ],
            &mut out,
        )?;
        let text = String::from_utf8(out)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0])?;
        assert_eq!(v["name"], "net.loopback_tcp");
        assert!(v["mb_per_s"].as_f64().unwrap_or(0.0) > 0.0);
        assert_eq!(v["chunk_bytes"], 65536.0);
        Ok(())
    }

    #[test]
    fn hdr_sibling_names() {
        assert_eq!(
            with_infix(Path::new("/t/lat.hgrm"), "ack"),
            Path::new("/t/lat.ack.hgrm")
        );
        assert_eq!(with_infix(Path::new("lat"), "ack"), Path::new("lat.ack"));
    }
}
