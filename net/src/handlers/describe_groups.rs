//! DescribeGroups v0–6, on the groups' shard (the connection's shard splits the list by
//! owner): state, protocol, and members with their metadata and assignment when Stable.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use crate::group::state::GroupState;
use crate::shard::Shard;

/// "Authorized operations not requested".
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

fn describe(shard: &Shard, group_id: &GroupId, version: i16) -> DescribedGroup {
    let mut out = DescribedGroup::default().with_group_id(group_id.clone());
    if version >= 3 {
        out = out.with_authorized_operations(OPERATIONS_NOT_REQUESTED);
    }
    let partition = match shard.groups.locate(shard, &group_id.0) {
        Ok(partition) => partition,
        Err(error) => return out.with_error_code(error.code()),
    };
    let described = shard
        .groups
        .with_group(&group_id.0, partition, false, |entry| {
            let group = &entry.group;
            let stable = group.state() == GroupState::Stable;
            let members = group
                .describe_members()
                .into_iter()
                .map(|m| {
                    let member = DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if version >= 4 {
                        member.with_group_instance_id(m.instance_id.map(StrBytes::from_string))
                    } else {
                        member
                    }
                })
                .collect();
            (
                group.state().name(),
                group.protocol_type().unwrap_or_default().to_string(),
                if stable {
                    group.protocol().unwrap_or_default().to_string()
                } else {
                    String::new()
                },
                members,
            )
        });
    match described {
        Some((state, protocol_type, protocol, members)) => out
            .with_group_state(StrBytes::from_static_str(state))
            .with_protocol_type(StrBytes::from_string(protocol_type))
            .with_protocol_data(StrBytes::from_string(protocol))
            .with_members(members),
        None => {
            let out = out.with_group_state(StrBytes::from_static_str(GroupState::Dead.name()));
            if version >= 6 {
                out.with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_static_str("group not found")))
            } else {
                out
            }
        }
    }
}

pub(crate) fn handle(
    shard: &Rc<Shard>,
    request: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|group| describe(shard, group, version))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
