//! Broker configuration: what `sluice serve` resolves from its file, flags and environment,
//! and the per-topic settings that map onto the engine's `LogConfig`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_engine::{FlushPolicy, LogConfig, TimestampType};

use crate::limits::REQUEST_SIZE_MAX_DEFAULT;

/// Settings of one broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` in metadata answers.
    pub node_id: i32,
    /// Data directory (one subdirectory per partition).
    pub data_dir: PathBuf,
    /// Where the Kafka listener binds.
    pub kafka_addr: SocketAddr,
    /// Where the admin HTTP listener (`/metrics`, `/health`) binds; `None`: no listener.
    pub admin_addr: Option<SocketAddr>,
    /// Host and port advertised to clients in metadata.
    pub advertised_host: String,
    /// Advertised port.
    pub advertised_port: u16,
    /// Shards (executors pinned one per core).
    pub cores: usize,
    /// `socket.request.max.bytes`.
    pub request_max_bytes: usize,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions` for auto-created topics.
    pub default_partitions: u32,
    /// Broker-level defaults for topic configs (`log.retention.ms` style keys are given here
    /// under their topic names, e.g. `retention.ms`).
    pub topic_defaults: BTreeMap<String, String>,
    /// Per-shard batch cache budget.
    pub cache_bytes_per_shard: usize,
    /// Send Fetch record data without copying (memory slices as they are, file ranges with
    /// sendfile). Off: copy it into the response buffer, reading files with pread — as a
    /// broker that re-encodes responses would; kept to measure what zero-copy is worth.
    pub fetch_zero_copy: bool,
    /// Cluster id in metadata answers.
    pub cluster_id: String,
    /// Group coordinator settings.
    pub groups: crate::group::coordinator::CoordinatorConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            data_dir: PathBuf::from("./data"),
            kafka_addr: SocketAddr::from(([0, 0, 0, 0], 9092)),
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9644))),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            request_max_bytes: REQUEST_SIZE_MAX_DEFAULT,
            auto_create_topics: true,
            default_partitions: 1,
            topic_defaults: BTreeMap::new(),
            cache_bytes_per_shard: 64 << 20,
            fetch_zero_copy: true,
            cluster_id: "sluice-cluster".to_string(),
            groups: crate::group::coordinator::CoordinatorConfig::default(),
        }
    }
}

/// Topic configuration keys the broker accepts, with their defaults (as Kafka names them).
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("retention.ms", "604800000"),
    ("retention.bytes", "-1"),
    ("segment.bytes", "1073741824"),
    ("segment.ms", "604800000"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("index.interval.bytes", "4096"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
];

/// Why a topic config is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for {key}: {reason}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

fn parse_number(key: &str, value: &str) -> Result<i64, ConfigError> {
    value.trim().parse::<i64>().map_err(|_| ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason: "not an integer".to_string(),
    })
}

/// Checks one topic config entry.
///
/// # Errors
/// Unknown keys and values of the wrong type or range.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let error = |reason: &str| ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match key {
        "cleanup.policy" => match value {
            "delete" | "compact" | "compact,delete" | "delete,compact" => Ok(()),
            _ => Err(error("must be delete, compact or both")),
        },
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(error("must be CreateTime or LogAppendTime")),
        },
        "retention.ms" | "retention.bytes" => (parse_number(key, value)? >= -1)
            .then_some(())
            .ok_or_else(|| error("must be -1 or more")),
        "segment.bytes" => {
            let bytes = parse_number(key, value)?;
            (sluice_engine::limits::SEGMENT_SIZE_MIN as i64..=i64::from(i32::MAX))
                .contains(&bytes)
                .then_some(())
                .ok_or_else(|| error("out of range"))
        }
        "max.message.bytes" => {
            let bytes = parse_number(key, value)?;
            (1..=sluice_engine::limits::BATCH_SIZE_MAX as i64)
                .contains(&bytes)
                .then_some(())
                .ok_or_else(|| error("out of range"))
        }
        "segment.ms" | "index.interval.bytes" | "flush.messages" | "flush.ms" => {
            (parse_number(key, value)? > 0)
                .then_some(())
                .ok_or_else(|| error("must be positive"))
        }
        _ => Err(error("unknown topic config")),
    }
}

/// The effective value of `key` for a topic: its own config, else the broker default, else
/// Kafka's default.
#[must_use]
pub fn effective<'a>(
    key: &str,
    topic: &'a BTreeMap<String, String>,
    broker: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    topic
        .get(key)
        .or_else(|| broker.get(key))
        .map(String::as_str)
        .or_else(|| {
            TOPIC_CONFIG_KEYS
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, default)| *default)
        })
}

/// Builds the engine configuration of a topic's partitions.
#[must_use]
pub fn log_config(
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> LogConfig {
    let number =
        |key: &str| effective(key, topic, broker).and_then(|value| value.parse::<i64>().ok());
    let positive_duration = |key: &str| {
        number(key)
            .filter(|&ms| ms > 0)
            .map(|ms| Duration::from_millis(ms as u64))
    };
    let mut config = LogConfig::default();
    if let Some(bytes) = number("segment.bytes") {
        config.segment_bytes = bytes as u64;
    }
    config.segment_ms = positive_duration("segment.ms");
    // Retention deletes segments only under the `delete` policy: a compact-only topic
    // (such as `__consumer_offsets`) keeps every segment, as Kafka does (compaction itself
    // is not implemented yet, so such a topic grows).
    let deletes = effective("cleanup.policy", topic, broker)
        .is_none_or(|policy| policy.split(',').any(|p| p.trim() == "delete"));
    if deletes {
        config.retention_ms = positive_duration("retention.ms");
        config.retention_bytes = number("retention.bytes")
            .filter(|&bytes| bytes >= 0)
            .map(|bytes| bytes as u64);
    } else {
        config.retention_ms = None;
        config.retention_bytes = None;
    }
    if let Some(bytes) = number("max.message.bytes") {
        config.max_batch_bytes = bytes as usize;
    }
    if let Some(bytes) = number("index.interval.bytes") {
        config.index_interval_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
    }
    if effective("message.timestamp.type", topic, broker) == Some("LogAppendTime") {
        config.timestamp_type = TimestampType::LogAppendTime;
    }
    // Kafka's flush.ms / flush.messages default to "never"; Sluice defaults to group
    // commit (every acknowledged batch is fdatasynced). Setting either turns on interval
    // flushing with that bound.
    let flush_ms = number("flush.ms").filter(|&ms| ms < i64::MAX);
    let flush_messages = number("flush.messages").filter(|&count| count < i64::MAX);
    if flush_ms.is_some() || flush_messages.is_some() {
        config.flush_policy = FlushPolicy::Interval {
            interval: Duration::from_millis(flush_ms.unwrap_or(1000) as u64),
            // Bytes, not messages: the engine does not count records; 1 KiB per message.
            bytes: flush_messages.map_or(u64::MAX, |count| (count as u64).saturating_mul(1024)),
        };
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_configs_map_onto_the_engine() {
        let mut topic = BTreeMap::new();
        topic.insert("retention.ms".to_string(), "1000".to_string());
        topic.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let mut broker = BTreeMap::new();
        broker.insert("segment.bytes".to_string(), "1048576".to_string());
        let config = log_config(&topic, &broker);
        assert_eq!(config.retention_ms, Some(Duration::from_secs(1)));
        assert_eq!(config.segment_bytes, 1 << 20);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.flush_policy, FlushPolicy::GroupCommit);
        assert_eq!(config.retention_bytes, None);
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
    }

    #[test]
    fn compact_only_topics_are_never_trimmed_by_retention() {
        let mut topic = BTreeMap::new();
        topic.insert("retention.ms".to_string(), "1000".to_string());
        topic.insert("retention.bytes".to_string(), "1000".to_string());
        topic.insert("cleanup.policy".to_string(), "compact".to_string());
        let config = log_config(&topic, &BTreeMap::new());
        assert_eq!((config.retention_ms, config.retention_bytes), (None, None));
        topic.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        let config = log_config(&topic, &BTreeMap::new());
        assert_eq!(config.retention_ms, Some(Duration::from_secs(1)));
        assert_eq!(config.retention_bytes, Some(1000));
    }
}
