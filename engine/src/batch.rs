//! Kafka RecordBatch v2: the fixed header as a zero-copy view, validation, and the in-place
//! rewrite that assigns offsets.
//!
//! The engine stores batches exactly as producers sent them; only the header fields below
//! `crc`'s coverage (`baseOffset`, `partitionLeaderEpoch`) are rewritten on append, so the
//! producer's CRC32C stays valid. The one exception is a `LogAppendTime` topic: setting the
//! timestamp type bit and `maxTimestamp` changes covered bytes, so the CRC is recomputed —
//! Kafka does the same. See `docs/format/segment.md` for the byte layout.

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::BatchError;
use crate::limits::{BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD};
use crate::offset::{Offset, TimestampMs};

/// The only record batch format the engine stores.
pub const MAGIC_V2: i8 = 2;

/// Byte offset of `crc` in the header; the CRC covers everything after it.
pub const CRC_FIELD_OFFSET: usize = 17;
/// First byte covered by the CRC (`attributes`).
pub const CRC_COVERAGE_START: usize = 21;

/// `attributes` bits.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Timestamp type: 0 = CreateTime, 1 = LogAppendTime.
pub const ATTR_TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
/// The batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// The batch holds a control record (transaction marker).
pub const ATTR_CONTROL: i16 = 0x20;

/// The fixed 61-byte header of a RecordBatch v2, all fields big-endian.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    /// Offset of the first record; assigned by the broker.
    pub base_offset: I64,
    /// Bytes that follow this field (the whole batch is `12 + batch_length` bytes).
    pub batch_length: I32,
    /// Leader epoch at append; assigned by the broker.
    pub partition_leader_epoch: I32,
    /// Format version; must be 2.
    pub magic: i8,
    /// CRC32C (Castagnoli) of bytes `attributes ..` end of batch.
    pub crc: U32,
    /// Compression, timestamp type, transactional, control bits.
    pub attributes: I16,
    /// `last offset - base offset`.
    pub last_offset_delta: I32,
    /// Timestamp of the first record.
    pub base_timestamp: I64,
    /// Largest timestamp in the batch (or the log append time).
    pub max_timestamp: I64,
    /// Idempotent producer id, or -1.
    pub producer_id: I64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: I16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: I32,
    /// Number of records in the batch.
    pub records_count: I32,
}

const _: () = assert!(size_of::<BatchHeader>() == BATCH_HEADER_SIZE);
const _: () = assert!(std::mem::offset_of!(BatchHeader, crc) == CRC_FIELD_OFFSET);
const _: () = assert!(std::mem::offset_of!(BatchHeader, attributes) == CRC_COVERAGE_START);
const _: () =
    assert!(std::mem::offset_of!(BatchHeader, partition_leader_epoch) == BATCH_LOG_OVERHEAD);

impl BatchHeader {
    /// Total size of the batch on disk / on the wire.
    #[must_use]
    pub fn total_size(&self) -> usize {
        BATCH_LOG_OVERHEAD + self.batch_length.get().max(0) as usize
    }

    /// Offset of the first record.
    #[must_use]
    pub fn base_offset(&self) -> Offset {
        Offset(self.base_offset.get())
    }

    /// Offset of the last record.
    #[must_use]
    pub fn last_offset(&self) -> Offset {
        Offset(self.base_offset.get() + i64::from(self.last_offset_delta.get()))
    }

    /// The offset after the last record.
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.last_offset().plus(1)
    }

    /// Largest timestamp in the batch.
    #[must_use]
    pub fn max_timestamp(&self) -> TimestampMs {
        TimestampMs(self.max_timestamp.get())
    }

    /// Whether the timestamps are log-append times.
    #[must_use]
    pub fn is_log_append_time(&self) -> bool {
        self.attributes.get() & ATTR_TIMESTAMP_TYPE_LOG_APPEND != 0
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    #[must_use]
    pub fn compression(&self) -> u8 {
        (self.attributes.get() & ATTR_COMPRESSION_MASK) as u8
    }
}

/// Reads the header at the start of `bytes` without validating anything but its size.
///
/// # Errors
/// [`BatchError::Truncated`] when fewer than 61 bytes are given.
pub fn header(bytes: &[u8]) -> Result<&BatchHeader, BatchError> {
    let (header, _) = BatchHeader::ref_from_prefix(bytes).map_err(|_| BatchError::Truncated {
        needed: BATCH_HEADER_SIZE,
        available: bytes.len(),
    })?;
    Ok(header)
}

/// Checks the structure of the header at the start of `bytes` (magic, length bounds, offset
/// delta, record count) without looking at the CRC. Returns the header and the batch's total
/// size; the batch may extend past `bytes` (callers scanning a file use this to learn how
/// much more to read).
///
/// # Errors
/// Any [`BatchError`] other than `CrcMismatch`.
pub fn check_header(bytes: &[u8], size_max: usize) -> Result<(&BatchHeader, usize), BatchError> {
    let header = header(bytes)?;
    let length = header.batch_length.get();
    let minimum = (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) as i32;
    if length < minimum {
        return Err(BatchError::LengthTooSmall { length });
    }
    let total = header.total_size();
    if total > size_max {
        return Err(BatchError::TooLarge {
            size: total,
            size_max,
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic {
            magic: header.magic,
        });
    }
    if header.last_offset_delta.get() < 0 {
        return Err(BatchError::NegativeOffsetDelta {
            delta: header.last_offset_delta.get(),
        });
    }
    if header.records_count.get() < 0 {
        return Err(BatchError::NegativeRecordCount {
            count: header.records_count.get(),
        });
    }
    Ok((header, total))
}

/// CRC32C of the covered range of a whole batch.
#[must_use]
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_COVERAGE_START..])
}

/// Validates one whole batch at the start of `bytes`: header structure, that all of it is
/// present, and its CRC32C. Returns the header and the batch size.
///
/// # Errors
/// The first problem found, as a [`BatchError`].
pub fn validate(bytes: &[u8], size_max: usize) -> Result<(&BatchHeader, usize), BatchError> {
    let (header, total) = check_header(bytes, size_max)?;
    if bytes.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: bytes.len(),
        });
    }
    let computed = compute_crc(&bytes[..total]);
    if computed != header.crc.get() {
        return Err(BatchError::CrcMismatch {
            stored: header.crc.get(),
            computed,
        });
    }
    Ok((header, total))
}

/// Validates that `bytes` is a sequence of whole, valid batches with nothing left over (a
/// produce request's record set). Returns the number of batches and the offset span they
/// need (sum of `last_offset_delta + 1`).
///
/// # Errors
/// The first invalid batch's error; `Truncated` for trailing bytes.
pub fn validate_all(bytes: &[u8], size_max: usize) -> Result<BatchSetSummary, BatchError> {
    let mut summary = BatchSetSummary::default();
    let mut position = 0;
    while position < bytes.len() {
        let (header, total) = validate(&bytes[position..], size_max)?;
        let (count, delta) = (header.records_count.get(), header.last_offset_delta.get());
        // Producers send `count == delta + 1` (only compaction leaves gaps); this also bounds
        // the offsets an append can take by its size, so segment-relative offsets fit in u32.
        if i64::from(count) != i64::from(delta) + 1 {
            return Err(BatchError::RecordCountMismatch { count, delta });
        }
        summary.batches += 1;
        summary.records += i64::from(header.last_offset_delta.get()) + 1;
        position += total;
    }
    if summary.batches == 0 {
        return Err(BatchError::Truncated {
            needed: BATCH_HEADER_SIZE,
            available: 0,
        });
    }
    Ok(summary)
}

/// What [`validate_all`] learned about a record set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSetSummary {
    /// Number of batches.
    pub batches: usize,
    /// Number of offsets the batches take.
    pub records: i64,
}

/// How [`assign`] stamps a batch.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// The base offset to assign.
    pub base_offset: Offset,
    /// The leader epoch to record.
    pub partition_leader_epoch: i32,
    /// `Some(now)` for `LogAppendTime` topics.
    pub log_append_time: Option<TimestampMs>,
}

/// Rewrites a validated batch's header in place (`batch` may continue with later batches of
/// the same record set; only the first is touched): base offset and leader epoch (outside the
/// CRC), and for `LogAppendTime` the timestamp type and max timestamp, then the CRC.
///
/// # Panics
/// If `batch` is shorter than a header (callers validate first: a bug, not input).
pub fn assign(batch: &mut [u8], stamp: Stamp) {
    let (header, _) = BatchHeader::mut_from_prefix(batch).expect("assign: validated batch");
    header.base_offset.set(stamp.base_offset.0);
    header
        .partition_leader_epoch
        .set(stamp.partition_leader_epoch);
    if let Some(now) = stamp.log_append_time {
        let attributes = header.attributes.get() | ATTR_TIMESTAMP_TYPE_LOG_APPEND;
        header.attributes.set(attributes);
        header.max_timestamp.set(now.0);
        let total = header.total_size();
        let crc = compute_crc(&batch[..total]);
        let (header, _) = BatchHeader::mut_from_prefix(batch).expect("assign: validated batch");
        header.crc.set(crc);
    }
}

/// Reads a zigzag varint (Kafka record encoding) from the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// For an uncompressed `CreateTime` batch, the offset and timestamp of the first record whose
/// timestamp is at or after `timestamp`. `None` for compressed or `LogAppendTime` batches
/// (callers fall back to the batch's base offset and max timestamp) or unparsable records.
#[must_use]
pub fn first_record_at_or_after(
    batch: &[u8],
    timestamp: TimestampMs,
) -> Option<(Offset, TimestampMs)> {
    first_visible_record_at_or_after(batch, timestamp, Offset(i64::MIN))
        .ok()
        .flatten()
}

/// Like [`first_record_at_or_after`], skipping records below `log_start` (deleted by
/// DeleteRecords or retention but still inside a stored batch). `Err(())` when the records
/// cannot be read (compressed, `LogAppendTime`, malformed); `Ok(None)` when no visible
/// record qualifies.
#[allow(clippy::result_unit_err)]
pub fn first_visible_record_at_or_after(
    batch: &[u8],
    timestamp: TimestampMs,
    log_start: Offset,
) -> Result<Option<(Offset, TimestampMs)>, ()> {
    let header = header(batch).map_err(|_| ())?;
    if header.compression() != 0 || header.is_log_append_time() {
        return Err(());
    }
    let base_timestamp = header.base_timestamp.get();
    let base_offset = header.base_offset.get();
    let mut rest = batch
        .get(BATCH_HEADER_SIZE..header.total_size())
        .ok_or(())?;
    for _ in 0..header.records_count.get() {
        let length = usize::try_from(take_varint(&mut rest).ok_or(())?).map_err(|_| ())?;
        let mut record = rest.get(..length).ok_or(())?;
        rest = &rest[length..];
        record = record.get(1..).ok_or(())?; // attributes
        let timestamp_delta = take_varint(&mut record).ok_or(())?;
        let offset_delta = take_varint(&mut record).ok_or(())?;
        let record_timestamp = base_timestamp.checked_add(timestamp_delta).ok_or(())?;
        let record_offset = Offset(base_offset.checked_add(offset_delta).ok_or(())?);
        if record_timestamp >= timestamp.0 && record_offset >= log_start {
            return Ok(Some((record_offset, TimestampMs(record_timestamp))));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a valid batch of `records` records carrying `payload` bytes of value each (the
    /// records are not a real record encoding; the engine never looks inside).
    pub(crate) fn make_batch(base: i64, records: i32, payload: usize, timestamp: i64) -> Vec<u8> {
        crate::testing::batch(base, records, payload, timestamp)
    }

    #[test]
    fn valid_batch_round_trips() {
        let batch = make_batch(0, 3, 100, 1_000);
        let (header, total) = validate(&batch, 1 << 20).expect("valid");
        assert_eq!(total, batch.len());
        assert_eq!(header.records_count.get(), 3);
        assert_eq!(header.last_offset(), Offset(2));
    }

    #[test]
    fn assign_keeps_crc_valid_for_create_time() {
        let mut batch = make_batch(0, 3, 50, 1_000);
        let crc_before = header(&batch).expect("header").crc.get();
        let stamp = Stamp {
            base_offset: Offset(1234),
            partition_leader_epoch: 7,
            log_append_time: None,
        };
        assign(&mut batch, stamp);
        let (header, _) = validate(&batch, 1 << 20).expect("still valid");
        assert_eq!(header.base_offset(), Offset(1234));
        assert_eq!(header.partition_leader_epoch.get(), 7);
        assert_eq!(
            header.crc.get(),
            crc_before,
            "CRC must not change for CreateTime"
        );
    }

    #[test]
    fn assign_recomputes_crc_for_log_append_time() {
        let mut batch = make_batch(0, 1, 10, 1_000);
        let stamp = Stamp {
            base_offset: Offset(5),
            partition_leader_epoch: 0,
            log_append_time: Some(TimestampMs(99_999)),
        };
        assign(&mut batch, stamp);
        let (header, _) = validate(&batch, 1 << 20).expect("valid after LogAppendTime");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp(), TimestampMs(99_999));
    }

    /// Regression: the LogAppendTime CRC was computed over the rest of a multi-batch record
    /// set instead of the batch alone, corrupting every batch but the last.
    #[test]
    fn assign_log_append_time_covers_only_its_own_batch() {
        let mut set = make_batch(0, 2, 10, 1_000);
        let first_len = set.len();
        set.extend(make_batch(0, 1, 10, 1_000));
        let stamp = Stamp {
            base_offset: Offset(0),
            partition_leader_epoch: 0,
            log_append_time: Some(TimestampMs(5)),
        };
        assign(&mut set, stamp);
        assign(
            &mut set[first_len..],
            Stamp {
                base_offset: Offset(2),
                ..stamp
            },
        );
        validate_all(&set, 1 << 20).expect("both batches valid");
    }

    #[test]
    fn every_flipped_covered_byte_is_detected() {
        let batch = make_batch(0, 2, 20, 1_000);
        for position in CRC_COVERAGE_START..batch.len() {
            let mut corrupt = batch.clone();
            corrupt[position] ^= 0x40;
            assert!(
                validate(&corrupt, 1 << 20).is_err(),
                "flip at {position} not detected"
            );
        }
    }

    #[test]
    fn rejects_bad_structure() {
        let batch = make_batch(0, 1, 10, 0);
        assert!(matches!(
            validate(&batch[..30], 1 << 20),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            validate(&batch[..batch.len() - 1], 1 << 20),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            validate(&batch, 64),
            Err(BatchError::TooLarge { .. })
        ));
        let mut bad_magic = batch.clone();
        bad_magic[16] = 1;
        assert!(matches!(
            validate(&bad_magic, 1 << 20),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        ));
        let mut short = batch.clone();
        short[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            validate(&short, 1 << 20),
            Err(BatchError::LengthTooSmall { .. })
        ));
    }

    #[test]
    fn finds_the_first_record_at_or_after_a_timestamp() {
        let batch = make_batch(100, 5, 10, 1_000); // timestamps 1000..=1004
        assert_eq!(
            first_record_at_or_after(&batch, TimestampMs(0)),
            Some((Offset(100), TimestampMs(1_000)))
        );
        assert_eq!(
            first_record_at_or_after(&batch, TimestampMs(1_003)),
            Some((Offset(103), TimestampMs(1_003)))
        );
        assert_eq!(first_record_at_or_after(&batch, TimestampMs(1_005)), None);
    }

    /// Regression: a batch claiming `lastOffsetDelta = i32::MAX` with one record was accepted
    /// and overflowed the segment-relative offset (a panic on the third such append).
    #[test]
    fn validate_all_rejects_a_count_that_does_not_match_the_delta() {
        let mut batch = make_batch(0, 1, 10, 0);
        let (header, _) = BatchHeader::mut_from_prefix(&mut batch).expect("header");
        header.last_offset_delta.set(i32::MAX);
        let crc = compute_crc(&batch);
        let (header, _) = BatchHeader::mut_from_prefix(&mut batch).expect("header");
        header.crc.set(crc);
        assert!(
            validate(&batch, 1 << 20).is_ok(),
            "structurally fine as stored bytes"
        );
        assert!(matches!(
            validate_all(&batch, 1 << 20),
            Err(BatchError::RecordCountMismatch { .. })
        ));
    }

    #[test]
    fn validate_all_counts_and_rejects_trailing_garbage() {
        let mut set = make_batch(0, 2, 10, 0);
        set.extend(make_batch(0, 5, 10, 0));
        let summary = validate_all(&set, 1 << 20).expect("valid set");
        assert_eq!(
            summary,
            BatchSetSummary {
                batches: 2,
                records: 7
            }
        );
        set.extend([0u8; 5]);
        assert!(validate_all(&set, 1 << 20).is_err());
        assert!(validate_all(&[], 1 << 20).is_err());
    }
}
