//! ListOffsets v1–10: latest (-1, the high watermark), earliest (-2, and -4 earliest-local),
//! max timestamp (-3), latest-tiered (-5: none, -1), or the first offset at or after a
//! timestamp.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::shard::{OffsetOutcome, Shard};

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let snapshot = shard.topics();
    let mut work = Vec::new();
    for topic in &request.topics {
        let meta = snapshot.get(topic.name.0.as_str()).cloned();
        for partition in &topic.partitions {
            let shard = shard.clone();
            let meta = meta.clone();
            let (index, timestamp) = (partition.partition_index, partition.timestamp);
            work.push(async move {
                let Some(meta) = meta else {
                    return OffsetOutcome {
                        error_code: ResponseError::UnknownTopicOrPartition.code(),
                        timestamp: -1,
                        offset: -1,
                    };
                };
                match timestamp {
                    -4 => shard.list_offset(&meta, index, -2).await,
                    -5 => OffsetOutcome {
                        error_code: 0,
                        timestamp: -1,
                        offset: -1,
                    },
                    timestamp => shard.list_offset(&meta, index, timestamp).await,
                }
            });
        }
    }
    let mut outcomes = join_all(work).await.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let outcome = outcomes.next().unwrap_or_default();
                    let mut response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(outcome.error_code)
                        .with_timestamp(outcome.timestamp)
                        .with_offset(outcome.offset);
                    if version >= 4 {
                        response = response.with_leader_epoch(0);
                    }
                    response
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
