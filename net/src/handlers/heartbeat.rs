//! Heartbeat v0–4, on the group's shard: keeps a member's session alive and tells it when a
//! rebalance started.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::shard::Shard;

pub(crate) fn handle(shard: &Rc<Shard>, request: &HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.as_str();
    let code = match shard.groups.locate(shard, group_id) {
        Err(error) => error.code(),
        Ok(partition) => {
            let now = shard.groups.now();
            shard
                .groups
                .with_group(group_id, partition, false, |entry| {
                    entry.group.heartbeat(
                        &request.member_id,
                        request.group_instance_id.as_deref(),
                        request.generation_id,
                        now,
                    )
                })
                .unwrap_or(ResponseError::UnknownMemberId.code())
        }
    };
    HeartbeatResponse::default().with_error_code(code)
}
