//! OffsetDelete v0, on the group's shard: removes committed offsets, refusing partitions of
//! topics the group's active members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC).

use std::collections::HashSet;
use std::rc::Rc;

use bytes::Buf;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;

use crate::group::coordinator::persist;
use crate::group::records::GroupRecord;
use crate::group::state::{Group, GroupState};
use crate::shard::Shard;

/// Topics the members subscribe to; `None` if some subscription cannot be read (then every
/// topic counts as subscribed).
fn subscribed_topics(group: &Group) -> Option<HashSet<String>> {
    let mut topics = HashSet::new();
    if group.state() == GroupState::Empty {
        return Some(topics);
    }
    if group.protocol_type() != Some("consumer") {
        return None;
    }
    let protocol = group.protocol()?;
    for member in group.members() {
        let (_, metadata) = member.protocols.iter().find(|(name, _)| name == protocol)?;
        let mut bytes = metadata.clone();
        if bytes.remaining() < 2 {
            return None;
        }
        let version = bytes.get_i16();
        let subscription =
            ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3)).ok()?;
        topics.extend(subscription.topics.iter().map(ToString::to_string));
    }
    Some(topics)
}

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: &OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.as_str();
    let partition = match shard.groups.locate(shard, group_id) {
        Ok(partition) => partition,
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error.code()),
    };
    let planned = shard
        .groups
        .with_group(group_id, partition, false, |entry| {
            let subscribed = subscribed_topics(&entry.group);
            let mut records = Vec::new();
            let mut codes = Vec::new();
            for topic in &request.topics {
                let name = topic.name.0.to_string();
                let busy = subscribed.as_ref().is_none_or(|s| s.contains(&name));
                for p in &topic.partitions {
                    if busy {
                        codes.push(ResponseError::GroupSubscribedToTopic.code());
                        continue;
                    }
                    if entry
                        .offsets
                        .remove(&(name.clone(), p.partition_index))
                        .is_some()
                    {
                        records.push(GroupRecord::Offset {
                            group: group_id.to_string(),
                            topic: name.clone(),
                            partition: p.partition_index,
                            value: None,
                        });
                    }
                    codes.push(0);
                }
            }
            (records, codes)
        });
    let Some((records, codes)) = planned else {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    };
    if let Err(error) = persist(shard, partition, &records).await {
        return OffsetDeleteResponse::default().with_error_code(error.code());
    }
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
