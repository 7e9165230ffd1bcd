//! From a frame to a typed request, and from a typed response to a frame, with
//! `kafka-protocol`. Handlers never see bytes; this module never sees partitions.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::versions;

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// The API.
    pub api_key: ApiKey,
    /// Its version.
    pub version: i16,
    /// The header.
    pub header: RequestHeader,
    /// The body.
    pub body: RequestKind,
}

/// What to do with a frame that is not a request we serve.
#[derive(Debug)]
pub enum Rejection {
    /// Answer with this (already framed) response and keep the connection: ApiVersions at a
    /// version we do not know, per KIP-511.
    Respond(Bytes),
    /// Close the connection after logging this, as Kafka does for requests it cannot parse.
    Close(String),
}

/// Decodes a frame (without its length prefix).
///
/// # Errors
/// A [`Rejection`] saying how to answer.
pub fn decode_request(mut frame: Bytes) -> Result<Request, Rejection> {
    if frame.len() < 8 {
        return Err(Rejection::Close(format!(
            "frame of {} bytes is too short for a header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Err(Rejection::Close(format!("unknown API key {raw_key}")));
    };
    let Some(range) = versions::supported(api_key) else {
        return Err(Rejection::Close(format!(
            "API {api_key:?} is not served by this broker"
        )));
    };
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions {
            return Err(Rejection::Respond(unsupported_api_versions(correlation_id)));
        }
        return Err(Rejection::Close(format!(
            "{api_key:?} version {version} is not supported (supported: {}..={})",
            range.min, range.max
        )));
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|error| {
        Rejection::Close(format!("malformed {api_key:?} v{version} header: {error}"))
    })?;
    let body = RequestKind::decode(api_key, &mut frame, version).map_err(|error| {
        Rejection::Close(format!("malformed {api_key:?} v{version} request: {error}"))
    })?;
    if frame.has_remaining() {
        tracing::debug!(
            ?api_key,
            version,
            trailing = frame.remaining(),
            "request has trailing bytes"
        );
    }
    Ok(Request {
        api_key,
        version,
        header,
        body,
    })
}

/// Every API we serve with its versions, for ApiVersions answers.
#[must_use]
pub fn api_versions_list() -> Vec<ApiVersion> {
    versions::all()
        .map(|(api, range)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

/// The KIP-511 answer to an ApiVersions request of a version we do not know: a v0 body
/// with `UNSUPPORTED_VERSION` and our ranges, so the client can retry with one we know.
fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_versions_list());
    encode_response(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(response),
    )
}

/// Encodes a whole response frame: length prefix, header (v0 for ApiVersions always), body.
///
/// # Panics
/// If the response cannot be encoded at `version` (a field the version lacks was set):
/// that is a handler bug, not client input.
#[must_use]
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Bytes {
    let mut buffer = BytesMut::with_capacity(256);
    buffer.put_i32(0);
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buffer, header_version)
        .expect("response header encodes");
    response
        .encode(&mut buffer, version)
        .unwrap_or_else(|error| panic!("{api_key:?} v{version} response encodes: {error}"));
    let length = i32::try_from(buffer.len() - 4).expect("response under 2 GiB");
    buffer[..4].copy_from_slice(&length.to_be_bytes());
    buffer.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::StrBytes;

    fn frame(api_key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buffer = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buffer, api_key.request_header_version(version))
            .expect("header");
        body.encode(&mut buffer, version).expect("body");
        buffer.freeze()
    }

    #[test]
    fn decodes_a_supported_request() {
        let request = decode_request(frame(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        ))
        .expect("decodes");
        assert_eq!(
            (
                request.api_key,
                request.version,
                request.header.correlation_id
            ),
            (ApiKey::ApiVersions, 3, 7)
        );
    }

    #[test]
    fn unknown_api_versions_version_gets_our_ranges() {
        let mut raw = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).to_vec();
        raw[2..4].copy_from_slice(&99i16.to_be_bytes());
        let Err(Rejection::Respond(mut answer)) = decode_request(Bytes::from(raw)) else {
            panic!("expected an answer")
        };
        let _length = answer.get_i32();
        let header = ResponseHeader::decode(&mut answer, 0).expect("header v0");
        assert_eq!(header.correlation_id, 7);
        let body = ApiVersionsResponse::decode(&mut answer, 0).expect("body v0");
        assert_eq!(body.error_code, ResponseError::UnsupportedVersion.code());
        assert!(
            body.api_keys
                .iter()
                .any(|api| api.api_key == ApiKey::Produce as i16)
        );
    }

    #[test]
    fn garbage_and_unknown_apis_close_the_connection() {
        assert!(matches!(
            decode_request(Bytes::from_static(b"\x00\x01")),
            Err(Rejection::Close(_))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(b"\x7f\x7f\x00\x00\x00\x00\x00\x01")),
            Err(Rejection::Close(_))
        ));
        let mut truncated = frame(
            ApiKey::Metadata,
            9,
            &kafka_protocol::messages::MetadataRequest::default(),
        )
        .to_vec();
        truncated.truncate(12);
        assert!(matches!(
            decode_request(Bytes::from(truncated)),
            Err(Rejection::Close(_))
        ));
        let mut old = frame(
            ApiKey::Produce,
            3,
            &kafka_protocol::messages::ProduceRequest::default(),
        )
        .to_vec();
        old[2..4].copy_from_slice(&1i16.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(old)),
            Err(Rejection::Close(_))
        ));
    }
}
