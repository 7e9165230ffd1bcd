//! DeleteGroups v0–2, on the groups' shard (the connection's shard splits the list by
//! owner): a group without members is deleted with its offsets (tombstones in the offsets
//! topic); one with members gets NON_EMPTY_GROUP.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::group::coordinator::persist;
use crate::group::records::GroupRecord;
use crate::group::state::GroupState;
use crate::shard::Shard;

async fn delete(shard: &Rc<Shard>, group_id: &str) -> Result<(), ResponseError> {
    let partition = shard.groups.locate(shard, group_id)?;
    let records = shard
        .groups
        .with_group(group_id, partition, false, |entry| {
            if !entry.group.is_empty() || entry.group.state() == GroupState::Dead {
                return Err(if entry.group.state() == GroupState::Dead {
                    ResponseError::GroupIdNotFound
                } else {
                    ResponseError::NonEmptyGroup
                });
            }
            entry.group.mark_dead();
            let mut records: Vec<GroupRecord> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| GroupRecord::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                })
                .collect();
            records.push(GroupRecord::Group {
                group: group_id.to_string(),
                value: None,
            });
            Ok(records)
        })
        .ok_or(ResponseError::GroupIdNotFound)??;
    shard.groups.remove_group(group_id);
    persist(shard, partition, &records).await
}

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: &DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group in &request.groups_names {
        let code = delete(shard, &group.0).await.err().map_or(0, |e| e.code());
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group.clone())
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
