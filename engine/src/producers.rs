//! Idempotent-producer state of one partition log, with Kafka's `ProducerStateManager`
//! semantics: per producer id, its epoch and the metadata of its last five batches. With it
//! [`crate::Log::append`] refuses sequence gaps and fenced (older) epochs, and answers a
//! retried batch with the offsets it got the first time instead of storing it twice.
//!
//! * [`ProducerStates`] is the table: [`ProducerStates::check`] decides about a record set
//!   before anything is stored, [`ProducerStates::record`] takes in a stored batch (on append
//!   and when replaying the log). Batches with a negative producer id are not tracked.
//! * The table survives restarts through a snapshot file ([`SNAPSHOT_FILE_NAME`], layout in
//!   `docs/format/segment.md` §8) holding the state of every batch below an offset, written
//!   only while the log is durable up to its end; on open, and after a truncation, the state
//!   is the snapshot plus a replay of the batch headers after it (or of the whole log when
//!   there is no usable snapshot).
//! * Memory is bounded: entries expire `producer.id.expiration.ms` after their last batch's
//!   timestamp (on [`crate::Log::tick`]), and beyond [`crate::LogConfig::producers_max`]
//!   the least recently used producer is forgotten.
//!
//! An unknown producer is accepted with any epoch and sequence (Kafka does the same: its
//! state may have expired or been removed with old segments).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::batch::{self, BatchHeader};
use crate::error::{AppendError, IoFailure};
use crate::index::relative;
use crate::io::{ReadFile, Storage};
use crate::limits::{BATCH_HEADER_SIZE, HEADER_SCAN_READ_AHEAD};
use crate::log::Log;
use crate::offset::{Offset, TimestampMs};
use crate::segment::Segment;

/// Batches remembered per producer for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`: a producer has at most five requests in flight).
pub const BATCHES_RETAINED: usize = 5;

/// File name of the producer-state snapshot inside a log directory.
pub const SNAPSHOT_FILE_NAME: &str = "producers.snapshot";

const SNAPSHOT_MAGIC: &[u8; 4] = b"SLPS";
const SNAPSHOT_VERSION: u16 = 1;
/// magic + version + reserved + offset + count.
const SNAPSHOT_HEADER_SIZE: usize = 4 + 2 + 2 + 8 + 4;
/// producer id + epoch + batch count + reserved.
const SNAPSHOT_ENTRY_SIZE: usize = 8 + 2 + 1 + 1;
/// first seq + last seq + base offset + last offset + max timestamp.
const SNAPSHOT_BATCH_SIZE: usize = 4 + 4 + 8 + 8 + 8;
const SNAPSHOT_CRC_SIZE: usize = 4;

/// Kafka's `DefaultRecordBatch.incrementSequence`: `sequence + increment`, wrapping past
/// `i32::MAX` to 0 (`increment` is a batch's `lastOffsetDelta`, never negative).
#[must_use]
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    let sum = i64::from(sequence) + i64::from(increment.max(0));
    let wrapped = if sum > i64::from(i32::MAX) {
        sum - i64::from(i32::MAX) - 1
    } else {
        sum
    };
    // In range: `sequence ≤ i32::MAX` and `increment ≤ i32::MAX` bound the wrapped sum.
    i32::try_from(wrapped).unwrap_or(i32::MAX)
}

/// The producer fields of one batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id; negative: not an idempotent batch.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence of the first record (`baseSequence`).
    pub first_seq: i32,
    /// Sequence of the last record: `first_seq + lastOffsetDelta`, wrapping.
    pub last_seq: i32,
}

impl ProducerBatch {
    /// Reads the fields from a (checked) header.
    #[must_use]
    pub fn from_header(header: &BatchHeader) -> Self {
        let first_seq = header.base_sequence.get();
        Self {
            producer_id: header.producer_id.get(),
            epoch: header.producer_epoch.get(),
            first_seq,
            last_seq: increment_sequence(first_seq, header.last_offset_delta.get()),
        }
    }

    /// Whether the batch comes from an idempotent producer (and is tracked).
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
}

/// The producer fields of each batch of a validated record set, in order.
#[derive(Debug, Clone)]
pub struct RecordSetBatches<'a> {
    rest: &'a [u8],
}

impl<'a> RecordSetBatches<'a> {
    /// Iterates over the batches of `records` (whole, validated batches).
    #[must_use]
    pub fn new(records: &'a [u8]) -> Self {
        Self { rest: records }
    }
}

impl Iterator for RecordSetBatches<'_> {
    type Item = ProducerBatch;

    fn next(&mut self) -> Option<ProducerBatch> {
        let header = batch::header(self.rest).ok()?;
        let size = header.total_size().min(self.rest.len());
        let batch = ProducerBatch::from_header(header);
        self.rest = self.rest.get(size.max(1)..).unwrap_or_default();
        Some(batch)
    }
}

/// What the table remembers of one stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset the log gave the first record.
    pub base_offset: Offset,
    /// Offset the log gave the last record.
    pub last_offset: Offset,
    /// The batch's `maxTimestamp` as stored (the append time for `LogAppendTime` topics).
    pub max_timestamp: TimestampMs,
}

impl BatchMetadata {
    /// From a stored batch's header (offsets assigned).
    #[must_use]
    pub fn from_header(header: &BatchHeader) -> Self {
        let producer = ProducerBatch::from_header(header);
        Self {
            first_seq: producer.first_seq,
            last_seq: producer.last_seq,
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp(),
        }
    }
}

const EMPTY_BATCH: BatchMetadata = BatchMetadata {
    first_seq: 0,
    last_seq: 0,
    base_offset: Offset(0),
    last_offset: Offset(0),
    max_timestamp: TimestampMs(0),
};

/// The state of one producer: its epoch and its last batches of that epoch (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntry {
    epoch: i16,
    batches: [BatchMetadata; BATCHES_RETAINED],
    len: u8,
}

impl ProducerEntry {
    fn new(epoch: i16, first: BatchMetadata) -> Self {
        let mut batches = [EMPTY_BATCH; BATCHES_RETAINED];
        batches[0] = first;
        Self {
            epoch,
            batches,
            len: 1,
        }
    }

    /// The producer's current epoch.
    #[must_use]
    pub fn epoch(&self) -> i16 {
        self.epoch
    }

    /// Its last batches of the current epoch, oldest first (one to five).
    #[must_use]
    pub fn batches(&self) -> &[BatchMetadata] {
        &self.batches[..usize::from(self.len)]
    }

    /// Its last batch.
    #[must_use]
    pub fn last_batch(&self) -> BatchMetadata {
        self.batches[usize::from(self.len).saturating_sub(1)]
    }

    /// Sequence of its last record.
    #[must_use]
    pub fn last_seq(&self) -> i32 {
        self.last_batch().last_seq
    }

    /// Timestamp of its last batch: what expiry measures from.
    #[must_use]
    pub fn last_timestamp(&self) -> TimestampMs {
        self.last_batch().max_timestamp
    }

    /// The cached batch with exactly this sequence range.
    fn find(&self, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        self.batches()
            .iter()
            .find(|batch| batch.first_seq == first_seq && batch.last_seq == last_seq)
            .copied()
    }

    /// Takes in a stored batch: a new epoch forgets the old epoch's batches.
    fn push(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.len = 0;
        }
        let len = usize::from(self.len);
        if len == BATCHES_RETAINED {
            self.batches.copy_within(1.., 0);
            self.batches[BATCHES_RETAINED - 1] = batch;
        } else {
            self.batches[len] = batch;
            self.len += 1;
        }
    }
}

/// The verdict of [`ProducerStates::check`] on a record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Store the record set.
    Append,
    /// Every batch is one already stored: store nothing, answer with the original offsets.
    Duplicate {
        /// Base offset of the first batch as stored.
        base_offset: Offset,
        /// Last offset of the last batch as stored.
        last_offset: Offset,
        /// `maxTimestamp` of the last batch as stored.
        max_timestamp: TimestampMs,
    },
}

/// A table slot: the entry and when it was last used (for least-recently-used eviction).
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: ProducerEntry,
    last_used: u64,
}

/// The idempotent-producer table of one partition log.
#[derive(Debug, Clone)]
pub struct ProducerStates {
    slots: HashMap<i64, Slot>,
    /// `(use stamp, producer id)` in use order; an element is current while the producer's
    /// slot has that stamp, stale otherwise (dropped when the queue is compacted).
    recency: VecDeque<(u64, i64)>,
    next_stamp: u64,
    producers_max: usize,
    /// Bumped on every change, so unchanged state is not written again.
    generation: u64,
    /// At or below every entry's last timestamp: expiry scans only once this is old enough.
    earliest_timestamp: Option<TimestampMs>,
}

impl ProducerStates {
    /// An empty table holding at most `producers_max` producers (at least one).
    #[must_use]
    pub fn new(producers_max: usize) -> Self {
        Self {
            slots: HashMap::new(),
            recency: VecDeque::new(),
            next_stamp: 0,
            producers_max: producers_max.max(1),
            generation: 0,
            earliest_timestamp: None,
        }
    }

    /// Number of producers tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no producer is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The state of one producer.
    #[must_use]
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.slots.get(&producer_id).map(|slot| &slot.entry)
    }

    /// Changes the limit on producers; extra ones are evicted, least recently used first.
    pub fn set_producers_max(&mut self, producers_max: usize) {
        self.producers_max = producers_max.max(1);
        self.evict_over_limit();
    }

    /// Changes whenever the table does.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Decides about a validated record set before it is stored, checking its batches in
    /// order, each against the state the earlier ones would leave (Kafka's rules):
    /// 1. an epoch older than the producer's is [`AppendError::InvalidProducerEpoch`];
    /// 2. the same epoch and a sequence range equal to one of the producer's last five
    ///    batches is a duplicate;
    /// 3. a newer epoch must start at sequence 0;
    /// 4. the same epoch must continue at the last sequence + 1 (`i32::MAX` wraps to 0);
    ///
    /// else [`AppendError::OutOfOrderSequence`]. An unknown producer passes with anything.
    /// The set is a [`ProducerCheck::Duplicate`] when every batch is a duplicate (in offset
    /// order); a set mixing duplicates with new batches fails the sequence rules.
    ///
    /// # Errors
    /// The first refused batch's error: nothing of the set may be stored.
    pub fn check<I>(&self, batches: I) -> Result<ProducerCheck, AppendError>
    where
        I: Iterator<Item = ProducerBatch> + Clone,
    {
        let mut duplicate: Option<ProducerCheck> = None;
        let mut all_duplicates = true;
        let mut refused = None;
        for (index, batch) in batches.clone().enumerate() {
            if !batch.is_idempotent() {
                all_duplicates = false;
                if refused.is_some() {
                    break;
                }
                continue;
            }
            let entry = self.get(batch.producer_id);
            if all_duplicates {
                let cached = entry
                    .filter(|entry| entry.epoch == batch.epoch)
                    .and_then(|entry| entry.find(batch.first_seq, batch.last_seq));
                duplicate = match (cached, duplicate) {
                    (Some(cached), None) => Some(ProducerCheck::Duplicate {
                        base_offset: cached.base_offset,
                        last_offset: cached.last_offset,
                        max_timestamp: cached.max_timestamp,
                    }),
                    (
                        Some(cached),
                        Some(ProducerCheck::Duplicate {
                            base_offset,
                            last_offset,
                            ..
                        }),
                    ) if cached.base_offset > last_offset => Some(ProducerCheck::Duplicate {
                        base_offset,
                        last_offset: cached.last_offset,
                        max_timestamp: cached.max_timestamp,
                    }),
                    _ => {
                        all_duplicates = false;
                        None
                    }
                };
            }
            if refused.is_none() {
                // The state this batch meets: the set's previous batch of the same producer,
                // else the table.
                let previous = batches
                    .clone()
                    .take(index)
                    .filter(|earlier| earlier.producer_id == batch.producer_id)
                    .last()
                    .map(|earlier| (earlier.epoch, earlier.last_seq))
                    .or_else(|| entry.map(|entry| (entry.epoch, entry.last_seq())));
                refused = check_sequence(batch, previous).err();
            }
            if refused.is_some() && !all_duplicates {
                break;
            }
        }
        match (all_duplicates, duplicate, refused) {
            (true, Some(duplicate), _) => Ok(duplicate),
            (_, _, Some(error)) => Err(error),
            _ => Ok(ProducerCheck::Append),
        }
    }

    /// Takes in a stored batch (offsets assigned): on append, and when replaying the log.
    /// Batches with a negative producer id are ignored. No checks: what is stored is the
    /// truth.
    pub fn record(&mut self, header: &BatchHeader) {
        let producer_id = header.producer_id.get();
        if producer_id < 0 {
            return;
        }
        let epoch = header.producer_epoch.get();
        self.record_batch(producer_id, epoch, BatchMetadata::from_header(header));
    }

    /// [`ProducerStates::record`] from the fields.
    pub fn record_batch(&mut self, producer_id: i64, epoch: i16, batch: BatchMetadata) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.generation += 1;
        match self.slots.entry(producer_id) {
            Entry::Occupied(mut occupied) => {
                let slot = occupied.get_mut();
                slot.entry.push(epoch, batch);
                slot.last_used = stamp;
            }
            Entry::Vacant(vacant) => {
                vacant.insert(Slot {
                    entry: ProducerEntry::new(epoch, batch),
                    last_used: stamp,
                });
            }
        }
        self.recency.push_back((stamp, producer_id));
        self.earliest_timestamp = Some(
            self.earliest_timestamp
                .map_or(batch.max_timestamp, |earliest| {
                    earliest.min(batch.max_timestamp)
                }),
        );
        self.evict_over_limit();
        self.compact_recency();
    }

    /// Forgets producers whose last batch's timestamp is `expiration` or more before `now`
    /// (Kafka's `producer.id.expiration.ms`). Returns how many. Scans the table only when
    /// some entry may have expired.
    pub fn remove_expired(&mut self, now: TimestampMs, expiration: Duration) -> usize {
        let limit = i64::try_from(expiration.as_millis()).unwrap_or(i64::MAX);
        let expired = |timestamp: TimestampMs| now.0.saturating_sub(timestamp.0) >= limit;
        if !self.earliest_timestamp.is_some_and(expired) {
            return 0;
        }
        let before = self.slots.len();
        self.slots
            .retain(|_, slot| !expired(slot.entry.last_timestamp()));
        self.earliest_timestamp = self
            .slots
            .values()
            .map(|slot| slot.entry.last_timestamp())
            .min();
        let removed = before - self.slots.len();
        if removed > 0 {
            self.generation += 1;
            self.compact_recency();
        }
        removed
    }

    /// Evicts least recently used producers while over the limit.
    fn evict_over_limit(&mut self) {
        while self.slots.len() > self.producers_max {
            let Some((stamp, producer_id)) = self.recency.pop_front() else {
                break;
            };
            if self
                .slots
                .get(&producer_id)
                .is_some_and(|slot| slot.last_used == stamp)
            {
                self.slots.remove(&producer_id);
                self.generation += 1;
            }
        }
    }

    /// Drops stale recency elements once they outnumber the current ones (amortized O(1)
    /// per use; the queue stays under twice the table size plus a constant).
    fn compact_recency(&mut self) {
        if self.recency.len() <= 2 * self.slots.len() + 64 {
            return;
        }
        let slots = &self.slots;
        self.recency.retain(|&(stamp, producer_id)| {
            slots
                .get(&producer_id)
                .is_some_and(|slot| slot.last_used == stamp)
        });
    }

    /// The producers from least to most recently used.
    fn in_use_order(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.recency.iter().filter_map(|&(stamp, producer_id)| {
            self.slots
                .get(&producer_id)
                .filter(|slot| slot.last_used == stamp)
                .map(|slot| (producer_id, &slot.entry))
        })
    }

    /// Encodes the table as the snapshot of the state of every batch below `offset`
    /// (`docs/format/segment.md` §8).
    #[must_use]
    pub fn encode(&self, offset: Offset) -> Vec<u8> {
        let batches: usize = self
            .slots
            .values()
            .map(|slot| usize::from(slot.entry.len))
            .sum();
        let mut bytes = Vec::with_capacity(
            SNAPSHOT_HEADER_SIZE
                + self.slots.len() * SNAPSHOT_ENTRY_SIZE
                + batches * SNAPSHOT_BATCH_SIZE
                + SNAPSHOT_CRC_SIZE,
        );
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        bytes.extend_from_slice(&0u16.to_be_bytes());
        bytes.extend_from_slice(&offset.0.to_be_bytes());
        let count = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&count.to_be_bytes());
        for (producer_id, entry) in self.in_use_order() {
            bytes.extend_from_slice(&producer_id.to_be_bytes());
            bytes.extend_from_slice(&entry.epoch.to_be_bytes());
            bytes.push(entry.len);
            bytes.push(0);
            for batch in entry.batches() {
                bytes.extend_from_slice(&batch.first_seq.to_be_bytes());
                bytes.extend_from_slice(&batch.last_seq.to_be_bytes());
                bytes.extend_from_slice(&batch.base_offset.0.to_be_bytes());
                bytes.extend_from_slice(&batch.last_offset.0.to_be_bytes());
                bytes.extend_from_slice(&batch.max_timestamp.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// Decodes a snapshot into the offset it covers and the table (holding at most
    /// `producers_max` producers: the most recently used). `None` if the bytes are not a
    /// valid snapshot: wrong size, magic, version or CRC, or contents that no log could
    /// have produced.
    #[must_use]
    pub fn decode(bytes: &[u8], producers_max: usize) -> Option<(Offset, Self)> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(SNAPSHOT_CRC_SIZE)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut reader = Reader { rest: body };
        if reader.take::<4>()? != *SNAPSHOT_MAGIC
            || u16::from_be_bytes(reader.take()?) != SNAPSHOT_VERSION
            || u16::from_be_bytes(reader.take()?) != 0
        {
            return None;
        }
        let offset = Offset(i64::from_be_bytes(reader.take()?));
        let count = u32::from_be_bytes(reader.take()?);
        if offset.0 < 0 {
            return None;
        }
        // Each entry takes at least one batch: the count is bounded by the file size.
        let most = body.len() / (SNAPSHOT_ENTRY_SIZE + SNAPSHOT_BATCH_SIZE);
        if usize::try_from(count).ok()? > most {
            return None;
        }
        let mut table = Self::new(usize::MAX);
        for _ in 0..count {
            let producer_id = i64::from_be_bytes(reader.take()?);
            let epoch = i16::from_be_bytes(reader.take()?);
            let [len, reserved] = reader.take::<2>()?;
            if producer_id < 0
                || reserved != 0
                || !(1..=BATCHES_RETAINED).contains(&usize::from(len))
                || table.slots.contains_key(&producer_id)
            {
                return None;
            }
            let mut previous_last: Option<Offset> = None;
            for _ in 0..len {
                let batch = BatchMetadata {
                    first_seq: i32::from_be_bytes(reader.take()?),
                    last_seq: i32::from_be_bytes(reader.take()?),
                    base_offset: Offset(i64::from_be_bytes(reader.take()?)),
                    last_offset: Offset(i64::from_be_bytes(reader.take()?)),
                    max_timestamp: TimestampMs(i64::from_be_bytes(reader.take()?)),
                };
                let delta = i32::try_from(batch.last_offset.0.checked_sub(batch.base_offset.0)?)
                    .ok()
                    .filter(|&delta| delta >= 0)?;
                let sane = batch.base_offset.0 >= 0
                    && batch.last_offset < offset
                    && previous_last.is_none_or(|last| batch.base_offset > last)
                    && increment_sequence(batch.first_seq, delta) == batch.last_seq;
                if !sane {
                    return None;
                }
                previous_last = Some(batch.last_offset);
                table.record_batch(producer_id, epoch, batch);
            }
        }
        if !reader.rest.is_empty() {
            return None;
        }
        table.set_producers_max(producers_max);
        Some((offset, table))
    }
}

/// Reads fixed-size big-endian fields from the front of a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (field, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*field)
    }
}

/// The epoch and sequence rules for one batch meeting `previous` = `(epoch, last sequence)`
/// of its producer (`None`: unknown producer, anything goes).
fn check_sequence(batch: ProducerBatch, previous: Option<(i16, i32)>) -> Result<(), AppendError> {
    let Some((epoch, last_seq)) = previous else {
        return Ok(());
    };
    let expected = match batch.epoch.cmp(&epoch) {
        std::cmp::Ordering::Less => {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id: batch.producer_id,
                current: epoch,
                got: batch.epoch,
            });
        }
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Equal => increment_sequence(last_seq, 1),
    };
    if batch.first_seq == expected {
        Ok(())
    } else {
        Err(AppendError::OutOfOrderSequence {
            producer_id: batch.producer_id,
            expected,
            got: batch.first_seq,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Persistence: the snapshot file and the replay of batch headers after it.

/// Where the snapshot file stands, as far as the log knows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SnapshotFile {
    /// The highest offset a snapshot file on disk may cover (`None`: there is none). A
    /// truncation below it must remove the file before cutting: its history is changing.
    pub on_disk_max: Option<Offset>,
    /// `(offset, table generation)` of the last snapshot written, to skip unchanged writes.
    pub written: Option<(Offset, u64)>,
    /// When it was last written (or the log opened), for the tick's interval.
    pub written_at: TimestampMs,
}

/// One segment's part of a replay: batch headers from `start` to the segment's end.
pub(crate) struct ReplayRange<R> {
    reader: Rc<R>,
    path: PathBuf,
    /// A batch boundary: byte position and base offset of the first batch to read.
    start: (u64, Offset),
    /// Logical end of the segment and the offset after its last batch.
    end: (u64, Offset),
}

/// The headers to read to replay every batch at or after `from`: from the last index entry
/// at or before `from` in the segment holding it, then all later segments.
pub(crate) fn plan_replay<R>(
    segments: &BTreeMap<Offset, Segment<R>>,
    from: Offset,
) -> Vec<ReplayRange<R>> {
    segments
        .values()
        .filter(|segment| segment.next_offset > from && segment.size > 0)
        .map(|segment| {
            let start = if from > segment.base {
                segment
                    .offset_index
                    .lookup(relative(from, segment.base))
                    .map_or((0, segment.base), |entry| {
                        (
                            u64::from(entry.position),
                            Offset(segment.base.0 + i64::from(entry.relative_offset)),
                        )
                    })
            } else {
                (0, segment.base)
            };
            ReplayRange {
                reader: segment.reader.clone(),
                path: segment.paths.log.clone(),
                start,
                end: (segment.size, segment.next_offset),
            }
        })
        .collect()
}

/// Reads batch headers with a small read-ahead, so a run of small batches costs one read
/// and a large batch's records are not read at all.
struct HeaderReader<'a, R> {
    reader: &'a R,
    buffer: Bytes,
    buffer_start: u64,
}

impl<R: ReadFile> HeaderReader<'_, R> {
    async fn header_at(&mut self, position: u64, end: u64) -> std::io::Result<Bytes> {
        let header = BATCH_HEADER_SIZE as u64;
        let buffered_end = self.buffer_start + self.buffer.len() as u64;
        if position < self.buffer_start || position + header > buffered_end {
            let wanted =
                (end.saturating_sub(position)).clamp(header, HEADER_SCAN_READ_AHEAD as u64);
            self.buffer = self
                .reader
                .read_at(
                    position,
                    usize::try_from(wanted).unwrap_or(BATCH_HEADER_SIZE),
                )
                .await?;
            self.buffer_start = position;
        }
        let start = usize::try_from(position - self.buffer_start).unwrap_or(usize::MAX);
        let end = start.saturating_add(BATCH_HEADER_SIZE);
        Ok(self
            .buffer
            .slice(start.min(self.buffer.len())..end.min(self.buffer.len())))
    }
}

/// How a replay ended.
enum Replayed {
    /// Every batch at or after `from` was recorded; this many.
    Done(u64),
    /// `from` is not a batch boundary: the snapshot does not belong to this log.
    Misaligned,
}

/// Records every batch at or after `from` found in `ranges` into `states`.
async fn replay<R: ReadFile>(
    ranges: Vec<ReplayRange<R>>,
    from: Offset,
    states: &mut ProducerStates,
) -> Result<Replayed, IoFailure> {
    let mut replayed = 0;
    for range in ranges {
        let failure = |message: String| {
            IoFailure::new(
                "replay producer state",
                &range.path,
                std::io::Error::other(message),
            )
        };
        let mut reader = HeaderReader {
            reader: &*range.reader,
            buffer: Bytes::new(),
            buffer_start: 0,
        };
        let (mut position, mut expected) = range.start;
        while position < range.end.0 {
            let bytes = reader
                .header_at(position, range.end.0)
                .await
                .map_err(|error| IoFailure::new("read", &range.path, error))?;
            let (header, size) = batch::check_header(&bytes, usize::MAX)
                .map_err(|error| failure(format!("bad batch header at {position}: {error}")))?;
            if header.base_offset() != expected || position + size as u64 > range.end.0 {
                return Err(failure(format!(
                    "batch at {position} (base offset {}, {size} bytes) does not follow offset \
                     {expected} within the segment's {} bytes",
                    header.base_offset(),
                    range.end.0
                )));
            }
            if header.base_offset() >= from {
                states.record(header);
                replayed += 1;
            } else if header.next_offset() > from {
                return Ok(Replayed::Misaligned);
            }
            position += size as u64;
            expected = header.next_offset();
        }
        if expected != range.end.1 {
            return Err(failure(format!(
                "headers end at offset {expected}, the segment at {}",
                range.end.1
            )));
        }
    }
    Ok(Replayed::Done(replayed))
}

/// A rebuilt table and how it was made.
pub(crate) struct Rebuilt {
    pub states: ProducerStates,
    /// Offset of the snapshot it started from (`None`: from the first segment).
    pub snapshot: Option<Offset>,
    /// Whether a snapshot file exists (valid or not).
    pub file_found: bool,
    /// Batches replayed after the snapshot.
    pub replayed: u64,
}

/// Rebuilds the table of a log ending at `log_end`: the snapshot file if it is valid and at
/// or below the log end, then the batches after it; otherwise every batch of the log.
/// `plan(from)` lists the headers to read for the batches at or after `from`.
pub(crate) async fn rebuild<S: Storage>(
    storage: &S,
    dir: &Path,
    log_end: Offset,
    producers_max: usize,
    plan: impl Fn(Offset) -> Vec<ReplayRange<S::Reader>>,
) -> Result<Rebuilt, IoFailure> {
    let path = dir.join(SNAPSHOT_FILE_NAME);
    let bytes = storage
        .read_whole(&path)
        .await
        .map_err(|error| IoFailure::new("read", &path, error))?;
    let file_found = bytes.is_some();
    let loaded = bytes
        .and_then(|bytes| ProducerStates::decode(&bytes, producers_max))
        .filter(|&(offset, _)| offset <= log_end);
    if file_found && loaded.is_none() {
        tracing::warn!(file = %path.display(), "producer snapshot invalid or past the log end; rebuilding from the log");
    }
    if let Some((offset, mut states)) = loaded {
        match replay(plan(offset), offset, &mut states).await? {
            Replayed::Done(replayed) => {
                return Ok(Rebuilt {
                    states,
                    snapshot: Some(offset),
                    file_found,
                    replayed,
                });
            }
            Replayed::Misaligned => {
                tracing::warn!(file = %path.display(), %offset, "producer snapshot offset is not a batch boundary; rebuilding from the log");
            }
        }
    }
    let mut states = ProducerStates::new(producers_max);
    match replay(plan(Offset(i64::MIN)), Offset(i64::MIN), &mut states).await? {
        Replayed::Done(replayed) => Ok(Rebuilt {
            states,
            snapshot: None,
            file_found,
            replayed,
        }),
        Replayed::Misaligned => Err(IoFailure::new(
            "replay producer state",
            dir,
            std::io::Error::other("a full replay cannot start inside a batch"),
        )),
    }
}

impl<S: Storage> Log<S> {
    /// The idempotence state of one producer of this partition.
    #[must_use]
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.inner
            .state
            .borrow()
            .producers
            .get(producer_id)
            .copied()
    }

    /// Number of producers whose idempotence state is kept.
    #[must_use]
    pub fn producer_count(&self) -> usize {
        self.inner.state.borrow().producers.len()
    }

    /// Writes the producer snapshot if the log is durable up to its end (the table then
    /// describes exactly the durable batches) and it changed since the last one. Returns
    /// whether it wrote. Serialized with other snapshot writes and with truncation.
    pub(crate) async fn write_producer_snapshot(&self) -> Result<bool, IoFailure> {
        let _turn = self.inner.snapshot_turns.take().await;
        self.write_producer_snapshot_in_turn().await
    }

    /// [`Log::write_producer_snapshot`] for a caller holding the snapshot turn.
    pub(crate) async fn write_producer_snapshot_in_turn(&self) -> Result<bool, IoFailure> {
        let now = self.inner.storage.now();
        let (bytes, written) = {
            let state = self.inner.state.borrow();
            if state.durable_end != state.log_end || state.poisoned.is_some() {
                return Ok(false);
            }
            let written = (state.log_end, state.producers.generation());
            if self.inner.snapshot.get().written == Some(written) {
                return Ok(false);
            }
            (state.producers.encode(state.log_end), written)
        };
        let path = self.inner.dir.join(SNAPSHOT_FILE_NAME);
        let result = self.inner.storage.replace_file(&path, bytes).await;
        let mut file = self.inner.snapshot.get();
        // Whatever happened, a file at this offset may be on disk now.
        file.on_disk_max = Some(file.on_disk_max.map_or(written.0, |max| max.max(written.0)));
        if let Err(error) = result {
            file.written = None;
            self.inner.snapshot.set(file);
            return Err(IoFailure::new("write producer snapshot", &path, error));
        }
        file.on_disk_max = Some(written.0);
        file.written = Some(written);
        file.written_at = now;
        self.inner.snapshot.set(file);
        Ok(true)
    }

    /// Before a truncation to `offset`: removes a snapshot that may cover batches at or
    /// after it (they are about to change), durably. Call holding the snapshot turn.
    pub(crate) async fn remove_producer_snapshot_above(
        &self,
        offset: Offset,
    ) -> Result<(), IoFailure> {
        let mut file = self.inner.snapshot.get();
        if file.on_disk_max.is_none_or(|max| max <= offset) {
            return Ok(());
        }
        let path = self.inner.dir.join(SNAPSHOT_FILE_NAME);
        self.inner
            .storage
            .remove(&path)
            .await
            .map_err(|error| IoFailure::new("remove", &path, error))?;
        self.inner
            .storage
            .sync_dir(&self.inner.dir)
            .await
            .map_err(|error| IoFailure::new("sync directory", &self.inner.dir, error))?;
        file.on_disk_max = None;
        file.written = None;
        self.inner.snapshot.set(file);
        Ok(())
    }

    /// After a truncation: rebuilds the table for the log as it is now (from the snapshot if
    /// it is at or below the log end, else from the first segment). Call holding the append
    /// and snapshot turns, with the log quiesced.
    pub(crate) async fn rebuild_producers(&self) -> Result<(), IoFailure> {
        let log_end = self.offsets().log_end;
        let producers_max = self.inner.config.borrow().producers_max;
        let rebuilt = rebuild(
            &self.inner.storage,
            &self.inner.dir,
            log_end,
            producers_max,
            |from| plan_replay(&self.inner.state.borrow().segments, from),
        )
        .await?;
        self.inner.state.borrow_mut().producers = rebuilt.states;
        let mut file = self.inner.snapshot.get();
        file.written = None;
        self.inner.snapshot.set(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCER: i64 = 7;

    impl ProducerStates {
        fn check_ok<I>(&self, batches: I) -> Option<ProducerCheck>
        where
            I: Iterator<Item = ProducerBatch> + Clone,
        {
            self.check(batches).ok()
        }
    }

    fn batch(epoch: i16, first_seq: i32, records: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: PRODUCER,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, records - 1),
        }
    }

    /// Checks one batch; if it is to be appended, records it at `*next` (advancing it).
    fn append(
        table: &mut ProducerStates,
        batch: ProducerBatch,
        next: &mut i64,
    ) -> Result<ProducerCheck, AppendError> {
        let verdict = table.check(std::iter::once(batch))?;
        if verdict == ProducerCheck::Append {
            record(table, batch, next);
        }
        Ok(verdict)
    }

    fn record(table: &mut ProducerStates, batch: ProducerBatch, next: &mut i64) {
        let span = (i64::from(batch.last_seq) - i64::from(batch.first_seq))
            .rem_euclid(i64::from(i32::MAX) + 1);
        let records = span + 1;
        table.record_batch(
            batch.producer_id,
            batch.epoch,
            BatchMetadata {
                first_seq: batch.first_seq,
                last_seq: batch.last_seq,
                base_offset: Offset(*next),
                last_offset: Offset(*next + records - 1),
                max_timestamp: TimestampMs(1_000 + *next),
            },
        );
        *next += records;
    }

    fn out_of_order(expected: i32, got: i32) -> AppendError {
        AppendError::OutOfOrderSequence {
            producer_id: PRODUCER,
            expected,
            got,
        }
    }

    fn assert_error(result: Result<ProducerCheck, AppendError>, expected: &AppendError) {
        let error = result.expect_err("refused");
        assert_eq!(format!("{error:?}"), format!("{expected:?}"));
    }

    #[test]
    fn sequence_arithmetic_wraps_like_kafka() {
        assert_eq!(increment_sequence(0, 0), 0);
        assert_eq!(increment_sequence(5, 4), 9);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(i32::MAX, i32::MAX), i32::MAX - 1);
        assert_eq!(increment_sequence(-1, 1), 0);
    }

    #[test]
    fn unknown_producer_accepts_any_epoch_and_sequence() {
        let table = ProducerStates::new(10);
        for (epoch, seq) in [(0, 0), (3, 17), (-1, -1), (i16::MAX, i32::MAX)] {
            assert_eq!(
                table.check_ok(std::iter::once(batch(epoch, seq, 1))),
                Some(ProducerCheck::Append)
            );
        }
    }

    #[test]
    fn non_idempotent_batches_are_not_tracked() {
        let mut table = ProducerStates::new(10);
        let plain = ProducerBatch {
            producer_id: -1,
            epoch: -1,
            first_seq: -1,
            last_seq: -1,
        };
        assert_eq!(
            table.check_ok(std::iter::once(plain)),
            Some(ProducerCheck::Append)
        );
        let header_bytes = crate::testing::batch(0, 1, 1, 0);
        table.record(batch::header(&header_bytes).expect("header"));
        assert!(table.is_empty());
        assert_eq!(table.generation(), 0);
    }

    #[test]
    fn sequences_must_follow_without_gaps() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, 0, 5), &mut next).expect("first");
        append(&mut table, batch(0, 5, 2), &mut next).expect("follows");
        assert_error(
            append(&mut table, batch(0, 8, 1), &mut next),
            &out_of_order(7, 8),
        );
        assert_error(
            append(&mut table, batch(0, 3, 2), &mut next),
            &out_of_order(7, 3),
        );
        assert_eq!(table.get(PRODUCER).map(ProducerEntry::last_seq), Some(6));
        assert_eq!(next, 7, "refused batches are not recorded");
    }

    #[test]
    fn older_epoch_is_fenced_before_anything_else() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(3, 0, 1), &mut next).expect("first");
        // Even a batch that would be a duplicate under the old epoch.
        assert_error(
            append(&mut table, batch(2, 0, 1), &mut next),
            &AppendError::InvalidProducerEpoch {
                producer_id: PRODUCER,
                current: 3,
                got: 2,
            },
        );
    }

    #[test]
    fn epoch_bump_must_restart_at_zero_and_forgets_old_batches() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, 0, 3), &mut next).expect("first");
        append(&mut table, batch(0, 3, 3), &mut next).expect("second");
        assert_error(
            append(&mut table, batch(1, 6, 1), &mut next),
            &out_of_order(0, 6),
        );
        append(&mut table, batch(1, 0, 2), &mut next).expect("bump");
        let entry = table.get(PRODUCER).expect("entry");
        assert_eq!(entry.epoch(), 1);
        assert_eq!(entry.batches().len(), 1, "old epoch's batches forgotten");
        // The old epoch's batch is neither a duplicate nor acceptable now.
        assert_error(
            append(&mut table, batch(0, 3, 3), &mut next),
            &AppendError::InvalidProducerEpoch {
                producer_id: PRODUCER,
                current: 1,
                got: 0,
            },
        );
        append(&mut table, batch(1, 2, 1), &mut next).expect("continues in the new epoch");
    }

    #[test]
    fn sequence_wraps_from_max_to_zero() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, i32::MAX - 2, 3), &mut next).expect("ends at MAX");
        assert_eq!(
            table.get(PRODUCER).map(ProducerEntry::last_seq),
            Some(i32::MAX)
        );
        assert_error(
            append(&mut table, batch(0, i32::MAX, 1), &mut next),
            &out_of_order(0, i32::MAX),
        );
        append(&mut table, batch(0, 0, 1), &mut next).expect("wraps to 0");
        // A batch that wraps inside itself.
        append(&mut table, batch(0, 1, 1), &mut next).expect("1");
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, i32::MAX - 1, 4), &mut next).expect("wrapping batch");
        assert_eq!(table.get(PRODUCER).map(ProducerEntry::last_seq), Some(1));
        append(&mut table, batch(0, 2, 1), &mut next).expect("after the wrap");
        // The wrapping batch is recognized as a duplicate.
        let retried = table.check_ok(std::iter::once(batch(0, i32::MAX - 1, 4)));
        assert!(
            matches!(
                retried,
                Some(ProducerCheck::Duplicate {
                    base_offset: Offset(0),
                    last_offset: Offset(3),
                    ..
                })
            ),
            "{retried:?}"
        );
    }

    #[test]
    fn duplicates_answer_the_original_offsets_within_a_window_of_five() {
        let mut table = ProducerStates::new(10);
        let mut next = 100;
        let batches: Vec<ProducerBatch> = (0..6).map(|i| batch(0, i * 2, 2)).collect();
        for &sent in &batches {
            append(&mut table, sent, &mut next).expect("append");
        }
        // Batches 1..=5 (offsets 102..112) are remembered, oldest first.
        for (i, &sent) in batches.iter().enumerate().skip(1) {
            let base = 100 + 2 * i as i64;
            assert_eq!(
                table.check_ok(std::iter::once(sent)),
                Some(ProducerCheck::Duplicate {
                    base_offset: Offset(base),
                    last_offset: Offset(base + 1),
                    max_timestamp: TimestampMs(1_000 + base),
                }),
                "batch {i}"
            );
        }
        // The sixth-newest fell out of the window: now it is out of order.
        assert_error(
            table.check(std::iter::once(batches[0])),
            &out_of_order(12, 0),
        );
        // A range that overlaps a cached batch without equalling it is no duplicate.
        assert_error(
            table.check(std::iter::once(batch(0, 2, 1))),
            &out_of_order(12, 2),
        );
        assert_eq!(next, 112, "duplicates were not recorded");
    }

    #[test]
    fn later_batches_of_a_set_see_the_earlier_ones() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, 0, 2), &mut next).expect("first");
        let set = [batch(0, 2, 2), batch(0, 4, 1), batch(0, 5, 3)];
        assert_eq!(
            table.check_ok(set.iter().copied()),
            Some(ProducerCheck::Append)
        );
        let gap = [batch(0, 2, 2), batch(0, 5, 1)];
        assert_error(table.check(gap.iter().copied()), &out_of_order(4, 5));
        let bump = [batch(1, 0, 2), batch(1, 2, 1)];
        assert_eq!(
            table.check_ok(bump.iter().copied()),
            Some(ProducerCheck::Append)
        );
        let fenced = [batch(1, 0, 2), batch(0, 2, 1)];
        assert_error(
            table.check(fenced.iter().copied()),
            &AppendError::InvalidProducerEpoch {
                producer_id: PRODUCER,
                current: 1,
                got: 0,
            },
        );
        // Another producer's batch in between changes nothing for this one.
        let other = ProducerBatch {
            producer_id: PRODUCER + 1,
            ..batch(9, 42, 1)
        };
        let interleaved = [batch(0, 2, 1), other, batch(0, 3, 1)];
        assert_eq!(
            table.check_ok(interleaved.iter().copied()),
            Some(ProducerCheck::Append)
        );
    }

    #[test]
    fn a_set_of_duplicates_is_a_duplicate_and_a_mix_is_refused() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        for i in 0..3 {
            append(&mut table, batch(0, i * 2, 2), &mut next).expect("append");
        }
        let retried = [batch(0, 2, 2), batch(0, 4, 2)];
        assert_eq!(
            table.check_ok(retried.iter().copied()),
            Some(ProducerCheck::Duplicate {
                base_offset: Offset(2),
                last_offset: Offset(5),
                max_timestamp: TimestampMs(1_004),
            })
        );
        let mixed = [batch(0, 4, 2), batch(0, 6, 1)];
        assert_error(table.check(mixed.iter().copied()), &out_of_order(6, 4));
        let mixed = [batch(0, 6, 1), batch(0, 4, 2)];
        assert_error(table.check(mixed.iter().copied()), &out_of_order(7, 4));
        let plain = ProducerBatch {
            producer_id: -1,
            epoch: -1,
            first_seq: -1,
            last_seq: -1,
        };
        let with_plain = [batch(0, 4, 2), plain];
        assert_error(table.check(with_plain.iter().copied()), &out_of_order(6, 4));
        let reversed = [batch(0, 4, 2), batch(0, 2, 2)];
        assert!(table.check(reversed.iter().copied()).is_err());
    }

    #[test]
    fn expiry_measures_from_the_last_batch_timestamp() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        append(&mut table, batch(0, 0, 1), &mut next).expect("append"); // timestamp 1000
        let other = ProducerBatch {
            producer_id: PRODUCER + 1,
            ..batch(0, 0, 1)
        };
        append(&mut table, other, &mut next).expect("append"); // timestamp 1001
        let expiration = Duration::from_millis(500);
        assert_eq!(table.remove_expired(TimestampMs(1_499), expiration), 0);
        let generation = table.generation();
        assert_eq!(table.remove_expired(TimestampMs(1_500), expiration), 1);
        assert!(table.get(PRODUCER).is_none());
        assert!(table.get(PRODUCER + 1).is_some());
        assert!(table.generation() > generation);
        // Forgotten: any sequence is accepted again.
        assert_eq!(
            table.check_ok(std::iter::once(batch(0, 99, 1))),
            Some(ProducerCheck::Append)
        );
    }

    #[test]
    fn least_recently_used_producer_is_evicted_over_the_limit() {
        let mut table = ProducerStates::new(3);
        let mut next = 0;
        let of = |producer_id: i64, seq: i32| ProducerBatch {
            producer_id,
            ..batch(0, seq, 1)
        };
        for producer in 1..=3 {
            append(&mut table, of(producer, 0), &mut next).expect("append");
        }
        append(&mut table, of(1, 1), &mut next).expect("producer 1 used again");
        append(&mut table, of(4, 0), &mut next).expect("a fourth producer");
        assert_eq!(table.len(), 3);
        assert!(
            table.get(2).is_none(),
            "producer 2 was the least recently used"
        );
        for producer in [1, 3, 4] {
            assert!(table.get(producer).is_some(), "producer {producer} kept");
        }
        table.set_producers_max(1);
        assert_eq!(table.len(), 1);
        assert!(table.get(4).is_some(), "the most recently used stays");
        // Many uses keep the recency queue bounded.
        let mut table = ProducerStates::new(2);
        for seq in 0..10_000 {
            append(&mut table, of(1, seq), &mut next).expect("append");
        }
        assert!(table.recency.len() <= 2 * table.len() + 65);
    }

    #[test]
    fn snapshot_round_trips_in_use_order_and_rejects_damage() {
        let mut table = ProducerStates::new(10);
        let mut next = 0;
        for (producer, epoch, batches) in [(5, 0, 7), (1, 2, 2), (9, 0, 1)] {
            for seq in 0..batches {
                let sent = ProducerBatch {
                    producer_id: producer,
                    ..batch(epoch, seq * 3, 3)
                };
                append(&mut table, sent, &mut next).expect("append");
            }
        }
        append(
            &mut table,
            ProducerBatch {
                producer_id: 5,
                ..batch(0, 21, 1)
            },
            &mut next,
        )
        .expect("producer 5 used last");
        let bytes = table.encode(Offset(next));
        let (offset, decoded) = ProducerStates::decode(&bytes, 10).expect("valid");
        assert_eq!(offset, Offset(next));
        assert_eq!(decoded.len(), 3);
        for producer in [1, 5, 9] {
            assert_eq!(decoded.get(producer), table.get(producer), "{producer}");
        }
        let order: Vec<i64> = decoded.in_use_order().map(|(id, _)| id).collect();
        assert_eq!(order, vec![1, 9, 5]);
        assert_eq!(
            decoded.encode(Offset(next)),
            bytes,
            "re-encodes identically"
        );
        // Loading into a smaller table keeps the most recently used.
        let (_, small) = ProducerStates::decode(&bytes, 2).expect("valid");
        assert!(small.get(1).is_none() && small.get(9).is_some() && small.get(5).is_some());
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            assert!(
                ProducerStates::decode(&damaged, 10).is_none(),
                "damage at {position} accepted"
            );
        }
        for len in 0..bytes.len() {
            assert!(ProducerStates::decode(&bytes[..len], 10).is_none(), "{len}");
        }
        // An offset below a remembered batch cannot be (CRC recomputed, contents wrong).
        let mut inconsistent = table.encode(Offset(3));
        let body = inconsistent.len() - 4;
        let crc = crc32c::crc32c(&inconsistent[..body]);
        inconsistent[body..].copy_from_slice(&crc.to_be_bytes());
        assert!(ProducerStates::decode(&inconsistent, 10).is_none());
        let empty = ProducerStates::new(10).encode(Offset(0));
        assert_eq!(empty.len(), SNAPSHOT_HEADER_SIZE + SNAPSHOT_CRC_SIZE);
        assert!(ProducerStates::decode(&empty, 10).is_some_and(|(_, table)| table.is_empty()));
    }

    #[test]
    fn record_set_batches_reads_every_header() {
        let mut set = crate::testing::idempotent_batch(0, 3, 10, 0, 4, 1, 10);
        set.extend(crate::testing::batch(0, 2, 10, 0));
        set.extend(crate::testing::idempotent_batch(0, 1, 10, 0, 4, 1, 13));
        let batches: Vec<ProducerBatch> = RecordSetBatches::new(&set).collect();
        assert_eq!(
            batches,
            vec![
                ProducerBatch {
                    producer_id: 4,
                    epoch: 1,
                    first_seq: 10,
                    last_seq: 12
                },
                ProducerBatch {
                    producer_id: -1,
                    epoch: -1,
                    first_seq: -1,
                    last_seq: 0
                },
                ProducerBatch {
                    producer_id: 4,
                    epoch: 1,
                    first_seq: 13,
                    last_seq: 13
                },
            ]
        );
    }
}
