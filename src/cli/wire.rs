//! A minimal blocking Kafka client over a `std` TCP stream, for the requests librdkafka does
//! not expose: ApiVersions (`cluster info`), Metadata with the controller id, and
//! IncrementalAlterConfigs (`topic alter-config`), and the consumer-group admin requests
//! (`group …`). Messages are encoded and decoded by the
//! `kafka-protocol` crate; each request uses the highest version both the broker (from
//! ApiVersions) and the crate support. Every socket operation is bounded by the timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::format_duration;

/// The largest response accepted (a Metadata response of a very large cluster fits).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The version of ApiVersions sent first (Kafka 2.4+); older brokers answer it with a v0
/// response carrying `UNSUPPORTED_VERSION` and their versions, which is understood too.
const API_VERSIONS_VERSION: i16 = 3;

/// One API a broker serves: its key and version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// The API key.
    pub key: i16,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

impl ApiVersionRange {
    /// The API's name (`Produce`, `Fetch`, …), or `Unknown(key)` for keys newer than the
    /// `kafka-protocol` crate.
    #[must_use]
    pub fn name(&self) -> String {
        match ApiKey::try_from(self.key) {
            Ok(api) => format!("{api:?}"),
            Err(()) => format!("Unknown({})", self.key),
        }
    }
}

/// A connection to one broker, with the API versions it announced.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    address: String,
    next_correlation_id: i32,
    versions: Vec<ApiVersionRange>,
}

impl Connection {
    /// Connects to the first bootstrap broker of `brokers` (comma-separated `HOST:PORT`)
    /// that accepts a connection and answers ApiVersions, all within `timeout`.
    ///
    /// # Errors
    /// No broker answered in time; the message names the brokers and the last cause.
    pub fn connect(brokers: &str, timeout: Duration) -> anyhow::Result<Connection> {
        let deadline = Instant::now() + timeout;
        let mut last_error = anyhow!("no broker address given");
        for address in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Self::connect_one(address, deadline, timeout) {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = error,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(anyhow!(
            "cannot reach the brokers at {brokers} within {} ({last_error:#})",
            format_duration(timeout)
        ))
    }

    fn connect_one(address: &str, deadline: Instant, timeout: Duration) -> anyhow::Result<Self> {
        let resolved: Vec<SocketAddr> = address
            .to_socket_addrs()
            .with_context(|| format!("resolving {address}"))?
            .collect();
        let mut last_error = anyhow!("{address} resolves to no address");
        for socket_address in resolved {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!("{address}: timed out");
            }
            let stream = match TcpStream::connect_timeout(&socket_address, remaining) {
                Ok(stream) => stream,
                Err(error) => {
                    last_error = anyhow!("{address}: {error}");
                    continue;
                }
            };
            stream.set_read_timeout(Some(timeout))?;
            stream.set_write_timeout(Some(timeout))?;
            stream.set_nodelay(true)?;
            let mut connection = Connection {
                stream,
                address: address.to_string(),
                next_correlation_id: 1,
                versions: Vec::new(),
            };
            connection.versions = connection
                .api_versions()
                .with_context(|| format!("ApiVersions from {address}"))?;
            return Ok(connection);
        }
        Err(last_error)
    }

    /// The address this connection was made to, as given.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The APIs the broker announced, in its order.
    #[must_use]
    pub fn versions(&self) -> &[ApiVersionRange] {
        &self.versions
    }

    fn api_versions(&mut self) -> anyhow::Result<Vec<ApiVersionRange>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut body = self.exchange::<ApiVersionsRequest>(&request, API_VERSIONS_VERSION)?;
        // A broker that does not know this version answers in v0 with UNSUPPORTED_VERSION
        // (Kafka's rule for ApiVersions); the error code comes first in every version.
        let error_code = body
            .clone()
            .try_get_i16()
            .context("empty ApiVersions response")?;
        let version = if error_code == ResponseError::UnsupportedVersion.code() {
            0
        } else {
            API_VERSIONS_VERSION
        };
        let response = ApiVersionsResponse::decode(&mut body, version)?;
        if response.error_code != 0 && version != 0 {
            bail!("{}", describe_error(response.error_code, None));
        }
        Ok(response
            .api_keys
            .iter()
            .map(|api| ApiVersionRange {
                key: api.api_key,
                min: api.min_version,
                max: api.max_version,
            })
            .collect())
    }

    /// The version of `R` to use: the highest both the broker and this client support.
    ///
    /// # Errors
    /// The broker does not serve `R` in any version this client knows.
    pub fn version_of<R: Request>(&self) -> anyhow::Result<i16> {
        let name = ApiVersionRange {
            key: R::KEY,
            min: 0,
            max: 0,
        }
        .name();
        let served = self
            .versions
            .iter()
            .find(|api| api.key == R::KEY)
            .ok_or_else(|| anyhow!("the broker at {} does not support {name}", self.address))?;
        let max = served.max.min(R::VERSIONS.max);
        if max < served.min.max(R::VERSIONS.min) {
            bail!(
                "the broker at {} supports {name} v{}-{}, this client v{}-{}",
                self.address,
                served.min,
                served.max,
                R::VERSIONS.min,
                R::VERSIONS.max
            );
        }
        Ok(max)
    }

    /// Sends `request` in the best common version no higher than `cap` (for requests whose
    /// newer versions change shape, such as the batched OffsetFetch v8+).
    ///
    /// # Errors
    /// As [`Connection::send`], and when the broker serves only versions above `cap`.
    pub fn send_capped<R: Request>(
        &mut self,
        request: &R,
        cap: i16,
    ) -> anyhow::Result<R::Response> {
        let best = self.version_of::<R>()?;
        let lowest = self
            .versions
            .iter()
            .find(|api| api.key == R::KEY)
            .map_or(0, |api| api.min.max(R::VERSIONS.min));
        let version = best.min(cap);
        if version < lowest {
            bail!(
                "the broker at {} serves no version of API {} up to v{cap}",
                self.address,
                R::KEY
            );
        }
        let mut body = self.exchange(request, version)?;
        R::Response::decode(&mut body, version).context("decoding the response")
    }

    /// Sends `request` in the best common version and returns the decoded response.
    ///
    /// # Errors
    /// The broker does not support the request, the connection failed or timed out, or the
    /// response did not decode.
    pub fn send<R: Request>(&mut self, request: &R) -> anyhow::Result<R::Response> {
        let version = self.version_of::<R>()?;
        let mut body = self.exchange(request, version)?;
        R::Response::decode(&mut body, version).context("decoding the response")
    }

    /// Sends one request and returns the response body after its header.
    fn exchange<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<Bytes> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-cli")));
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&[0; 4]);
        header.encode(&mut buffer, R::header_version(version))?;
        request.encode(&mut buffer, version)?;
        let length = i32::try_from(buffer.len() - 4).context("request too large")?;
        buffer[..4].copy_from_slice(&length.to_be_bytes());
        self.stream
            .write_all(&buffer)
            .map_err(|error| self.io_error(error))?;

        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .map_err(|error| self.io_error(error))?;
        let length = usize::try_from(i32::from_be_bytes(length))
            .ok()
            .filter(|&length| length <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| anyhow!("invalid response length from {}", self.address))?;
        let mut body = vec![0u8; length];
        self.stream
            .read_exact(&mut body)
            .map_err(|error| self.io_error(error))?;
        let mut body = Bytes::from(body);
        let response_header =
            ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
        if response_header.correlation_id != correlation_id {
            bail!(
                "response out of order from {} (correlation id {} for {correlation_id})",
                self.address,
                response_header.correlation_id
            );
        }
        Ok(body)
    }

    fn io_error(&self, error: std::io::Error) -> anyhow::Error {
        match error.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                anyhow!("{}: no answer in time", self.address)
            }
            std::io::ErrorKind::UnexpectedEof => {
                anyhow!("{}: the broker closed the connection", self.address)
            }
            _ => anyhow!("{}: {error}", self.address),
        }
    }
}

/// Kafka's name of an error code (`INVALID_CONFIG`), from the crate's variant name.
#[must_use]
pub fn error_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE".to_string();
    };
    if let ResponseError::Unknown(code) = error {
        return format!("error code {code}");
    }
    let mut name = String::new();
    for (index, c) in error.to_string().chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A Kafka error code (and the broker's message, if any) as text.
#[must_use]
pub fn describe_error(code: i16, message: Option<&str>) -> String {
    let name = error_name(code);
    match message {
        Some(message) if !message.is_empty() => format!("{message} ({name})"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(40), "INVALID_CONFIG");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "error code 9999");
        assert_eq!(
            describe_error(40, Some("bad value")),
            "bad value (INVALID_CONFIG)"
        );
        assert_eq!(describe_error(40, Some("")), "INVALID_CONFIG");
    }
}
