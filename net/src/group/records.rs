//! The records of the internal `__consumer_offsets` topic: their key/value encoding and the
//! record batches that carry them.
//!
//! Two kinds of record, told apart by the key's version (modelled on Kafka's own schemas, but
//! not byte-compatible with them; `docs/format/consumer-offsets.md` draws every layout):
//! * **offset** (key versions 0 and 1): the committed offset of one group for one partition;
//! * **group** (key version 2): a group's metadata (generation, protocol, leader, members).
//!
//! A record without a value is a tombstone: the offset was deleted, or the group was. The
//! topic is compacted by key in Kafka; here the coordinator replays it in log order and the
//! last record of a key wins.
//!
//! Values carry their own version, so a layout can grow. Decoding is strict and fuzz-safe: it
//! rejects unknown versions, truncated fields, bad lengths, invalid UTF-8 and trailing bytes,
//! never panics, and allocates no more than the input's size justifies.
//!
//! Batches are Kafka RecordBatch v2, built and parsed with `kafka-protocol`'s record codec.
//! [`decode_batches`] validates each batch with the engine's validator (structure and CRC32C)
//! and then checks the record framing itself before handing the batch to `kafka-protocol`,
//! whose decoder trusts counts and deltas it reads (allocations sized by record and header
//! counts, unchecked additions of offset and timestamp deltas).
//!
//! Threads: plain data, no I/O.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, Record,
    RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_engine::BatchError;
use sluice_engine::batch::{self, BatchHeader};
use sluice_engine::limits::BATCH_HEADER_SIZE;

/// Name of the internal topic that holds these records.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key version of an offset record as Kafka's oldest brokers wrote it; same layout as
/// [`OFFSET_KEY_VERSION`], accepted when decoding.
pub const OFFSET_KEY_VERSION_V0: i16 = 0;
/// Key version written for offset records: `group`, `topic`, `partition`.
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Key version of group metadata records: `group`.
pub const GROUP_KEY_VERSION: i16 = 2;
/// Newest (and only) version of an offset record's value.
pub const OFFSET_VALUE_VERSION: i16 = 0;
/// Newest (and only) version of a group record's value.
pub const GROUP_VALUE_VERSION: i16 = 0;

/// The smallest encoded member: eight length-prefixed or fixed fields of four bytes.
const MEMBER_SIZE_MIN: usize = 8 * 4;
/// The smallest record inside a batch: length, attributes, timestamp delta, offset delta, key
/// length, value length, header count, one byte each.
const RECORD_SIZE_MIN: usize = 7;
/// The smallest record header: key length and value length, one byte each.
const RECORD_HEADER_SIZE_MIN: usize = 2;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset: the next offset the group will consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1 when unknown.
    pub leader_epoch: i32,
    /// Client metadata committed with the offset (empty when the client sent none).
    pub metadata: String,
    /// When the commit was made (ms since the epoch).
    pub commit_timestamp_ms: i64,
    /// When the commit expires (ms since the epoch), or -1 for the group's retention rule.
    pub expire_timestamp_ms: i64,
}

/// A member as stored in group metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    /// Member id assigned by the coordinator.
    pub member_id: String,
    /// Static membership id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host, as the coordinator saw it.
    pub client_host: String,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// The member's metadata for the chosen protocol.
    pub subscription: Bytes,
    /// The member's assignment from the leader (empty before SyncGroup).
    pub assignment: Bytes,
}

/// Group metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// Protocol type (`consumer`, `connect`, ...); `None` for an empty group without one.
    pub protocol_type: Option<String>,
    /// Generation of the group.
    pub generation_id: i32,
    /// The chosen protocol (assignor), if any.
    pub protocol_name: Option<String>,
    /// Member id of the leader, if any.
    pub leader: Option<String>,
    /// When the group entered its current state (ms since the epoch).
    pub current_state_timestamp_ms: i64,
    /// The members, in the coordinator's order.
    pub members: Vec<StoredMember>,
}

/// One record of the `__consumer_offsets` topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// A committed offset of `group` for one partition.
    Offset {
        /// Group id.
        group: String,
        /// Topic of the partition.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The commit; `None` is a tombstone (the offset was deleted or expired).
        value: Option<OffsetValue>,
    },
    /// The metadata of `group`.
    Group {
        /// Group id.
        group: String,
        /// The metadata; `None` is a tombstone (the group was deleted).
        value: Option<StoredGroup>,
    },
}

/// Why bytes are not a valid `__consumer_offsets` record or batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// A field runs past the end of the key or value.
    #[error("{field} truncated: {needed} bytes needed, {available} left")]
    Truncated {
        /// The field being read (`"offset value.metadata"`).
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A length or count is negative (where null is not allowed), below -1, or larger than
    /// the remaining bytes could hold.
    #[error("{field} has invalid length {length}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length or count read.
        length: i32,
    },
    /// A string field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes are left after the last field of a key or value.
    #[error("{count} unexpected bytes after the {part}")]
    TrailingBytes {
        /// What was decoded (`"offset key"`, `"group value"`).
        part: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The key's version is not one this broker knows.
    #[error("unknown key version {version}")]
    UnknownKeyVersion {
        /// The version read.
        version: i16,
    },
    /// The value's version is not one this broker knows for its kind of record.
    #[error("unknown {kind} value version {version}")]
    UnknownValueVersion {
        /// `"offset"` or `"group"`.
        kind: &'static str,
        /// The version read.
        version: i16,
    },
    /// A batch fails the engine's validation (structure, length, CRC32C).
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    /// A batch is compressed; this topic is only ever written uncompressed.
    #[error("batch at offset {base_offset} is compressed (codec {codec}); not supported")]
    Compressed {
        /// The batch's base offset.
        base_offset: i64,
        /// Its compression codec id.
        codec: u8,
    },
    /// A batch's records are not well framed (lengths, counts, deltas).
    #[error("malformed records in the batch at offset {base_offset}: {reason}")]
    MalformedBatch {
        /// The batch's base offset.
        base_offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// A record has a null key.
    #[error("record at offset {offset} has no key")]
    MissingKey {
        /// The record's offset.
        offset: i64,
    },
    /// A record's key or value does not decode.
    #[error("record at offset {offset}: {source}")]
    Record {
        /// The record's offset.
        offset: i64,
        /// Why its key or value does not decode.
        #[source]
        source: Box<RecordsError>,
    },
}

impl GroupRecord {
    /// The group the record belongs to.
    #[must_use]
    pub fn group(&self) -> &str {
        match self {
            GroupRecord::Offset { group, .. } | GroupRecord::Group { group, .. } => group,
        }
    }

    /// Whether the record is a tombstone (no value).
    #[must_use]
    pub fn is_tombstone(&self) -> bool {
        match self {
            GroupRecord::Offset { value, .. } => value.is_none(),
            GroupRecord::Group { value, .. } => value.is_none(),
        }
    }

    /// Key bytes and value bytes (None for a tombstone).
    ///
    /// # Panics
    /// If a string or byte field is longer than `i32::MAX` bytes or a group has more than
    /// `i32::MAX` members: impossible for state that came from Kafka requests, which are
    /// bounded far below that.
    #[must_use]
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let mut key = Writer::default();
                key.i16(OFFSET_KEY_VERSION);
                key.string(group);
                key.string(topic);
                key.i32(*partition);
                (key.0, value.as_ref().map(encode_offset_value))
            }
            GroupRecord::Group { group, value } => {
                let mut key = Writer::default();
                key.i16(GROUP_KEY_VERSION);
                key.string(group);
                (key.0, value.as_ref().map(encode_group_value))
            }
        }
    }

    /// Decodes one record's key and value; errors on malformed/unknown-version input (never
    /// panics).
    ///
    /// # Errors
    /// Unknown key or value versions, truncated fields, invalid lengths, invalid UTF-8 and
    /// trailing bytes, as [`RecordsError`].
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<GroupRecord, RecordsError> {
        let mut reader = Reader(key);
        match reader.i16("key.version")? {
            OFFSET_KEY_VERSION_V0 | OFFSET_KEY_VERSION => {
                let group = reader.string("offset key.group")?;
                let topic = reader.string("offset key.topic")?;
                let partition = reader.i32("offset key.partition")?;
                reader.finish("offset key")?;
                Ok(GroupRecord::Offset {
                    group,
                    topic,
                    partition,
                    value: value.map(decode_offset_value).transpose()?,
                })
            }
            GROUP_KEY_VERSION => {
                let group = reader.string("group key.group")?;
                reader.finish("group key")?;
                Ok(GroupRecord::Group {
                    group,
                    value: value.map(decode_group_value).transpose()?,
                })
            }
            version => Err(RecordsError::UnknownKeyVersion { version }),
        }
    }
}

fn encode_offset_value(value: &OffsetValue) -> Vec<u8> {
    let mut out = Writer::default();
    out.i16(OFFSET_VALUE_VERSION);
    out.i64(value.offset);
    out.i32(value.leader_epoch);
    out.string(&value.metadata);
    out.i64(value.commit_timestamp_ms);
    out.i64(value.expire_timestamp_ms);
    out.0
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordsError> {
    let mut reader = Reader(bytes);
    match reader.i16("offset value.version")? {
        OFFSET_VALUE_VERSION => {
            let value = OffsetValue {
                offset: reader.i64("offset value.offset")?,
                leader_epoch: reader.i32("offset value.leader_epoch")?,
                metadata: reader.string("offset value.metadata")?,
                commit_timestamp_ms: reader.i64("offset value.commit_timestamp_ms")?,
                expire_timestamp_ms: reader.i64("offset value.expire_timestamp_ms")?,
            };
            reader.finish("offset value")?;
            Ok(value)
        }
        version => Err(RecordsError::UnknownValueVersion {
            kind: "offset",
            version,
        }),
    }
}

fn encode_group_value(value: &StoredGroup) -> Vec<u8> {
    let mut out = Writer::default();
    out.i16(GROUP_VALUE_VERSION);
    out.nullable_string(value.protocol_type.as_deref());
    out.i32(value.generation_id);
    out.nullable_string(value.protocol_name.as_deref());
    out.nullable_string(value.leader.as_deref());
    out.i64(value.current_state_timestamp_ms);
    out.i32(length_i32(value.members.len()));
    for member in &value.members {
        out.string(&member.member_id);
        out.nullable_string(member.group_instance_id.as_deref());
        out.string(&member.client_id);
        out.string(&member.client_host);
        out.i32(member.rebalance_timeout_ms);
        out.i32(member.session_timeout_ms);
        out.bytes(&member.subscription);
        out.bytes(&member.assignment);
    }
    out.0
}

fn decode_group_value(bytes: &[u8]) -> Result<StoredGroup, RecordsError> {
    let mut reader = Reader(bytes);
    let version = reader.i16("group value.version")?;
    if version != GROUP_VALUE_VERSION {
        return Err(RecordsError::UnknownValueVersion {
            kind: "group",
            version,
        });
    }
    let protocol_type = reader.nullable_string("group value.protocol_type")?;
    let generation_id = reader.i32("group value.generation_id")?;
    let protocol_name = reader.nullable_string("group value.protocol_name")?;
    let leader = reader.nullable_string("group value.leader")?;
    let current_state_timestamp_ms = reader.i64("group value.current_state_timestamp_ms")?;
    let field = "group value.members";
    let count = reader.i32(field)?;
    // Every member takes at least MEMBER_SIZE_MIN bytes: a count the rest cannot hold is
    // rejected before it sizes an allocation.
    let count_usize = usize::try_from(count)
        .ok()
        .filter(|&count| count <= reader.0.len() / MEMBER_SIZE_MIN)
        .ok_or(RecordsError::InvalidLength {
            field,
            length: count,
        })?;
    let mut members = Vec::with_capacity(count_usize);
    for _ in 0..count_usize {
        members.push(StoredMember {
            member_id: reader.string("group value.member.member_id")?,
            group_instance_id: reader.nullable_string("group value.member.group_instance_id")?,
            client_id: reader.string("group value.member.client_id")?,
            client_host: reader.string("group value.member.client_host")?,
            rebalance_timeout_ms: reader.i32("group value.member.rebalance_timeout_ms")?,
            session_timeout_ms: reader.i32("group value.member.session_timeout_ms")?,
            subscription: reader.bytes("group value.member.subscription")?,
            assignment: reader.bytes("group value.member.assignment")?,
        });
    }
    reader.finish("group value")?;
    Ok(StoredGroup {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// A length as the i32 the format stores.
///
/// # Panics
/// Above `i32::MAX` (see [`GroupRecord::encode`]).
fn length_i32(length: usize) -> i32 {
    i32::try_from(length).expect("a __consumer_offsets field longer than i32::MAX")
}

/// Big-endian writer of the key/value fields.
#[derive(Debug, Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, value: i16) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn i32(&mut self, value: i32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn bytes(&mut self, value: &[u8]) {
        self.i32(length_i32(value.len()));
        self.0.extend_from_slice(value);
    }

    fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    fn nullable_string(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.string(value),
            None => self.i32(-1),
        }
    }
}

/// Big-endian reader of the key/value fields; every read checks the bytes left.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, needed: usize, field: &'static str) -> Result<&'a [u8], RecordsError> {
        let (taken, rest) = self
            .0
            .split_at_checked(needed)
            .ok_or(RecordsError::Truncated {
                field,
                needed,
                available: self.0.len(),
            })?;
        self.0 = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordsError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N, field)?);
        Ok(array)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordsError> {
        self.array(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordsError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordsError> {
        self.array(field).map(i64::from_be_bytes)
    }

    /// A length-prefixed field; `None` for length -1.
    fn nullable_slice(&mut self, field: &'static str) -> Result<Option<&'a [u8]>, RecordsError> {
        let length = self.i32(field)?;
        if length == -1 {
            return Ok(None);
        }
        let needed =
            usize::try_from(length).map_err(|_| RecordsError::InvalidLength { field, length })?;
        self.take(needed, field).map(Some)
    }

    fn slice(&mut self, field: &'static str) -> Result<&'a [u8], RecordsError> {
        self.nullable_slice(field)?
            .ok_or(RecordsError::InvalidLength { field, length: -1 })
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordsError> {
        self.slice(field).map(Bytes::copy_from_slice)
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordsError> {
        to_string(self.slice(field)?, field)
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordsError> {
        self.nullable_slice(field)?
            .map(|bytes| to_string(bytes, field))
            .transpose()
    }

    fn finish(self, part: &'static str) -> Result<(), RecordsError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RecordsError::TrailingBytes {
                part,
                count: self.0.len(),
            })
        }
    }
}

fn to_string(bytes: &[u8], field: &'static str) -> Result<String, RecordsError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| RecordsError::InvalidUtf8 { field })
}

/// Builds one uncompressed RecordBatch v2 (magic 2, CRC32C valid, base offset 0, producer id
/// -1) holding `records`, every record timestamped `timestamp_ms`. Ready for
/// `sluice_engine::Log::append` (which assigns offsets).
///
/// The batch's partition leader epoch, producer epoch and base sequence are -1 and its
/// timestamp type is CreateTime. An empty `records` gives an empty buffer (no batch: nothing
/// to append).
///
/// # Panics
/// If a record is too large to encode ([`GroupRecord::encode`]) or the batch would exceed
/// `i32::MAX` bytes or records: impossible for state from bounded Kafka requests.
#[must_use]
pub fn encode_batch(records: &[GroupRecord], timestamp_ms: i64) -> BytesMut {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let (key, value) = record.encode();
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset: index as i64,
                // The encoder starts a new batch wherever `offset - sequence` changes, and takes
                // the first record's sequence as the base: -1, no idempotence.
                sequence: (index as i32).wrapping_sub(1),
                timestamp: timestamp_ms,
                key: Some(Bytes::from(key)),
                value: value.map(Bytes::from),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: batch::MAGIC_V2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options)
        .expect("a __consumer_offsets batch larger than a RecordBatch can hold");
    buffer
}

/// Decodes every record of every batch in `bytes` (a concatenation of whole batches, as read
/// back from the log; uncompressed). Control batches are skipped. Returns records in log
/// order with their offsets.
///
/// Empty input gives no records. Records of transactional batches are returned like any other
/// (this broker writes none).
///
/// # Errors
/// The first problem found: an invalid batch or trailing partial batch
/// ([`RecordsError::Batch`]), a compressed batch, malformed record framing, a record without
/// a key, or a key/value that does not decode ([`RecordsError::Record`], with its offset).
pub fn decode_batches(bytes: &[u8]) -> Result<Vec<(i64, GroupRecord)>, RecordsError> {
    let mut decoded = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (header, total) = batch::validate(rest, usize::MAX)?;
        let (batch_bytes, tail) = rest.split_at(total);
        rest = tail;
        if header.attributes.get() & batch::ATTR_CONTROL != 0 {
            continue;
        }
        let base_offset = header.base_offset.get();
        if header.compression() != 0 {
            return Err(RecordsError::Compressed {
                base_offset,
                codec: header.compression(),
            });
        }
        check_record_framing(batch_bytes, header).map_err(|reason| {
            RecordsError::MalformedBatch {
                base_offset,
                reason,
            }
        })?;
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch_bytes)).map_err(
            |error| RecordsError::MalformedBatch {
                base_offset,
                reason: error.to_string(),
            },
        )?;
        decoded.reserve(set.records.len());
        for record in set.records {
            let offset = record.offset;
            let key = record.key.ok_or(RecordsError::MissingKey { offset })?;
            let group_record =
                GroupRecord::decode(&key, record.value.as_deref()).map_err(|source| {
                    RecordsError::Record {
                        offset,
                        source: Box::new(source),
                    }
                })?;
            decoded.push((offset, group_record));
        }
    }
    Ok(decoded)
}

/// Walks the records of one validated, uncompressed batch and checks what `kafka-protocol`'s
/// decoder takes on trust: the record count against the bytes (it reserves that many records),
/// each record's length, key and value lengths, offset and timestamp deltas (it adds them
/// unchecked), the header count (it reserves that many headers), and that the records fill the
/// batch exactly. Varints are read as `kafka-protocol` reads them ([`varint`], [`varlong`]), so
/// both agree on every value.
fn check_record_framing(batch_bytes: &[u8], header: &BatchHeader) -> Result<(), String> {
    let count = header.records_count.get();
    let mut rest = batch_bytes
        .get(BATCH_HEADER_SIZE..)
        .ok_or("batch shorter than its header")?;
    if usize::try_from(count).map_or(true, |count| count > rest.len() / RECORD_SIZE_MIN) {
        return Err(format!(
            "{count} records cannot fit in {} bytes",
            rest.len()
        ));
    }
    let base_offset = header.base_offset.get();
    let base_timestamp = header.base_timestamp.get();
    for index in 0..count {
        let length = varint(&mut rest).and_then(|length| {
            usize::try_from(length).map_err(|_| format!("negative length {length}"))
        });
        let length = length.map_err(|error| format!("record {index}: {error}"))?;
        let (mut record, tail) = rest
            .split_at_checked(length)
            .ok_or_else(|| format!("record {index} of {length} bytes is truncated"))?;
        rest = tail;
        check_record(&mut record, base_offset, base_timestamp)
            .map_err(|error| format!("record {index}: {error}"))?;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last record", rest.len()));
    }
    Ok(())
}

/// Checks one record's fields up to its header count (see [`check_record_framing`]).
fn check_record(record: &mut &[u8], base_offset: i64, base_timestamp: i64) -> Result<(), String> {
    let (_attributes, rest) = record.split_first().ok_or("empty record")?;
    *record = rest;
    let timestamp_delta = varlong(record).ok_or("truncated timestamp delta")?;
    base_timestamp
        .checked_add(timestamp_delta)
        .ok_or("timestamp delta overflows")?;
    let offset_delta = varint(record)?;
    base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or("offset delta overflows")?;
    skip_nullable(record, "key")?;
    skip_nullable(record, "value")?;
    let headers = varint(record)?;
    if usize::try_from(headers).map_or(true, |headers| {
        headers > record.len() / RECORD_HEADER_SIZE_MIN
    }) {
        return Err(format!(
            "{headers} headers cannot fit in {} bytes",
            record.len()
        ));
    }
    Ok(())
}

/// Skips a varint-length-prefixed field (-1 = null).
fn skip_nullable(record: &mut &[u8], field: &str) -> Result<(), String> {
    let length = varint(record)?;
    if length == -1 {
        return Ok(());
    }
    let length = usize::try_from(length).map_err(|_| format!("{field} length {length}"))?;
    let (_, rest) = record
        .split_at_checked(length)
        .ok_or_else(|| format!("{field} of {length} bytes is truncated"))?;
    *record = rest;
    Ok(())
}

/// Reads a zigzag varint of at most `LIMIT` bytes exactly as `kafka-protocol` does (its
/// decoders are not public): it stops after `LIMIT` bytes whatever the last one's continuation
/// bit says, and bits past the value's width are dropped.
fn unsigned_varint<const LIMIT: usize>(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for index in 0..LIMIT {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (index * 7);
        if byte < 0x80 {
            break;
        }
    }
    Some(value)
}

/// A zigzag `varint` (i32, at most 5 bytes), as `kafka-protocol`'s `VarInt` decodes it.
fn varint(bytes: &mut &[u8]) -> Result<i32, String> {
    let zigzag = unsigned_varint::<5>(bytes).ok_or("truncated varint")? as u32;
    Ok(((zigzag >> 1) as i32) ^ -((zigzag & 1) as i32))
}

/// A zigzag `varlong` (i64, at most 10 bytes), as `kafka-protocol`'s `VarLong` decodes it.
fn varlong(bytes: &mut &[u8]) -> Option<i64> {
    let zigzag = unsigned_varint::<10>(bytes)?;
    Some(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use sluice_engine::batch::{Stamp, assign, compute_crc, validate_all};
    use sluice_engine::{Offset, TimestampMs};

    /// Byte offsets of header fields (docs/format/segment.md).
    const BASE_OFFSET_AT: usize = 0;
    const ATTRIBUTES_LOW_BYTE_AT: usize = 22;
    const BASE_TIMESTAMP_AT: usize = 27;
    const RECORDS_COUNT_AT: usize = 57;

    /// Rewrites bytes of the first batch in `bytes` and fixes its CRC.
    fn with_valid_crc(bytes: &mut [u8], change: impl FnOnce(&mut [u8])) {
        change(bytes);
        let total = batch::header(bytes).expect("header").total_size();
        let crc = compute_crc(&bytes[..total]);
        bytes[batch::CRC_FIELD_OFFSET..batch::CRC_FIELD_OFFSET + 4]
            .copy_from_slice(&crc.to_be_bytes());
    }

    /// One batch of raw `kafka-protocol` records.
    fn encode_raw(records: &[Record]) -> Vec<u8> {
        let mut buffer = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buffer,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        buffer.to_vec()
    }

    /// A plain record at `offset` (its sequence keeps a set of them in one batch).
    fn raw_record(offset: i64, timestamp: i64, key: Option<&[u8]>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32 - 1,
            timestamp,
            key: key.map(Bytes::copy_from_slice),
            value: None,
            headers: Default::default(),
        }
    }

    fn offset_record(group: &str, topic: &str, partition: i32, offset: i64) -> GroupRecord {
        GroupRecord::Offset {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            value: Some(OffsetValue {
                offset,
                leader_epoch: 3,
                metadata: "meta".to_owned(),
                commit_timestamp_ms: 1_700_000_000_000,
                expire_timestamp_ms: -1,
            }),
        }
    }

    fn member(id: &str) -> StoredMember {
        StoredMember {
            member_id: id.to_owned(),
            group_instance_id: Some(format!("instance-{id}")),
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"\x00\x03sub"),
            assignment: Bytes::from_static(b"\x00\x01assignment"),
        }
    }

    fn group_record(group: &str, members: usize) -> GroupRecord {
        GroupRecord::Group {
            group: group.to_owned(),
            value: Some(StoredGroup {
                protocol_type: Some("consumer".to_owned()),
                generation_id: 7,
                protocol_name: Some("range".to_owned()),
                leader: Some("m-0".to_owned()),
                current_state_timestamp_ms: 1_700_000_000_123,
                members: (0..members).map(|i| member(&format!("m-{i}"))).collect(),
            }),
        }
    }

    fn round_trip(record: &GroupRecord) -> GroupRecord {
        let (key, value) = record.encode();
        GroupRecord::decode(&key, value.as_deref()).expect("decodes")
    }

    /// Every variant and edge: empty and non-ASCII strings, null instance id and protocol
    /// fields, empty assignment, no members, extreme numbers, tombstones.
    fn samples() -> Vec<GroupRecord> {
        vec![
            offset_record("group", "topic", 0, 42),
            GroupRecord::Offset {
                group: String::new(),
                topic: String::new(),
                partition: i32::MAX,
                value: Some(OffsetValue {
                    offset: i64::MAX,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp_ms: i64::MIN,
                    expire_timestamp_ms: 1,
                }),
            },
            GroupRecord::Offset {
                group: "grüppe-🦀".to_owned(),
                topic: "тема.日本".to_owned(),
                partition: -1,
                value: Some(OffsetValue {
                    offset: -1,
                    leader_epoch: i32::MIN,
                    metadata: "ünïcödé \u{0} metadata".to_owned(),
                    commit_timestamp_ms: 0,
                    expire_timestamp_ms: -1,
                }),
            },
            GroupRecord::Offset {
                group: "g".to_owned(),
                topic: "t".to_owned(),
                partition: 3,
                value: None,
            },
            group_record("group", 3),
            group_record("🦀", 0),
            GroupRecord::Group {
                group: String::new(),
                value: Some(StoredGroup {
                    protocol_type: None,
                    generation_id: 0,
                    protocol_name: None,
                    leader: None,
                    current_state_timestamp_ms: -1,
                    members: vec![StoredMember {
                        member_id: String::new(),
                        group_instance_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        rebalance_timeout_ms: i32::MIN,
                        session_timeout_ms: i32::MAX,
                        subscription: Bytes::new(),
                        assignment: Bytes::new(),
                    }],
                }),
            },
            GroupRecord::Group {
                group: "gone".to_owned(),
                value: None,
            },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for record in samples() {
            assert_eq!(round_trip(&record), record);
        }
    }

    #[test]
    fn tombstones_have_no_value() {
        for record in samples() {
            let (_, value) = record.encode();
            assert_eq!(value.is_none(), record.is_tombstone(), "{record:?}");
        }
    }

    #[test]
    fn encodes_the_documented_layout() {
        let (key, value) = offset_record("g", "t", 5, 9).encode();
        let mut expected_key = vec![0, 1, 0, 0, 0, 1, b'g', 0, 0, 0, 1, b't'];
        expected_key.extend_from_slice(&5i32.to_be_bytes());
        assert_eq!(key, expected_key);
        let value = value.expect("value");
        assert_eq!(&value[..2], &[0, 0], "value version 0");
        assert_eq!(&value[2..10], &9i64.to_be_bytes());
        assert_eq!(value.len(), 2 + 8 + 4 + 4 + 4 + 8 + 8);

        let (key, value) = GroupRecord::Group {
            group: "g".to_owned(),
            value: None,
        }
        .encode();
        assert_eq!(key, vec![0, 2, 0, 0, 0, 1, b'g']);
        assert_eq!(value, None);
    }

    #[test]
    fn offset_key_version_0_is_accepted() {
        let (mut key, value) = offset_record("g", "t", 1, 2).encode();
        key[..2].copy_from_slice(&OFFSET_KEY_VERSION_V0.to_be_bytes());
        assert_eq!(
            GroupRecord::decode(&key, value.as_deref()).expect("v0 key"),
            offset_record("g", "t", 1, 2)
        );
    }

    #[test]
    fn unknown_versions_are_rejected() {
        let (mut key, value) = offset_record("g", "t", 1, 2).encode();
        let mut value = value.expect("value");
        value[..2].copy_from_slice(&1i16.to_be_bytes());
        assert_eq!(
            GroupRecord::decode(&key, Some(&value)),
            Err(RecordsError::UnknownValueVersion {
                kind: "offset",
                version: 1
            })
        );
        key[..2].copy_from_slice(&3i16.to_be_bytes());
        assert_eq!(
            GroupRecord::decode(&key, None),
            Err(RecordsError::UnknownKeyVersion { version: 3 })
        );
        let (key, value) = group_record("g", 1).encode();
        let mut value = value.expect("value");
        value[..2].copy_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(
            GroupRecord::decode(&key, Some(&value)),
            Err(RecordsError::UnknownValueVersion {
                kind: "group",
                version: -1
            })
        );
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        for record in samples() {
            let (key, value) = record.encode();
            for cut in 0..key.len() {
                assert!(GroupRecord::decode(&key[..cut], value.as_deref()).is_err());
            }
            let mut longer = key.clone();
            longer.push(0);
            assert!(matches!(
                GroupRecord::decode(&longer, value.as_deref()),
                Err(RecordsError::TrailingBytes { .. })
            ));
            if let Some(value) = value {
                for cut in 0..value.len() {
                    assert!(
                        GroupRecord::decode(&key, Some(&value[..cut])).is_err(),
                        "{record:?} value cut at {cut}"
                    );
                }
                let mut longer = value.clone();
                longer.push(0);
                assert!(matches!(
                    GroupRecord::decode(&key, Some(&longer)),
                    Err(RecordsError::TrailingBytes { .. })
                ));
            }
        }
    }

    #[test]
    fn bad_lengths_are_rejected() {
        // A null group id in a key.
        let key = [0, 2, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            GroupRecord::decode(&key, None),
            Err(RecordsError::InvalidLength {
                field: "group key.group",
                length: -1
            })
        );
        // A length below -1, and one far past the end (no allocation of that size).
        let key = [0, 2, 0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            GroupRecord::decode(&key, None),
            Err(RecordsError::InvalidLength { length: -2, .. })
        ));
        let key = [0, 2, 0x7f, 0xff, 0xff, 0xff, b'g'];
        assert!(matches!(
            GroupRecord::decode(&key, None),
            Err(RecordsError::Truncated { .. })
        ));
        // Invalid UTF-8.
        let key = [0, 2, 0, 0, 0, 2, 0xc3, 0x28];
        assert!(matches!(
            GroupRecord::decode(&key, None),
            Err(RecordsError::InvalidUtf8 { .. })
        ));
        // A member count the value cannot hold.
        let (key, value) = group_record("g", 0).encode();
        let mut value = value.expect("value");
        let count_at = value.len() - 4;
        value[count_at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            GroupRecord::decode(&key, Some(&value)),
            Err(RecordsError::InvalidLength {
                field: "group value.members",
                length: i32::MAX
            })
        );
        value[count_at..].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            GroupRecord::decode(&key, Some(&value)),
            Err(RecordsError::InvalidLength { length: -1, .. })
        ));
    }

    fn many_records(count: usize) -> Vec<GroupRecord> {
        (0..count)
            .map(|i| match i % 4 {
                0 => offset_record(
                    &format!("group-{}", i % 7),
                    "orders",
                    (i % 12) as i32,
                    i as i64,
                ),
                1 => group_record(&format!("group-{}", i % 7), i % 5),
                2 => GroupRecord::Offset {
                    group: "g".to_owned(),
                    topic: "🦀".to_owned(),
                    partition: i as i32,
                    value: None,
                },
                _ => GroupRecord::Group {
                    group: format!("deleted-{i}"),
                    value: None,
                },
            })
            .collect()
    }

    #[test]
    fn a_batch_validates_and_decodes() {
        let records = many_records(200);
        let batch = encode_batch(&records, 1_700_000_000_000);
        let summary = validate_all(&batch, usize::MAX).expect("engine accepts the batch");
        assert_eq!(summary.batches, 1);
        assert_eq!(summary.records, 200);
        let header = batch::header(&batch).expect("header");
        assert_eq!(header.base_offset.get(), 0);
        assert_eq!(header.magic, batch::MAGIC_V2);
        assert_eq!(header.compression(), 0);
        assert!(!header.is_log_append_time());
        assert_eq!(header.producer_id.get(), -1);
        assert_eq!(header.producer_epoch.get(), -1);
        assert_eq!(header.base_sequence.get(), -1);
        assert_eq!(header.base_timestamp.get(), 1_700_000_000_000);
        assert_eq!(header.max_timestamp.get(), 1_700_000_000_000);

        let decoded = decode_batches(&batch).expect("decodes");
        let expected: Vec<(i64, GroupRecord)> = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| (i as i64, record))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn one_record_and_no_records() {
        let records = vec![group_record("solo", 2)];
        let batch = encode_batch(&records, 5);
        validate_all(&batch, usize::MAX).expect("valid");
        assert_eq!(
            decode_batches(&batch).expect("decodes"),
            vec![(0, records[0].clone())]
        );
        assert!(encode_batch(&[], 5).is_empty());
        assert_eq!(decode_batches(&[]).expect("empty"), vec![]);
    }

    /// Batches appended one after another, with offsets assigned as the engine does, and one
    /// of them stamped for a LogAppendTime topic (which rewrites the CRC).
    #[test]
    fn concatenated_batches_keep_their_offsets() {
        let chunks = [many_records(3), many_records(1), many_records(17)];
        let mut log = BytesMut::new();
        let mut next = 1_000i64;
        let mut expected = Vec::new();
        for (i, records) in chunks.iter().enumerate() {
            let mut batch = encode_batch(records, 77);
            assign(
                &mut batch,
                Stamp {
                    base_offset: Offset(next),
                    partition_leader_epoch: 4,
                    log_append_time: (i == 1).then_some(TimestampMs(99)),
                },
            );
            for record in records {
                expected.push((next, record.clone()));
                next += 1;
            }
            log.extend_from_slice(&batch);
        }
        let summary = validate_all(&log, usize::MAX).expect("valid log");
        assert_eq!(summary.batches, 3);
        assert_eq!(decode_batches(&log).expect("decodes"), expected);

        // Base offsets set by hand, CRC untouched (it does not cover them).
        let mut batch = encode_batch(&many_records(2), 0);
        batch[..8].copy_from_slice(&500i64.to_be_bytes());
        let decoded = decode_batches(&batch).expect("decodes");
        assert_eq!(
            decoded
                .iter()
                .map(|(offset, _)| *offset)
                .collect::<Vec<_>>(),
            vec![500, 501]
        );
    }

    fn control_batch(base_offset: i64) -> Vec<u8> {
        encode_raw(&[Record {
            transactional: true,
            control: true,
            producer_id: 9,
            producer_epoch: 0,
            sequence: -1,
            // A commit marker (version 0, type 1): not a group record key.
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            ..raw_record(base_offset, 0, Some(&[0, 0, 0, 1]))
        }])
    }

    #[test]
    fn control_batches_are_skipped() {
        let mut log = BytesMut::new();
        log.extend_from_slice(&encode_batch(&many_records(2), 0));
        log.extend_from_slice(&control_batch(2));
        let mut last = encode_batch(&many_records(1), 0);
        last[BASE_OFFSET_AT..8].copy_from_slice(&3i64.to_be_bytes());
        log.extend_from_slice(&last);
        validate_all(&log, usize::MAX).expect("valid log");
        let decoded = decode_batches(&log).expect("decodes");
        assert_eq!(
            decoded
                .iter()
                .map(|(offset, _)| *offset)
                .collect::<Vec<_>>(),
            vec![0, 1, 3]
        );
    }

    #[test]
    fn bad_batches_are_errors() {
        let batch = encode_batch(&many_records(5), 0);
        // Truncated anywhere, and trailing bytes after a whole batch.
        for cut in 1..batch.len() {
            assert!(decode_batches(&batch[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = batch.to_vec();
        longer.extend_from_slice(&[0; 3]);
        assert!(matches!(
            decode_batches(&longer),
            Err(RecordsError::Batch(BatchError::Truncated { .. }))
        ));
        // A flipped byte without a fixed CRC.
        let mut corrupt = batch.to_vec();
        corrupt[70] ^= 1;
        assert!(matches!(
            decode_batches(&corrupt),
            Err(RecordsError::Batch(BatchError::CrcMismatch { .. }))
        ));
        // Compressed.
        let mut compressed = batch.to_vec();
        with_valid_crc(&mut compressed, |bytes| bytes[ATTRIBUTES_LOW_BYTE_AT] |= 1);
        assert!(matches!(
            decode_batches(&compressed),
            Err(RecordsError::Compressed { codec: 1, .. })
        ));
    }

    /// Header fields `kafka-protocol`'s decoder would trust, made hostile behind a valid CRC.
    #[test]
    fn hostile_framing_with_a_valid_crc_is_an_error() {
        let batch = encode_batch(&many_records(3), 0);
        let set_count = |count: i32| {
            move |bytes: &mut [u8]| {
                bytes[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes())
            }
        };
        type Change = Box<dyn Fn(&mut [u8])>;
        let cases: Vec<(&str, Change)> = vec![
            ("huge record count", Box::new(set_count(i32::MAX))),
            ("one record too many", Box::new(set_count(4))),
            ("one record too few", Box::new(set_count(2))),
            (
                "offset overflow",
                Box::new(|bytes| bytes[BASE_OFFSET_AT..8].copy_from_slice(&i64::MAX.to_be_bytes())),
            ),
            (
                "negative record length",
                Box::new(|bytes| bytes[BATCH_HEADER_SIZE] = 0x01),
            ),
        ];
        for (name, change) in cases {
            let mut hostile = batch.to_vec();
            with_valid_crc(&mut hostile, change);
            let result = decode_batches(&hostile);
            assert!(
                matches!(result, Err(RecordsError::MalformedBatch { .. })),
                "{name}: {result:?}"
            );
        }

        // Timestamps 0 and 10: a base timestamp near i64::MAX overflows on the second record.
        let mut batch = encode_raw(&[raw_record(0, 0, Some(b"k")), raw_record(1, 10, Some(b"k"))]);
        with_valid_crc(&mut batch, |bytes| {
            bytes[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]
                .copy_from_slice(&(i64::MAX - 5).to_be_bytes())
        });
        let result = decode_batches(&batch);
        assert!(
            matches!(&result, Err(RecordsError::MalformedBatch { reason, .. }) if reason.contains("timestamp")),
            "{result:?}"
        );
    }

    #[test]
    fn hostile_records_are_errors() {
        let (key, _) = GroupRecord::Group {
            group: "g".to_owned(),
            value: None,
        }
        .encode();

        let null_key = encode_raw(&[raw_record(0, 0, None)]);
        assert_eq!(
            decode_batches(&null_key),
            Err(RecordsError::MissingKey { offset: 0 })
        );

        // Headers are allowed (and ignored); a header count the record cannot hold is not.
        let mut with_header = raw_record(0, 0, Some(&key));
        with_header.headers.insert(
            kafka_protocol::protocol::StrBytes::from_static_str("0"),
            None,
        );
        let with_header = encode_raw(&[with_header]);
        assert_eq!(decode_batches(&with_header).expect("decodes").len(), 1);
        // The record ends with: header count 1, key length 1, key "0", value length -1.
        let tail_at = with_header.len() - 4;
        assert_eq!(&with_header[tail_at..], &[2, 2, b'0', 1]);
        let mut hostile = with_header.clone();
        with_valid_crc(&mut hostile, |bytes| {
            // A count of about 16 million in the same four bytes.
            bytes[tail_at..].copy_from_slice(&[0xfe, 0xff, 0xff, 0x0f]);
        });
        let result = decode_batches(&hostile);
        assert!(
            matches!(&result, Err(RecordsError::MalformedBatch { reason, .. }) if reason.contains("headers")),
            "{result:?}"
        );

        // A key that is not a group record key.
        let garbage = encode_raw(&[raw_record(0, 0, Some(b"\x00\x09"))]);
        assert!(matches!(
            decode_batches(&garbage),
            Err(RecordsError::Record { offset: 0, .. })
        ));
    }

    fn any_member() -> impl Strategy<Value = StoredMember> {
        (
            (
                any::<String>(),
                proptest::option::of(any::<String>()),
                any::<String>(),
                any::<String>(),
            ),
            (
                any::<i32>(),
                any::<i32>(),
                proptest::collection::vec(any::<u8>(), 0..16),
                proptest::collection::vec(any::<u8>(), 0..16),
            ),
        )
            .prop_map(
                |(
                    (member_id, group_instance_id, client_id, client_host),
                    (rebalance_timeout_ms, session_timeout_ms, subscription, assignment),
                )| StoredMember {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    rebalance_timeout_ms,
                    session_timeout_ms,
                    subscription: subscription.into(),
                    assignment: assignment.into(),
                },
            )
    }

    fn any_record() -> impl Strategy<Value = GroupRecord> {
        let offset = (
            any::<String>(),
            any::<String>(),
            any::<i32>(),
            proptest::option::of(
                (
                    any::<i64>(),
                    any::<i32>(),
                    any::<String>(),
                    any::<i64>(),
                    any::<i64>(),
                )
                    .prop_map(
                        |(offset, leader_epoch, metadata, commit, expire)| OffsetValue {
                            offset,
                            leader_epoch,
                            metadata,
                            commit_timestamp_ms: commit,
                            expire_timestamp_ms: expire,
                        },
                    ),
            ),
        )
            .prop_map(|(group, topic, partition, value)| GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            });
        let group = (
            any::<String>(),
            proptest::option::of(
                (
                    proptest::option::of(any::<String>()),
                    any::<i32>(),
                    proptest::option::of(any::<String>()),
                    proptest::option::of(any::<String>()),
                    any::<i64>(),
                    proptest::collection::vec(any_member(), 0..4),
                )
                    .prop_map(
                        |(protocol_type, generation_id, protocol_name, leader, at, members)| {
                            StoredGroup {
                                protocol_type,
                                generation_id,
                                protocol_name,
                                leader,
                                current_state_timestamp_ms: at,
                                members,
                            }
                        },
                    ),
            ),
        )
            .prop_map(|(group, value)| GroupRecord::Group { group, value });
        prop_oneof![offset, group]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_records_round_trip(records in proptest::collection::vec(any_record(), 1..8)) {
            for record in &records {
                prop_assert_eq!(&round_trip(record), record);
            }
            let batch = encode_batch(&records, 1);
            prop_assert!(validate_all(&batch, usize::MAX).is_ok());
            let decoded = decode_batches(&batch).expect("decodes");
            prop_assert_eq!(decoded.len(), records.len());
            for ((offset, decoded), (index, record)) in decoded.iter().zip(records.iter().enumerate()) {
                prop_assert_eq!(*offset, index as i64);
                prop_assert_eq!(decoded, record);
            }
        }

        #[test]
        fn arbitrary_key_and_value_bytes_never_panic(
            key in proptest::collection::vec(any::<u8>(), 0..64),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128)),
            version in prop_oneof![Just(0i16), Just(1), Just(2), any::<i16>()],
        ) {
            // Raw bytes, and the same with a known key version in front (to get further in).
            let _ = GroupRecord::decode(&key, value.as_deref());
            let mut versioned = version.to_be_bytes().to_vec();
            versioned.extend_from_slice(&key);
            let _ = GroupRecord::decode(&versioned, value.as_deref());
        }

        #[test]
        fn arbitrary_batch_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batches(&bytes);
        }

        /// Mutations of a valid batch with the CRC fixed afterwards, so they reach the record
        /// framing checks and `kafka-protocol`'s decoder rather than stopping at the CRC.
        #[test]
        fn mutated_batches_with_valid_crc_never_panic(
            records in proptest::collection::vec(any_record(), 1..4),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            truncate in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let mut batch = encode_batch(&records, 1).to_vec();
            for (index, byte) in flips {
                // Anywhere from `attributes` on (a broken length or magic only fails
                // validation), and into the header's counts and timestamps.
                let position = batch::CRC_COVERAGE_START
                    + index.index(batch.len() - batch::CRC_COVERAGE_START);
                batch[position] = byte;
            }
            if let Some(cut) = truncate {
                // Shorten the batch and its declared length together.
                let length = BATCH_HEADER_SIZE + cut.index(batch.len() - BATCH_HEADER_SIZE + 1);
                batch.truncate(length);
                let declared = (length - 12) as i32;
                batch[8..12].copy_from_slice(&declared.to_be_bytes());
            }
            let crc = compute_crc(&batch);
            batch[batch::CRC_FIELD_OFFSET..batch::CRC_FIELD_OFFSET + 4]
                .copy_from_slice(&crc.to_be_bytes());
            let _ = decode_batches(&batch);
        }
    }
}
