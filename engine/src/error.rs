//! Error types, one enum per family of operations, each listing only what that call can fail
//! with. I/O errors keep their cause and say which operation on which file failed.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::offset::Offset;

/// A record batch that is not acceptable as stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length need.
    #[error("batch truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` smaller than the rest of the header.
    #[error("batch length {length} is smaller than the batch header")]
    LengthTooSmall {
        /// The declared `batchLength`.
        length: i32,
    },
    /// Larger than the configured maximum.
    #[error("batch of {size} bytes exceeds the maximum of {size_max}")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// Allowed maximum.
        size_max: usize,
    },
    /// Not a v2 batch.
    #[error("unsupported record batch magic {magic} (only v2 is stored)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// CRC32C mismatch.
    #[error("batch CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `lastOffsetDelta` below zero.
    #[error("negative last offset delta {delta}")]
    NegativeOffsetDelta {
        /// The delta found.
        delta: i32,
    },
    /// `recordsCount` is not `lastOffsetDelta + 1` (Kafka's producer-side rule).
    #[error("record count {count} does not match last offset delta {delta}")]
    RecordCountMismatch {
        /// `recordsCount`.
        count: i32,
        /// `lastOffsetDelta`.
        delta: i32,
    },
    /// `recordsCount` below zero.
    #[error("negative record count {count}")]
    NegativeRecordCount {
        /// The count found.
        count: i32,
    },
}

/// An I/O failure with the operation and file it happened on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} {path}: {source}")]
pub struct IoFailure {
    /// What was being done ("write", "fdatasync", "open", …).
    pub operation: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The OS error (shared so the failure can be reported to every waiter).
    #[source]
    pub source: Arc<io::Error>,
}

impl IoFailure {
    /// Wraps `source` with its context.
    pub fn new(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            operation,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the device is out of space.
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        self.source.raw_os_error() == Some(libc::ENOSPC)
            || self.source.kind() == io::ErrorKind::StorageFull
    }
}

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Listing, reading or repairing files failed.
    #[error("opening log: {0}")]
    Io(#[from] IoFailure),
    /// The configuration is out of bounds.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

/// Why an append was refused. Nothing of the refused batch was stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The batch is malformed or too large.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A previous write or fdatasync failed; the partition refuses writes until reopened.
    #[error("partition is read-only after a failed write: {0}")]
    Poisoned(IoFailure),
    /// Preallocation found the disk full; nothing was written, retrying later may succeed.
    #[error("disk full: {0}")]
    DiskFull(IoFailure),
    /// Creating a new segment failed.
    #[error("rolling to a new segment failed: {0}")]
    Roll(IoFailure),
    /// The log is closing.
    #[error("log is closed")]
    Closed,
    /// An idempotent producer's batch does not continue its sequence (a gap, a reordering,
    /// or a retry of a batch too old to be recognized), or a new epoch does not start at 0.
    /// Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error(
        "out of order sequence number for producer {producer_id}: expected {expected}, got {got}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The first sequence the batch had to carry.
        expected: i32,
        /// The batch's `baseSequence`.
        got: i32,
    },
    /// An idempotent producer's batch carries an epoch older than the producer's current one
    /// (the producer was fenced). Kafka's `INVALID_PRODUCER_EPOCH`.
    #[error("producer {producer_id} is at epoch {current}; a batch of epoch {got} is fenced")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// Its current epoch.
        current: i16,
        /// The batch's `producerEpoch`.
        got: i16,
    },
}

/// Why a flush/durability wait failed. The data it covered may not be durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlushError {
    /// The write or fdatasync covering it failed; the partition is poisoned.
    #[error("flush failed, partition poisoned: {0}")]
    Poisoned(IoFailure),
    /// The log was truncated below the offset being waited for.
    #[error("offset {0} was truncated before it became durable")]
    Truncated(Offset),
    /// The log closed first.
    #[error("log closed")]
    Closed,
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The offset is below the log start or above the log end.
    #[error("offset {requested} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// Requested offset.
        requested: Offset,
        /// First offset available.
        log_start: Offset,
        /// Offset the next append will get.
        log_end: Offset,
    },
    /// Reading a segment failed, or it holds bytes that do not parse.
    #[error("reading segment: {0}")]
    Io(#[from] IoFailure),
    /// Stored bytes do not parse as a batch where one should be.
    #[error("corrupt batch at position {position} of {path}: {cause}")]
    Corrupt {
        /// Segment file.
        path: PathBuf,
        /// Byte position in it.
        position: u64,
        /// What is wrong.
        cause: BatchError,
    },
}

/// Why a truncation, prefix deletion or retention pass failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MaintenanceError {
    /// File operations failed; the partition is poisoned if data may be inconsistent.
    #[error("log maintenance failed: {0}")]
    Io(#[from] IoFailure),
    /// A read needed to locate the cut failed.
    #[error("log maintenance read failed: {0}")]
    Read(#[from] ReadError),
    /// The log is poisoned.
    #[error("partition is poisoned: {0}")]
    Poisoned(IoFailure),
    /// The requested offset is past the log end.
    #[error("offset {requested} is past the log end {log_end}")]
    PastEnd {
        /// Requested.
        requested: Offset,
        /// Current log end.
        log_end: Offset,
    },
}
