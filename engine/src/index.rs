//! Sparse offset and time indexes of one segment, kept in memory and persisted as hints.
//!
//! * Offset index: `(base offset of a batch - segment base, file position of that batch)`,
//!   one entry every `index.interval.bytes` of log. A lookup gives the position of the last
//!   indexed batch at or before the target; a short header scan finishes the job.
//! * Time index: `(largest timestamp so far in the segment, relative base offset of the batch
//!   where it was reached)`, added at the same batches as offset entries when the timestamp
//!   grew. Timestamps in it are strictly increasing, so a lookup is a binary search.
//!
//! Both are big-endian on disk (`docs/format/segment.md`). The files are hints: written
//! without fdatasync except when a segment is sealed, and validated on load — an entry that is
//! out of order or points past the segment end ends the usable prefix.

use crate::limits::{OFFSET_INDEX_ENTRY_SIZE, TIME_INDEX_ENTRY_SIZE};
use crate::offset::{Offset, TimestampMs};

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Batch base offset minus the segment base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// One time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp in the segment up to and including this batch.
    pub timestamp: TimestampMs,
    /// Base offset of that batch minus the segment base offset.
    pub relative_offset: u32,
}

/// A fixed-size, big-endian entry of a sparse index file.
pub trait IndexEntry: Copy + std::fmt::Debug {
    /// Bytes per entry on disk.
    const SIZE: usize;
    /// Appends the entry's bytes.
    fn write(&self, out: &mut Vec<u8>);
    /// Reads an entry from exactly `SIZE` bytes.
    fn read(bytes: &[u8]) -> Self;
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = OFFSET_INDEX_ENTRY_SIZE;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn read(bytes: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            position: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = TIME_INDEX_ENTRY_SIZE;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.0.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn read(bytes: &[u8]) -> Self {
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&bytes[..8]);
        Self {
            timestamp: TimestampMs(i64::from_be_bytes(timestamp)),
            relative_offset: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }
}

/// A sparse index in memory, plus how many of its entries the index file already holds
/// (new entries are appended to the file as hints).
#[derive(Debug, Clone)]
pub struct SparseIndex<E> {
    entries: Vec<E>,
    persisted: usize,
}

impl<E> Default for SparseIndex<E> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            persisted: 0,
        }
    }
}

/// The offset index of one segment.
pub type OffsetIndex = SparseIndex<OffsetEntry>;

/// The time index of one segment.
pub type TimeIndex = SparseIndex<TimeEntry>;

impl<E: IndexEntry> SparseIndex<E> {
    /// Decodes entries while `follows(previous, entry)` accepts them: the longest valid
    /// prefix (a torn last entry and anything after the first bad one are dropped).
    fn decode_prefix(bytes: &[u8], follows: impl Fn(Option<&E>, &E) -> bool) -> Self {
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::SIZE);
        for chunk in bytes.chunks_exact(E::SIZE) {
            let entry = E::read(chunk);
            if !follows(entries.last(), &entry) {
                break;
            }
            entries.push(entry);
        }
        let persisted = entries.len();
        Self { entries, persisted }
    }

    fn keep(&mut self, count: usize) {
        self.entries.truncate(count);
        self.persisted = self.persisted.min(count);
    }

    /// The last entry.
    #[must_use]
    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The whole index as file bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(&self.entries)
    }

    /// Entries not yet written, as bytes and the file position they go to; marks them written.
    pub fn take_unpersisted(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.persisted == self.entries.len() {
            return None;
        }
        let position = (self.persisted * E::SIZE) as u64;
        let bytes = encode_entries(&self.entries[self.persisted..]);
        self.persisted = self.entries.len();
        Some((position, bytes))
    }

    /// Marks every entry as written (after the whole file was replaced).
    pub fn mark_persisted(&mut self) {
        self.persisted = self.entries.len();
    }
}

fn encode_entries<E: IndexEntry>(entries: &[E]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * E::SIZE);
    for entry in entries {
        entry.write(&mut bytes);
    }
    bytes
}

impl SparseIndex<OffsetEntry> {
    /// Decodes an index file, keeping the longest valid prefix: entries must increase in both
    /// offset and position, start at the segment start, and point below `segment_size`.
    #[must_use]
    pub fn decode(bytes: &[u8], segment_size: u64) -> Self {
        Self::decode_prefix(bytes, |previous, entry| {
            let ordered = previous.is_none_or(|last| {
                entry.relative_offset > last.relative_offset && entry.position > last.position
            });
            let first_is_start =
                previous.is_some() || (entry.position == 0 && entry.relative_offset == 0);
            ordered && first_is_start && u64::from(entry.position) < segment_size
        })
    }

    /// Adds an entry; it must be after the last one.
    ///
    /// # Panics
    /// If the entry is not strictly after the last one (a bug in the caller).
    pub fn push(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "offset index entries must increase: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
    }

    /// The last entry whose offset is at or before `relative_offset`.
    #[must_use]
    pub fn lookup(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let after = self
            .entries
            .partition_point(|entry| entry.relative_offset <= relative_offset);
        after.checked_sub(1).map(|index| self.entries[index])
    }

    /// The last entry whose position is at or before `position`.
    #[must_use]
    pub fn lookup_position(&self, position: u32) -> Option<OffsetEntry> {
        let after = self
            .entries
            .partition_point(|entry| entry.position <= position);
        after.checked_sub(1).map(|index| self.entries[index])
    }

    /// Drops entries at or after `position` (truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self
            .entries
            .partition_point(|entry| entry.position < position);
        self.keep(keep);
    }
}

impl SparseIndex<TimeEntry> {
    /// Decodes a time-index file, keeping the longest valid prefix: timestamps strictly
    /// increasing, offsets not decreasing and below `relative_end` (the segment's span).
    #[must_use]
    pub fn decode(bytes: &[u8], relative_end: u64) -> Self {
        Self::decode_prefix(bytes, |previous, entry| {
            let ordered = previous.is_none_or(|last| {
                entry.timestamp > last.timestamp && entry.relative_offset >= last.relative_offset
            });
            ordered && u64::from(entry.relative_offset) < relative_end
        })
    }

    /// Records that the segment's largest timestamp reached `timestamp` at the batch with
    /// `relative_offset`. Ignored unless the timestamp grew.
    ///
    /// # Panics
    /// If the offset goes back (a bug in the caller).
    pub fn maybe_push(&mut self, entry: TimeEntry) {
        if self
            .entries
            .last()
            .is_none_or(|last| entry.timestamp > last.timestamp)
        {
            if let Some(last) = self.entries.last() {
                assert!(
                    entry.relative_offset >= last.relative_offset,
                    "time index offsets must not go back"
                );
            }
            self.entries.push(entry);
        }
    }

    /// The last entry whose timestamp is below `timestamp`: every batch up to and including
    /// its offset has timestamps below `timestamp`.
    #[must_use]
    pub fn last_below(&self, timestamp: TimestampMs) -> Option<TimeEntry> {
        let after = self
            .entries
            .partition_point(|entry| entry.timestamp < timestamp);
        after.checked_sub(1).map(|index| self.entries[index])
    }

    /// Drops entries at or after `relative_offset` (truncation).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|entry| entry.relative_offset < relative_offset);
        self.keep(keep);
    }
}

/// Converts an absolute offset to one relative to `base`.
///
/// # Panics
/// If the offset is below the base or more than `u32::MAX` past it (segments are rolled
/// before that: a bug, not input).
#[must_use]
pub fn relative(offset: Offset, base: Offset) -> u32 {
    u32::try_from(offset.0 - base.0).expect("offset within u32 of its segment base")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn lookup_at_every_boundary() {
        let mut index = OffsetIndex::default();
        index.push(entry(0, 0));
        index.push(entry(10, 4100));
        index.push(entry(20, 8300));
        assert_eq!(index.lookup(0), Some(entry(0, 0)));
        assert_eq!(index.lookup(9), Some(entry(0, 0)));
        assert_eq!(index.lookup(10), Some(entry(10, 4100)));
        assert_eq!(index.lookup(19), Some(entry(10, 4100)));
        assert_eq!(index.lookup(20), Some(entry(20, 8300)));
        assert_eq!(index.lookup(u32::MAX), Some(entry(20, 8300)));
        assert_eq!(index.lookup_position(8299), Some(entry(10, 4100)));
        assert_eq!(index.lookup_position(8300), Some(entry(20, 8300)));
        assert_eq!(OffsetIndex::default().lookup(5), None);
    }

    #[test]
    fn decode_keeps_the_valid_prefix() {
        let mut index = OffsetIndex::default();
        index.push(entry(0, 0));
        index.push(entry(5, 5000));
        index.push(entry(9, 9000));
        let mut bytes = index.encode();
        assert_eq!(OffsetIndex::decode(&bytes, 10_000).len(), 3);
        // Entry past the segment end is dropped with everything after it.
        assert_eq!(OffsetIndex::decode(&bytes, 9000).len(), 2);
        // A torn trailing entry and zeroed garbage are ignored.
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(OffsetIndex::decode(&bytes, 10_000).len(), 3);
        bytes.truncate(24);
        bytes.extend_from_slice(&[0; 16]);
        assert_eq!(OffsetIndex::decode(&bytes, 10_000).len(), 3);
        // An index whose first entry is not the segment start is not trusted at all.
        assert_eq!(OffsetIndex::decode(&bytes[8..], 10_000).len(), 0);
    }

    #[test]
    fn unpersisted_entries_are_handed_out_once() {
        let mut index = OffsetIndex::default();
        index.push(entry(0, 0));
        let (position, bytes) = index.take_unpersisted().expect("one entry");
        assert_eq!((position, bytes.len()), (0, 8));
        assert!(index.take_unpersisted().is_none());
        index.push(entry(3, 100));
        let (position, _) = index.take_unpersisted().expect("second entry");
        assert_eq!(position, 8);
        index.truncate_to_position(100);
        assert_eq!(index.len(), 1);
        index.push(entry(4, 200));
        let (position, _) = index.take_unpersisted().expect("rewritten entry");
        assert_eq!(position, 8);
    }

    #[test]
    fn time_index_is_monotonic_and_searchable() {
        let mut index = TimeIndex::default();
        index.maybe_push(TimeEntry {
            timestamp: TimestampMs(100),
            relative_offset: 0,
        });
        index.maybe_push(TimeEntry {
            timestamp: TimestampMs(90),
            relative_offset: 5,
        });
        index.maybe_push(TimeEntry {
            timestamp: TimestampMs(200),
            relative_offset: 10,
        });
        assert_eq!(index.len(), 2);
        assert_eq!(index.last_below(TimestampMs(100)), None);
        assert_eq!(
            index
                .last_below(TimestampMs(101))
                .map(|e| e.relative_offset),
            Some(0)
        );
        assert_eq!(
            index
                .last_below(TimestampMs(1000))
                .map(|e| e.relative_offset),
            Some(10)
        );
        let decoded = TimeIndex::decode(&index.encode(), 11);
        assert_eq!(decoded.len(), 2);
        assert_eq!(TimeIndex::decode(&index.encode(), 10).len(), 1);
        let mut truncated = index.clone();
        truncated.truncate_to_offset(10);
        assert_eq!(truncated.len(), 1);
    }
}
