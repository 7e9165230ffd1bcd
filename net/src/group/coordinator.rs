//! The group coordinator of one shard.
//!
//! A group lives on the shard that owns its partition of the internal offsets topic
//! ([`OFFSETS_TOPIC`], partition = Java `hashCode` of the group id modulo the partition
//! count, as Kafka computes it). Requests for it are routed there ([`route`]); the shard keeps
//! the group's membership ([`Group`]) and committed offsets in memory and stores every change
//! as records in that partition, through the same log path as any produce, so they are
//! durable before they are acknowledged. Opening an offsets partition replays it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use futures::channel::oneshot;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use sluice_engine::{Chunk, ReadLimits};

use super::records::{GroupRecord, OffsetValue, decode_batches, encode_batch};
use super::state::{Group, GroupConfig, GroupState, Millis};
use crate::controller::{ControllerRequest, NewTopic};
use crate::shard::{PartitionLog, Shard, ShardMessage};
use crate::topics::TopicMeta;

/// The internal topic that stores groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read at a time while loading an offsets partition.
const LOAD_READ_BYTES: u64 = 1 << 20;

/// The offsets-topic partition of a group: Kafka's `abs(groupId.hashCode) % partitions`.
#[must_use]
pub fn partition_for(group_id: &str, partitions: u32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let partitions = i32::try_from(partitions.max(1)).unwrap_or(i32::MAX);
    (hash & 0x7fff_ffff) % partitions
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A group's membership and committed offsets.
#[derive(Debug)]
pub struct GroupEntry {
    /// Membership.
    pub group: Group,
    /// Committed offsets by `(topic, partition)`.
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// The offsets partition that stores it.
    pub partition: i32,
}

impl GroupEntry {
    fn new(group_id: &str, partition: i32) -> Self {
        Self {
            group: Group::new(group_id),
            offsets: BTreeMap::new(),
            partition,
        }
    }
}

/// Coordinator settings.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Membership timing.
    pub group: GroupConfig,
    /// Partitions of the offsets topic when it is created (`offsets.topic.num.partitions`).
    pub offsets_partitions: i32,
    /// How long offsets of an empty group are kept (`offsets.retention.minutes`).
    pub offsets_retention_ms: i64,
    /// Largest commit metadata string (`offset.metadata.max.bytes`).
    pub metadata_max_bytes: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            group: GroupConfig::default(),
            offsets_partitions: 16,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            metadata_max_bytes: 4096,
        }
    }
}

/// Whether an offsets partition owned here has been replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
}

/// The groups of one shard.
#[derive(Debug)]
pub struct Coordinator {
    /// Settings.
    pub config: CoordinatorConfig,
    partitions: RefCell<HashMap<i32, Load>>,
    groups: RefCell<HashMap<String, GroupEntry>>,
    start: Instant,
}

/// A group API call routed to the group's shard.
#[derive(Debug)]
pub struct GroupCall {
    /// API version.
    pub version: i16,
    /// Client id from the request header.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// The decoded request.
    pub body: RequestKind,
}

impl Coordinator {
    /// A coordinator with no groups.
    #[must_use]
    pub fn new(config: CoordinatorConfig) -> Self {
        Self {
            config,
            partitions: RefCell::new(HashMap::new()),
            groups: RefCell::new(HashMap::new()),
            start: Instant::now(),
        }
    }

    /// Monotonic milliseconds for the state machine.
    #[must_use]
    pub fn now(&self) -> Millis {
        Millis::try_from(self.start.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }

    /// Where `group_id` lives, if it lives here and is loaded.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE (no offsets topic), NOT_COORDINATOR (another shard owns
    /// it: the routing raced a reassignment), COORDINATOR_LOAD_IN_PROGRESS.
    pub fn locate(&self, shard: &Shard, group_id: &str) -> Result<i32, ResponseError> {
        let topics = shard.topics();
        let topic = topics
            .get(OFFSETS_TOPIC)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let partition = partition_for(group_id, topic.partitions());
        if topic.owner(partition) != Some(shard.id) {
            return Err(ResponseError::NotCoordinator);
        }
        match self.partitions.borrow().get(&partition) {
            Some(Load::Loaded) => Ok(partition),
            Some(Load::Loading) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// Runs `f` on the group, creating it (empty) when `create` is set.
    pub fn with_group<R>(
        &self,
        group_id: &str,
        partition: i32,
        create: bool,
        f: impl FnOnce(&mut GroupEntry) -> R,
    ) -> Option<R> {
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(group_id) {
            if !create {
                return None;
            }
            groups.insert(group_id.to_string(), GroupEntry::new(group_id, partition));
        }
        groups.get_mut(group_id).map(f)
    }

    /// Forgets a group.
    pub fn remove_group(&self, group_id: &str) -> Option<GroupEntry> {
        self.groups.borrow_mut().remove(group_id)
    }

    /// `(group id, protocol type, state)` of every group here.
    #[must_use]
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        self.groups
            .borrow()
            .iter()
            .map(|(id, entry)| {
                (
                    id.clone(),
                    entry.group.protocol_type().unwrap_or_default().to_string(),
                    entry.group.state(),
                )
            })
            .collect()
    }

    /// Replays an offsets partition this shard just opened.
    pub async fn load(&self, partition: i32, log: PartitionLog) {
        self.partitions
            .borrow_mut()
            .insert(partition, Load::Loading);
        let started = Instant::now();
        let mut offset = log.offsets().log_start;
        let mut records = 0usize;
        loop {
            let limits = ReadLimits {
                max_bytes: LOAD_READ_BYTES,
                max_offset: None,
            };
            let read = match log.read(offset, limits).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(partition, %error, "reading the offsets topic; groups stored after offset {offset:?} are not loaded");
                    break;
                }
            };
            if read.chunks.is_empty() {
                break;
            }
            for chunk in read.chunks {
                let bytes = match chunk {
                    Chunk::Memory(bytes) => Ok(bytes),
                    Chunk::File {
                        reader,
                        position,
                        len,
                    } => {
                        use sluice_engine::io::ReadFile;
                        reader
                            .read_at(position, usize::try_from(len).unwrap_or(usize::MAX))
                            .await
                            .map_err(|error| error.to_string())
                    }
                };
                let decoded = bytes
                    .and_then(|bytes| decode_batches(&bytes).map_err(|error| error.to_string()));
                match decoded {
                    Ok(decoded) => {
                        records += decoded.len();
                        for (_, record) in decoded {
                            self.replay(partition, record);
                        }
                    }
                    Err(error) => {
                        tracing::error!(partition, %error, "undecodable records in the offsets topic skipped");
                    }
                }
            }
            if read.next_offset <= offset {
                break;
            }
            offset = read.next_offset;
        }
        // Groups the replay emptied (tombstones) leave no trace; once per load, not per record.
        self.groups.borrow_mut().retain(|_, entry| {
            !(entry.offsets.is_empty()
                && entry.group.is_empty()
                && entry.group.generation() == 0
                && entry.group.protocol_type().is_none())
        });
        self.partitions.borrow_mut().insert(partition, Load::Loaded);
        if records > 0 {
            tracing::info!(
                partition,
                records,
                elapsed_ms = started.elapsed().as_millis(),
                "offsets partition loaded"
            );
        }
    }

    fn replay(&self, partition: i32, record: GroupRecord) {
        let now = self.now();
        let mut groups = self.groups.borrow_mut();
        match record {
            GroupRecord::Offset {
                group,
                topic,
                partition: topic_partition,
                value,
            } => {
                let entry = groups
                    .entry(group.clone())
                    .or_insert_with(|| GroupEntry::new(&group, partition));
                match value {
                    Some(value) => {
                        entry.offsets.insert((topic, topic_partition), value);
                    }
                    None => {
                        entry.offsets.remove(&(topic, topic_partition));
                    }
                }
            }
            GroupRecord::Group { group, value } => match value {
                Some(stored) => {
                    let entry = groups
                        .entry(group.clone())
                        .or_insert_with(|| GroupEntry::new(&group, partition));
                    entry.group = Group::from_stored(&group, stored, now);
                }
                None => {
                    if let Some(entry) = groups.get_mut(&group) {
                        entry.group = Group::new(&group);
                    }
                }
            },
        }
    }

    /// Drops what lived in an offsets partition this shard no longer owns.
    pub fn unload(&self, partition: i32) {
        self.partitions.borrow_mut().remove(&partition);
        let mut groups = self.groups.borrow_mut();
        for entry in groups.values_mut() {
            if entry.partition == partition {
                entry.group.mark_dead();
            }
        }
        groups.retain(|_, entry| entry.partition != partition);
    }

    /// Runs membership timers; returns the records to store (changed groups; expired
    /// offsets and groups when `expire` is set) by offsets partition.
    pub fn tick(&self, expire: bool) -> Vec<(i32, Vec<GroupRecord>)> {
        let now = self.now();
        let wall = wall_ms();
        let mut out: HashMap<i32, Vec<GroupRecord>> = HashMap::new();
        let mut dead = Vec::new();
        for (id, entry) in self.groups.borrow_mut().iter_mut() {
            entry.group.tick(now, &self.config.group);
            if entry.group.take_dirty() {
                out.entry(entry.partition)
                    .or_default()
                    .push(GroupRecord::Group {
                        group: id.clone(),
                        value: Some(entry.group.to_stored(wall)),
                    });
            }
            if !expire || entry.group.state() != GroupState::Empty {
                continue;
            }
            let retention = self.config.offsets_retention_ms;
            let expired: Vec<(String, i32)> = entry
                .offsets
                .iter()
                .filter(|(_, value)| {
                    let deadline = if value.expire_timestamp_ms >= 0 {
                        value.expire_timestamp_ms
                    } else {
                        value.commit_timestamp_ms.saturating_add(retention)
                    };
                    deadline <= wall
                })
                .map(|(key, _)| key.clone())
                .collect();
            for (topic, partition) in expired {
                entry.offsets.remove(&(topic.clone(), partition));
                out.entry(entry.partition)
                    .or_default()
                    .push(GroupRecord::Offset {
                        group: id.clone(),
                        topic,
                        partition,
                        value: None,
                    });
            }
            if entry.offsets.is_empty() && entry.group.is_empty() {
                dead.push(id.clone());
                out.entry(entry.partition)
                    .or_default()
                    .push(GroupRecord::Group {
                        group: id.clone(),
                        value: None,
                    });
            }
        }
        for id in dead {
            tracing::info!(group = %id, "empty group without offsets removed");
            if let Some(mut entry) = self.remove_group(&id) {
                entry.group.mark_dead();
            }
        }
        out.into_iter().collect()
    }

    /// Forgets offsets of a deleted topic; returns the tombstones to store.
    pub fn remove_topic(&self, topic: &str) -> Vec<(i32, Vec<GroupRecord>)> {
        let mut out: HashMap<i32, Vec<GroupRecord>> = HashMap::new();
        for (id, entry) in self.groups.borrow_mut().iter_mut() {
            let gone: Vec<(String, i32)> = entry
                .offsets
                .keys()
                .filter(|(name, _)| name == topic)
                .cloned()
                .collect();
            for key in gone {
                entry.offsets.remove(&key);
                out.entry(entry.partition)
                    .or_default()
                    .push(GroupRecord::Offset {
                        group: id.clone(),
                        topic: key.0,
                        partition: key.1,
                        value: None,
                    });
            }
        }
        out.into_iter().collect()
    }
}

/// Appends `records` to the offsets partition and waits until they are durable.
///
/// # Errors
/// COORDINATOR_NOT_AVAILABLE when the partition is not open here or the write failed.
pub async fn persist(
    shard: &Shard,
    partition: i32,
    records: &[GroupRecord],
) -> Result<(), ResponseError> {
    if records.is_empty() {
        return Ok(());
    }
    let topics = shard.topics();
    let topic = topics
        .get(OFFSETS_TOPIC)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let log = shard
        .partition_log(topic.id, partition)
        .ok_or(ResponseError::NotCoordinator)?;
    let batch = encode_batch(records, wall_ms());
    let info = log.append(batch).await.map_err(|error| {
        tracing::warn!(partition, %error, "storing group records failed");
        ResponseError::CoordinatorNotAvailable
    })?;
    log.flushed(info.next_offset()).await.map_err(|error| {
        tracing::warn!(partition, %error, "group records not durable");
        ResponseError::CoordinatorNotAvailable
    })
}

/// Stores the group's membership in the background if it changed.
pub fn store_if_dirty(shard: &Rc<Shard>, group_id: &str) {
    let dirty = shard
        .groups
        .with_group(group_id, 0, false, |entry| entry.group.take_dirty())
        .unwrap_or(false);
    if dirty {
        persist_group_later(shard, group_id);
    }
}

/// Stores the group's current membership in the background (order kept by the log).
pub fn persist_group_later(shard: &Rc<Shard>, group_id: &str) {
    let Some((partition, record)) = shard.groups.with_group(group_id, 0, false, |entry| {
        (
            entry.partition,
            GroupRecord::Group {
                group: group_id.to_string(),
                value: Some(entry.group.to_stored(wall_ms())),
            },
        )
    }) else {
        return;
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let _ = persist(&shard, partition, &[record]).await;
    })
    .detach();
}

/// The offsets topic, created on first use.
///
/// # Errors
/// COORDINATOR_NOT_AVAILABLE when it cannot be created.
pub async fn offsets_topic(shard: &Shard) -> Result<Arc<TopicMeta>, ResponseError> {
    if let Some(topic) = shard.topics().get(OFFSETS_TOPIC) {
        return Ok(topic.clone());
    }
    let partitions = shard.groups.config.offsets_partitions;
    let results = shard
        .ask_controller(|reply| ControllerRequest::CreateTopics {
            topics: vec![NewTopic {
                name: OFFSETS_TOPIC.to_string(),
                partitions,
                replication_factor: -1,
                configs: [("cleanup.policy".to_string(), "compact".to_string())]
                    .into_iter()
                    .collect(),
            }],
            validate_only: false,
            reply,
        })
        .await;
    match results.into_iter().next() {
        Some(Ok(topic)) => Ok(topic),
        // Another request created it meanwhile.
        _ => shard
            .topics()
            .get(OFFSETS_TOPIC)
            .cloned()
            .ok_or(ResponseError::CoordinatorNotAvailable),
    }
}

/// The shard that coordinates `group_id` (creating the offsets topic on first use); this
/// shard when the topic cannot be had, so that the handler there answers with the error.
pub async fn owner_of(shard: &Shard, group_id: &str) -> usize {
    match offsets_topic(shard).await {
        Ok(topic) => topic
            .owner(partition_for(group_id, topic.partitions()))
            .unwrap_or(shard.id),
        Err(_) => shard.id,
    }
}

/// Sends a group call to the shard that owns `group_id` and returns its answer; `None` if
/// that shard stopped.
pub async fn route(shard: &Rc<Shard>, group_id: &str, call: GroupCall) -> Option<ResponseKind> {
    let owner = owner_of(shard, group_id).await;
    call_on(shard, owner, call).await
}

/// Runs a group call on shard `owner`.
pub async fn call_on(shard: &Rc<Shard>, owner: usize, call: GroupCall) -> Option<ResponseKind> {
    if owner == shard.id {
        return crate::handlers::serve_group_call(shard, call).await;
    }
    let (reply, answer) = oneshot::channel();
    shard
        .send(
            owner,
            ShardMessage::Group {
                call: Box::new(call),
                reply,
            },
        )
        .await;
    answer.await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_hash_code() {
        // "".hashCode() == 0; "a" == 97; "group" == 98629247; a negative hash: "polygenelubricants"
        // has hashCode Integer.MIN_VALUE, whose abs (Kafka's Utils.abs) is 0.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "test-group".hashCode() = -1_491_785_556? compute: abs via & 0x7fffffff.
        let hash = "test-group"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert_eq!(partition_for("test-group", 16), (hash & 0x7fff_ffff) % 16);
    }
}
