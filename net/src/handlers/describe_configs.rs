//! DescribeConfigs v1–4, for topics and this broker.
//!
//! A topic reports every key of [`TOPIC_CONFIG_KEYS`] with its effective value and where
//! that value comes from: the topic's own override (`DYNAMIC_TOPIC_CONFIG`), the broker's
//! `[topic_defaults]` (`STATIC_BROKER_CONFIG`, under the broker's name for the key, e.g.
//! `log.retention.ms`), or Kafka's default (`DEFAULT_CONFIG`). With `include_synonyms` each
//! entry lists those sources in order of precedence, as Kafka does.
//!
//! The broker resource named by our node id reports the broker's settings, all read-only:
//! Sluice's broker configs are static (config file and flags). The empty name is Kafka's
//! cluster-wide dynamic default, which Sluice never has: it answers no entries, as Kafka does
//! when none are set. Another broker id is `INVALID_REQUEST`.
//!
//! The resource-type, config-source and config-type codes here are shared with the alter
//! handlers.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::{BrokerConfig, TOPIC_CONFIG_KEYS};
use crate::shard::Shard;

/// `ConfigResource.Type` codes.
pub(super) mod resource_type {
    /// A topic.
    pub const TOPIC: i8 = 2;
    /// A broker.
    pub const BROKER: i8 = 4;
}

/// `ConfigSource` codes (DescribeConfigs v1+).
pub(super) mod source {
    /// A topic-level override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// From the broker's config file or flags.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's built-in default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// `ConfigType` codes (DescribeConfigs v3+).
pub(super) mod config_type {
    /// true / false.
    pub const BOOLEAN: i8 = 1;
    /// Free text.
    pub const STRING: i8 = 2;
    /// 32-bit integer.
    pub const INT: i8 = 3;
    /// 64-bit integer.
    pub const LONG: i8 = 5;
    /// Comma-separated list.
    pub const LIST: i8 = 7;
}

/// Kafka's type and broker-level synonym for each topic config key.
const TOPIC_KEY_INFO: &[(&str, i8, &str)] = &[
    ("cleanup.policy", config_type::LIST, "log.cleanup.policy"),
    ("retention.ms", config_type::LONG, "log.retention.ms"),
    ("retention.bytes", config_type::LONG, "log.retention.bytes"),
    ("segment.bytes", config_type::INT, "log.segment.bytes"),
    ("segment.ms", config_type::LONG, "log.roll.ms"),
    ("max.message.bytes", config_type::INT, "message.max.bytes"),
    (
        "message.timestamp.type",
        config_type::STRING,
        "log.message.timestamp.type",
    ),
    (
        "index.interval.bytes",
        config_type::INT,
        "log.index.interval.bytes",
    ),
    (
        "flush.messages",
        config_type::LONG,
        "log.flush.interval.messages",
    ),
    ("flush.ms", config_type::LONG, "log.flush.interval.ms"),
];

/// The config type of a topic key (`STRING` for keys not in the table).
pub(super) fn topic_config_type(key: &str) -> i8 {
    TOPIC_KEY_INFO
        .iter()
        .find(|(name, _, _)| *name == key)
        .map_or(config_type::STRING, |(_, kind, _)| *kind)
}

/// The broker's name for a topic key (`log.retention.ms` for `retention.ms`).
fn broker_synonym(key: &str) -> String {
    TOPIC_KEY_INFO
        .iter()
        .find(|(name, _, _)| *name == key)
        .map_or_else(
            || format!("log.{key}"),
            |(_, _, broker)| (*broker).to_string(),
        )
}

/// One described config, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub config_type: i8,
    pub read_only: bool,
    /// `(name, value, source)`, highest precedence first; the first is the entry itself.
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

/// A topic's configs: every known key with its effective value, source and synonyms.
pub(super) fn topic_entries(
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    TOPIC_CONFIG_KEYS
        .iter()
        .map(|(key, default)| {
            let broker_name = broker_synonym(key);
            let mut synonyms = Vec::new();
            if let Some(value) = topic.get(*key) {
                synonyms.push((
                    (*key).to_string(),
                    Some(value.clone()),
                    source::DYNAMIC_TOPIC_CONFIG,
                ));
            }
            if let Some(value) = broker.get(*key) {
                synonyms.push((
                    broker_name.clone(),
                    Some(value.clone()),
                    source::STATIC_BROKER_CONFIG,
                ));
            }
            synonyms.push((
                broker_name,
                Some((*default).to_string()),
                source::DEFAULT_CONFIG,
            ));
            let (_, value, source) = synonyms[0].clone();
            ConfigEntry {
                name: (*key).to_string(),
                value,
                source,
                config_type: topic_config_type(key),
                read_only: false,
                synonyms,
            }
        })
        .collect()
}

/// The broker's settings, read-only. A setting equal to Sluice's built-in default is
/// reported as `DEFAULT_CONFIG`, anything else as `STATIC_BROKER_CONFIG`.
pub(super) fn broker_entries(config: &BrokerConfig) -> Vec<ConfigEntry> {
    let defaults = BrokerConfig::default();
    let entry = |name: &str, value: String, kind: i8, is_default: bool| {
        let source = if is_default {
            source::DEFAULT_CONFIG
        } else {
            source::STATIC_BROKER_CONFIG
        };
        ConfigEntry {
            name: name.to_string(),
            value: Some(value.clone()),
            source,
            config_type: kind,
            read_only: true,
            synonyms: vec![(name.to_string(), Some(value), source)],
        }
    };
    let listener = format!("PLAINTEXT://{}", config.kafka_addr);
    let advertised = format!(
        "PLAINTEXT://{}:{}",
        config.advertised_host, config.advertised_port
    );
    let mut entries = vec![
        entry(
            "node.id",
            config.node_id.to_string(),
            config_type::INT,
            false,
        ),
        entry(
            "broker.id",
            config.node_id.to_string(),
            config_type::INT,
            false,
        ),
        entry(
            "log.dirs",
            config.data_dir.display().to_string(),
            config_type::STRING,
            false,
        ),
        entry("listeners", listener, config_type::LIST, false),
        entry("advertised.listeners", advertised, config_type::LIST, false),
        entry(
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            config_type::BOOLEAN,
            config.auto_create_topics == defaults.auto_create_topics,
        ),
        entry(
            "num.partitions",
            config.default_partitions.to_string(),
            config_type::INT,
            config.default_partitions == defaults.default_partitions,
        ),
        entry(
            "socket.request.max.bytes",
            config.request_max_bytes.to_string(),
            config_type::INT,
            config.request_max_bytes == defaults.request_max_bytes,
        ),
        entry(
            "default.replication.factor",
            "1".into(),
            config_type::INT,
            true,
        ),
    ];
    for (key, default) in TOPIC_CONFIG_KEYS {
        let (value, is_default) = match config.topic_defaults.get(*key) {
            Some(value) => (value.clone(), false),
            None => ((*default).to_string(), true),
        };
        entries.push(entry(
            &broker_synonym(key),
            value,
            topic_config_type(key),
            is_default,
        ));
    }
    entries
}

/// Whether `name` (a broker resource name) is this broker: our node id or empty.
///
/// # Errors
/// `INVALID_REQUEST` with Kafka's message otherwise.
pub(super) fn check_broker_name(name: &str, node_id: i32) -> Result<(), (i16, String)> {
    if name.is_empty() {
        return Ok(());
    }
    match name.parse::<i32>() {
        Ok(id) if id == node_id => Ok(()),
        Ok(_) => Err((
            ResponseError::InvalidRequest.code(),
            format!(
                "Unexpected broker id, expected {node_id} or empty string, but received {name}"
            ),
        )),
        Err(_) => Err((
            ResponseError::InvalidRequest.code(),
            format!("Broker id must be an integer, but it is: {name}"),
        )),
    }
}

fn describe_resource(
    shard: &Shard,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, (i16, String)> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        resource_type::TOPIC => {
            crate::topics::validate_name(name)
                .map_err(|message| (ResponseError::InvalidTopicException.code(), message))?;
            let snapshot = shard.topics();
            let topic = snapshot.get(name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition.code(),
                    format!("topic {name} does not exist"),
                )
            })?;
            Ok(topic_entries(&topic.configs, &shard.config.topic_defaults))
        }
        resource_type::BROKER => {
            check_broker_name(name, shard.config.node_id)?;
            if name.is_empty() {
                // Kafka answers the cluster-wide dynamic defaults here; Sluice has none.
                return Ok(Vec::new());
            }
            Ok(broker_entries(&shard.config))
        }
        other => Err((
            ResponseError::InvalidRequest.code(),
            format!("unsupported resource type {other}"),
        )),
    }
}

/// Keeps the entries asked for: all when `keys` is null or empty (as Kafka does).
fn filter(entries: Vec<ConfigEntry>, keys: Option<&Vec<StrBytes>>) -> Vec<ConfigEntry> {
    match keys {
        Some(keys) if !keys.is_empty() => entries
            .into_iter()
            .filter(|entry| keys.iter().any(|key| key.as_str() == entry.name))
            .collect(),
        _ => entries,
    }
}

fn string(value: Option<String>) -> Option<StrBytes> {
    value.map(StrBytes::from_string)
}

fn encode_entry(
    entry: ConfigEntry,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(string(value))
                    .with_source(source)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(string(entry.value))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_documentation(None);
    if version >= 3 {
        result = result.with_config_type(entry.config_type);
    }
    result
}

pub(super) fn handle(
    shard: &Rc<Shard>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match describe_resource(shard, resource) {
                Ok(entries) => result
                    .with_error_code(0)
                    .with_error_message(None)
                    .with_configs(
                        filter(entries, resource.configuration_keys.as_ref())
                            .into_iter()
                            .map(|entry| encode_entry(entry, request.include_synonyms, version))
                            .collect(),
                    ),
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn find<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn topic_sources_follow_precedence() {
        let topic = map(&[("retention.ms", "1000")]);
        let broker = map(&[("retention.ms", "2000"), ("segment.bytes", "1048576")]);
        let entries = topic_entries(&topic, &broker);
        assert_eq!(entries.len(), TOPIC_CONFIG_KEYS.len());

        let retention = find(&entries, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(retention.source, source::DYNAMIC_TOPIC_CONFIG);
        assert_eq!(retention.config_type, config_type::LONG);
        assert_eq!(
            retention
                .synonyms
                .iter()
                .map(|(name, value, source)| (name.as_str(), value.as_deref(), *source))
                .collect::<Vec<_>>(),
            vec![
                ("retention.ms", Some("1000"), source::DYNAMIC_TOPIC_CONFIG),
                (
                    "log.retention.ms",
                    Some("2000"),
                    source::STATIC_BROKER_CONFIG
                ),
                (
                    "log.retention.ms",
                    Some("604800000"),
                    source::DEFAULT_CONFIG
                ),
            ]
        );

        let segment = find(&entries, "segment.bytes");
        assert_eq!(segment.value.as_deref(), Some("1048576"));
        assert_eq!(segment.source, source::STATIC_BROKER_CONFIG);
        assert_eq!(segment.synonyms.len(), 2);

        let policy = find(&entries, "cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_eq!(policy.source, source::DEFAULT_CONFIG);
        assert_eq!(policy.config_type, config_type::LIST);
        assert!(entries.iter().all(|entry| !entry.read_only));
    }

    #[test]
    fn broker_entries_are_read_only_with_sources() {
        let config = BrokerConfig {
            node_id: 7,
            default_partitions: 3,
            topic_defaults: map(&[("retention.ms", "5")]),
            ..BrokerConfig::default()
        };
        let entries = broker_entries(&config);
        assert!(entries.iter().all(|entry| entry.read_only));
        assert_eq!(find(&entries, "node.id").value.as_deref(), Some("7"));
        assert_eq!(
            find(&entries, "num.partitions").source,
            source::STATIC_BROKER_CONFIG
        );
        assert_eq!(
            find(&entries, "auto.create.topics.enable").source,
            source::DEFAULT_CONFIG
        );
        let retention = find(&entries, "log.retention.ms");
        assert_eq!(
            (retention.value.as_deref(), retention.source),
            (Some("5"), source::STATIC_BROKER_CONFIG)
        );
        assert_eq!(
            find(&entries, "log.segment.bytes").source,
            source::DEFAULT_CONFIG
        );
    }

    #[test]
    fn broker_names_and_key_filters() {
        assert!(check_broker_name("", 3).is_ok());
        assert!(check_broker_name("3", 3).is_ok());
        assert_eq!(
            check_broker_name("4", 3).map_err(|(code, _)| code),
            Err(ResponseError::InvalidRequest.code())
        );
        assert!(check_broker_name("x", 3).is_err());

        let entries = topic_entries(&BTreeMap::new(), &BTreeMap::new());
        let keys = vec![
            StrBytes::from_static_str("retention.ms"),
            StrBytes::from_static_str("no.such.key"),
        ];
        let kept = filter(entries.clone(), Some(&keys));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "retention.ms");
        assert_eq!(
            filter(entries.clone(), Some(&Vec::new())).len(),
            entries.len()
        );
        assert_eq!(filter(entries.clone(), None).len(), entries.len());
    }

    #[test]
    fn config_type_is_only_set_from_v3() {
        use kafka_protocol::protocol::Encodable;
        let entry = topic_entries(&BTreeMap::new(), &BTreeMap::new()).remove(0);
        for version in 1..=4 {
            let encoded = encode_entry(entry.clone(), true, version);
            assert_eq!(
                encoded.config_type,
                if version >= 3 { config_type::LIST } else { 0 }
            );
            let mut buffer = bytes::BytesMut::new();
            encoded.encode(&mut buffer, version).expect("encodes");
        }
    }

    #[test]
    fn answers_encode_at_every_version() {
        use crate::topics::{TopicMeta, TopicsSnapshot};
        use kafka_protocol::protocol::Encodable;
        let topic = TopicMeta {
            name: "t".to_string(),
            id: uuid::Uuid::new_v4(),
            owners: vec![0],
            configs: map(&[("retention.ms", "1000")]),
        };
        let config = BrokerConfig {
            node_id: 1,
            ..BrokerConfig::default()
        };
        let shard = Rc::new(Shard::new(
            0,
            config,
            Vec::new(),
            TopicsSnapshot::new([topic]),
        ));
        let resource = |kind: i8, name: &'static str| {
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_static_str(name))
                .with_configuration_keys(None)
        };
        let resources = vec![
            resource(resource_type::TOPIC, "t"),
            resource(resource_type::TOPIC, "missing"),
            resource(resource_type::BROKER, "1"),
            resource(resource_type::BROKER, ""),
            resource(resource_type::BROKER, "2"),
            resource(8, "1"),
        ];
        for version in 1..=4 {
            for synonyms in [false, true] {
                let mut request = DescribeConfigsRequest::default()
                    .with_resources(resources.clone())
                    .with_include_synonyms(synonyms);
                if version >= 3 {
                    request = request.with_include_documentation(true);
                }
                let response = handle(&shard, request, version);
                let mut buffer = bytes::BytesMut::new();
                response.encode(&mut buffer, version).expect("encodes");
                let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
                let invalid = ResponseError::InvalidRequest.code();
                assert_eq!(
                    codes,
                    vec![
                        0,
                        ResponseError::UnknownTopicOrPartition.code(),
                        0,
                        0,
                        invalid,
                        invalid
                    ]
                );
                let topic = &response.results[0].configs;
                assert_eq!(topic.len(), TOPIC_CONFIG_KEYS.len());
                assert!(topic.iter().all(|c| c.synonyms.is_empty() != synonyms));
                assert!(response.results[3].configs.is_empty());
                assert!(!response.results[2].configs.is_empty());
            }
        }
    }
}
