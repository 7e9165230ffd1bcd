//! Topic administration, on shard 0 only: the single writer of the topics file.
//!
//! Each change is computed against the current snapshot, persisted atomically, then the
//! owners open (or close) their partitions and every shard installs the new snapshot before
//! the request is answered. Changes are serialized by a shard-local async mutex.
//! (With replication this becomes the Raft-backed controller.)

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::channel::oneshot;
use kafka_protocol::error::ResponseError;
use sluice_engine::io::Storage;
use uuid::Uuid;

use crate::config::validate_topic_config;
use crate::shard::{Shard, ShardMessage};
use crate::topics::{TOPICS_FILE, TopicMeta, TopicsSnapshot, assign_owners, validate_name};

/// Shard 0's controller state.
#[derive(Debug, Default)]
pub struct ControllerState {
    changes: futures::lock::Mutex<()>,
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions; -1 for the broker default.
    pub partitions: i32,
    /// Replication factor; -1 for the default (1 on a single broker).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The outcome of one topic's change: the topic as it is now, or a Kafka error and message.
pub type TopicResult = Result<Arc<TopicMeta>, (i16, String)>;

/// A config change for one topic: key → `Some(value)` to set, `None` to delete.
pub type ConfigChanges = BTreeMap<String, Option<String>>;

/// Requests to the controller.
#[derive(Debug)]
pub enum ControllerRequest {
    /// CreateTopics (and auto-creation).
    CreateTopics {
        /// Topics to create.
        topics: Vec<NewTopic>,
        /// Only validate.
        validate_only: bool,
        /// One result per topic, in order.
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
    /// DeleteTopics, by name.
    DeleteTopics {
        /// Names.
        names: Vec<String>,
        /// One result per name.
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
    /// CreatePartitions: grow a topic to `count` partitions.
    CreatePartitions {
        /// `(name, new total count)`.
        topics: Vec<(String, i32)>,
        /// Only validate.
        validate_only: bool,
        /// One result per topic.
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
    /// AlterConfigs / IncrementalAlterConfigs on topics. With `replace`, the given set
    /// replaces all overrides (AlterConfigs); otherwise it is applied on top.
    AlterConfigs {
        /// `(name, changes)`.
        topics: Vec<(String, ConfigChanges)>,
        /// Replace all overrides.
        replace: bool,
        /// Only validate.
        validate_only: bool,
        /// One result per topic.
        reply: oneshot::Sender<Vec<TopicResult>>,
    },
}

fn fail(error: ResponseError, message: impl Into<String>) -> TopicResult {
    Err((error.code(), message.into()))
}

/// Handles one controller request on shard 0.
pub async fn handle(shard: &Shard, request: ControllerRequest) {
    assert_eq!(shard.id, 0, "controller requests go to shard 0");
    let _serialized = shard.controller.changes.lock().await;
    match request {
        ControllerRequest::CreateTopics {
            topics,
            validate_only,
            reply,
        } => {
            let _ = reply.send(create_topics(shard, topics, validate_only).await);
        }
        ControllerRequest::DeleteTopics { names, reply } => {
            let _ = reply.send(delete_topics(shard, names).await);
        }
        ControllerRequest::CreatePartitions {
            topics,
            validate_only,
            reply,
        } => {
            let _ = reply.send(create_partitions(shard, topics, validate_only).await);
        }
        ControllerRequest::AlterConfigs {
            topics,
            replace,
            validate_only,
            reply,
        } => {
            let _ = reply.send(alter_configs(shard, topics, replace, validate_only).await);
        }
    }
}

fn check_new_topic(
    shard: &Shard,
    snapshot: &TopicsSnapshot,
    topic: &NewTopic,
) -> Result<u32, (i16, String)> {
    validate_name(&topic.name)
        .map_err(|message| (ResponseError::InvalidTopicException.code(), message))?;
    if snapshot.get(&topic.name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists.code(),
            format!("topic {} already exists", topic.name),
        ));
    }
    let partitions = match topic.partitions {
        -1 => shard.config.default_partitions,
        count if count >= 1 => count as u32,
        count => {
            return Err((
                ResponseError::InvalidPartitions.code(),
                format!("{count} partitions"),
            ));
        }
    };
    if partitions > 100_000 {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!("{partitions} partitions is over the limit of 100000"),
        ));
    }
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "replication factor {} but the cluster has 1 broker",
                topic.replication_factor
            ),
        ));
    }
    for (key, value) in &topic.configs {
        validate_topic_config(key, value)
            .map_err(|error| (ResponseError::InvalidConfig.code(), error.to_string()))?;
    }
    Ok(partitions)
}

async fn create_topics(
    shard: &Shard,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> Vec<TopicResult> {
    let mut snapshot = (*shard.topics()).clone();
    let mut results = Vec::with_capacity(topics.len());
    let mut created = Vec::new();
    for topic in topics {
        let result = check_new_topic(shard, &snapshot, &topic).map(|partitions| {
            let id = Uuid::new_v4();
            let meta = TopicMeta {
                name: topic.name.clone(),
                id,
                owners: assign_owners(&id, 0, partitions, shard.shards()),
                configs: topic.configs.clone(),
            };
            if !validate_only {
                snapshot = snapshot.with(meta.clone());
                created.push(meta.name.clone());
            }
            Arc::new(meta)
        });
        results.push(result);
    }
    commit_results(shard, !created.is_empty(), snapshot, &created, &[], results).await
}

async fn delete_topics(shard: &Shard, names: Vec<String>) -> Vec<TopicResult> {
    let mut snapshot = (*shard.topics()).clone();
    let mut removed = Vec::new();
    let results: Vec<TopicResult> = names
        .iter()
        .map(|name| match snapshot.get(name).cloned() {
            Some(topic) => {
                snapshot = snapshot.without(name);
                removed.push(topic.clone());
                Ok(topic)
            }
            None => fail(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ),
        })
        .collect();
    commit_results(shard, !removed.is_empty(), snapshot, &[], &removed, results).await
}

async fn create_partitions(
    shard: &Shard,
    topics: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<TopicResult> {
    let mut snapshot = (*shard.topics()).clone();
    let mut grown = Vec::new();
    let mut results = Vec::new();
    for (name, count) in topics {
        let result = match snapshot.get(&name).cloned() {
            None => fail(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ),
            Some(topic) if count <= topic.partitions() as i32 => fail(
                ResponseError::InvalidPartitions,
                format!(
                    "topic {name} has {} partitions; the count can only grow",
                    topic.partitions()
                ),
            ),
            Some(_) if count > 100_000 => {
                fail(ResponseError::InvalidPartitions, "over the limit of 100000")
            }
            Some(topic) => {
                let mut meta = (*topic).clone();
                meta.owners.extend(assign_owners(
                    &meta.id,
                    topic.partitions(),
                    count as u32,
                    shard.shards(),
                ));
                if !validate_only {
                    snapshot = snapshot.with(meta.clone());
                    grown.push(name.clone());
                }
                Ok(Arc::new(meta))
            }
        };
        results.push(result);
    }
    commit_results(shard, !grown.is_empty(), snapshot, &grown, &[], results).await
}

async fn alter_configs(
    shard: &Shard,
    topics: Vec<(String, ConfigChanges)>,
    replace: bool,
    validate_only: bool,
) -> Vec<TopicResult> {
    let mut snapshot = (*shard.topics()).clone();
    let mut changed = false;
    let mut results = Vec::new();
    for (name, changes) in topics {
        let Some(topic) = snapshot.get(&name).cloned() else {
            results.push(fail(
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
            continue;
        };
        let invalid = changes.iter().find_map(|(key, value)| {
            let check = value.as_deref().map_or_else(
                || {
                    validate_topic_config(
                        key,
                        crate::config::effective(key, &BTreeMap::new(), &BTreeMap::new())
                            .unwrap_or(""),
                    )
                },
                |value| validate_topic_config(key, value),
            );
            check.err()
        });
        if let Some(error) = invalid {
            results.push(fail(ResponseError::InvalidConfig, error.to_string()));
            continue;
        }
        let mut meta = (*topic).clone();
        if replace {
            meta.configs.clear();
        }
        for (key, value) in changes {
            match value {
                Some(value) => meta.configs.insert(key, value),
                None => meta.configs.remove(&key),
            };
        }
        if !validate_only {
            snapshot = snapshot.with(meta.clone());
            changed = true;
        }
        results.push(Ok(Arc::new(meta)));
    }
    commit_results(shard, changed, snapshot, &[], &[], results).await
}

/// Commits `snapshot` when `changed`; if that fails, every successful result becomes a
/// storage error (nothing was applied).
async fn commit_results(
    shard: &Shard,
    changed: bool,
    snapshot: TopicsSnapshot,
    opened: &[String],
    removed: &[Arc<TopicMeta>],
    results: Vec<TopicResult>,
) -> Vec<TopicResult> {
    if !changed {
        return results;
    }
    match commit(shard, snapshot, opened, removed).await {
        Ok(()) => results,
        Err(message) => {
            tracing::error!(%message, "topic change could not be committed");
            results
                .into_iter()
                .map(|result| {
                    result.and_then(|_| fail(ResponseError::KafkaStorageError, message.clone()))
                })
                .collect()
        }
    }
}

/// Sends the message `make` builds to every shard (this one included) and waits for each
/// acknowledgement.
async fn broadcast(shard: &Shard, make: impl Fn(oneshot::Sender<()>) -> ShardMessage) {
    for to in 0..shard.shards() {
        let (reply, answer) = oneshot::channel();
        shard.send(to, make(reply)).await;
        let _ = answer.await;
    }
}

/// Persists `snapshot`, has owners open partitions of `opened` topics and remove `removed`
/// ones, and installs the snapshot on every shard.
async fn commit(
    shard: &Shard,
    snapshot: TopicsSnapshot,
    opened: &[String],
    removed: &[Arc<TopicMeta>],
) -> Result<(), String> {
    persist(shard, &snapshot).await?;
    let snapshot = Arc::new(snapshot);
    for name in opened {
        let Some(topic) = snapshot.get(name).cloned() else {
            continue;
        };
        let mut owners: Vec<usize> = topic.owners.iter().map(|&owner| owner as usize).collect();
        owners.sort_unstable();
        owners.dedup();
        for owner in owners {
            let (reply, answer) = oneshot::channel();
            shard
                .send(
                    owner,
                    ShardMessage::OpenPartitions {
                        topic: topic.clone(),
                        reply,
                    },
                )
                .await;
            answer.await.map_err(|_| "shard stopped".to_string())??;
        }
    }
    broadcast(shard, |reply| ShardMessage::Topics {
        snapshot: snapshot.clone(),
        reply,
    })
    .await;
    for topic in removed {
        broadcast(shard, |reply| ShardMessage::RemoveTopic {
            topic: topic.clone(),
            reply,
        })
        .await;
    }
    Ok(())
}

/// Writes the topics file atomically.
pub async fn persist(shard: &Shard, snapshot: &TopicsSnapshot) -> Result<(), String> {
    let path = shard.config.data_dir.join(TOPICS_FILE);
    if let Some(parent) = path.parent() {
        shard
            .storage
            .create_dir_all(parent)
            .await
            .map_err(|error| format!("creating {}: {error}", parent.display()))?;
    }
    shard
        .storage
        .replace_file(&path, snapshot.encode())
        .await
        .map_err(|error| format!("writing {}: {error}", path.display()))
}
