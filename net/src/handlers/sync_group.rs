//! SyncGroup v0–5, on the group's shard: the leader hands in the assignment, every member
//! gets its part (members wait until the leader's arrives).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::coordinator::store_if_dirty;
use crate::group::state::SyncResult;
use crate::shard::Shard;

fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_assignment(result.assignment);
    if version >= 5 {
        response = response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol_name.map(StrBytes::from_string));
    }
    response
}

fn refused(error: ResponseError, version: i16) -> SyncGroupResponse {
    response(SyncResult::error(error), version)
}

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return refused(ResponseError::InvalidGroupId, version);
    }
    let partition = match shard.groups.locate(shard, &group_id) {
        Ok(partition) => partition,
        Err(error) => return refused(error, version),
    };
    let now = shard.groups.now();
    let assignments = request
        .assignments
        .into_iter()
        .map(|assignment| (assignment.member_id.to_string(), assignment.assignment))
        .collect();
    let protocol_type = request.protocol_type.map(|t| t.to_string());
    let protocol_name = request.protocol_name.map(|n| n.to_string());
    let Some(reply) = shard
        .groups
        .with_group(&group_id, partition, false, |entry| {
            entry.group.sync(
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
                protocol_type.as_deref(),
                protocol_name.as_deref(),
                assignments,
                now,
            )
        })
    else {
        return refused(ResponseError::UnknownMemberId, version);
    };
    store_if_dirty(shard, &group_id);
    let gone = SyncResult::error(ResponseError::CoordinatorNotAvailable);
    response(reply.wait(gone).await, version)
}
