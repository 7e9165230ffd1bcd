//! One handler per Kafka API. Each receives a decoded request and returns the decoded
//! response; [`handle`] dispatches and encodes. The supported version ranges live in
//! [`crate::versions`], the single table that also feeds ApiVersions.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;

use std::rc::Rc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse, RequestKind, ResponseKind,
};

use crate::codec::{Request, encode_response};
use crate::fetch_encode::OutChunk;
use crate::group::coordinator::{GroupCall, call_on, route};
use crate::shard::Shard;

/// What goes back to the client for one request.
#[derive(Debug)]
pub enum Reply {
    /// A whole encoded frame.
    Frame(Bytes),
    /// A frame in pieces, record data by reference (Fetch).
    Chunks(Vec<OutChunk>),
    /// Nothing (produce with acks=0).
    Nothing,
    /// Close the connection after logging this.
    Close(String),
}

/// Handles one request from the client at `peer`.
pub async fn handle(shard: &Rc<Shard>, request: Request, peer: &str) -> Reply {
    let Request {
        api_key,
        version,
        header,
        body,
    } = request;
    let correlation_id = header.correlation_id;
    let call = |body: RequestKind| GroupCall {
        version,
        client_id: header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        client_host: format!("/{}", peer.rsplit_once(':').map_or(peer, |(host, _)| host)),
        body,
    };
    let frame = |response: ResponseKind| {
        shard
            .metrics
            .count_response_errors(api_key as i16, &response);
        Reply::Frame(encode_response(correlation_id, api_key, version, &response))
    };
    let routed = |response: Option<ResponseKind>| match response {
        Some(response) => frame(response),
        None => Reply::Close("the group's shard stopped".to_string()),
    };
    match body {
        RequestKind::ApiVersions(request) => frame(ResponseKind::ApiVersions(
            api_versions::handle(&request, version),
        )),
        RequestKind::Metadata(request) => frame(ResponseKind::Metadata(
            metadata::handle(shard, request, version).await,
        )),
        RequestKind::Produce(request) => {
            let acks = request.acks;
            let response = ResponseKind::Produce(produce::handle(shard, request, version).await);
            if acks == 0 {
                shard
                    .metrics
                    .count_response_errors(api_key as i16, &response);
                Reply::Nothing
            } else {
                frame(response)
            }
        }
        RequestKind::Fetch(request) => fetch::handle(shard, request, version, correlation_id).await,
        RequestKind::FindCoordinator(request) => {
            if request.key_type == 0 {
                // Create the offsets topic now, so the group's first call finds it.
                if let Err(error) = crate::group::coordinator::offsets_topic(shard).await {
                    tracing::warn!(?error, "creating the offsets topic");
                }
            }
            frame(ResponseKind::FindCoordinator(find_coordinator::handle(
                shard, &request, version,
            )))
        }
        RequestKind::ListOffsets(request) => frame(ResponseKind::ListOffsets(
            list_offsets::handle(shard, request, version).await,
        )),
        RequestKind::CreateTopics(request) => frame(ResponseKind::CreateTopics(
            create_topics::handle(shard, request, version).await,
        )),
        RequestKind::DeleteTopics(request) => frame(ResponseKind::DeleteTopics(
            delete_topics::handle(shard, request, version).await,
        )),
        RequestKind::DeleteRecords(request) => frame(ResponseKind::DeleteRecords(
            delete_records::handle(shard, request, version).await,
        )),
        RequestKind::DescribeConfigs(request) => frame(ResponseKind::DescribeConfigs(
            describe_configs::handle(shard, request, version),
        )),
        RequestKind::AlterConfigs(request) => frame(ResponseKind::AlterConfigs(
            alter_configs::handle(shard, request, version).await,
        )),
        RequestKind::IncrementalAlterConfigs(request) => {
            frame(ResponseKind::IncrementalAlterConfigs(
                incremental_alter_configs::handle(shard, request, version).await,
            ))
        }
        RequestKind::CreatePartitions(request) => frame(ResponseKind::CreatePartitions(
            create_partitions::handle(shard, request, version).await,
        )),
        RequestKind::DescribeCluster(request) => frame(ResponseKind::DescribeCluster(
            describe_cluster::handle(shard, request, version),
        )),
        RequestKind::InitProducerId(request) => frame(ResponseKind::InitProducerId(
            init_producer_id::handle(shard, &request).await,
        )),
        RequestKind::JoinGroup(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::JoinGroup(request))).await)
        }
        RequestKind::SyncGroup(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::SyncGroup(request))).await)
        }
        RequestKind::Heartbeat(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::Heartbeat(request))).await)
        }
        RequestKind::LeaveGroup(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::LeaveGroup(request))).await)
        }
        RequestKind::OffsetCommit(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::OffsetCommit(request))).await)
        }
        RequestKind::OffsetDelete(request) => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::OffsetDelete(request))).await)
        }
        RequestKind::OffsetFetch(request) if version < 8 => {
            let id = request.group_id.0.to_string();
            routed(route(shard, &id, call(RequestKind::OffsetFetch(request))).await)
        }
        RequestKind::OffsetFetch(request) => {
            let parts = request.groups.iter().map(|group| {
                let single = OffsetFetchRequest::default()
                    .with_groups(vec![group.clone()])
                    .with_require_stable(request.require_stable);
                route(
                    shard,
                    &group.group_id.0,
                    call(RequestKind::OffsetFetch(single)),
                )
            });
            let taken = gather(parts, |answer| match answer {
                ResponseKind::OffsetFetch(part) => Some(part.groups),
                _ => None,
            });
            match taken.await {
                Some(groups) => frame(ResponseKind::OffsetFetch(
                    OffsetFetchResponse::default().with_groups(groups),
                )),
                None => Reply::Close("the group's shard stopped".to_string()),
            }
        }
        RequestKind::DescribeGroups(request) => {
            let parts = request.groups.iter().map(|group| {
                let single = DescribeGroupsRequest::default()
                    .with_groups(vec![group.clone()])
                    .with_include_authorized_operations(request.include_authorized_operations);
                route(shard, &group.0, call(RequestKind::DescribeGroups(single)))
            });
            let taken = gather(parts, |answer| match answer {
                ResponseKind::DescribeGroups(part) => Some(part.groups),
                _ => None,
            });
            match taken.await {
                Some(groups) => frame(ResponseKind::DescribeGroups(
                    DescribeGroupsResponse::default().with_groups(groups),
                )),
                None => Reply::Close("the group's shard stopped".to_string()),
            }
        }
        RequestKind::DeleteGroups(request) => {
            let parts = request.groups_names.iter().map(|group| {
                let single = DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]);
                route(shard, &group.0, call(RequestKind::DeleteGroups(single)))
            });
            let taken = gather(parts, |answer| match answer {
                ResponseKind::DeleteGroups(part) => Some(part.results),
                _ => None,
            });
            match taken.await {
                Some(results) => frame(ResponseKind::DeleteGroups(
                    DeleteGroupsResponse::default().with_results(results),
                )),
                None => Reply::Close("the group's shard stopped".to_string()),
            }
        }
        RequestKind::ListGroups(request) => {
            let parts = (0..shard.shards())
                .map(|owner| call_on(shard, owner, call(RequestKind::ListGroups(request.clone()))));
            let mut merged = ListGroupsResponse::default();
            for answer in join_all(parts).await {
                match answer {
                    Some(ResponseKind::ListGroups(part)) => {
                        if merged.error_code == 0 {
                            merged.error_code = part.error_code;
                        }
                        merged.groups.extend(part.groups);
                    }
                    _ => return Reply::Close("a shard stopped".to_string()),
                }
            }
            frame(ResponseKind::ListGroups(merged))
        }
        other => Reply::Close(format!(
            "no handler for {api_key:?} ({:?})",
            std::mem::discriminant(&other)
        )),
    }
}

/// Waits for per-group answers from the groups' shards and collects the entries `take`
/// pulls out of each, in request order; `None` if a shard stopped.
async fn gather<T>(
    answers: impl IntoIterator<Item = impl Future<Output = Option<ResponseKind>>>,
    take: impl Fn(ResponseKind) -> Option<Vec<T>>,
) -> Option<Vec<T>> {
    let mut entries = Vec::new();
    for answer in join_all(answers).await {
        entries.extend(take(answer?)?);
    }
    Some(entries)
}

/// Runs a group API call on the shard that coordinates the group; `None` for a request that
/// is not a group API.
pub async fn serve_group_call(shard: &Rc<Shard>, call: GroupCall) -> Option<ResponseKind> {
    let GroupCall {
        version,
        client_id,
        client_host,
        body,
    } = call;
    Some(match body {
        RequestKind::JoinGroup(request) => ResponseKind::JoinGroup(
            join_group::handle(shard, request, version, client_id, client_host).await,
        ),
        RequestKind::SyncGroup(request) => {
            ResponseKind::SyncGroup(sync_group::handle(shard, request, version).await)
        }
        RequestKind::Heartbeat(request) => {
            ResponseKind::Heartbeat(heartbeat::handle(shard, &request))
        }
        RequestKind::LeaveGroup(request) => {
            ResponseKind::LeaveGroup(leave_group::handle(shard, &request, version))
        }
        RequestKind::OffsetCommit(request) => {
            ResponseKind::OffsetCommit(offset_commit::handle(shard, request, version).await)
        }
        RequestKind::OffsetFetch(request) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(shard, request, version))
        }
        RequestKind::OffsetDelete(request) => {
            ResponseKind::OffsetDelete(offset_delete::handle(shard, &request).await)
        }
        RequestKind::DescribeGroups(request) => {
            ResponseKind::DescribeGroups(describe_groups::handle(shard, &request, version))
        }
        RequestKind::DeleteGroups(request) => {
            ResponseKind::DeleteGroups(delete_groups::handle(shard, &request).await)
        }
        RequestKind::ListGroups(request) => {
            ResponseKind::ListGroups(list_groups::handle(shard, &request, version))
        }
        _ => return None,
    })
}
