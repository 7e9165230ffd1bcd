//! CreateTopics v2–7: partitions, replication factor (1 on a single broker), configs,
//! manual assignments (all replicas must be this broker), validate-only.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{ControllerRequest, NewTopic};
use crate::shard::Shard;

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let node = shard.config.node_id;
    let mut prechecked: Vec<Option<(i16, String)>> = Vec::new();
    let mut topics = Vec::new();
    for topic in &request.topics {
        let configs = topic
            .configs
            .iter()
            .filter_map(|config| {
                config
                    .value
                    .as_ref()
                    .map(|value| (config.name.to_string(), value.to_string()))
            })
            .collect();
        let mut partitions = topic.num_partitions;
        let mut error = None;
        if !topic.assignments.is_empty() {
            if partitions != -1 || topic.replication_factor != -1 {
                error = Some((
                    ResponseError::InvalidRequest.code(),
                    "assignments given with a partition count or replication factor".to_string(),
                ));
            } else if topic
                .assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1)
            {
                error = Some((
                    ResponseError::InvalidReplicaAssignment.code(),
                    format!("replicas must be exactly [{node}]"),
                ));
            }
            partitions = topic.assignments.len() as i32;
        }
        prechecked.push(error);
        topics.push(NewTopic {
            name: topic.name.0.to_string(),
            partitions,
            replication_factor: if topic.assignments.is_empty() {
                topic.replication_factor
            } else {
                1
            },
            configs,
        });
    }
    let to_create: Vec<NewTopic> = topics
        .iter()
        .zip(&prechecked)
        .filter(|(_, error)| error.is_none())
        .map(|(topic, _)| topic.clone())
        .collect();
    let mut results = shard
        .ask_controller(|reply| ControllerRequest::CreateTopics {
            topics: to_create,
            validate_only: request.validate_only,
            reply,
        })
        .await
        .into_iter();
    let responses = topics
        .iter()
        .zip(prechecked)
        .map(|(topic, precheck)| {
            let outcome = match precheck {
                Some(error) => Err(error),
                None => results.next().unwrap_or(Err((
                    ResponseError::UnknownServerError.code(),
                    "controller unavailable".into(),
                ))),
            };
            let mut result = CreatableTopicResult::default().with_name(
                kafka_protocol::messages::TopicName(StrBytes::from_string(topic.name.clone())),
            );
            match outcome {
                Ok(meta) => {
                    result = result.with_error_code(0);
                    if version >= 5 {
                        result = result
                            .with_num_partitions(meta.partitions() as i32)
                            .with_replication_factor(1);
                    }
                    if version >= 7 {
                        result = result.with_topic_id(meta.id);
                    }
                }
                Err((code, message)) => {
                    result = result
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message)));
                    if version >= 5 {
                        result = result.with_num_partitions(-1).with_replication_factor(-1);
                    }
                }
            }
            result
        })
        .collect();
    CreateTopicsResponse::default().with_topics(responses)
}
