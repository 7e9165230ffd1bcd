//! One segment: a `.log` file of batches plus its sparse `.index` and `.timeindex`.
//!
//! The segment's in-memory state (size, offsets, indexes, timestamps) is updated through
//! [`Segment::record_batch`] both on append and when recovery scans a file, so the two can
//! never disagree on where index entries go.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::batch::{self, BatchHeader};
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex, relative};
use crate::io::ReadFile;
use crate::limits::BATCH_HEADER_SIZE;
use crate::offset::{Offset, TimestampMs};

/// File name of a segment's log file: the base offset in 20 digits.
#[must_use]
pub fn log_file_name(base: Offset) -> String {
    format!("{:020}.log", base.0)
}

/// Paths of a segment's three files.
#[derive(Debug, Clone)]
pub struct SegmentPaths {
    /// `<base>.log`
    pub log: PathBuf,
    /// `<base>.index`
    pub index: PathBuf,
    /// `<base>.timeindex`
    pub time_index: PathBuf,
}

impl SegmentPaths {
    /// Paths for the segment at `base` in `dir`.
    #[must_use]
    pub fn new(dir: &Path, base: Offset) -> Self {
        Self {
            log: dir.join(log_file_name(base)),
            index: dir.join(format!("{:020}.index", base.0)),
            time_index: dir.join(format!("{:020}.timeindex", base.0)),
        }
    }
}

/// Parses `<20 digits>.log` into a base offset.
#[must_use]
pub fn parse_log_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok().map(Offset)
}

/// The facts of one batch that the segment keeps.
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo {
    /// Base offset.
    pub base: Offset,
    /// Offset after the last record.
    pub next: Offset,
    /// Largest timestamp.
    pub max_timestamp: TimestampMs,
    /// Size in bytes.
    pub size: u64,
}

impl BatchInfo {
    /// From a (checked) header.
    #[must_use]
    pub fn from_header(header: &BatchHeader) -> Self {
        Self {
            base: header.base_offset(),
            next: header.next_offset(),
            max_timestamp: header.max_timestamp(),
            size: header.total_size() as u64,
        }
    }
}

/// A segment's state in memory.
#[derive(Debug)]
pub(crate) struct Segment<R> {
    pub base: Offset,
    pub paths: SegmentPaths,
    /// Offset after the last batch.
    pub next_offset: Offset,
    /// Logical size: bytes of whole batches.
    pub size: u64,
    pub reader: Rc<R>,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    bytes_since_index: u64,
    /// Largest timestamp in the segment and the last offset of the batch holding it.
    pub max_timestamp: Option<(TimestampMs, Offset)>,
    /// Wall-clock time of the first append to this segment, or of the log's opening for a
    /// recovered segment: what `segment.ms` measures from. (Kafka measures from the first
    /// batch's timestamp, which makes a producer with an old clock roll on every append.)
    pub first_append_at: Option<TimestampMs>,
}

impl<R: ReadFile> Segment<R> {
    pub(crate) fn new(dir: &Path, base: Offset, reader: Rc<R>) -> Self {
        Self {
            base,
            paths: SegmentPaths::new(dir, base),
            next_offset: base,
            size: 0,
            reader,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            max_timestamp: None,
            first_append_at: None,
        }
    }

    /// Accounts for a batch stored at `position` (which must be the current size).
    pub(crate) fn record_batch(&mut self, info: BatchInfo, position: u64, index_interval: u32) {
        assert_eq!(position, self.size, "batches are recorded in file order");
        assert_eq!(
            info.base, self.next_offset,
            "batches are recorded in offset order"
        );
        let relative_offset = relative(info.base, self.base);
        let needs_entry =
            self.offset_index.is_empty() || self.bytes_since_index >= u64::from(index_interval);
        if self
            .max_timestamp
            .is_none_or(|(max, _)| info.max_timestamp > max)
        {
            self.max_timestamp = Some((info.max_timestamp, info.next.plus(-1)));
        }
        if needs_entry {
            let position = u32::try_from(position).expect("segment positions fit in u32");
            self.offset_index.push(OffsetEntry {
                relative_offset,
                position,
            });
            if let Some((timestamp, _)) = self.max_timestamp {
                self.time_index.maybe_push(TimeEntry {
                    timestamp,
                    relative_offset,
                });
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += info.size;
        self.size = position + info.size;
        self.next_offset = info.next;
    }

    /// Adds a final time-index entry so the index's last timestamp is the segment's largest
    /// (done when sealing; the largest may sit in a batch between index entries).
    pub(crate) fn seal_time_index(&mut self) {
        if let (Some((timestamp, _)), Some(last)) = (self.max_timestamp, self.offset_index.last()) {
            let relative_offset = self
                .time_index
                .last()
                .map_or(last.relative_offset, |entry| {
                    entry.relative_offset.max(last.relative_offset)
                });
            self.time_index.maybe_push(TimeEntry {
                timestamp,
                relative_offset,
            });
        }
    }

    /// Positions a segment being recovered at the indexed batch at `position` (holding
    /// `offset`), to scan from there. `time_index` keeps its entries up to and including that
    /// batch: its last timestamp is the largest up to there, and scanning the batch again
    /// cannot change a maximum.
    pub(crate) fn resume_at(
        &mut self,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        position: u64,
        offset: Offset,
    ) {
        self.offset_index = offset_index;
        self.max_timestamp = time_index.last().map(|entry| {
            (
                entry.timestamp,
                Offset(self.base.0 + i64::from(entry.relative_offset)),
            )
        });
        self.time_index = time_index;
        self.size = position;
        self.next_offset = offset;
        self.bytes_since_index = u64::MAX / 2; // the resumed batch gets its index entry back
    }

    /// Rewinds the state to the last indexed batch before `position` (a batch boundary
    /// being cut at), returning that batch's position. The caller replays the batch headers
    /// from there to `position` through [`Segment::record_batch`], which rebuilds the index
    /// entries and the exact largest timestamp the way appends built them.
    pub(crate) fn rewind_before(&mut self, position: u64) -> u64 {
        let entry = position.checked_sub(1).and_then(|last| {
            self.offset_index
                .lookup_position(u32::try_from(last).expect("u32 position"))
        });
        let Some(entry) = entry else {
            self.offset_index = OffsetIndex::default();
            self.time_index = TimeIndex::default();
            self.max_timestamp = None;
            self.size = 0;
            self.next_offset = self.base;
            self.bytes_since_index = 0;
            self.first_append_at = None;
            return 0;
        };
        let mut offset_index = std::mem::take(&mut self.offset_index);
        offset_index.truncate_to_position(entry.position);
        let mut time_index = std::mem::take(&mut self.time_index);
        time_index.truncate_to_offset(entry.relative_offset + 1);
        let offset = Offset(self.base.0 + i64::from(entry.relative_offset));
        self.resume_at(offset_index, time_index, u64::from(entry.position), offset);
        u64::from(entry.position)
    }
}

/// Reads and checks the header of the batch at `position`; `None` when fewer than a header's
/// bytes remain. Zero padding reads as `Some(Err(LengthTooSmall))`.
pub(crate) async fn read_header<R: ReadFile>(
    reader: &R,
    position: u64,
    size_max: usize,
) -> std::io::Result<Option<Result<BatchInfo, crate::error::BatchError>>> {
    let bytes = reader.read_at(position, BATCH_HEADER_SIZE).await?;
    if bytes.len() < BATCH_HEADER_SIZE {
        return Ok(None);
    }
    Ok(Some(
        batch::check_header(&bytes, size_max).map(|(header, _)| BatchInfo::from_header(header)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(log_file_name(Offset(42)), "00000000000000000042.log");
        assert_eq!(
            parse_log_file_name("00000000000000000042.log"),
            Some(Offset(42))
        );
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name("0000000000000000004a.log"), None);
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
    }
}
