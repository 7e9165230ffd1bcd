//! DeleteRecords v0–2: moves each partition's log start up to the given offset (-1: the
//! high watermark). The answer is the new low watermark; an offset above the high
//! watermark (or negative other than -1) is `OFFSET_OUT_OF_RANGE`, an unknown topic or
//! partition `UNKNOWN_TOPIC_OR_PARTITION`. An offset below the log start changes nothing and
//! answers the current log start, as Kafka does.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::shard::Shard;

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let snapshot = shard.topics();
    let mut work = Vec::new();
    for topic in &request.topics {
        let meta = snapshot.get(topic.name.0.as_str()).cloned();
        for partition in &topic.partitions {
            let shard = shard.clone();
            let meta = meta.clone();
            let (index, offset) = (partition.partition_index, partition.offset);
            work.push(async move {
                match meta {
                    None => Err(ResponseError::UnknownTopicOrPartition.code()),
                    Some(meta) => shard.delete_records(&meta, index, offset).await,
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
                    let outcome = outcomes
                        .next()
                        .unwrap_or(Err(ResponseError::UnknownServerError.code()));
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(partition.partition_index);
                    match outcome {
                        Ok(low_watermark) => {
                            result.with_low_watermark(low_watermark).with_error_code(0)
                        }
                        Err(code) => result.with_low_watermark(-1).with_error_code(code),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
