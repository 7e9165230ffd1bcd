//! Produce v3–13: batches pass through whole to the owning shard; the answer waits for
//! durability (acks 1 and -1 alike on a single broker: the in-sync set is this broker);
//! acks 0 gets no answer. Partitions of one request are dispatched in request order and
//! run concurrently.

use std::rc::Rc;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use crate::shard::{ProduceOutcome, Shard};

fn partition_response(
    index: i32,
    outcome: ProduceOutcome,
    version: i16,
) -> PartitionProduceResponse {
    let mut response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(outcome.error_code)
        .with_base_offset(outcome.base_offset)
        .with_log_append_time_ms(outcome.log_append_time);
    if version >= 5 {
        response = response.with_log_start_offset(outcome.log_start);
    }
    if version >= 8 {
        response = response.with_error_message(outcome.message.map(StrBytes::from_string));
    }
    response
}

fn refused(error: ResponseError, message: &str) -> ProduceOutcome {
    ProduceOutcome {
        error_code: error.code(),
        base_offset: -1,
        log_append_time: -1,
        log_start: -1,
        message: Some(message.to_string()),
    }
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: ProduceRequest,
    version: i16,
) -> ProduceResponse {
    let snapshot = shard.topics();
    let transactional = request.transactional_id.is_some();
    let mut work = Vec::new();
    for topic in &request.topic_data {
        let meta = if version >= 13 {
            snapshot.get_by_id(&topic.topic_id)
        } else {
            snapshot.get(topic.name.0.as_str())
        };
        for partition in &topic.partition_data {
            let shard = shard.clone();
            let meta = meta.cloned();
            let records = partition.records.clone();
            let acks = request.acks;
            let unknown = if version >= 13 {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            work.push(async move {
                if transactional {
                    return refused(
                        ResponseError::TransactionalIdAuthorizationFailed,
                        "transactions are not supported yet",
                    );
                }
                let Some(meta) = meta else {
                    return refused(unknown, "unknown topic");
                };
                if meta.name == crate::group::coordinator::OFFSETS_TOPIC {
                    return refused(
                        ResponseError::InvalidTopicException,
                        "cannot produce to an internal topic",
                    );
                }
                let Some(records) = records else {
                    return refused(ResponseError::CorruptMessage, "null record set");
                };
                shard.produce(&meta, partition.index, records, acks).await
            });
        }
    }
    let mut outcomes = join_all(work).await.into_iter();
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|partition| {
                    partition_response(
                        partition.index,
                        outcomes.next().unwrap_or_default(),
                        version,
                    )
                })
                .collect();
            let mut response = TopicProduceResponse::default().with_partition_responses(partitions);
            if version >= 13 {
                response = response.with_topic_id(topic.topic_id);
            } else {
                response = response.with_name(topic.name.clone());
            }
            response
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
