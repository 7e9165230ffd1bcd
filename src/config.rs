//! `sluice serve` configuration: defaults, then a TOML file, then `SLUICE_*` environment
//! variables, then command-line flags — each later source overriding the earlier.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;
use sluice_net::config::{BrokerConfig, validate_topic_config};

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `data_dir = "./data"`
    pub data_dir: Option<PathBuf>,
    /// `kafka_addr = "0.0.0.0:9092"`
    pub kafka_addr: Option<String>,
    /// `admin_addr = "127.0.0.1:9644"` (or `"off"`)
    pub admin_addr: Option<String>,
    /// `advertise_kafka_addr = "broker1.example:9092"`
    pub advertise_kafka_addr: Option<String>,
    /// `cores = 4`
    pub cores: Option<usize>,
    /// `node_id = 0`
    pub node_id: Option<i32>,
    /// `auto_create_topics = true` (`auto.create.topics.enable`)
    pub auto_create_topics: Option<bool>,
    /// `num_partitions = 1` (for auto-created topics)
    pub num_partitions: Option<u32>,
    /// `request_max_bytes = 104857600` (`socket.request.max.bytes`)
    pub request_max_bytes: Option<usize>,
    /// `cache_bytes_per_shard = 67108864`
    pub cache_bytes_per_shard: Option<usize>,
    /// `fetch_zero_copy = true` (false: copy fetch data, to measure what zero-copy is worth)
    pub fetch_zero_copy: Option<bool>,
    /// `group_initial_rebalance_delay_ms = 3000` (`group.initial.rebalance.delay.ms`)
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// `group_min_session_timeout_ms = 6000` (`group.min.session.timeout.ms`)
    pub group_min_session_timeout_ms: Option<i32>,
    /// `group_max_session_timeout_ms = 1800000` (`group.max.session.timeout.ms`)
    pub group_max_session_timeout_ms: Option<i32>,
    /// `offsets_topic_num_partitions = 16` (`offsets.topic.num.partitions`)
    pub offsets_topic_num_partitions: Option<i32>,
    /// `offsets_retention_minutes = 10080` (`offsets.retention.minutes`)
    pub offsets_retention_minutes: Option<i64>,
    /// Broker-wide topic config defaults: `[topic_defaults] "retention.ms" = "86400000"`.
    pub topic_defaults: Option<BTreeMap<String, String>>,
}

/// Flags of `sluice serve` (all optional; `None` keeps the earlier source's value).
#[derive(Debug, Default, clap::Args)]
pub struct ServeFlags {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener address [default: 0.0.0.0:9092].
    #[arg(long, env = "SLUICE_KAFKA_ADDR")]
    pub kafka_addr: Option<String>,
    /// Admin HTTP listener serving /metrics (Prometheus) and /health; `off` disables it
    /// [default: 127.0.0.1:9644].
    #[arg(long, env = "SLUICE_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
    /// Address advertised to clients [default: 127.0.0.1 and the listener's port].
    #[arg(long, env = "SLUICE_ADVERTISE_KAFKA_ADDR")]
    pub advertise_kafka_addr: Option<String>,
    /// Shards, one executor pinned per core [default: all cores].
    #[arg(long, env = "SLUICE_CORES")]
    pub cores: Option<usize>,
    /// Node id.
    #[arg(long, env = "SLUICE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Create unknown topics on metadata requests (auto.create.topics.enable).
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Send fetched records without copying (sendfile, memory slices); `false` copies
    /// them into each response, to measure what zero-copy is worth [default: true].
    #[arg(long, env = "SLUICE_FETCH_ZERO_COPY")]
    pub fetch_zero_copy: Option<bool>,
    /// Partitions of auto-created topics (num.partitions).
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    pub num_partitions: Option<u32>,
    /// How long the first rebalance of a new group waits for more members, in ms
    /// (group.initial.rebalance.delay.ms) [default: 3000].
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Smallest consumer session timeout accepted, in ms (group.min.session.timeout.ms)
    /// [default: 6000].
    #[arg(long, env = "SLUICE_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<i32>,
}

fn parse_addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .with_context(|| format!("resolving {text}"))?
        .next()
        .with_context(|| format!("{text} resolves to no address"))
}

fn split_host_port(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("{text} is not HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .with_context(|| format!("bad port in {text}"))?;
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    ))
}

/// Resolves the broker configuration from all sources.
///
/// # Errors
/// An unreadable or invalid file, or invalid values.
pub fn resolve(flags: &ServeFlags) -> anyhow::Result<BrokerConfig> {
    let file: FileConfig = match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut config = BrokerConfig::default();
    let mut advertised = None;
    if let Some(dir) = flags.data_dir.clone().or(file.data_dir) {
        config.data_dir = dir;
    }
    if let Some(addr) = flags.kafka_addr.as_deref().or(file.kafka_addr.as_deref()) {
        config.kafka_addr = parse_addr(addr)?;
    }
    if let Some(addr) = flags.admin_addr.as_deref().or(file.admin_addr.as_deref()) {
        config.admin_addr = match addr {
            "off" | "none" | "" => None,
            addr => Some(parse_addr(addr)?),
        };
    }
    if let Some(addr) = flags
        .advertise_kafka_addr
        .clone()
        .or(file.advertise_kafka_addr)
    {
        advertised = Some(split_host_port(&addr)?);
    }
    if let Some(cores) = flags.cores.or(file.cores) {
        if cores == 0 {
            bail!("cores must be at least 1");
        }
        config.cores = cores;
    }
    if let Some(node) = flags.node_id.or(file.node_id) {
        config.node_id = node;
    }
    if let Some(auto) = flags.auto_create_topics.or(file.auto_create_topics) {
        config.auto_create_topics = auto;
    }
    if let Some(partitions) = flags.num_partitions.or(file.num_partitions) {
        if partitions == 0 {
            bail!("num_partitions must be at least 1");
        }
        config.default_partitions = partitions;
    }
    if let Some(bytes) = file.request_max_bytes {
        config.request_max_bytes = bytes;
    }
    if let Some(bytes) = file.cache_bytes_per_shard {
        config.cache_bytes_per_shard = bytes;
    }
    if let Some(zero_copy) = flags.fetch_zero_copy.or(file.fetch_zero_copy) {
        config.fetch_zero_copy = zero_copy;
    }
    if let Some(delay) = flags
        .group_initial_rebalance_delay_ms
        .or(file.group_initial_rebalance_delay_ms)
    {
        config.groups.group.initial_rebalance_delay_ms = delay;
    }
    if let Some(ms) = flags
        .group_min_session_timeout_ms
        .or(file.group_min_session_timeout_ms)
    {
        config.groups.group.min_session_timeout_ms = ms;
    }
    if let Some(ms) = file.group_max_session_timeout_ms {
        config.groups.group.max_session_timeout_ms = ms;
    }
    if config.groups.group.min_session_timeout_ms > config.groups.group.max_session_timeout_ms {
        bail!("group_min_session_timeout_ms is above group_max_session_timeout_ms");
    }
    if let Some(partitions) = file.offsets_topic_num_partitions {
        if partitions < 1 {
            bail!("offsets_topic_num_partitions must be at least 1");
        }
        config.groups.offsets_partitions = partitions;
    }
    if let Some(minutes) = file.offsets_retention_minutes {
        if minutes < 1 {
            bail!("offsets_retention_minutes must be at least 1");
        }
        config.groups.offsets_retention_ms = minutes.saturating_mul(60_000);
    }
    for (key, value) in file.topic_defaults.unwrap_or_default() {
        validate_topic_config(&key, &value).with_context(|| "in [topic_defaults]".to_string())?;
        config.topic_defaults.insert(key, value);
    }
    let (host, port) = advertised.unwrap_or_else(|| {
        let host = if config.kafka_addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            config.kafka_addr.ip().to_string()
        };
        (host, config.kafka_addr.port())
    });
    config.advertised_host = host;
    config.advertised_port = port;
    Ok(config)
}
