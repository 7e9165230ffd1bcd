//! Per-log configuration: the Kafka topic settings the engine honours, plus its own tuning.

use std::time::Duration;

use crate::error::OpenError;
use crate::limits::{
    BATCH_SIZE_MAX, DIRECT_IO_ALIGNMENT, PRODUCERS_MAX_LIMIT, SEGMENT_SIZE_MAX, SEGMENT_SIZE_MIN,
};

/// When appended data is made durable with fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Group commit: whenever data is waiting, one fdatasync covers every append that arrived
    /// while the previous fdatasync ran. `flushed()` resolves after that fdatasync.
    GroupCommit,
    /// fdatasync once `bytes` are unsynced, or when [`crate::Log::tick`] finds data older than
    /// `interval` (Kafka's `flush.messages`/`flush.ms`, in bytes).
    Interval {
        /// Longest time data stays unsynced (checked on `tick`).
        interval: Duration,
        /// Most bytes left unsynced.
        bytes: u64,
    },
    /// Never fdatasync while running (only when sealing a segment and on close); `flushed()`
    /// resolves once the data is written to the device.
    Never,
}

/// Whether batch timestamps are the producer's or the broker's (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Keep the producer's timestamps.
    CreateTime,
    /// Stamp batches with the append time.
    LogAppendTime,
}

/// Configuration of one partition log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would pass this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first append is older than this.
    pub segment_ms: Option<Duration>,
    /// `index.interval.bytes`: bytes of log between offset-index entries.
    pub index_interval_bytes: u32,
    /// `retention.bytes`: delete oldest segments while the log is larger (None: unlimited).
    pub retention_bytes: Option<u64>,
    /// `retention.ms`: delete segments whose newest record is older (None: forever).
    pub retention_ms: Option<Duration>,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_batch_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// When to fdatasync.
    pub flush_policy: FlushPolicy,
    /// Size of each direct-I/O write buffer (a multiple of 4 KiB).
    pub write_buffer_bytes: usize,
    /// Most bytes appended but not yet written before `append` waits (backpressure).
    pub unwritten_bytes_max: usize,
    /// Step in which segment files are preallocated.
    pub preallocate_bytes: u64,
    /// `producer.id.expiration.ms`: an idempotent producer's state is dropped once its last
    /// batch's timestamp is this old (checked on `tick`).
    pub producer_id_expiration_ms: Duration,
    /// Most idempotent producers whose state is kept; beyond it the least recently used is
    /// forgotten (and would be accepted with any sequence, as an expired one is).
    pub producers_max: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            max_batch_bytes: 1024 * 1024 + 12,
            timestamp_type: TimestampType::CreateTime,
            flush_policy: FlushPolicy::GroupCommit,
            write_buffer_bytes: 1 << 20,
            unwritten_bytes_max: 32 << 20,
            preallocate_bytes: 32 << 20,
            producer_id_expiration_ms: Duration::from_millis(86_400_000),
            producers_max: 10_000,
        }
    }
}

impl LogConfig {
    /// Checks the bounds and relations of the settings.
    ///
    /// # Errors
    /// [`OpenError::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), OpenError> {
        let fail = |message: String| Err(OpenError::Config(message));
        if !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&self.segment_bytes) {
            return fail(format!(
                "segment.bytes {} outside [{SEGMENT_SIZE_MIN}, {SEGMENT_SIZE_MAX}]",
                self.segment_bytes
            ));
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > BATCH_SIZE_MAX {
            return fail(format!(
                "max.message.bytes {} outside [1, {BATCH_SIZE_MAX}]",
                self.max_batch_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return fail("index.interval.bytes must be positive".into());
        }
        if self.write_buffer_bytes == 0
            || !self.write_buffer_bytes.is_multiple_of(DIRECT_IO_ALIGNMENT)
        {
            return fail(format!(
                "write buffer size {} must be a positive multiple of {DIRECT_IO_ALIGNMENT}",
                self.write_buffer_bytes
            ));
        }
        if self.unwritten_bytes_max < self.write_buffer_bytes {
            return fail("unwritten bytes limit must be at least one write buffer".into());
        }
        if !self
            .preallocate_bytes
            .is_multiple_of(DIRECT_IO_ALIGNMENT as u64)
        {
            return fail("preallocation step must be a multiple of 4 KiB".into());
        }
        if self.producer_id_expiration_ms.is_zero() {
            return fail("producer.id.expiration.ms must be positive".into());
        }
        if !(1..=PRODUCERS_MAX_LIMIT).contains(&self.producers_max) {
            return fail(format!(
                "producer limit {} outside [1, {PRODUCERS_MAX_LIMIT}]",
                self.producers_max
            ));
        }
        Ok(())
    }
}
