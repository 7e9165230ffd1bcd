//! Every fixed limit of the engine, in one place, with the relations between them checked at
//! compile time. Per-topic tunables live in [`crate::config::LogConfig`]; these are the
//! bounds those tunables must respect.

/// Alignment of every direct-I/O write position and length (a page; covers 512 B and 4 KiB
/// logical block devices).
pub const DIRECT_IO_ALIGNMENT: usize = 4096;

/// Size of the fixed Kafka RecordBatch v2 header (`baseOffset` .. `recordsCount`).
pub const BATCH_HEADER_SIZE: usize = 61;

/// Bytes before `batchLength`'s coverage starts: `baseOffset` (8) + `batchLength` (4).
pub const BATCH_LOG_OVERHEAD: usize = 12;

/// The largest single batch the engine accepts, whatever a topic's `max.message.bytes` says.
/// Kafka's own default is ~1 MiB; we allow topics to go up to this.
pub const BATCH_SIZE_MAX: usize = 64 * 1024 * 1024;

/// The largest segment file. Index entries store 32-bit positions.
pub const SEGMENT_SIZE_MAX: u64 = u32::MAX as u64;

/// Smallest allowed `segment.bytes` (enough for a few batches; tests use small segments).
pub const SEGMENT_SIZE_MIN: u64 = 4096;

/// Size of one offset-index entry on disk: relative offset (u32) + position (u32).
pub const OFFSET_INDEX_ENTRY_SIZE: usize = 8;

/// Size of one time-index entry on disk: timestamp (i64) + relative offset (u32).
pub const TIME_INDEX_ENTRY_SIZE: usize = 12;

/// Bytes read at a time while scanning batch headers (lookup, recovery).
pub const SCAN_CHUNK_SIZE: usize = 256 * 1024;

/// Size of the small checkpoint file, fixed.
pub const CHECKPOINT_SIZE: usize = 40;

const _: () = assert!(BATCH_HEADER_SIZE > BATCH_LOG_OVERHEAD);
const _: () = assert!(DIRECT_IO_ALIGNMENT.is_power_of_two());
const _: () = assert!((BATCH_SIZE_MAX as u64) < SEGMENT_SIZE_MAX);
const _: () = assert!(SCAN_CHUNK_SIZE >= BATCH_HEADER_SIZE);
const _: () = assert!(SCAN_CHUNK_SIZE.is_multiple_of(DIRECT_IO_ALIGNMENT));

/// Bytes read at a time when replaying batch headers for the producer state: a run of small
/// batches costs one read, a large batch's records are skipped.
pub const HEADER_SCAN_READ_AHEAD: usize = 32 * 1024;

/// Largest `producers_max` a log may be configured with (bounds the producer table and its
/// snapshot file: about 200 bytes per producer).
pub const PRODUCERS_MAX_LIMIT: usize = 1 << 20;

/// Least time between two producer snapshots written by `Log::tick` (rolls, truncations and
/// `close` write one regardless).
pub const PRODUCER_SNAPSHOT_INTERVAL_MS: i64 = 30_000;

const _: () = assert!(HEADER_SCAN_READ_AHEAD >= BATCH_HEADER_SIZE);
