//! Metadata v0–13: brokers (this one), topics with their partitions, led by this broker.
//! Unknown topics are created when auto-creation is on and the request allows it (always
//! for v0–3, `allow_auto_topic_creation` from v4), as Kafka does.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::controller::{ControllerRequest, NewTopic};
use crate::shard::Shard;
use crate::topics::TopicMeta;

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(super) fn describe_topic(
    shard: &Shard,
    topic: &TopicMeta,
    version: i16,
) -> MetadataResponseTopic {
    let node = BrokerId(shard.config.node_id);
    let partitions = (0..topic.partitions() as i32)
        .map(|index| {
            let mut partition = MetadataResponsePartition::default()
                .with_error_code(0)
                .with_partition_index(index)
                .with_leader_id(node)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node]);
            if version >= 7 {
                partition = partition.with_leader_epoch(0);
            }
            partition
        })
        .collect();
    let mut response = MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(Some(topic_name(&topic.name)))
        .with_partitions(partitions);
    if version >= 1 {
        response =
            response.with_is_internal(topic.name == crate::group::coordinator::OFFSETS_TOPIC);
    }
    if version >= 10 {
        response = response.with_topic_id(topic.id);
    }
    if version >= 8 {
        response = response.with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED);
    }
    response
}

fn missing_topic(
    name: Option<String>,
    id: Uuid,
    error: ResponseError,
    version: i16,
) -> MetadataResponseTopic {
    let mut response = MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| topic_name(&n)));
    if version >= 10 {
        response = response.with_topic_id(id);
    }
    if version >= 8 {
        response = response.with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED);
    }
    response
}

async fn auto_create(shard: &Shard, names: Vec<String>) {
    let topics = names
        .into_iter()
        .map(|name| NewTopic {
            name,
            partitions: -1,
            replication_factor: -1,
            configs: Default::default(),
        })
        .collect();
    let results = shard
        .ask_controller(|reply| ControllerRequest::CreateTopics {
            topics,
            validate_only: false,
            reply,
        })
        .await;
    for result in results {
        if let Err((code, message)) = result {
            tracing::debug!(code, %message, "auto-creation refused");
        }
    }
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let may_create =
        shard.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    if let Some(requested) = &requested
        && may_create
    {
        let snapshot = shard.topics();
        let missing: Vec<String> = requested
            .iter()
            .filter_map(|(name, _)| name.clone())
            .filter(|name| {
                snapshot.get(name).is_none() && crate::topics::validate_name(name).is_ok()
            })
            .collect();
        if !missing.is_empty() {
            auto_create(shard, missing).await;
        }
    }
    let snapshot = shard.topics();
    let topics: Vec<MetadataResponseTopic> = match requested {
        None => snapshot
            .iter()
            .map(|topic| describe_topic(shard, topic, version))
            .collect(),
        Some(requested) => requested
            .into_iter()
            .map(|(name, id)| {
                let found: Option<&Arc<TopicMeta>> = match &name {
                    Some(name) => snapshot.get(name),
                    None => snapshot.get_by_id(&id),
                };
                match (found, name) {
                    (Some(topic), _) => describe_topic(shard, topic, version),
                    (None, Some(name)) if crate::topics::validate_name(&name).is_err() => {
                        missing_topic(
                            Some(name),
                            id,
                            ResponseError::InvalidTopicException,
                            version,
                        )
                    }
                    (None, Some(name)) => missing_topic(
                        Some(name),
                        id,
                        ResponseError::UnknownTopicOrPartition,
                        version,
                    ),
                    (None, None) => missing_topic(None, id, ResponseError::UnknownTopicId, version),
                }
            })
            .collect(),
    };
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(shard.config.node_id))
        .with_host(StrBytes::from_string(shard.config.advertised_host.clone()))
        .with_port(i32::from(shard.config.advertised_port));
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(shard.config.node_id));
    }
    if version >= 2 {
        response =
            response.with_cluster_id(Some(StrBytes::from_string(shard.config.cluster_id.clone())));
    }
    if (8..=10).contains(&version) {
        response = response.with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED);
    }
    response
}
