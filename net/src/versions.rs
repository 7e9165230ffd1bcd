//! The one table of supported APIs and versions. Dispatch refuses what is not in it, and the
//! ApiVersions answer is generated from it, so the two cannot disagree.
//!
//! Each entry is the range this broker implements, intersected with what the
//! `kafka-protocol` crate can decode, so a version is never advertised that cannot be read.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// `(api, lowest version we implement, highest)`. A version is listed only when every field
/// it carries is honoured.
const IMPLEMENTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
];

/// The versions of `api` this broker serves, or `None` if it does not serve the API.
#[must_use]
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    let (_, min, max) = IMPLEMENTED.iter().find(|(key, _, _)| *key == api)?;
    let range = VersionRange {
        min: *min,
        max: *max,
    }
    .intersect(&api.valid_versions());
    (!range.is_empty()).then_some(range)
}

/// Every served API with its version range, for the ApiVersions answer.
pub fn all() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    IMPLEMENTED
        .iter()
        .filter_map(|(api, _, _)| supported(*api).map(|range| (*api, range)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_decodable_and_unique() {
        for (api, min, max) in IMPLEMENTED {
            let range =
                supported(*api).unwrap_or_else(|| panic!("{api:?} has no decodable version"));
            assert_eq!(
                (range.min, range.max),
                (*min, *max),
                "{api:?}: table and crate disagree"
            );
            assert_eq!(
                IMPLEMENTED
                    .iter()
                    .filter(|(other, _, _)| other == api)
                    .count(),
                1
            );
        }
        assert!(supported(ApiKey::ConsumerGroupHeartbeat).is_none());
        assert_eq!(all().count(), IMPLEMENTED.len());
    }
}
