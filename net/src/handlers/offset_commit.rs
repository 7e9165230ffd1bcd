//! OffsetCommit v2–9, on the group's shard: checks the member and generation (or accepts a
//! standalone commit for a group without members), stores the offsets as records in the
//! offsets topic and answers once they are durable.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::group::coordinator::{persist, wall_ms};
use crate::group::records::{GroupRecord, OffsetValue};
use crate::shard::Shard;

fn respond(
    request: &OffsetCommitRequest,
    mut code: impl FnMut(&str, i32) -> i16,
) -> OffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code(topic.name.0.as_str(), partition.partition_index))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return respond(&request, |_, _| ResponseError::InvalidGroupId.code());
    }
    let partition = match shard.groups.locate(shard, &group_id) {
        Ok(partition) => partition,
        Err(error) => return respond(&request, |_, _| error.code()),
    };
    let generation = request.generation_id_or_member_epoch;
    let instance_id = if version >= 7 {
        request.group_instance_id.as_deref()
    } else {
        None
    };
    let now = shard.groups.now();
    let allowed = shard
        .groups
        .with_group(&group_id, partition, generation < 0, |entry| {
            entry
                .group
                .check_commit(&request.member_id, instance_id, generation, now)
        })
        .unwrap_or(Err(ResponseError::IllegalGeneration));
    if let Err(error) = allowed {
        return respond(&request, |_, _| error.code());
    }
    let topics = shard.topics();
    let commit_timestamp_ms = wall_ms();
    let expire_timestamp_ms = if (2..=4).contains(&version) && request.retention_time_ms >= 0 {
        commit_timestamp_ms.saturating_add(request.retention_time_ms)
    } else {
        -1
    };
    let max_metadata = shard.groups.config.metadata_max_bytes;
    let mut errors = std::collections::HashMap::new();
    let mut records = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let meta = topics.get(name);
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or_default();
            let error = if meta
                .is_none_or(|m| p.partition_index < 0 || p.partition_index >= m.partitions() as i32)
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.len() > max_metadata {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                None
            };
            if let Some(error) = error {
                errors.insert((name.to_string(), p.partition_index), error.code());
                continue;
            }
            records.push(GroupRecord::Offset {
                group: group_id.clone(),
                topic: name.to_string(),
                partition: p.partition_index,
                value: Some(OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: metadata.to_string(),
                    commit_timestamp_ms,
                    expire_timestamp_ms,
                }),
            });
        }
    }
    let stored = persist(shard, partition, &records).await;
    match stored {
        Ok(()) => {
            shard
                .groups
                .with_group(&group_id, partition, true, |entry| {
                    for record in records {
                        if let GroupRecord::Offset {
                            topic,
                            partition,
                            value: Some(value),
                            ..
                        } = record
                        {
                            entry.offsets.insert((topic, partition), value);
                        }
                    }
                });
            respond(&request, |topic, partition| {
                errors
                    .get(&(topic.to_string(), partition))
                    .copied()
                    .unwrap_or(0)
            })
        }
        Err(error) => respond(&request, |topic, partition| {
            errors
                .get(&(topic.to_string(), partition))
                .copied()
                .unwrap_or(error.code())
        }),
    }
}
