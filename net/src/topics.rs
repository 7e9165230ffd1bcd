//! Topic metadata: names, ids, partition counts, configs and which shard owns each
//! partition. Shard 0 owns the authoritative copy and persists it; every shard holds an
//! immutable snapshot (`Arc`) that is replaced, never mutated, when shard 0 broadcasts a
//! new one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// The name.
    pub name: String,
    /// The topic id (KIP-516).
    pub id: Uuid,
    /// For each partition, the shard that owns it.
    pub owners: Vec<u32>,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    /// Number of partitions.
    #[must_use]
    pub fn partitions(&self) -> u32 {
        self.owners.len() as u32
    }

    /// The shard owning `partition`, if it exists.
    #[must_use]
    pub fn owner(&self, partition: i32) -> Option<usize> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.owners.get(index))
            .map(|&shard| shard as usize)
    }

    /// Directory of one partition's log.
    #[must_use]
    pub fn partition_dir(&self, data_dir: &Path, partition: i32) -> PathBuf {
        data_dir.join(format!("{}-{partition}", self.name))
    }
}

/// Assigns partitions `from..to` of a topic to shards, spreading each topic from a
/// different starting shard so single-partition topics do not all land on shard 0.
#[must_use]
pub fn assign_owners(id: &Uuid, from: u32, to: u32, shards: usize) -> Vec<u32> {
    let start = id.as_u128().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 64;
    (from..to)
        .map(|partition| ((start + u128::from(partition)) % shards as u128) as u32)
        .collect()
}

/// All topics at one moment.
#[derive(Debug, Clone, Default)]
pub struct TopicsSnapshot {
    by_name: BTreeMap<String, Arc<TopicMeta>>,
    by_id: HashMap<Uuid, Arc<TopicMeta>>,
}

/// The file that holds the topics, inside the data directory.
pub const TOPICS_FILE: &str = "__sluice/topics.json";

#[derive(Serialize, Deserialize)]
struct TopicsFile {
    version: u32,
    topics: Vec<TopicMeta>,
}

impl TopicsSnapshot {
    /// A snapshot of these topics.
    #[must_use]
    pub fn new(topics: impl IntoIterator<Item = TopicMeta>) -> Self {
        let mut snapshot = Self::default();
        for topic in topics {
            let topic = Arc::new(topic);
            snapshot.by_id.insert(topic.id, topic.clone());
            snapshot.by_name.insert(topic.name.clone(), topic);
        }
        snapshot
    }

    /// By name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.by_name.get(name)
    }

    /// By id.
    #[must_use]
    pub fn get_by_id(&self, id: &Uuid) -> Option<&Arc<TopicMeta>> {
        self.by_id.get(id)
    }

    /// All topics, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.by_name.values()
    }

    /// A copy with `topic` added or replaced.
    #[must_use]
    pub fn with(&self, topic: TopicMeta) -> Self {
        let mut topics: Vec<TopicMeta> = self
            .by_name
            .values()
            .filter(|t| t.name != topic.name)
            .map(|t| (**t).clone())
            .collect();
        topics.push(topic);
        Self::new(topics)
    }

    /// A copy without the topic named `name`.
    #[must_use]
    pub fn without(&self, name: &str) -> Self {
        Self::new(
            self.by_name
                .values()
                .filter(|t| t.name != name)
                .map(|t| (**t).clone()),
        )
    }

    /// Serialized form.
    ///
    /// # Panics
    /// Never: the types serialize infallibly.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let file = TopicsFile {
            version: 1,
            topics: self.by_name.values().map(|t| (**t).clone()).collect(),
        };
        serde_json::to_vec_pretty(&file).expect("topics serialize")
    }

    /// Parses the topics file.
    ///
    /// # Errors
    /// Malformed JSON or an unknown version.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let file: TopicsFile =
            serde_json::from_slice(bytes).map_err(|error| format!("topics file: {error}"))?;
        if file.version != 1 {
            return Err(format!(
                "topics file version {} is not supported",
                file.version
            ));
        }
        Ok(Self::new(file.topics))
    }

    /// Re-assigns owners if the shard count changed since the file was written. Returns
    /// whether anything changed.
    pub fn reassign_for(&mut self, shards: usize) -> bool {
        let stale = self
            .iter()
            .any(|topic| topic.owners.iter().any(|&owner| owner as usize >= shards));
        if stale {
            let topics: Vec<TopicMeta> = self
                .iter()
                .map(|topic| TopicMeta {
                    owners: assign_owners(&topic.id, 0, topic.partitions(), shards),
                    ..(**topic).clone()
                })
                .collect();
            *self = Self::new(topics);
        }
        stale
    }
}

/// Kafka's topic name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
///
/// # Errors
/// A message saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 249 {
        return Err(format!(
            "topic name length {} is not in 1..=249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be '.' or '..'".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name contains {bad:?}; only [a-zA-Z0-9._-] are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: u32) -> TopicMeta {
        let id = Uuid::new_v4();
        TopicMeta {
            name: name.to_string(),
            id,
            owners: assign_owners(&id, 0, partitions, 2),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn snapshot_round_trips_and_updates() {
        let snapshot = TopicsSnapshot::new([topic("a", 3), topic("b", 1)]);
        let decoded = TopicsSnapshot::decode(&snapshot.encode()).expect("decode");
        assert_eq!(decoded.get("a"), snapshot.get("a"));
        let id = decoded.get("b").expect("b").id;
        assert_eq!(decoded.get_by_id(&id).map(|t| t.name.as_str()), Some("b"));
        let without = decoded.without("a");
        assert!(without.get("a").is_none() && without.get("b").is_some());
        let mut reassigned = decoded.clone();
        assert!(!reassigned.reassign_for(2));
        assert!(reassigned.reassign_for(1));
        assert!(reassigned.iter().all(|t| t.owners.iter().all(|&o| o == 0)));
    }

    #[test]
    fn owners_spread_over_shards() {
        let id = Uuid::new_v4();
        let owners = assign_owners(&id, 0, 8, 4);
        for shard in 0..4 {
            assert_eq!(owners.iter().filter(|&&o| o == shard).count(), 2);
        }
    }

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"x".repeat(250)).is_err());
    }
}
