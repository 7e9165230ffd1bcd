//! DescribeCluster v0–2: the cluster is this broker (advertised host and port), which is
//! also the controller. Only the broker endpoint type (1) is served, as on a Kafka broker
//! listener: controllers (2) get `MISMATCHED_ENDPOINT_TYPE`, unknown types
//! `UNSUPPORTED_ENDPOINT_TYPE`. Cluster authorized operations, when asked for, are every
//! operation Kafka supports on the cluster resource (Sluice has no authorizer, and Kafka
//! without one answers the same); otherwise Kafka's "not requested" marker.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::shard::Shard;

const BROKERS: i8 = 1;
const CONTROLLERS: i8 = 2;
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// `AclOperation` codes Kafka supports on the cluster resource: CREATE (5), ALTER (7),
/// DESCRIBE (8), CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11) and
/// IDEMPOTENT_WRITE (12), as a bit field.
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;

pub(super) fn handle(
    shard: &Rc<Shard>,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let config = &shard.config;
    let mut response = DescribeClusterResponse::default().with_cluster_authorized_operations(
        if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        },
    );
    if version >= 1 && request.endpoint_type != BROKERS {
        let (error, message) = if request.endpoint_type == CONTROLLERS {
            (
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
            )
        } else {
            (
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {}", request.endpoint_type),
            )
        };
        return response
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port))
        .with_rack(None);
    response = response
        .with_error_code(0)
        .with_error_message(None)
        .with_cluster_id(StrBytes::from_string(config.cluster_id.clone()))
        .with_controller_id(BrokerId(config.node_id))
        .with_brokers(vec![broker]);
    if version >= 1 {
        response = response.with_endpoint_type(BROKERS);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::topics::TopicsSnapshot;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn answers_encode_at_every_version() {
        let config = BrokerConfig {
            node_id: 3,
            ..BrokerConfig::default()
        };
        let shard = Rc::new(Shard::new(0, config, Vec::new(), TopicsSnapshot::default()));
        for version in 0..=2 {
            for (endpoint_type, operations) in [
                (BROKERS, false),
                (BROKERS, true),
                (CONTROLLERS, false),
                (9, false),
            ] {
                let mut request = DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(operations);
                if version >= 1 {
                    request = request.with_endpoint_type(endpoint_type);
                }
                let response = handle(&shard, request, version);
                let mut buffer = bytes::BytesMut::new();
                response.encode(&mut buffer, version).expect("encodes");
                let expected = match (version, endpoint_type) {
                    (0, _) | (_, BROKERS) => 0,
                    (_, CONTROLLERS) => ResponseError::MismatchedEndpointType.code(),
                    _ => ResponseError::UnsupportedEndpointType.code(),
                };
                assert_eq!(response.error_code, expected);
                if expected == 0 {
                    assert_eq!(response.controller_id, BrokerId(3));
                    assert_eq!(response.brokers.len(), 1);
                    assert_eq!(
                        response.cluster_authorized_operations,
                        if operations { 8096 } else { i32::MIN }
                    );
                }
            }
        }
    }
}
