//! ListGroups v0–5: the groups of one shard (the connection's shard asks every shard and
//! merges), filtered by state (v4+) and type (v5+; every group here is "classic").

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::shard::Shard;

pub(crate) fn handle(
    shard: &Shard,
    request: &ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    if version >= 5 && !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return ListGroupsResponse::default();
    }
    let mut listed: Vec<(String, String, &'static str)> = shard
        .groups
        .list()
        .into_iter()
        .map(|(id, protocol_type, state)| (id, protocol_type, state.name()))
        .filter(|(_, _, state)| {
            version < 4 || states.is_empty() || states.contains(&state.to_ascii_lowercase())
        })
        .collect();
    listed.sort();
    let groups = listed
        .into_iter()
        .map(|(id, protocol_type, state)| {
            let mut group = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            if version >= 4 {
                group = group.with_group_state(StrBytes::from_static_str(state));
            }
            if version >= 5 {
                group = group.with_group_type(StrBytes::from_static_str("classic"));
            }
            group
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
