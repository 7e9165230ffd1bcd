//! AlterConfigs v0–2: for each topic, the given configs replace all of its overrides (a key
//! left out goes back to its default; a null value is `INVALID_REQUEST`, as in Kafka).
//! `validate_only` checks without changing anything. The change is applied by the
//! controller, which persists it and installs it on every shard, re-configuring open
//! partitions.
//!
//! Broker configs are static in Sluice (config file and flags): a broker resource is
//! refused with `INVALID_REQUEST`, the code Kafka gives for "Cannot update these configs
//! dynamically". Duplicate resources and duplicate keys are `INVALID_REQUEST` as in Kafka.
//!
//! The plumbing to the controller here is shared with IncrementalAlterConfigs.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{check_broker_name, resource_type};
use crate::controller::{ConfigChanges, ControllerRequest};
use crate::shard::Shard;

/// What became of one resource: success or a Kafka error code and message.
pub(super) type Outcome = Result<(), (i16, String)>;

/// One resource's planned change: a topic and its changes for the controller, or the
/// outcome already settled before the controller was asked.
pub(super) type Planned = Result<(String, ConfigChanges), Outcome>;

/// Marks every resource that appears more than once (by type and name).
pub(super) fn duplicate_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)> + Clone,
) -> Vec<bool> {
    let mut seen = HashSet::new();
    let mut repeated = HashSet::new();
    for resource in resources.clone() {
        if !seen.insert(resource) {
            repeated.insert(resource);
        }
    }
    resources
        .map(|resource| repeated.contains(&resource))
        .collect()
}

/// Whether any key appears twice.
pub(super) fn has_duplicate_keys<'a>(keys: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    keys.into_iter().any(|key| !seen.insert(key))
}

/// `INVALID_REQUEST` for a resource named twice (Kafka's message).
pub(super) fn duplicate_resource() -> (i16, String) {
    (
        ResponseError::InvalidRequest.code(),
        "Each resource must appear at most once.".to_string(),
    )
}

/// `INVALID_REQUEST` for a key named twice in one resource (Kafka's message).
pub(super) fn duplicate_keys() -> (i16, String) {
    (
        ResponseError::InvalidRequest.code(),
        "Error due to duplicate config keys".to_string(),
    )
}

/// `INVALID_REQUEST` for null values where a value is needed (Kafka's message).
pub(super) fn null_values(keys: &[&str]) -> (i16, String) {
    (
        ResponseError::InvalidRequest.code(),
        format!("Null value not supported for : {}", keys.join(", ")),
    )
}

/// What becomes of a resource that is not a topic. Broker configs are static: a change to
/// this broker (or the cluster default, empty name) is `INVALID_REQUEST`, the code Kafka
/// gives for configs that cannot be updated dynamically, and an empty change succeeds as
/// in Kafka. Another broker's id and other resource types are `INVALID_REQUEST`.
pub(super) fn not_a_topic(
    shard: &Shard,
    resource_type: i8,
    name: &str,
    no_changes: bool,
) -> Outcome {
    match resource_type {
        resource_type::BROKER => {
            check_broker_name(name, shard.config.node_id)?;
            if no_changes {
                Ok(())
            } else {
                Err((
                    ResponseError::InvalidRequest.code(),
                    "Cannot update these configs dynamically: broker configs are static in \
                     Sluice; set them in the config file or flags"
                        .to_string(),
                ))
            }
        }
        other => Err((
            ResponseError::InvalidRequest.code(),
            format!("Unknown resource type {other}"),
        )),
    }
}

/// Sends the planned topic changes to the controller in one request and returns one
/// outcome per planned entry, in order.
pub(super) async fn apply(
    shard: &Shard,
    planned: Vec<Planned>,
    replace: bool,
    validate_only: bool,
) -> Vec<Outcome> {
    let topics: Vec<(String, ConfigChanges)> = planned
        .iter()
        .filter_map(|plan| plan.as_ref().ok().cloned())
        .collect();
    let mut results = if topics.is_empty() {
        Vec::new()
    } else {
        shard
            .ask_controller(|reply| ControllerRequest::AlterConfigs {
                topics,
                replace,
                validate_only,
                reply,
            })
            .await
    }
    .into_iter();
    planned
        .into_iter()
        .map(|plan| match plan {
            Err(settled) => settled,
            Ok(_) => match results.next() {
                Some(result) => result.map(|_| ()),
                None => Err((
                    ResponseError::UnknownServerError.code(),
                    "controller unavailable".to_string(),
                )),
            },
        })
        .collect()
}

/// `(error code, message)` for the response: message null on success.
pub(super) fn code_and_message(outcome: Outcome) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((code, message)) => (code, Some(StrBytes::from_string(message))),
    }
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let duplicates = duplicate_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let planned: Vec<Planned> = request
        .resources
        .iter()
        .zip(duplicates)
        .map(|(resource, duplicate)| {
            let name = resource.resource_name.as_str();
            if duplicate {
                return Err(Err(duplicate_resource()));
            }
            if has_duplicate_keys(resource.configs.iter().map(|c| c.name.as_str())) {
                return Err(Err(duplicate_keys()));
            }
            let nulls: Vec<&str> = resource
                .configs
                .iter()
                .filter(|config| config.value.is_none())
                .map(|config| config.name.as_str())
                .collect();
            if !nulls.is_empty() {
                return Err(Err(null_values(&nulls)));
            }
            if resource.resource_type != resource_type::TOPIC {
                return Err(not_a_topic(
                    shard,
                    resource.resource_type,
                    name,
                    resource.configs.is_empty(),
                ));
            }
            let changes: BTreeMap<String, Option<String>> = resource
                .configs
                .iter()
                .map(|config| {
                    (
                        config.name.to_string(),
                        config.value.as_ref().map(ToString::to_string),
                    )
                })
                .collect();
            Ok((name.to_string(), changes))
        })
        .collect();
    let outcomes = apply(shard, planned, true, request.validate_only).await;
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(resource, outcome)| {
            let (code, message) = code_and_message(outcome);
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found() {
        let resources = [(2, "a"), (4, "a"), (2, "b"), (2, "a")];
        assert_eq!(
            duplicate_resources(resources.iter().copied()),
            vec![true, false, false, true]
        );
        assert!(has_duplicate_keys(["x", "y", "x"].into_iter()));
        assert!(!has_duplicate_keys(["x", "y"].into_iter()));
    }
}
