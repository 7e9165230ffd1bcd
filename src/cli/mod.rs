//! The command line: `sluice serve` and `sluice log inspect` run the broker and its storage
//! tools; `sluice topic|produce|consume|cluster|group` are an admin client (like rpk or kcat) that
//! talks the Kafka protocol, so it works against any Kafka broker; `sluice completion`
//! prints a shell completion script.
//!
//! The client commands use librdkafka (the `rdkafka` crate) for everything it exposes, and a
//! small blocking client of our own ([`wire`]) for the two requests it does not
//! (ApiVersions and IncrementalAlterConfigs). Every network operation is bounded by
//! `--timeout`, so an unreachable broker is a one-line error, not librdkafka's endless
//! retries.

pub mod client;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod produce;
pub mod topic;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::ServeFlags;

/// `sluice`: the broker, its storage tools and a Kafka admin client.
#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible streaming broker, and a client for any Kafka broker",
    after_help = "Client commands (topic, produce, consume, cluster, group) connect to --brokers \
                  (env SLUICE_BROKERS, default 127.0.0.1:9092). Exit status: 0 on success, \
                  1 when an operation failed, 2 on a usage error."
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the broker (data in ./data, Kafka protocol on port 9092 by default).
    Serve(ServeFlags),
    /// Storage engine tools.
    #[command(subcommand)]
    Log(LogCommand),
    /// Creates, lists, describes, reconfigures and deletes topics.
    Topic(TopicArgs),
    /// Produces lines from standard input, one record per line.
    Produce(ProduceArgs),
    /// Consumes records and prints them (each value on its own line by default).
    Consume(ConsumeArgs),
    /// Shows the cluster: brokers, controller, cluster id, supported API versions.
    Cluster(ClusterArgs),
    /// Lists, describes (members, committed offsets, lag), deletes consumer groups and
    /// resets their offsets.
    Group(GroupArgs),
    /// Prints a shell completion script: `source <(sluice completion bash)`.
    Completion(CompletionArgs),
}

/// `sluice log …`.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Opens a partition log directory (recovering it if needed) and prints its offsets,
    /// segments and the recovery report.
    Inspect {
        /// The partition directory.
        dir: PathBuf,
    },
}

/// Connection options shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Bootstrap brokers, comma-separated.
    #[arg(
        long,
        short = 'b',
        env = "SLUICE_BROKERS",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT,...",
        global = true
    )]
    pub brokers: String,
    /// Time limit of each operation with the brokers (connecting, metadata, admin
    /// requests, a record's delivery): 500ms, 10s, 1m, or seconds.
    #[arg(
        long,
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION",
        global = true
    )]
    pub timeout: Duration,
}

/// `sluice topic …`.
#[derive(Args, Debug)]
pub struct TopicArgs {
    /// Connection options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The topic command.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The topic commands.
#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Creates a topic (CreateTopics).
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions [default: the broker's].
        #[arg(short = 'p', long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replication factor [default: the broker's].
        #[arg(short = 'r', long, value_parser = clap::value_parser!(i32).range(1..))]
        replicas: Option<i32>,
        /// A topic config, as key=value (repeatable): -c retention.ms=86400000.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Asks the broker to validate the request without creating the topic.
        #[arg(long)]
        validate_only: bool,
    },
    /// Lists topics with their partition counts and replication factors (internal topics
    /// such as `__consumer_offsets` only with `--internal`).
    List {
        /// Also list internal topics (names starting with `__`).
        #[arg(long, short = 'i')]
        internal: bool,
    },
    /// Shows a topic's partitions (leader, replicas, ISR, log start and end offsets) and its
    /// configs with their sources.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Sets or removes topic configs (IncrementalAlterConfigs).
    #[command(group(clap::ArgGroup::new("changes").required(true).multiple(true).args(["set", "delete"])))]
    AlterConfig {
        /// Topic name.
        name: String,
        /// Sets a config, as key=value (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Removes a config override: back to the broker's default (repeatable).
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
        /// Asks the broker to validate the change without applying it.
        #[arg(long)]
        validate_only: bool,
    },
    /// Raises a topic's partition count (CreatePartitions).
    AddPartitions {
        /// Topic name.
        name: String,
        /// The new total number of partitions.
        #[arg(short = 'p', long, value_name = "TOTAL", value_parser = clap::value_parser!(u32).range(1..))]
        partitions: u32,
    },
    /// Deletes topics (DeleteTopics).
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Compression codecs of `sluice produce`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    #[must_use]
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// `sluice produce TOPIC`.
#[derive(Args, Debug)]
#[command(
    after_help = "Reads standard input to its end (or Ctrl-C), then waits for every \
                        delivery. Exits 1 if any record was not delivered."
)]
pub struct ProduceArgs {
    /// Connection options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic to produce to.
    pub topic: String,
    /// Splits each line into key and value at the first SEP (no SEP: no key).
    #[arg(short = 'k', long, value_name = "SEP", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub key_delimiter: Option<String>,
    /// A header added to every record, as key=value (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Acknowledgements to wait for.
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all"])]
    pub acks: String,
    /// Partition to produce to [default: murmur2 of the key, as the Java client; random
    /// for records without a key].
    #[arg(short = 'p', long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Compression codec.
    #[arg(short = 'z', long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
}

/// Where `sluice consume` starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start of each partition.
    Beginning,
    /// The end: only records produced from now on.
    End,
    /// This offset in each partition.
    At(i64),
    /// This many records before the end of each partition.
    Tail(i64),
    /// The first record with a timestamp at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// `sluice consume TOPIC`.
#[derive(Args, Debug)]
#[command(
    after_help = "FORMAT tokens (-f): %t topic, %p partition, %o offset, %k key, \
                        %K key size, %s value, %S value size, %T timestamp (ms), %h headers \
                        (k=v,k2=v2), %% a percent sign; escapes \\n \\t \\r \\\\. Sizes are -1 \
                        for a null key or value.\n\nRuns until -n records were read, -e \
                        reached the end of every partition, or Ctrl-C."
)]
pub struct ConsumeArgs {
    /// Connection options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Topic to consume.
    pub topic: String,
    /// Where to start: beginning, end, OFFSET, -N (N before the end), or @TIMESTAMP_MS
    /// (the first record at or after that time). With -g, where the group starts when it
    /// has no committed offset (beginning or end).
    #[arg(short = 'o', long, default_value = "beginning", value_parser = parse_start_offset, allow_hyphen_values = true)]
    pub offset: StartOffset,
    /// Partition to read (repeatable) [default: all].
    #[arg(short = 'p', long = "partition", value_parser = clap::value_parser!(i32).range(0..), conflicts_with = "group")]
    pub partitions: Vec<i32>,
    /// Exits after COUNT records.
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub count: Option<u64>,
    /// Exits when the end of every partition is reached.
    #[arg(short = 'e', long = "exit")]
    pub exit_at_end: bool,
    /// Joins consumer group GROUP (subscribe, committed offsets) instead of reading the
    /// partitions directly.
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Prints each record with FORMAT (see below) instead of its value and a newline.
    #[arg(short = 'f', long, value_parser = consume::Format::parse, conflicts_with = "json")]
    pub format: Option<consume::Format>,
    /// Prints each record as one JSON object per line (key, value and header values as
    /// strings when UTF-8, else as {"base64": …}).
    #[arg(long)]
    pub json: bool,
}

/// `sluice cluster …`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Connection options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The cluster command.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster commands.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers (id, host:port, rack), controller id, cluster id, and the API versions the
    /// first reachable bootstrap broker supports (ApiVersions).
    Info,
}

/// `sluice group …`.
#[derive(Args, Debug)]
pub struct GroupArgs {
    /// Connection options.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The group command.
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The group commands.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Lists the groups with their states and protocol types (ListGroups).
    List,
    /// Shows a group's state, members and their partitions, and per partition its committed
    /// offset, log end offset and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Deletes groups without members, with their committed offsets (DeleteGroups).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Sets a group's committed offsets of a topic (the group must have no members).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
    ResetOffsets {
        /// Group id.
        group: String,
        /// The topic whose offsets are reset.
        #[arg(short = 't', long)]
        topic: String,
        /// Only this partition (repeatable) [default: all].
        #[arg(short = 'p', long = "partition", value_parser = clap::value_parser!(i32).range(0..))]
        partitions: Vec<i32>,
        /// To the log start offset of each partition.
        #[arg(long)]
        to_earliest: bool,
        /// To the log end offset of each partition.
        #[arg(long)]
        to_latest: bool,
        /// To this offset (clamped to each partition's log start and end).
        #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
        to_offset: Option<i64>,
        /// Prints the new offsets without committing them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `sluice completion SHELL`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `shell` to standard output.
pub fn completion(args: &CompletionArgs) {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut command, "sluice", &mut std::io::stdout());
}

/// Parses `key=value` (split at the first `=`; the key must not be empty).
///
/// # Errors
/// No `=`, or an empty key.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Parses a duration: `500ms`, `10s`, `2m`, or a number of seconds (`1.5`).
///
/// # Errors
/// Anything else, and zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (examples: 500ms, 10s, 1m)"))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("invalid duration unit in {text:?} (ms, s, m or h)")),
    };
    let duration = Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())?;
    if duration < Duration::from_millis(1) {
        return Err("the duration must be at least 1ms".to_string());
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses `-o`: `beginning`, `end`, `OFFSET`, `-N`, `@TIMESTAMP_MS`.
///
/// # Errors
/// Anything else.
pub fn parse_start_offset(text: &str) -> Result<StartOffset, String> {
    let invalid =
        || format!("invalid offset {text:?}: expected beginning, end, OFFSET, -N or @TIMESTAMP_MS");
    match text {
        "beginning" | "earliest" => Ok(StartOffset::Beginning),
        "end" | "latest" => Ok(StartOffset::End),
        _ => {
            if let Some(timestamp) = text.strip_prefix('@') {
                let timestamp: i64 = timestamp.parse().map_err(|_| invalid())?;
                if timestamp < 0 {
                    return Err(invalid());
                }
                Ok(StartOffset::Timestamp(timestamp))
            } else if let Some(count) = text.strip_prefix('-') {
                let count: i64 = count.parse().map_err(|_| invalid())?;
                if count <= 0 {
                    return Err(invalid());
                }
                Ok(StartOffset::Tail(count))
            } else {
                text.parse().map(StartOffset::At).map_err(|_| invalid())
            }
        }
    }
}

/// Runs a client command (everything but `serve` and `log`).
///
/// # Errors
/// The operation failed; the message is one line.
pub fn run_client(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Topic(args) => topic::run(&args.client, args.command),
        Command::Produce(args) => produce::run(&args),
        Command::Consume(args) => consume::run(&args),
        Command::Cluster(args) => match args.command {
            ClusterCommand::Info => cluster::info(&args.client),
        },
        Command::Group(args) => group::run(&args.client, args.command),
        Command::Completion(args) => {
            completion(&args);
            Ok(())
        }
        Command::Serve(_) | Command::Log(_) => bail!("not a client command"),
    }
}

/// Registers SIGINT and SIGTERM to set the returned flag instead of killing the process, so
/// produce and consume can stop cleanly (flush, close the consumer). A second signal, while
/// the first is being handled, ends the process at once (status 130).
///
/// # Errors
/// The handlers could not be installed.
pub fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // In this order: the first signal sets the flag; the next one finds it set.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Writes `text` to standard output. A closed pipe (`sluice topic list | head -1`) is not an
/// error: the reader has what it wanted.
///
/// # Errors
/// Any other write error.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(error).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

/// Lays out `rows` under `headers` in columns two spaces apart (the last column unpadded).
#[must_use]
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn start_offsets() {
        assert_eq!(parse_start_offset("beginning"), Ok(StartOffset::Beginning));
        assert_eq!(parse_start_offset("end"), Ok(StartOffset::End));
        assert_eq!(parse_start_offset("42"), Ok(StartOffset::At(42)));
        assert_eq!(parse_start_offset("-3"), Ok(StartOffset::Tail(3)));
        assert_eq!(
            parse_start_offset("@1700000000000"),
            Ok(StartOffset::Timestamp(1_700_000_000_000))
        );
        assert!(parse_start_offset("-0").is_err());
        assert!(parse_start_offset("@-1").is_err());
        assert!(parse_start_offset("middle").is_err());
    }

    #[test]
    fn tables() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string(), "x".to_string()],
            vec!["long-name".to_string(), "22".to_string(), String::new()],
        ];
        assert_eq!(
            table(&["NAME", "N", "LAST"], &rows),
            "NAME       N   LAST\na          1   x\nlong-name  22\n"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
