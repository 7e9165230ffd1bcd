//! OffsetFetch v1–9, on the group's shard: committed offsets of one group (the connection's
//! shard splits the batched form of v8+ by group), all of them when no topics are named.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::shard::Shard;

/// One partition's answer: `(partition, offset, leader epoch, metadata)`.
type Committed = (i32, i64, i32, String);

/// The committed offsets of `group_id` for `topics` (all when `None`).
fn committed(
    shard: &Shard,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<(String, Vec<Committed>)>, ResponseError> {
    let partition = shard.groups.locate(shard, group_id)?;
    let found = shard
        .groups
        .with_group(group_id, partition, false, |entry| match &topics {
            Some(topics) => topics
                .iter()
                .map(|(name, partitions)| {
                    let list = partitions
                        .iter()
                        .map(|p| match entry.offsets.get(&(name.clone(), *p)) {
                            Some(v) => (*p, v.offset, v.leader_epoch, v.metadata.clone()),
                            None => (*p, -1, -1, String::new()),
                        })
                        .collect();
                    (name.clone(), list)
                })
                .collect::<Vec<_>>(),
            None => {
                let mut out: Vec<(String, Vec<Committed>)> = Vec::new();
                for ((topic, p), v) in &entry.offsets {
                    let row = (*p, v.offset, v.leader_epoch, v.metadata.clone());
                    match out.last_mut() {
                        Some((name, list)) if name == topic => list.push(row),
                        _ => out.push((topic.clone(), vec![row])),
                    }
                }
                out
            }
        });
    Ok(found.unwrap_or_else(|| {
        topics
            .unwrap_or_default()
            .into_iter()
            .map(|(name, partitions)| {
                let list = partitions
                    .into_iter()
                    .map(|p| (p, -1, -1, String::new()))
                    .collect();
                (name, list)
            })
            .collect()
    }))
}

pub(crate) fn handle(
    shard: &Rc<Shard>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group| {
                let topics = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let out = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
                match committed(shard, &group.group_id.0, topics) {
                    Err(error) => out.with_error_code(error.code()),
                    Ok(found) => out.with_topics(
                        found
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(StrBytes::from_string(name)))
                                    .with_partitions(
                                        partitions
                                            .into_iter()
                                            .map(|(p, offset, epoch, metadata)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        metadata,
                                                    )))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    match committed(shard, &request.group_id.0, topics) {
        Err(error) => {
            let response = OffsetFetchResponse::default();
            if version >= 2 {
                response.with_error_code(error.code())
            } else {
                response
            }
        }
        Ok(found) => {
            let topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(p, offset, epoch, metadata)| {
                                    let out = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_metadata(Some(StrBytes::from_string(metadata)));
                                    if version >= 5 {
                                        out.with_committed_leader_epoch(epoch)
                                    } else {
                                        out
                                    }
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}
