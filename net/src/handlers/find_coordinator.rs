//! FindCoordinator v0–6: on a single broker every consumer group and transactional id is
//! coordinated here, so the answer is this broker (batched keys from v4). Share groups
//! (key type 2) are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::shard::Shard;

/// Key types: consumer group, transactional id.
const KEY_TYPES_SERVED: [i8; 2] = [0, 1];

pub(super) fn handle(
    shard: &Shard,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let node = BrokerId(shard.config.node_id);
    let host = StrBytes::from_string(shard.config.advertised_host.clone());
    let port = i32::from(shard.config.advertised_port);
    let served = KEY_TYPES_SERVED.contains(&request.key_type);
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let coordinator = Coordinator::default().with_key(key.clone());
                if served {
                    coordinator
                        .with_node_id(node)
                        .with_host(host.clone())
                        .with_port(port)
                } else {
                    coordinator
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "unsupported coordinator key type",
                        )))
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    if !served {
        let response = FindCoordinatorResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        return if version >= 1 {
            response.with_error_message(Some(StrBytes::from_static_str(
                "unsupported coordinator key type",
            )))
        } else {
            response
        };
    }
    FindCoordinatorResponse::default()
        .with_error_code(0)
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::topics::TopicsSnapshot;
    use kafka_protocol::protocol::Encodable;

    /// Regression: without FindCoordinator in ApiVersions, librdkafka refuses to compress
    /// with LZ4 (it takes the API as the marker of a broker that supports it).
    #[test]
    fn answers_this_broker_at_every_version() {
        let config = BrokerConfig {
            node_id: 7,
            advertised_port: 9999,
            ..BrokerConfig::default()
        };
        let shard = Shard::new(0, config, Vec::new(), TopicsSnapshot::default());
        assert!(
            crate::versions::supported(kafka_protocol::messages::ApiKey::FindCoordinator).is_some()
        );
        for version in 0..=6 {
            for key_type in [0i8, 1, 2] {
                if version == 0 && key_type != 0 {
                    continue;
                }
                let mut request = FindCoordinatorRequest::default();
                if version >= 1 {
                    request = request.with_key_type(key_type);
                }
                if version >= 4 {
                    request =
                        request.with_coordinator_keys(vec![StrBytes::from_static_str("group-a")]);
                } else {
                    request = request.with_key(StrBytes::from_static_str("group-a"));
                }
                let response = handle(&shard, &request, version);
                let mut buffer = bytes::BytesMut::new();
                response.encode(&mut buffer, version).expect("encodes");
                let (error, node) = if version >= 4 {
                    (
                        response.coordinators[0].error_code,
                        response.coordinators[0].node_id.0,
                    )
                } else {
                    (response.error_code, response.node_id.0)
                };
                if key_type == 2 {
                    assert_eq!(
                        (error, node),
                        (ResponseError::InvalidRequest.code(), -1),
                        "v{version}"
                    );
                } else {
                    assert_eq!((error, node), (0, 7), "v{version} key type {key_type}");
                }
            }
        }
    }
}
