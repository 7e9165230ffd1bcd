//! One handler per Kafka API. Each receives a decoded request and returns the decoded
//! response; [`handle`] dispatches and encodes. The supported version ranges live in
//! [`crate::versions`], the single table that also feeds ApiVersions.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod find_coordinator;
mod incremental_alter_configs;
mod list_offsets;
mod metadata;
mod produce;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::codec::{Request, encode_response};
use crate::fetch_encode::OutChunk;
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

/// Handles one request.
pub async fn handle(shard: &Rc<Shard>, request: Request) -> Reply {
    let Request {
        api_key,
        version,
        header,
        body,
    } = request;
    let correlation_id = header.correlation_id;
    let frame = |response: ResponseKind| {
        Reply::Frame(encode_response(correlation_id, api_key, version, &response))
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
            let response = produce::handle(shard, request, version).await;
            if acks == 0 {
                Reply::Nothing
            } else {
                frame(ResponseKind::Produce(response))
            }
        }
        RequestKind::Fetch(request) => fetch::handle(shard, request, version, correlation_id).await,
        RequestKind::FindCoordinator(request) => frame(ResponseKind::FindCoordinator(
            find_coordinator::handle(shard, &request, version),
        )),
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
        other => Reply::Close(format!(
            "no handler for {api_key:?} ({:?})",
            std::mem::discriminant(&other)
        )),
    }
}
