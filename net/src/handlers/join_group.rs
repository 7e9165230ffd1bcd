//! JoinGroup v0–9, on the shard that coordinates the group: the member joins (or is handed
//! a member id first, v4+), and the answer waits for the rebalance's join phase to end.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::group::coordinator::store_if_dirty;
use crate::group::state::{JoinRequest, JoinResult};
use crate::shard::Shard;

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|member| {
            let mut out = JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member.member_id))
                .with_metadata(member.metadata);
            if version >= 5 {
                out = out.with_group_instance_id(member.instance_id.map(StrBytes::from_string));
            }
            out
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members);
    if version >= 7 {
        response = response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol_name.map(StrBytes::from_string));
    } else {
        response = response.with_protocol_name(Some(StrBytes::from_string(
            result.protocol_name.unwrap_or_default(),
        )));
    }
    response
}

fn refused(error: ResponseError, member_id: &str, version: i16) -> JoinGroupResponse {
    response(JoinResult::error(error, member_id), version)
}

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    if group_id.is_empty() {
        return refused(ResponseError::InvalidGroupId, &member_id, version);
    }
    let partition = match shard.groups.locate(shard, &group_id) {
        Ok(partition) => partition,
        Err(error) => return refused(error, &member_id, version),
    };
    let rebalance_timeout_ms = if version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let prefix = if client_id.is_empty() {
        "member"
    } else {
        client_id.as_str()
    };
    let new_member_id = format!("{prefix}-{}", Uuid::new_v4());
    let join = JoinRequest {
        member_id: member_id.clone(),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        require_known_member_id: version >= 4,
        client_id,
        client_host,
        rebalance_timeout_ms,
        session_timeout_ms: request.session_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|protocol| (protocol.name.to_string(), protocol.metadata))
            .collect(),
    };
    let now = shard.groups.now();
    let config = shard.groups.config.group.clone();
    let Some(reply) = shard
        .groups
        .with_group(&group_id, partition, true, |entry| {
            entry.group.join(join, new_member_id, now, &config)
        })
    else {
        return refused(ResponseError::CoordinatorNotAvailable, &member_id, version);
    };
    store_if_dirty(shard, &group_id);
    let gone = JoinResult::error(ResponseError::CoordinatorNotAvailable, &member_id);
    response(reply.wait(gone).await, version)
}
