//! Zero-copy encoding of Fetch responses.
//!
//! `kafka-protocol` encodes a `FetchResponse` into one buffer, copying every partition's record
//! data into it. Here the frame is encoded by hand instead: the protocol fields (length prefix,
//! response header, and the FetchResponse body of versions 4..=18) go into one small buffer,
//! and the record data stays where it is, as [`RecordChunk`]s of memory ([`Bytes`]) or of
//! segment files (to be sent with `sendfile`). The output is a list of [`OutChunk`]s whose
//! concatenation is byte-identical to what `kafka-protocol` produces for the equivalent
//! `FetchResponse` (the tests check this for every version).
//!
//! What is encoded, and how it relates to `kafka_protocol::messages::FetchResponse`:
//! - `aborted_transactions` is always an empty, non-null array (`Some(vec![])`; Sluice has no
//!   transactions, and an empty list is valid for both isolation levels).
//! - `records` is never null: a partition without data gets a zero-length records field
//!   (`Some(Bytes::new())`), as Kafka brokers send.
//! - The tagged fields `diverging_epoch`, `current_leader`, `snapshot_id` (v12+) and
//!   `node_endpoints` (v16+) are left at their defaults, so they are not on the wire.
//! - Fields a version does not have are dropped: `error_code` and `session_id` below v7,
//!   `log_start_offset` below v5, `preferred_read_replica` below v11, the topic name above
//!   v12 and the topic id below v13. (`kafka-protocol` refuses to encode a non-default
//!   `session_id` below v7 or `preferred_read_replica` below v11; here they are ignored.)
//!
//! Threads: plain data, no I/O; encoding happens on the shard that serves the connection.

use std::fs::File;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, TopicName};
use uuid::Uuid;

use crate::limits::FRAME_LENGTH_SIZE;

/// Oldest Fetch version this encoder writes.
pub const FETCH_VERSION_MIN: i16 = 4;
/// Newest Fetch version this encoder writes.
pub const FETCH_VERSION_MAX: i16 = 18;
/// First flexible version: compact lengths and tagged fields (and response header v1).
const FLEXIBLE_VERSION_MIN: i16 = 12;
/// First version with `error_code` and `session_id` at the top level.
const SESSION_VERSION_MIN: i16 = 7;
/// First version with `log_start_offset`.
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;
/// First version with `preferred_read_replica`.
const PREFERRED_READ_REPLICA_VERSION_MIN: i16 = 11;
/// First version that names topics by id rather than by name.
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// Why a Fetch response cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchEncodeError {
    /// The version is outside [`FETCH_VERSION_MIN`]..=[`FETCH_VERSION_MAX`].
    #[error("Fetch response version {version} is not supported")]
    UnsupportedVersion {
        /// Requested version.
        version: i16,
    },
    /// A topic name is longer than the version's string type allows (`i16::MAX` bytes
    /// before v12).
    #[error("topic name of {len} bytes is too long for Fetch v{version}")]
    TopicNameTooLong {
        /// Length of the name in bytes.
        len: usize,
        /// Response version.
        version: i16,
    },
    /// A partition's record data is longer than the version's bytes type allows
    /// (`i32::MAX` before v12, `u32::MAX - 1` from v12).
    #[error("{len} bytes of records of partition {partition} are too many for Fetch v{version}")]
    RecordsTooLarge {
        /// Partition index.
        partition: i32,
        /// Total length of the partition's record chunks.
        len: u64,
        /// Response version.
        version: i16,
    },
    /// An array (topics or partitions) has too many items for its length type.
    #[error("array of {len} items is too long to encode")]
    ArrayTooLong {
        /// Number of items.
        len: usize,
    },
    /// The whole frame (after the length prefix) is over `i32::MAX` bytes.
    #[error("response frame of {len} bytes is too large")]
    FrameTooLarge {
        /// Length of the frame, not counting the length prefix.
        len: u64,
    },
}

/// Record data of one partition: whole batches, from memory or from a segment file.
#[derive(Debug, Clone)]
pub enum RecordChunk {
    /// Batches held in memory; sent from this buffer as is.
    Memory(Bytes),
    /// Batches in a file: `len` bytes starting at byte `position`; sent with `sendfile`.
    File {
        /// The segment file.
        file: Arc<File>,
        /// Offset of the first byte in the file.
        position: u64,
        /// Number of bytes.
        len: u64,
    },
}

impl RecordChunk {
    /// Number of bytes of record data.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Self::Memory(bytes) => len_u64(bytes.len()),
            Self::File { len, .. } => *len,
        }
    }

    /// Whether the chunk holds no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for RecordChunk {
    fn from(bytes: Bytes) -> Self {
        Self::Memory(bytes)
    }
}

/// One piece of an encoded response frame, in order: encoded protocol bytes, or record data.
#[derive(Debug, Clone)]
pub enum OutChunk {
    /// Protocol bytes (length prefix, header, fields). Never empty.
    Encoded(Bytes),
    /// Record data of a partition, exactly as given to the encoder. Never empty.
    Records(RecordChunk),
}

impl OutChunk {
    /// Number of bytes this chunk puts on the wire.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Self::Encoded(bytes) => len_u64(bytes.len()),
            Self::Records(records) => records.len(),
        }
    }

    /// Whether the chunk puts no bytes on the wire (never true for encoder output).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One partition of a Fetch response.
#[derive(Debug, Clone)]
pub struct FetchPartitionOut {
    /// Partition index.
    pub partition_index: i32,
    /// Error code, 0 for none.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (-1 if unknown).
    pub last_stable_offset: i64,
    /// Log start offset (-1 if unknown); v5+.
    pub log_start_offset: i64,
    /// Preferred read replica, -1 for none; v11+.
    pub preferred_read_replica: i32,
    /// Record data, whole batches in offset order; empty for none. Empty chunks are skipped.
    pub records: Vec<RecordChunk>,
}

impl Default for FetchPartitionOut {
    /// The defaults of `kafka_protocol`'s `PartitionData`.
    fn default() -> Self {
        Self {
            partition_index: 0,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            preferred_read_replica: -1,
            records: Vec::new(),
        }
    }
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchTopicOut {
    /// Topic name; on the wire for versions < 13.
    pub topic: TopicName,
    /// Topic id; on the wire for versions >= 13.
    pub topic_id: Uuid,
    /// Partitions.
    pub partitions: Vec<FetchPartitionOut>,
}

/// A whole Fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchResponseOut {
    /// Throttle time in milliseconds.
    pub throttle_time_ms: i32,
    /// Top-level error code, 0 for none; v7+.
    pub error_code: i16,
    /// Fetch session id, 0 for none; v7+.
    pub session_id: i32,
    /// Topics.
    pub topics: Vec<FetchTopicOut>,
}

/// Encodes a whole response frame: the 4-byte length prefix, the response header (version
/// `ApiKey::Fetch.response_header_version(version)`: v0 below Fetch v12, flexible v1 from
/// v12) and the FetchResponse body of `version`, with each partition's record data as
/// separate [`OutChunk::Records`] chunks, neither copied nor read.
///
/// The chunks alternate: one [`OutChunk::Encoded`] between runs of record chunks, no empty
/// chunk, the first chunk starts with the length prefix. All encoded chunks are slices of a
/// single allocation.
///
/// # Errors
/// An unsupported version, or a field or the frame too large for its length type.
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    response: &FetchResponseOut,
) -> Result<Vec<OutChunk>, FetchEncodeError> {
    if !(FETCH_VERSION_MIN..=FETCH_VERSION_MAX).contains(&version) {
        return Err(FetchEncodeError::UnsupportedVersion { version });
    }
    let mut writer = FrameWriter::new(version, encoded_size_hint(response));

    // Length prefix, filled in by `finish`.
    writer.buf.put_i32(0);

    // Response header.
    writer.buf.put_i32(correlation_id);
    if ApiKey::Fetch.response_header_version(version) >= 1 {
        writer.no_tagged_fields();
    }

    // FetchResponse body.
    writer.buf.put_i32(response.throttle_time_ms);
    if version >= SESSION_VERSION_MIN {
        writer.buf.put_i16(response.error_code);
        writer.buf.put_i32(response.session_id);
    }
    writer.array_len(response.topics.len())?;
    for topic in &response.topics {
        writer.topic(topic)?;
    }
    // Tagged fields: node_endpoints (v16+) is empty, hence absent.
    writer.no_tagged_fields();

    writer.finish()
}

/// Total bytes of the chunks (including the length prefix).
#[must_use]
pub fn frame_len(chunks: &[OutChunk]) -> u64 {
    chunks
        .iter()
        .fold(0u64, |total, chunk| total.saturating_add(chunk.len()))
}

/// Accumulates the encoded bytes and where record chunks go between them.
struct FrameWriter {
    version: i16,
    flexible: bool,
    buf: BytesMut,
    /// Record chunks, each with the length of `buf` at the point it belongs.
    records: Vec<(usize, RecordChunk)>,
    /// Total bytes of `records`.
    records_len: u64,
}

impl FrameWriter {
    fn new(version: i16, capacity: usize) -> Self {
        Self {
            version,
            flexible: version >= FLEXIBLE_VERSION_MIN,
            buf: BytesMut::with_capacity(capacity),
            records: Vec::new(),
            records_len: 0,
        }
    }

    fn topic(&mut self, topic: &FetchTopicOut) -> Result<(), FetchEncodeError> {
        if self.version < TOPIC_ID_VERSION_MIN {
            self.topic_name(topic.topic.as_str())?;
        } else {
            self.buf.put_slice(topic.topic_id.as_bytes());
        }
        self.array_len(topic.partitions.len())?;
        for partition in &topic.partitions {
            self.partition(partition)?;
        }
        self.no_tagged_fields();
        Ok(())
    }

    fn partition(&mut self, partition: &FetchPartitionOut) -> Result<(), FetchEncodeError> {
        self.buf.put_i32(partition.partition_index);
        self.buf.put_i16(partition.error_code);
        self.buf.put_i64(partition.high_watermark);
        self.buf.put_i64(partition.last_stable_offset);
        if self.version >= LOG_START_OFFSET_VERSION_MIN {
            self.buf.put_i64(partition.log_start_offset);
        }
        // aborted_transactions: empty, not null.
        self.array_len(0)?;
        if self.version >= PREFERRED_READ_REPLICA_VERSION_MIN {
            self.buf.put_i32(partition.preferred_read_replica);
        }
        self.records(partition.partition_index, &partition.records)?;
        // Tagged fields: diverging_epoch, current_leader, snapshot_id are defaults, hence
        // absent.
        self.no_tagged_fields();
        Ok(())
    }

    /// The records field: its length here, the data as chunks in between encoded bytes.
    fn records(&mut self, partition: i32, chunks: &[RecordChunk]) -> Result<(), FetchEncodeError> {
        let len = chunks
            .iter()
            .fold(0u64, |total, chunk| total.saturating_add(chunk.len()));
        let too_large = || FetchEncodeError::RecordsTooLarge {
            partition,
            len,
            version: self.version,
        };
        if self.flexible {
            let encoded = len
                .checked_add(1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(too_large)?;
            self.unsigned_varint(encoded);
        } else {
            let encoded = i32::try_from(len).map_err(|_| too_large())?;
            self.buf.put_i32(encoded);
        }
        let at = self.buf.len();
        for chunk in chunks.iter().filter(|chunk| !chunk.is_empty()) {
            self.records.push((at, chunk.clone()));
        }
        self.records_len = self.records_len.saturating_add(len);
        Ok(())
    }

    /// A non-nullable string: `STRING` before v12, `COMPACT_STRING` from v12.
    fn topic_name(&mut self, name: &str) -> Result<(), FetchEncodeError> {
        let too_long = || FetchEncodeError::TopicNameTooLong {
            len: name.len(),
            version: self.version,
        };
        if self.flexible {
            let encoded = name
                .len()
                .checked_add(1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(too_long)?;
            self.unsigned_varint(encoded);
        } else {
            let encoded = i16::try_from(name.len()).map_err(|_| too_long())?;
            self.buf.put_i16(encoded);
        }
        self.buf.put_slice(name.as_bytes());
        Ok(())
    }

    /// The length of a non-null array: `INT32` before v12, `UNSIGNED_VARINT` of len + 1 from
    /// v12.
    fn array_len(&mut self, len: usize) -> Result<(), FetchEncodeError> {
        let too_long = FetchEncodeError::ArrayTooLong { len };
        if self.flexible {
            let encoded = len
                .checked_add(1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(too_long)?;
            self.unsigned_varint(encoded);
        } else {
            let encoded = i32::try_from(len).map_err(|_| too_long)?;
            self.buf.put_i32(encoded);
        }
        Ok(())
    }

    /// An empty tagged-field section, in flexible versions only.
    fn no_tagged_fields(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }

    fn unsigned_varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            // Low 7 bits with the continuation bit; truncation is the point.
            self.buf.put_u8((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        // `value < 0x80` here, so the cast is exact.
        self.buf.put_u8(value as u8);
    }

    /// Fills in the length prefix and splits the encoded bytes around the record chunks.
    fn finish(self) -> Result<Vec<OutChunk>, FetchEncodeError> {
        let Self {
            mut buf,
            records,
            records_len,
            ..
        } = self;
        let encoded_len = len_u64(buf.len() - FRAME_LENGTH_SIZE);
        let len = encoded_len.saturating_add(records_len);
        let prefix = i32::try_from(len).map_err(|_| FetchEncodeError::FrameTooLarge { len })?;
        buf[..FRAME_LENGTH_SIZE].copy_from_slice(&prefix.to_be_bytes());

        let encoded = buf.freeze();
        let mut chunks = Vec::with_capacity(2 * records.len() + 1);
        let mut start = 0;
        for (at, chunk) in records {
            if at > start {
                chunks.push(OutChunk::Encoded(encoded.slice(start..at)));
                start = at;
            }
            chunks.push(OutChunk::Records(chunk));
        }
        if start < encoded.len() {
            chunks.push(OutChunk::Encoded(encoded.slice(start..)));
        }
        Ok(chunks)
    }
}

/// An upper bound of the encoded bytes (not records) of `response` in any version, so that
/// the buffer is allocated once.
fn encoded_size_hint(response: &FetchResponseOut) -> usize {
    // Prefix, header, throttle time, error code, session id, topics length, tagged fields.
    const FIXED: usize = 4 + 5 + 4 + 2 + 4 + 5 + 1;
    // Topic id or name length, partitions length, tagged fields (plus the name).
    const TOPIC: usize = 16 + 5 + 5 + 1;
    // Index, error, high watermark, LSO, log start, aborted length, preferred replica,
    // records length, tagged fields.
    const PARTITION: usize = 4 + 2 + 8 + 8 + 8 + 5 + 4 + 5 + 1;
    response.topics.iter().fold(FIXED, |size, topic| {
        size.saturating_add(TOPIC)
            .saturating_add(topic.topic.len())
            .saturating_add(topic.partitions.len().saturating_mul(PARTITION))
    })
}

/// `usize` is at most 64 bits on every supported target.
fn len_u64(len: usize) -> u64 {
    len as u64
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;
    use std::sync::OnceLock;

    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::{
        Decodable as _, Encodable as _, HeaderVersion as _, Message as _, StrBytes,
    };
    use proptest::prelude::*;

    use super::*;

    const FIXTURE_LEN: usize = 70_000;

    fn fixture_byte(i: usize) -> u8 {
        // Truncation intended: a pattern that differs between neighbouring offsets.
        (i.wrapping_mul(7).wrapping_add(i / 251)) as u8
    }

    /// A segment-like file with known contents, shared by all tests.
    fn fixture() -> Arc<File> {
        static FILE: OnceLock<Arc<File>> = OnceLock::new();
        FILE.get_or_init(|| {
            let mut file = tempfile::tempfile().expect("create temp file");
            let contents: Vec<u8> = (0..FIXTURE_LEN).map(fixture_byte).collect();
            file.write_all(&contents).expect("write temp file");
            Arc::new(file)
        })
        .clone()
    }

    fn file_chunk(position: u64, len: u64) -> RecordChunk {
        RecordChunk::File {
            file: fixture(),
            position,
            len,
        }
    }

    fn memory_chunk(len: usize, seed: u8) -> RecordChunk {
        RecordChunk::Memory((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
    }

    fn read_chunk(chunk: &RecordChunk, out: &mut Vec<u8>) {
        match chunk {
            RecordChunk::Memory(bytes) => out.extend_from_slice(bytes),
            RecordChunk::File {
                file,
                position,
                len,
            } => {
                let start = out.len();
                out.resize(start + usize::try_from(*len).expect("chunk fits memory"), 0);
                file.read_exact_at(&mut out[start..], *position)
                    .expect("read file chunk");
            }
        }
    }

    /// The bytes the chunks put on the wire.
    fn materialize(chunks: &[OutChunk]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            match chunk {
                OutChunk::Encoded(bytes) => out.extend_from_slice(bytes),
                OutChunk::Records(records) => read_chunk(records, &mut out),
            }
        }
        out
    }

    fn records_bytes(chunks: &[RecordChunk]) -> Bytes {
        let mut out = Vec::new();
        for chunk in chunks {
            read_chunk(chunk, &mut out);
        }
        Bytes::from(out)
    }

    /// The `kafka-protocol` message equivalent to `response` in `version` (fields the version
    /// lacks at their defaults, which `kafka-protocol` requires).
    fn to_kafka(response: &FetchResponseOut, version: i16) -> FetchResponse {
        let responses = response
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let preferred = if version >= 11 {
                            p.preferred_read_replica
                        } else {
                            -1
                        };
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(p.error_code)
                            .with_high_watermark(p.high_watermark)
                            .with_last_stable_offset(p.last_stable_offset)
                            .with_log_start_offset(p.log_start_offset)
                            .with_aborted_transactions(Some(Vec::new()))
                            .with_preferred_read_replica(preferred.into())
                            .with_records(Some(records_bytes(&p.records)))
                    })
                    .collect();
                FetchableTopicResponse::default()
                    .with_topic(topic.topic.clone())
                    .with_topic_id(topic.topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        FetchResponse::default()
            .with_throttle_time_ms(response.throttle_time_ms)
            .with_error_code(response.error_code)
            .with_session_id(if version >= 7 { response.session_id } else { 0 })
            .with_responses(responses)
    }

    /// The frame `kafka-protocol` encodes: length prefix, header, body.
    fn kafka_frame(correlation_id: i32, version: i16, response: &FetchResponse) -> Vec<u8> {
        let header_version = FetchResponse::header_version(version);
        assert_eq!(
            header_version,
            ApiKey::Fetch.response_header_version(version)
        );
        let mut body = Vec::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut body, header_version)
            .expect("encode header");
        response.encode(&mut body, version).expect("encode body");
        let mut frame = i32::try_from(body.len())
            .expect("frame fits i32")
            .to_be_bytes()
            .to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    /// Checks the chunk invariants, equality with `kafka-protocol`, and the decoded fields.
    fn check(correlation_id: i32, version: i16, response: &FetchResponseOut) {
        let chunks = encode_fetch_response(correlation_id, version, response).expect("encode");

        // Shape: no empty chunk, no two encoded chunks in a row, records in input order.
        assert!(matches!(chunks.first(), Some(OutChunk::Encoded(_))));
        assert!(chunks.iter().all(|chunk| !chunk.is_empty()));
        assert!(
            chunks
                .windows(2)
                .all(|w| !matches!(w, [OutChunk::Encoded(_), OutChunk::Encoded(_)]))
        );
        let inputs: Vec<&RecordChunk> = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.records)
            .filter(|c| !c.is_empty())
            .collect();
        let outputs: Vec<&RecordChunk> = chunks
            .iter()
            .filter_map(|c| match c {
                OutChunk::Records(r) => Some(r),
                OutChunk::Encoded(_) => None,
            })
            .collect();
        assert_eq!(inputs.len(), outputs.len());
        for (input, output) in inputs.iter().zip(&outputs) {
            assert!(
                same_chunk(input, output),
                "records chunk not passed through"
            );
        }

        // Byte equality with kafka-protocol.
        let ours = materialize(&chunks);
        let theirs = kafka_frame(correlation_id, version, &to_kafka(response, version));
        assert_eq!(ours.len(), theirs.len(), "frame length, v{version}");
        assert!(ours == theirs, "frames differ, v{version}");
        assert_eq!(frame_len(&chunks), len_u64(ours.len()));
        let prefix = i32::from_be_bytes(ours[..4].try_into().expect("4 bytes"));
        assert_eq!(
            i64::from(prefix),
            i64::try_from(ours.len() - 4).expect("fits")
        );

        // Round trip through kafka-protocol's decoder.
        let mut buf = Bytes::from(ours).slice(4..);
        let header =
            ResponseHeader::decode(&mut buf, FetchResponse::header_version(version)).expect("h");
        assert_eq!(header.correlation_id, correlation_id);
        let decoded = FetchResponse::decode(&mut buf, version).expect("decode body");
        assert!(buf.is_empty(), "trailing bytes after the body");
        assert_decoded(&decoded, response, version);
    }

    fn same_chunk(a: &RecordChunk, b: &RecordChunk) -> bool {
        match (a, b) {
            (RecordChunk::Memory(a), RecordChunk::Memory(b)) => {
                a.as_ptr() == b.as_ptr() && a.len() == b.len()
            }
            (
                RecordChunk::File {
                    file: fa,
                    position: pa,
                    len: la,
                },
                RecordChunk::File {
                    file: fb,
                    position: pb,
                    len: lb,
                },
            ) => Arc::ptr_eq(fa, fb) && pa == pb && la == lb,
            _ => false,
        }
    }

    fn assert_decoded(decoded: &FetchResponse, response: &FetchResponseOut, version: i16) {
        assert_eq!(decoded.throttle_time_ms, response.throttle_time_ms);
        if version >= 7 {
            assert_eq!(decoded.error_code, response.error_code);
            assert_eq!(decoded.session_id, response.session_id);
        } else {
            assert_eq!(decoded.error_code, 0);
            assert_eq!(decoded.session_id, 0);
        }
        assert!(decoded.node_endpoints.is_empty());
        assert!(decoded.unknown_tagged_fields.is_empty());
        assert_eq!(decoded.responses.len(), response.topics.len());
        for (d, topic) in decoded.responses.iter().zip(&response.topics) {
            if version < 13 {
                assert_eq!(d.topic, topic.topic);
                assert!(d.topic_id.is_nil());
            } else {
                assert_eq!(d.topic.len(), 0);
                assert_eq!(d.topic_id, topic.topic_id);
            }
            assert_eq!(d.partitions.len(), topic.partitions.len());
            for (dp, p) in d.partitions.iter().zip(&topic.partitions) {
                assert_eq!(dp.partition_index, p.partition_index);
                assert_eq!(dp.error_code, p.error_code);
                assert_eq!(dp.high_watermark, p.high_watermark);
                assert_eq!(dp.last_stable_offset, p.last_stable_offset);
                let log_start = if version >= 5 { p.log_start_offset } else { -1 };
                assert_eq!(dp.log_start_offset, log_start);
                let preferred = if version >= 11 {
                    p.preferred_read_replica
                } else {
                    -1
                };
                assert_eq!(dp.preferred_read_replica.0, preferred);
                assert_eq!(dp.aborted_transactions, Some(Vec::new()));
                assert_eq!(dp.records, Some(records_bytes(&p.records)));
                assert_eq!(dp.diverging_epoch, Default::default());
                assert_eq!(dp.current_leader, Default::default());
                assert_eq!(dp.snapshot_id, Default::default());
                assert!(dp.unknown_tagged_fields.is_empty());
            }
        }
    }

    fn topic_name(name: &str) -> TopicName {
        TopicName(StrBytes::from_string(name.to_owned()))
    }

    fn partition(index: i32, records: Vec<RecordChunk>) -> FetchPartitionOut {
        FetchPartitionOut {
            partition_index: index,
            error_code: 0,
            high_watermark: 1_000 + i64::from(index),
            last_stable_offset: 900 + i64::from(index),
            log_start_offset: 17,
            preferred_read_replica: -1,
            records,
        }
    }

    /// Several topics and partitions: empty ones, errors, 1-3 chunks of both kinds, lengths
    /// that need 1-, 2- and 3-byte varints.
    fn mixed_response() -> FetchResponseOut {
        FetchResponseOut {
            throttle_time_ms: 25,
            error_code: 0,
            session_id: 0x1234_5678,
            topics: vec![
                FetchTopicOut {
                    topic: topic_name("orders"),
                    topic_id: Uuid::from_bytes([0xa1; 16]),
                    partitions: vec![
                        partition(0, vec![]),
                        partition(1, vec![memory_chunk(61, 1)]),
                        partition(
                            2,
                            vec![
                                memory_chunk(300, 2),
                                file_chunk(10, 500),
                                memory_chunk(7, 3),
                            ],
                        ),
                        FetchPartitionOut {
                            error_code: 6, // NOT_LEADER_OR_FOLLOWER
                            preferred_read_replica: 3,
                            ..partition(3, vec![])
                        },
                    ],
                },
                FetchTopicOut {
                    topic: topic_name("empty-topic"),
                    topic_id: Uuid::from_bytes(*b"0123456789abcdef"),
                    partitions: vec![],
                },
                FetchTopicOut {
                    topic: topic_name(&"long.topic.name_".repeat(12)),
                    topic_id: Uuid::from_bytes([0x5c; 16]),
                    partitions: vec![
                        partition(7, vec![file_chunk(0, 20_000)]),
                        partition(
                            8,
                            vec![
                                file_chunk(20_000, 1),
                                memory_chunk(0, 4),
                                file_chunk(100, 0),
                            ],
                        ),
                        partition(9, vec![file_chunk(69_000, 1_000), file_chunk(0, 3)]),
                        partition(10, vec![memory_chunk(0, 5)]),
                    ],
                },
            ],
        }
    }

    #[test]
    fn versions_match_kafka_protocol() {
        assert_eq!(FetchResponse::VERSIONS.min, FETCH_VERSION_MIN);
        assert_eq!(FetchResponse::VERSIONS.max, FETCH_VERSION_MAX);
    }

    #[test]
    fn mixed_response_matches_kafka_protocol_in_every_version() {
        let response = mixed_response();
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            check(7, version, &response);
        }
    }

    #[test]
    fn fields_absent_from_old_versions_are_dropped() {
        let mut response = mixed_response();
        response.error_code = 58;
        for topic in &mut response.topics {
            for p in &mut topic.partitions {
                p.preferred_read_replica = 2;
            }
        }
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            check(-3, version, &response);
        }
    }

    #[test]
    fn empty_response_matches_kafka_protocol() {
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            check(0, version, &FetchResponseOut::default());
            let chunks =
                encode_fetch_response(0, version, &FetchResponseOut::default()).expect("encode");
            assert_eq!(chunks.len(), 1);
        }
    }

    #[test]
    fn many_topics_and_partitions_use_multi_byte_lengths() {
        let topics = (0..130)
            .map(|t| FetchTopicOut {
                topic: topic_name(&format!("t{t}")),
                topic_id: Uuid::from_u128(t),
                partitions: if t == 0 {
                    (0..200)
                        .map(|p| partition(p, vec![memory_chunk(3, 9)]))
                        .collect()
                } else {
                    vec![partition(0, vec![])]
                },
            })
            .collect();
        let response = FetchResponseOut {
            topics,
            ..FetchResponseOut::default()
        };
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            check(1, version, &response);
        }
    }

    #[test]
    fn flexible_empty_partition_wire_bytes() {
        // v12, one topic "t" with one partition without records, by hand.
        let response = FetchResponseOut {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![FetchTopicOut {
                topic: topic_name("t"),
                topic_id: Uuid::nil(),
                partitions: vec![FetchPartitionOut {
                    partition_index: 0,
                    error_code: 0,
                    high_watermark: 5,
                    last_stable_offset: 5,
                    log_start_offset: 0,
                    preferred_read_replica: -1,
                    records: vec![],
                }],
            }],
        };
        let chunks = encode_fetch_response(9, 12, &response).expect("encode");
        let mut expected: Vec<u8> = Vec::new();
        expected.extend_from_slice(&9i32.to_be_bytes()); // correlation id
        expected.push(0); // header tagged fields
        expected.extend_from_slice(&0i32.to_be_bytes()); // throttle
        expected.extend_from_slice(&0i16.to_be_bytes()); // error code
        expected.extend_from_slice(&0i32.to_be_bytes()); // session id
        expected.push(2); // one topic
        expected.extend_from_slice(&[2, b't']); // compact name
        expected.push(2); // one partition
        expected.extend_from_slice(&0i32.to_be_bytes());
        expected.extend_from_slice(&0i16.to_be_bytes());
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&0i64.to_be_bytes());
        expected.push(1); // aborted transactions: empty, not null (0)
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.push(1); // records: empty, not null (0)
        expected.push(0); // partition tagged fields
        expected.push(0); // topic tagged fields
        expected.push(0); // response tagged fields
        let mut frame = i32::try_from(expected.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        frame.extend_from_slice(&expected);
        assert_eq!(materialize(&chunks), frame);
        check(9, 12, &response);
    }

    #[test]
    fn memory_records_are_not_copied() {
        let data = Bytes::from(vec![0x42u8; 1 << 20]);
        let response = FetchResponseOut {
            topics: vec![FetchTopicOut {
                topic: topic_name("big"),
                partitions: vec![partition(0, vec![RecordChunk::Memory(data.clone())])],
                ..FetchTopicOut::default()
            }],
            ..FetchResponseOut::default()
        };
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            let chunks = encode_fetch_response(1, version, &response).expect("encode");
            // Before v12 the records of the last partition end the frame; from v12 the
            // partition's, topic's and response's tagged-field counts follow them.
            let expected = if version >= 12 { 3 } else { 2 };
            assert_eq!(chunks.len(), expected, "v{version}: {chunks:?}");
            let Some(OutChunk::Records(RecordChunk::Memory(out))) = chunks.get(1) else {
                panic!("second chunk is not the memory records: {chunks:?}");
            };
            assert_eq!(out.as_ptr(), data.as_ptr());
            assert_eq!(out.len(), data.len());
            let encoded: u64 = chunks
                .iter()
                .filter(|c| matches!(c, OutChunk::Encoded(_)))
                .map(OutChunk::len)
                .sum();
            assert!(encoded < 200, "encoded bytes hold no record data");
            assert_eq!(frame_len(&chunks), encoded + (1 << 20));
        }
    }

    #[test]
    fn file_records_are_passed_through() {
        let file = fixture();
        let response = FetchResponseOut {
            topics: vec![FetchTopicOut {
                partitions: vec![partition(0, vec![file_chunk(5, 6_000)])],
                ..FetchTopicOut::default()
            }],
            ..FetchResponseOut::default()
        };
        let chunks = encode_fetch_response(1, 18, &response).expect("encode");
        let Some(OutChunk::Records(RecordChunk::File {
            file: out,
            position: 5,
            len: 6_000,
        })) = chunks.get(1)
        else {
            panic!("second chunk is not the file records: {chunks:?}");
        };
        assert!(Arc::ptr_eq(out, &file));
    }

    #[test]
    fn unsupported_versions_are_rejected() {
        for version in [i16::MIN, -1, 0, 3, 19, i16::MAX] {
            assert_eq!(
                encode_fetch_response(0, version, &FetchResponseOut::default()).err(),
                Some(FetchEncodeError::UnsupportedVersion { version })
            );
        }
    }

    #[test]
    fn topic_name_too_long_for_old_versions() {
        let response = FetchResponseOut {
            topics: vec![FetchTopicOut {
                topic: topic_name(&"x".repeat(40_000)),
                ..FetchTopicOut::default()
            }],
            ..FetchResponseOut::default()
        };
        assert_eq!(
            encode_fetch_response(0, 11, &response).err(),
            Some(FetchEncodeError::TopicNameTooLong {
                len: 40_000,
                version: 11
            })
        );
        // Compact strings have room; from v13 the name is not on the wire at all.
        check(0, 12, &response);
        check(0, 13, &response);
    }

    #[test]
    fn oversized_records_and_frames_are_rejected() {
        // Nothing is read from the file, so its size does not matter.
        let huge = |len| FetchResponseOut {
            topics: vec![FetchTopicOut {
                partitions: vec![partition(4, vec![file_chunk(0, len)])],
                ..FetchTopicOut::default()
            }],
            ..FetchResponseOut::default()
        };
        let three_gib = 3 << 30;
        assert_eq!(
            encode_fetch_response(0, 11, &huge(three_gib)).err(),
            Some(FetchEncodeError::RecordsTooLarge {
                partition: 4,
                len: three_gib,
                version: 11
            })
        );
        assert!(matches!(
            encode_fetch_response(0, 12, &huge(three_gib)).err(),
            Some(FetchEncodeError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            encode_fetch_response(0, 12, &huge(u64::from(u32::MAX))).err(),
            Some(FetchEncodeError::RecordsTooLarge { .. })
        ));
        // Two partitions each under i32::MAX, together over it.
        let mut two = huge(1 << 30);
        two.topics[0]
            .partitions
            .push(partition(5, vec![file_chunk(0, 1 << 30)]));
        assert!(matches!(
            encode_fetch_response(0, 4, &two).err(),
            Some(FetchEncodeError::FrameTooLarge { .. })
        ));
    }

    fn chunk_strategy() -> impl Strategy<Value = RecordChunk> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400)
                .prop_map(|v| RecordChunk::Memory(Bytes::from(v))),
            (0..FIXTURE_LEN as u64).prop_flat_map(|position| {
                (0..=(FIXTURE_LEN as u64 - position).min(20_000))
                    .prop_map(move |len| file_chunk(position, len))
            }),
        ]
    }

    fn partition_strategy() -> impl Strategy<Value = FetchPartitionOut> {
        (
            (any::<i32>(), any::<i16>(), any::<i64>()),
            (any::<i64>(), any::<i64>(), any::<i32>()),
            prop::collection::vec(chunk_strategy(), 0..4),
        )
            .prop_map(
                |((partition_index, error_code, high_watermark), (lso, lss, prr), records)| {
                    FetchPartitionOut {
                        partition_index,
                        error_code,
                        high_watermark,
                        last_stable_offset: lso,
                        log_start_offset: lss,
                        preferred_read_replica: prr,
                        records,
                    }
                },
            )
    }

    fn response_strategy() -> impl Strategy<Value = FetchResponseOut> {
        let topic = (
            "[a-zA-Z0-9._-]{0,300}",
            any::<[u8; 16]>(),
            prop::collection::vec(partition_strategy(), 0..5),
        )
            .prop_map(|(name, topic_id, partitions)| FetchTopicOut {
                topic: topic_name(&name),
                topic_id: Uuid::from_bytes(topic_id),
                partitions,
            });
        (
            any::<i32>(),
            any::<i16>(),
            any::<i32>(),
            prop::collection::vec(topic, 0..4),
        )
            .prop_map(|(throttle_time_ms, error_code, session_id, topics)| {
                FetchResponseOut {
                    throttle_time_ms,
                    error_code,
                    session_id,
                    topics,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_responses_match_kafka_protocol(
            correlation_id in any::<i32>(),
            version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX,
            response in response_strategy(),
        ) {
            check(correlation_id, version, &response);
        }
    }
}
