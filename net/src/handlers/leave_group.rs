//! LeaveGroup v0–5, on the group's shard: members leave (v3+: several at once, by member id
//! or static instance id), which starts a rebalance for those who stay.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::coordinator::store_if_dirty;
use crate::shard::Shard;

pub(crate) fn handle(
    shard: &Rc<Shard>,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.as_str();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let outcomes = match shard.groups.locate(shard, group_id) {
        Err(error) => return LeaveGroupResponse::default().with_error_code(error.code()),
        Ok(partition) => {
            let now = shard.groups.now();
            shard
                .groups
                .with_group(group_id, partition, false, |entry| {
                    entry.group.leave(&leaving, now)
                })
        }
    };
    store_if_dirty(shard, group_id);
    let Some(outcomes) = outcomes else {
        // No such group: every member is unknown.
        if version < 3 {
            return LeaveGroupResponse::default()
                .with_error_code(ResponseError::UnknownMemberId.code());
        }
        let members = leaving
            .into_iter()
            .map(|(member_id, instance_id)| {
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_group_instance_id(instance_id.map(StrBytes::from_string))
                    .with_error_code(ResponseError::UnknownMemberId.code())
            })
            .collect();
        return LeaveGroupResponse::default().with_members(members);
    };
    if version < 3 {
        let code = outcomes.first().map_or(0, |outcome| outcome.error);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members = outcomes
        .into_iter()
        .map(|outcome| {
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(outcome.member_id))
                .with_group_instance_id(outcome.instance_id.map(StrBytes::from_string))
                .with_error_code(outcome.error)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
