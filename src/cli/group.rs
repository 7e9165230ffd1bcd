//! `sluice group list|describe|delete|reset-offsets`, like `kafka-consumer-groups` or
//! `rpk group`, over [`super::wire`] (librdkafka has no group admin API). Every request about
//! a group goes to its coordinator, found with FindCoordinator; offsets of partitions
//! (ListOffsets) are asked of each partition's leader.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest,
    FindCoordinatorRequest, GroupId, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::wire::{Connection, describe_error};
use super::{ClientArgs, GroupCommand, print, table};

/// ListOffsets timestamp of the log end offset.
const LATEST: i64 = -1;
/// ListOffsets timestamp of the log start offset.
const EARLIEST: i64 = -2;

/// The error of a commit while the group has members.
const ACTIVE_GROUP: &str = "group is active (has members): stop its consumers first";

/// Runs a `sluice group` command.
///
/// # Errors
/// The brokers could not be reached, or refused the request; the message is one line.
pub fn run(args: &ClientArgs, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List => list(args),
        GroupCommand::Describe { group } => describe(args, &group),
        GroupCommand::Delete { groups } => delete(args, &groups),
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to_earliest,
            to_latest,
            to_offset,
            dry_run,
        } => {
            let target = match (to_earliest, to_latest, to_offset) {
                (true, _, _) => Target::Earliest,
                (_, true, _) => Target::Latest,
                (_, _, Some(offset)) => Target::Offset(offset),
                _ => bail!("one of --to-earliest, --to-latest or --to-offset is required"),
            };
            reset_offsets(args, &group, &topic, &partitions, target, dry_run)
        }
    }
}

/// Where `reset-offsets` moves a group.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Whether a group-level error code means "no such group".
fn is_missing(code: i16) -> bool {
    code == ResponseError::GroupIdNotFound.code()
}

/// A connection to the coordinator of `group` (FindCoordinator, key type 0), retried while
/// the broker answers that the coordinator is not available yet.
fn coordinator(args: &ClientArgs, group: &str) -> anyhow::Result<Connection> {
    let deadline = Instant::now() + args.timeout;
    let mut bootstrap = Connection::connect(&args.brokers, args.timeout)?;
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    loop {
        // v4+ batches the keys; v0-3 carry one key and answer with host and port.
        let response = bootstrap.send_capped(&request, 3)?;
        if response.error_code == 0 {
            let address = format!("{}:{}", response.host.as_str(), response.port);
            return Connection::connect(&address, args.timeout)
                .with_context(|| format!("connecting to the coordinator of group '{group}'"));
        }
        let retriable = response.error_code == ResponseError::CoordinatorNotAvailable.code()
            || response.error_code == ResponseError::CoordinatorLoadInProgress.code();
        if !retriable || Instant::now() >= deadline {
            bail!(
                "finding the coordinator of group '{group}': {}",
                describe_error(response.error_code, response.error_message.as_deref())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `sluice group list`: ListGroups on every broker of the cluster.
fn list(args: &ClientArgs) -> anyhow::Result<()> {
    let mut bootstrap = Connection::connect(&args.brokers, args.timeout)?;
    let metadata = bootstrap.send(
        &MetadataRequest::default()
            .with_topics(Some(Vec::new()))
            .with_allow_auto_topic_creation(false),
    )?;
    let mut groups = BTreeMap::new();
    for broker in &metadata.brokers {
        let address = format!("{}:{}", broker.host.as_str(), broker.port);
        let mut connection = Connection::connect(&address, args.timeout)?;
        // v5 only adds a filter by group type.
        let response = connection.send_capped(&ListGroupsRequest::default(), 4)?;
        if response.error_code != 0 {
            bail!(
                "listing the groups of {address}: {}",
                describe_error(response.error_code, None)
            );
        }
        for group in response.groups {
            let state = if group.group_state.is_empty() {
                "-".to_string()
            } else {
                group.group_state.to_string()
            };
            let protocol_type = if group.protocol_type.is_empty() {
                "-".to_string()
            } else {
                group.protocol_type.to_string()
            };
            groups.insert(group.group_id.0.to_string(), (state, protocol_type));
        }
    }
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(group, (state, protocol_type))| vec![group, state, protocol_type])
        .collect();
    print(&table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows))
}

/// The partitions of a consumer-protocol assignment (`None` if it does not decode).
fn decode_assignment(bytes: &Bytes) -> Option<Vec<(String, i32)>> {
    let mut bytes = bytes.clone();
    if bytes.remaining() < 2 {
        return None;
    }
    let version = bytes.get_i16();
    // Newer versions only add fields after the ones read: decode them as the newest known.
    let version = version.clamp(0, 3);
    let assignment = ConsumerProtocolAssignment::decode(&mut bytes, version).ok()?;
    Some(
        assignment
            .assigned_partitions
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (topic.topic.0.to_string(), *partition))
            })
            .collect(),
    )
}

/// `topic:0,1 other:2` for a member's partitions.
fn format_partitions(partitions: &[(String, i32)]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    if by_topic.is_empty() {
        return "-".to_string();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            let list: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            format!("{topic}:{}", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The committed offsets of `group` (of `topics`, or of every topic when `None`).
fn committed(
    connection: &mut Connection,
    group: &str,
    topics: Option<Vec<OffsetFetchRequestTopic>>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(topics);
    // v8+ batches groups; v6-7 carry one group id (and null topics for all of them).
    let response = connection.send_capped(&request, 7)?;
    if response.error_code != 0 {
        bail!(
            "fetching the offsets of group '{group}': {}",
            describe_error(response.error_code, None)
        );
    }
    let mut offsets = BTreeMap::new();
    for topic in response.topics {
        for partition in topic.partitions {
            if partition.error_code != 0 {
                bail!(
                    "fetching the offset of group '{group}' in {}/{}: {}",
                    topic.name.0.as_str(),
                    partition.partition_index,
                    describe_error(partition.error_code, None)
                );
            }
            if partition.committed_offset >= 0 {
                offsets.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.committed_offset,
                );
            }
        }
    }
    Ok(offsets)
}

/// Metadata of `topics` (every topic must exist).
fn topic_metadata(
    connection: &mut Connection,
    topics: &BTreeSet<String>,
) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|topic| MetadataRequestTopic::default().with_name(Some(topic_name(topic))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(false);
    let metadata = connection.send(&request)?;
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map_or("?", |name| name.0.as_str());
        if topic.error_code == ResponseError::UnknownTopicOrPartition.code() {
            bail!("unknown topic '{name}'");
        } else if topic.error_code != 0
            && topic.error_code != ResponseError::LeaderNotAvailable.code()
        {
            bail!("topic '{name}': {}", describe_error(topic.error_code, None));
        }
    }
    Ok(metadata)
}

/// The offsets at `timestamp` (LATEST or EARLIEST) of `partitions`, each asked of its
/// leader (from `metadata`).
fn list_offsets(
    args: &ClientArgs,
    metadata: &MetadataResponse,
    partitions: &BTreeSet<(String, i32)>,
    timestamp: i64,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, partition) in partitions {
        let leader = metadata
            .topics
            .iter()
            .filter(|t| t.name.as_ref().is_some_and(|name| name.0.as_str() == topic))
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == *partition)
            .map(|p| p.leader_id.0)
            .ok_or_else(|| anyhow!("unknown partition {topic}/{partition}"))?;
        by_leader
            .entry(leader)
            .or_default()
            .entry(topic)
            .or_default()
            .push(*partition);
    }
    let mut offsets = BTreeMap::new();
    for (leader, topics) in by_leader {
        let broker = metadata
            .brokers
            .iter()
            .find(|broker| broker.node_id.0 == leader)
            .ok_or_else(|| anyhow!("no leader is available for a partition (broker {leader})"))?;
        let address = format!("{}:{}", broker.host.as_str(), broker.port);
        let mut connection = Connection::connect(&address, args.timeout)?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_timeout_ms(i32::try_from(args.timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|partition| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(partition)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = connection.send(&request)?;
        for topic in response.topics {
            for partition in topic.partitions {
                if partition.error_code != 0 {
                    bail!(
                        "listing the offsets of {}/{}: {}",
                        topic.name.0.as_str(),
                        partition.partition_index,
                        describe_error(partition.error_code, None)
                    );
                }
                offsets.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.offset,
                );
            }
        }
    }
    Ok(offsets)
}

/// Runs `sluice group describe GROUP`.
fn describe(args: &ClientArgs, group: &str) -> anyhow::Result<()> {
    let mut connection = coordinator(args, group)?;
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    // v6 only adds an error message.
    let response = connection.send_capped(&request, 5)?;
    let described = response
        .groups
        .into_iter()
        .find(|described| described.group_id.0.as_str() == group)
        .ok_or_else(|| anyhow!("the coordinator did not describe group '{group}'"))?;
    if is_missing(described.error_code) || described.group_state.as_str() == "Dead" {
        bail!("group '{group}' does not exist");
    }
    if described.error_code != 0 {
        bail!(
            "describing group '{group}': {}",
            describe_error(described.error_code, described.error_message.as_deref())
        );
    }
    let consumer = described.protocol_type.as_str() == "consumer";
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut member_rows = Vec::new();
    for member in &described.members {
        let assigned = if consumer {
            decode_assignment(&member.member_assignment)
        } else {
            None
        };
        let partitions = match &assigned {
            Some(partitions) => format_partitions(partitions),
            None if member.member_assignment.is_empty() => "-".to_string(),
            None => format!("({} bytes)", member.member_assignment.len()),
        };
        for partition in assigned.unwrap_or_default() {
            owners.insert(partition, member.member_id.to_string());
        }
        member_rows.push(vec![
            member.member_id.to_string(),
            member.client_id.to_string(),
            member.client_host.to_string(),
            partitions,
        ]);
    }

    let offsets = committed(&mut connection, group, None)?;
    let partitions: BTreeSet<(String, i32)> =
        offsets.keys().chain(owners.keys()).cloned().collect();
    let topics: BTreeSet<String> = partitions.iter().map(|(topic, _)| topic.clone()).collect();
    let ends = if partitions.is_empty() {
        BTreeMap::new()
    } else {
        let metadata = topic_metadata(&mut connection, &topics)?;
        list_offsets(args, &metadata, &partitions, LATEST)?
    };
    let mut total_lag = 0;
    let offset_rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|key| {
            let committed = offsets.get(key).copied();
            let end = ends.get(key).copied();
            let lag = match (committed, end) {
                (Some(committed), Some(end)) => {
                    let lag = (end - committed).max(0);
                    total_lag += lag;
                    lag.to_string()
                }
                _ => "-".to_string(),
            };
            let show =
                |value: Option<i64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
            vec![
                key.0.clone(),
                key.1.to_string(),
                show(committed),
                show(end),
                lag,
                owners.get(key).cloned().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();

    let dash = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text.to_string()
        }
    };
    let mut out = format!(
        "group     {group}\nstate     {}\nprotocol  {}/{}\nmembers   {}\nlag       {total_lag}\n",
        described.group_state.as_str(),
        dash(described.protocol_type.as_str()),
        dash(described.protocol_data.as_str()),
        described.members.len()
    );
    if !member_rows.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"],
            &member_rows,
        ));
    }
    if !offset_rows.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG",
                "MEMBER",
            ],
            &offset_rows,
        ));
    }
    print(&out)
}

/// Runs `sluice group delete GROUP…`: each group is asked of its coordinator.
fn delete(args: &ClientArgs, groups: &[String]) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for group in groups {
        let result = coordinator(args, group).and_then(|mut connection| {
            let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let response = connection.send(&request)?;
            Ok(response
                .results
                .iter()
                .find(|result| result.group_id.0.as_str() == group)
                .map_or(0, |result| result.error_code))
        });
        match result {
            Ok(0) => print(&format!("deleted group '{group}'\n"))?,
            Ok(code) if is_missing(code) => {
                errors.push(format!("cannot delete group '{group}': it does not exist"));
            }
            Ok(code) if code == ResponseError::NonEmptyGroup.code() => errors.push(format!(
                "cannot delete group '{group}': it has members (stop its consumers first)"
            )),
            Ok(code) => errors.push(format!(
                "cannot delete group '{group}': {}",
                describe_error(code, None)
            )),
            Err(error) => errors.push(format!("cannot delete group '{group}': {error:#}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errors.join("; ")))
    }
}

/// Runs `sluice group reset-offsets`.
fn reset_offsets(
    args: &ClientArgs,
    group: &str,
    topic: &str,
    only: &[i32],
    target: Target,
    dry_run: bool,
) -> anyhow::Result<()> {
    let mut connection = coordinator(args, group)?;
    let metadata = topic_metadata(&mut connection, &BTreeSet::from([topic.to_string()]))?;
    let all: BTreeSet<i32> = metadata
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_index)
        .collect();
    if let Some(missing) = only.iter().find(|p| !all.contains(p)) {
        bail!("unknown partition {topic}/{missing}");
    }
    let partitions: BTreeSet<(String, i32)> = all
        .iter()
        .filter(|p| only.is_empty() || only.contains(p))
        .map(|p| (topic.to_string(), *p))
        .collect();
    let earliest = list_offsets(args, &metadata, &partitions, EARLIEST)?;
    let latest = list_offsets(args, &metadata, &partitions, LATEST)?;
    let current = committed(
        &mut connection,
        group,
        Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.iter().map(|(_, p)| *p).collect()),
        ]),
    )?;

    let mut targets = Vec::new();
    let mut rows = Vec::new();
    for key in &partitions {
        let start = earliest.get(key).copied().unwrap_or(0);
        let end = latest.get(key).copied().unwrap_or(start);
        let new = match target {
            Target::Earliest => start,
            Target::Latest => end,
            Target::Offset(offset) => offset.clamp(start, end.max(start)),
        };
        targets.push((key.1, new));
        rows.push(vec![
            key.0.clone(),
            key.1.to_string(),
            current
                .get(key)
                .map_or_else(|| "-".to_string(), ToString::to_string),
            new.to_string(),
        ]);
    }
    let mut out = table(&["TOPIC", "PARTITION", "CURRENT", "NEW"], &rows);
    if dry_run {
        out.push_str("(dry run: nothing committed)\n");
        return print(&out);
    }

    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    targets
                        .iter()
                        .map(|(partition, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*partition)
                                .with_committed_offset(*offset)
                        })
                        .collect(),
                ),
        ]);
    let response = connection.send(&request)?;
    for topic in &response.topics {
        for partition in &topic.partitions {
            let code = partition.error_code;
            if code == ResponseError::UnknownMemberId.code()
                || code == ResponseError::IllegalGeneration.code()
                || code == ResponseError::RebalanceInProgress.code()
            {
                bail!("{ACTIVE_GROUP}");
            }
            if code != 0 {
                bail!(
                    "committing the offset of {}/{}: {}",
                    topic.name.0.as_str(),
                    partition.partition_index,
                    describe_error(code, None)
                );
            }
        }
    }
    print(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn assignments_decode_after_their_version() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![2, 0]),
            TopicPartition::default()
                .with_topic(topic_name("u"))
                .with_partitions(vec![1]),
        ]);
        let mut bytes = bytes::BytesMut::new();
        bytes.extend_from_slice(&1i16.to_be_bytes());
        assignment.encode(&mut bytes, 1).expect("encode");
        let partitions = decode_assignment(&bytes.freeze()).expect("decodes");
        assert_eq!(format_partitions(&partitions), "t:0,2 u:1");
        assert_eq!(decode_assignment(&Bytes::from_static(&[0])), None);
        assert_eq!(format_partitions(&[]), "-");
    }
}
