//! CreatePartitions v0–3: grows topics to a new partition count (the controller assigns the
//! new partitions to shards and opens them). Manual assignments are accepted when there is
//! one per new partition and each is exactly this broker, else `INVALID_REPLICA_ASSIGNMENT`.
//! A count that does not grow the topic is `INVALID_PARTITIONS`, an unknown topic
//! `UNKNOWN_TOPIC_OR_PARTITION`, a topic named twice `INVALID_REQUEST` (as in Kafka).
//! `validate_only` checks without changing anything.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::alter_configs::duplicate_resources;
use crate::controller::ControllerRequest;
use crate::shard::Shard;

/// Checks manual assignments against the topic's current partition count (`None`: the
/// topic is unknown and the controller will say so).
fn check_assignments(
    topic: &CreatePartitionsTopic,
    assignments: &[CreatePartitionsAssignment],
    current: Option<u32>,
    node: i32,
) -> Result<(), (i16, String)> {
    let invalid = |message: String| (ResponseError::InvalidReplicaAssignment.code(), message);
    let Some(current) = current else {
        return Ok(());
    };
    let current = current as i64;
    let count = i64::from(topic.count);
    if count <= current {
        return Ok(()); // INVALID_PARTITIONS from the controller
    }
    if assignments.len() as i64 != count - current {
        return Err(invalid(format!(
            "Increasing the number of partitions by {} but {} assignments provided.",
            count - current,
            assignments.len()
        )));
    }
    for (index, assignment) in assignments.iter().enumerate() {
        let brokers: Vec<i32> = assignment.broker_ids.iter().map(|id| id.0).collect();
        if let Some(unknown) = brokers.iter().find(|&&id| id != node) {
            return Err(invalid(format!(
                "Unknown broker(s) in replica assignment: {unknown}."
            )));
        }
        if brokers.len() != 1 {
            return Err(invalid(format!(
                "partition {}: replicas {brokers:?}, but the replication factor is 1 (broker {node})",
                current + index as i64
            )));
        }
    }
    Ok(())
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let snapshot = shard.topics();
    let node = shard.config.node_id;
    let duplicates = duplicate_resources(request.topics.iter().map(|t| (0, t.name.0.as_str())));
    let prechecked: Vec<Option<(i16, String)>> = request
        .topics
        .iter()
        .zip(duplicates)
        .map(|(topic, duplicate)| {
            if duplicate {
                return Some((
                    ResponseError::InvalidRequest.code(),
                    "Duplicate topic in request.".to_string(),
                ));
            }
            let current = snapshot
                .get(topic.name.0.as_str())
                .map(|meta| meta.partitions());
            match &topic.assignments {
                Some(assignments) => check_assignments(topic, assignments, current, node).err(),
                None => None,
            }
        })
        .collect();
    let to_grow: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&prechecked)
        .filter(|(_, error)| error.is_none())
        .map(|(topic, _)| (topic.name.0.to_string(), topic.count))
        .collect();
    let mut results = if to_grow.is_empty() {
        Vec::new()
    } else {
        shard
            .ask_controller(|reply| ControllerRequest::CreatePartitions {
                topics: to_grow,
                validate_only: request.validate_only,
                reply,
            })
            .await
    }
    .into_iter();
    let responses = request
        .topics
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
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            match outcome {
                Ok(_) => result.with_error_code(0).with_error_message(None),
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(responses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;

    fn assignment(brokers: &[i32]) -> CreatePartitionsAssignment {
        CreatePartitionsAssignment::default()
            .with_broker_ids(brokers.iter().map(|&id| BrokerId(id)).collect())
    }

    #[test]
    fn assignments_must_be_this_broker_once_per_new_partition() {
        let topic = CreatePartitionsTopic::default().with_count(4);
        let code = |assignments: &[CreatePartitionsAssignment], current| {
            check_assignments(&topic, assignments, current, 1).map_err(|(code, _)| code)
        };
        let bad = Err(ResponseError::InvalidReplicaAssignment.code());
        assert_eq!(code(&[assignment(&[1]), assignment(&[1])], Some(2)), Ok(()));
        assert_eq!(code(&[assignment(&[1])], Some(2)), bad);
        assert_eq!(code(&[assignment(&[1]), assignment(&[2])], Some(2)), bad);
        assert_eq!(code(&[assignment(&[1]), assignment(&[1, 1])], Some(2)), bad);
        assert_eq!(code(&[assignment(&[1]), assignment(&[])], Some(2)), bad);
        // Unknown topic or a shrinking count: left to the controller.
        assert_eq!(code(&[], None), Ok(()));
        assert_eq!(code(&[], Some(5)), Ok(()));
    }
}
