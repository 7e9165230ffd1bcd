//! Fetch v4–18: whole batches from each partition, the first one whole even past the
//! limits; `max_bytes` over the response, `partition_max_bytes` per partition; a long-poll
//! of up to `max_wait_ms` until `min_bytes` are there, woken by appends. No fetch sessions:
//! the session id is always 0, so clients send full requests. Record data is sent by
//! reference (memory slices or file ranges), never copied into the response.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{join_all, select_all};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, FetchRequest};

use super::Reply;
use crate::fetch_encode::{
    FetchPartitionOut, FetchResponseOut, FetchTopicOut, encode_fetch_response,
};
use crate::shard::{FetchOutcome, Shard};
use crate::topics::TopicMeta;

/// Longest long-poll accepted, whatever the client asks.
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(30);

struct Wanted {
    topic: Option<Arc<TopicMeta>>,
    partition: i32,
    offset: i64,
    max_bytes: u64,
}

async fn fetch_round(shard: &Rc<Shard>, wanted: &[Wanted], version: i16) -> Vec<FetchOutcome> {
    let unknown = if version >= 13 {
        ResponseError::UnknownTopicId
    } else {
        ResponseError::UnknownTopicOrPartition
    };
    let work = wanted.iter().map(|want| async move {
        match &want.topic {
            Some(topic) => {
                shard
                    .fetch(topic, want.partition, want.offset, want.max_bytes)
                    .await
            }
            None => FetchOutcome {
                error_code: unknown.code(),
                high_watermark: -1,
                log_start: -1,
                records: Vec::new(),
            },
        }
    });
    join_all(work).await
}

/// Drops record data past the response budget (the first non-empty partition always keeps
/// its data). Returns the bytes kept.
fn apply_budget(outcomes: &mut [FetchOutcome], max_bytes: u64) -> u64 {
    let mut total = 0u64;
    for outcome in outcomes.iter_mut() {
        let bytes = outcome.bytes();
        if bytes == 0 {
            continue;
        }
        if total > 0 && total + bytes > max_bytes {
            outcome.records.clear();
            continue;
        }
        total += bytes;
    }
    total
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: FetchRequest,
    version: i16,
    correlation_id: i32,
) -> Reply {
    let snapshot = shard.topics();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let meta = if version >= 13 {
            snapshot.get_by_id(&topic.topic_id)
        } else {
            snapshot.get(topic.topic.0.as_str())
        };
        for partition in &topic.partitions {
            wanted.push(Wanted {
                topic: meta.cloned(),
                partition: partition.partition,
                offset: partition.fetch_offset,
                max_bytes: u64::try_from(partition.partition_max_bytes).unwrap_or(0),
            });
        }
    }
    let max_bytes = u64::try_from(request.max_bytes).unwrap_or(0);
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    let max_wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_LIMIT);
    let deadline = Instant::now() + max_wait;
    let mut outcomes = fetch_round(shard, &wanted, version).await;
    loop {
        let total = apply_budget(&mut outcomes, max_bytes);
        let any_error = outcomes.iter().any(|outcome| outcome.error_code != 0);
        let now = Instant::now();
        if total >= min_bytes.max(1)
            || any_error
            || now >= deadline
            || wanted.is_empty()
            || shard.shutting_down()
        {
            break;
        }
        let waits: Vec<_> = wanted
            .iter()
            .filter_map(|want| {
                want.topic.as_ref().map(|topic| {
                    shard
                        .wait_for_data(topic, want.partition, want.offset)
                        .boxed_local()
                })
            })
            .collect();
        if waits.is_empty() {
            break;
        }
        futures::select! {
            _ = select_all(waits).fuse() => {}
            () = glommio::timer::sleep(deadline - now).fuse() => {}
        }
        outcomes = fetch_round(shard, &wanted, version).await;
    }
    let mut outcomes = outcomes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let meta = if version >= 13 {
                snapshot.get_by_id(&topic.topic_id)
            } else {
                snapshot.get(topic.topic.0.as_str())
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let outcome = outcomes.next().unwrap_or_default();
                    shard
                        .metrics
                        .count_error(ApiKey::Fetch as i16, outcome.error_code);
                    FetchPartitionOut {
                        partition_index: partition.partition,
                        error_code: outcome.error_code,
                        high_watermark: outcome.high_watermark,
                        last_stable_offset: outcome.high_watermark,
                        log_start_offset: outcome.log_start,
                        preferred_read_replica: -1,
                        records: outcome.records,
                    }
                })
                .collect();
            FetchTopicOut {
                topic: topic.topic.clone(),
                topic_id: meta.map_or(topic.topic_id, |meta| meta.id),
                partitions,
            }
        })
        .collect();
    let response = FetchResponseOut {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics,
    };
    match encode_fetch_response(correlation_id, version, &response) {
        Ok(chunks) => Reply::Chunks(chunks),
        Err(error) => Reply::Close(format!("fetch response cannot be encoded: {error}")),
    }
}
