//! The group coordinator and the idempotent producer at the protocol level (raw Kafka
//! requests built with `kafka-protocol`), where a client library would hide the details:
//!
//! * idempotence: a retried batch (same producer id, epoch and sequence) is stored once and
//!   answered with its original offset — also after a clean restart and after SIGKILL
//!   between the send and its retry; a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch
//!   INVALID_PRODUCER_EPOCH; producer ids never repeat across restarts;
//! * a member that stops heartbeating is evicted after its session timeout;
//! * commit metadata round-trips; ListGroups, DescribeGroups, DeleteGroups (NON_EMPTY_GROUP,
//!   GROUP_ID_NOT_FOUND) and OffsetDelete answer as Kafka's do.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Broker, TestDir, call};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, InitProducerIdRequest, InitProducerIdResponse,
    JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// One idempotent batch of `count` records starting at sequence `sequence`.
fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32, count: usize) -> Bytes {
    let entries = (0..count)
        .map(|i| (None, Bytes::from(format!("seq-{}", sequence + i as i32))))
        .collect();
    common::raw_batch((producer_id, epoch, sequence), entries).freeze()
}

/// Produces (v9, acks=all) one record set to partition 0; returns (error, base offset).
fn produce(stream: &mut TcpStream, topic: &str, records: Bytes) -> (i16, i64) {
    common::produce(stream, topic, 0, records)
}

fn init_producer_id(stream: &mut TcpStream) -> (i64, i16) {
    let response: InitProducerIdResponse = call(
        stream,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

#[test]
fn retried_batches_are_stored_once_across_restarts_and_crashes() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        let topic = "idempotent";
        common::create_topic(&broker, topic, 1, &[]);
        let mut stream = connect(&broker);
        let (producer, epoch) = init_producer_id(&mut stream);
        assert_eq!(epoch, 0);
        let (other, _) = init_producer_id(&mut stream);
        assert_ne!(producer, other, "producer ids are unique");

        let first = idempotent_batch(producer, 0, 0, 3);
        assert_eq!(produce(&mut stream, topic, first.clone()), (0, 0));
        assert_eq!(
            produce(&mut stream, topic, first.clone()),
            (0, 0),
            "duplicate: original offset"
        );
        let gap = idempotent_batch(producer, 0, 5, 1);
        assert_eq!(
            produce(&mut stream, topic, gap).0,
            ResponseError::OutOfOrderSequenceNumber.code()
        );
        let second = idempotent_batch(producer, 0, 3, 2);
        assert_eq!(produce(&mut stream, topic, second.clone()), (0, 3));
        assert_eq!(common::watermarks(&broker, topic, 0), (0, 5));

        // Clean restart between a send and its retry.
        drop(stream);
        broker.stop();
        broker.restart();
        let mut stream = connect(&broker);
        assert_eq!(
            produce(&mut stream, topic, second),
            (0, 3),
            "retry after restart"
        );
        let third = idempotent_batch(producer, 0, 5, 1);
        assert_eq!(produce(&mut stream, topic, third.clone()), (0, 5));

        // SIGKILL between a send and its retry: the acknowledged batch is durable and the
        // producer state is rebuilt from the log.
        drop(stream);
        broker.kill();
        broker.restart();
        let mut stream = connect(&broker);
        assert_eq!(
            produce(&mut stream, topic, third),
            (0, 5),
            "retry after a crash"
        );
        assert_eq!(common::watermarks(&broker, topic, 0), (0, 6));

        // A new epoch fences the old one.
        let bumped = idempotent_batch(producer, 1, 0, 1);
        assert_eq!(produce(&mut stream, topic, bumped), (0, 6));
        let stale = idempotent_batch(producer, 0, 6, 1);
        assert_eq!(
            produce(&mut stream, topic, stale).0,
            ResponseError::InvalidProducerEpoch.code()
        );
        let (after_restarts, _) = init_producer_id(&mut stream);
        assert!(after_restarts > other, "ids keep growing across restarts");
        assert_eq!(common::watermarks(&broker, topic, 0), (0, 7));
        broker.assert_alive();
    });
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// Joins `group` as a new member (JoinGroup v5: MEMBER_ID_REQUIRED, then the real join) and
/// syncs as its leader; returns (member id, generation).
fn join_and_sync(stream: &mut TcpStream, group: &str, session_timeout_ms: i32) -> (String, i32) {
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(5_000)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ])
    };
    let first: JoinGroupResponse = call(stream, ApiKey::JoinGroup, 5, &join(""));
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    let joined: JoinGroupResponse = call(stream, ApiKey::JoinGroup, 5, &join(&member));
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member, "the only member leads");
    assert_eq!(joined.members.len(), 1);
    let synced: SyncGroupResponse = call(
        stream,
        ApiKey::SyncGroup,
        3,
        &SyncGroupRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id(joined.generation_id)
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member.clone()))
                    .with_assignment(Bytes::from_static(b"everything")),
            ]),
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, Bytes::from_static(b"everything"));
    (member, joined.generation_id)
}

fn describe(stream: &mut TcpStream, group: &str) -> (i16, String, usize) {
    let response: DescribeGroupsResponse = call(
        stream,
        ApiKey::DescribeGroups,
        6,
        &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
    );
    let described = &response.groups[0];
    (
        described.error_code,
        described.group_state.to_string(),
        described.members.len(),
    )
}

#[test]
fn a_silent_member_is_evicted_and_group_admin_apis_answer() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(
            &dir.data(),
            2,
            &[
                "--group-initial-rebalance-delay-ms",
                "0",
                "--group-min-session-timeout-ms",
                "1000",
            ],
        );
        let topic = "committed";
        common::create_topic(&broker, topic, 4, &[]);
        let mut stream = connect(&broker);
        let found: FindCoordinatorResponse = call(
            &mut stream,
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("silent")),
        );
        assert_eq!((found.error_code, found.port), (0, i32::from(broker.port)));

        let (member, generation) = join_and_sync(&mut stream, "silent", 2_000);
        assert_eq!(
            describe(&mut stream, "silent"),
            (0, "Stable".to_string(), 1)
        );
        let beat: HeartbeatResponse = call(
            &mut stream,
            ApiKey::Heartbeat,
            3,
            &HeartbeatRequest::default()
                .with_group_id(group_id("silent"))
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member.clone())),
        );
        assert_eq!(beat.error_code, 0);

        // Commit with metadata while a member; it round-trips.
        let commit: OffsetCommitResponse = call(
            &mut stream,
            ApiKey::OffsetCommit,
            7,
            &OffsetCommitRequest::default()
                .with_group_id(group_id("silent"))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(topic)))
                        .with_partitions(vec![
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(2)
                                .with_committed_offset(42)
                                .with_committed_leader_epoch(3)
                                .with_committed_metadata(Some(StrBytes::from_static_str(
                                    "checkpoint é",
                                ))),
                        ]),
                ]),
        );
        assert_eq!(commit.topics[0].partitions[0].error_code, 0);
        let deleted: DeleteGroupsResponse = call(
            &mut stream,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default()
                .with_groups_names(vec![group_id("silent"), group_id("nobody")]),
        );
        assert_eq!(
            deleted.results[0].error_code,
            ResponseError::NonEmptyGroup.code()
        );
        assert_eq!(
            deleted.results[1].error_code,
            ResponseError::GroupIdNotFound.code()
        );

        // No more heartbeats: evicted after the 2 s session timeout.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, state, members) = describe(&mut stream, "silent");
            if state == "Empty" && members == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member never evicted: {state} {members}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        // The commit survives a restart, metadata included.
        drop(stream);
        broker.stop();
        broker.restart();
        let mut stream = connect(&broker);
        let fetch = |stream: &mut TcpStream| -> OffsetFetchResponse {
            call(
                stream,
                ApiKey::OffsetFetch,
                6,
                &OffsetFetchRequest::default()
                    .with_group_id(group_id("silent"))
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str(topic)))
                            .with_partition_indexes(vec![1, 2]),
                    ])),
            )
        };
        let fetched = fetch(&mut stream);
        let partitions = &fetched.topics[0].partitions;
        assert_eq!(
            (
                partitions[0].partition_index,
                partitions[0].committed_offset
            ),
            (1, -1)
        );
        assert_eq!(
            (
                partitions[1].committed_offset,
                partitions[1].committed_leader_epoch,
                partitions[1].metadata.as_deref()
            ),
            (42, 3, Some("checkpoint é"))
        );
        let listed: ListGroupsResponse = call(
            &mut stream,
            ApiKey::ListGroups,
            4,
            &ListGroupsRequest::default()
                .with_states_filter(vec![StrBytes::from_static_str("Empty")]),
        );
        assert!(
            listed
                .groups
                .iter()
                .any(|g| g.group_id.as_str() == "silent"),
            "{listed:?}"
        );
        let deleted: DeleteGroupsResponse = call(
            &mut stream,
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group_id("silent")]),
        );
        assert_eq!(deleted.results[0].error_code, 0);
        assert_eq!(
            describe(&mut stream, "silent").0,
            ResponseError::GroupIdNotFound.code()
        );
        assert_eq!(
            fetch(&mut stream).topics[0].partitions[1].committed_offset,
            -1
        );
        broker.assert_alive();
    });
}
