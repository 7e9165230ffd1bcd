//! IncrementalAlterConfigs v0–1: per topic, a list of operations on single keys, applied on
//! top of the topic's overrides:
//!
//! - `SET` (0): set the value;
//! - `DELETE` (1): remove the override (back to the broker or Kafka default);
//! - `APPEND` (2) / `SUBTRACT` (3): add values to / remove values from a list config
//!   (`cleanup.policy`), starting from its effective value. On any other key they are
//!   `INVALID_CONFIG`, as in Kafka.
//!
//! A null value for anything but `DELETE`, an unknown operation, duplicate keys and
//! duplicate resources are `INVALID_REQUEST`. Broker resources are refused like in
//! AlterConfigs (`INVALID_REQUEST`: broker configs are static).

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{
    Planned, apply, code_and_message, duplicate_keys, duplicate_resource, duplicate_resources,
    has_duplicate_keys, not_a_topic, null_values,
};
use super::describe_configs::{config_type, resource_type, topic_config_type};
use crate::config::effective;
use crate::controller::ConfigChanges;
use crate::shard::Shard;

/// `AlterConfigOp.OpType` codes.
mod op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

fn list_items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// The checks Kafka makes on every resource before looking at its type: duplicate keys,
/// then null values for anything but DELETE (both `INVALID_REQUEST`).
fn check_shape(operations: &[(String, i8, Option<String>)]) -> Result<(), (i16, String)> {
    if has_duplicate_keys(operations.iter().map(|(key, _, _)| key.as_str())) {
        return Err(duplicate_keys());
    }
    let nulls: Vec<&str> = operations
        .iter()
        .filter(|(_, operation, value)| *operation != op::DELETE && value.is_none())
        .map(|(key, _, _)| key.as_str())
        .collect();
    if nulls.is_empty() {
        Ok(())
    } else {
        Err(null_values(&nulls))
    }
}

/// Turns a resource's operations into changes to the topic's overrides. `topic` holds the
/// topic's current overrides and `broker` the broker's topic defaults (the base of APPEND
/// and SUBTRACT when the topic has no override). Values are validated by the controller.
///
/// # Errors
/// `(code, message)` for the whole resource, as Kafka fails the resource on any bad op.
pub(super) fn plan_operations(
    topic: &BTreeMap<String, String>,
    broker: &BTreeMap<String, String>,
    operations: &[(String, i8, Option<String>)],
) -> Result<ConfigChanges, (i16, String)> {
    check_shape(operations)?;
    let mut changes = ConfigChanges::new();
    for (key, operation, value) in operations {
        let value = match (*operation, value) {
            (op::DELETE, _) => {
                changes.insert(key.clone(), None);
                continue;
            }
            (op::SET | op::APPEND | op::SUBTRACT, Some(value)) => value,
            (other, _) => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("Unknown operations type {other} for {key}"),
                ));
            }
        };
        if *operation == op::SET {
            changes.insert(key.clone(), Some(value.clone()));
            continue;
        }
        let is_list = crate::config::TOPIC_CONFIG_KEYS
            .iter()
            .any(|(name, _)| name == key)
            && topic_config_type(key) == config_type::LIST;
        if !is_list {
            let verb = if *operation == op::APPEND {
                "append"
            } else {
                "subtract"
            };
            return Err((
                ResponseError::InvalidConfig.code(),
                format!("Config value {verb} is not allowed for config key: {key}"),
            ));
        }
        let current = list_items(effective(key, topic, broker).unwrap_or(""));
        let given = list_items(value);
        let updated: Vec<&str> = if *operation == op::APPEND {
            let mut items = current.clone();
            for item in given {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            items
        } else {
            current
                .into_iter()
                .filter(|item| !given.contains(item))
                .collect()
        };
        changes.insert(key.clone(), Some(updated.join(",")));
    }
    Ok(changes)
}

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let snapshot = shard.topics();
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
            let operations: Vec<(String, i8, Option<String>)> = resource
                .configs
                .iter()
                .map(|config| {
                    (
                        config.name.to_string(),
                        config.config_operation,
                        config.value.as_ref().map(ToString::to_string),
                    )
                })
                .collect();
            if resource.resource_type != resource_type::TOPIC {
                check_shape(&operations).map_err(Err)?;
                return Err(not_a_topic(
                    shard,
                    resource.resource_type,
                    name,
                    operations.is_empty(),
                ));
            }
            let Some(topic) = snapshot.get(name) else {
                return Err(Err((
                    ResponseError::UnknownTopicOrPartition.code(),
                    format!("topic {name} does not exist"),
                )));
            };
            plan_operations(&topic.configs, &shard.config.topic_defaults, &operations)
                .map(|changes| (name.to_string(), changes))
                .map_err(Err)
        })
        .collect();
    let outcomes = apply(shard, planned, false, request.validate_only).await;
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: &[(&str, i8, Option<&str>)]) -> Vec<(String, i8, Option<String>)> {
        list.iter()
            .map(|(k, o, v)| ((*k).to_string(), *o, v.map(str::to_string)))
            .collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn change(key: &str, value: Option<&str>) -> (String, Option<String>) {
        (key.to_string(), value.map(str::to_string))
    }

    #[test]
    fn set_and_delete() {
        let changes = plan_operations(
            &map(&[("segment.ms", "1000")]),
            &BTreeMap::new(),
            &ops(&[
                ("retention.ms", op::SET, Some("5000")),
                ("segment.ms", op::DELETE, None),
                ("flush.ms", op::DELETE, Some("ignored")),
            ]),
        )
        .expect("valid");
        assert_eq!(
            changes.into_iter().collect::<Vec<_>>(),
            vec![
                change("flush.ms", None),
                change("retention.ms", Some("5000")),
                change("segment.ms", None),
            ]
        );
    }

    #[test]
    fn append_and_subtract_work_on_list_configs() {
        let none = BTreeMap::new();
        // From Kafka's default (delete).
        let appended = plan_operations(
            &none,
            &none,
            &ops(&[("cleanup.policy", op::APPEND, Some("compact,delete"))]),
        )
        .expect("valid");
        assert_eq!(
            appended.get("cleanup.policy"),
            Some(&Some("delete,compact".to_string()))
        );
        // From the broker default.
        let broker = map(&[("cleanup.policy", "compact")]);
        let appended = plan_operations(
            &none,
            &broker,
            &ops(&[("cleanup.policy", op::APPEND, Some("delete"))]),
        )
        .expect("valid");
        assert_eq!(
            appended.get("cleanup.policy"),
            Some(&Some("compact,delete".to_string()))
        );
        // From the topic's own override.
        let topic = map(&[("cleanup.policy", "compact,delete")]);
        let subtracted = plan_operations(
            &topic,
            &broker,
            &ops(&[("cleanup.policy", op::SUBTRACT, Some("compact"))]),
        )
        .expect("valid");
        assert_eq!(
            subtracted.get("cleanup.policy"),
            Some(&Some("delete".to_string()))
        );
        let emptied = plan_operations(
            &topic,
            &none,
            &ops(&[("cleanup.policy", op::SUBTRACT, Some("delete,compact"))]),
        )
        .expect("planned (the controller refuses the empty value)");
        assert_eq!(emptied.get("cleanup.policy"), Some(&Some(String::new())));
    }

    #[test]
    fn invalid_operations_are_refused() {
        let none = BTreeMap::new();
        let code = |list: &[(&str, i8, Option<&str>)]| {
            plan_operations(&none, &none, &ops(list)).map_err(|(code, _)| code)
        };
        assert_eq!(
            code(&[("retention.ms", op::APPEND, Some("1"))]),
            Err(ResponseError::InvalidConfig.code())
        );
        assert_eq!(
            code(&[("no.such.key", op::SUBTRACT, Some("1"))]),
            Err(ResponseError::InvalidConfig.code())
        );
        assert_eq!(
            code(&[("retention.ms", op::SET, None)]),
            Err(ResponseError::InvalidRequest.code())
        );
        assert_eq!(
            code(&[("retention.ms", 9, Some("1"))]),
            Err(ResponseError::InvalidRequest.code())
        );
        assert_eq!(
            code(&[
                ("retention.ms", op::SET, Some("1")),
                ("retention.ms", op::DELETE, None)
            ]),
            Err(ResponseError::InvalidRequest.code())
        );
    }
}
