//! ApiVersions (all versions the crate supports): our ranges from the one version table.

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::codec::api_versions_list;

pub(super) fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_versions_list())
}
