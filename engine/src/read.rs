//! Reads: whole batches by offset (as memory slices or file ranges), and offset lookups by
//! timestamp for ListOffsets.
//!
//! A read is served from the shard's batch cache when the offset is at or after the first
//! cached batch of this log; otherwise from one segment file as a `(reader, position, len)`
//! range that the network layer sends with sendfile/splice. The range is found with the
//! sparse index and a short header scan at each end; record bytes are never parsed or copied.

use std::rc::Rc;

use bytes::Bytes;

use crate::batch;
use crate::error::{IoFailure, ReadError};
use crate::index::relative;
use crate::io::{ReadFile, Storage};
use crate::log::Log;
use crate::offset::{Offset, TimestampMs};
use crate::segment::{self, BatchInfo};

/// Most bytes one read hands out from a file range that is not in the page cache: those are
/// read into memory (asynchronously, not with a blocking sendfile), so this bounds the
/// memory one fetch can pin.
pub const COLD_READ_BYTES_MAX: u64 = 1 << 20;

/// Part of a read result.
#[derive(Debug)]
pub enum Chunk<R> {
    /// Whole batches in memory.
    Memory(Bytes),
    /// Whole batches in a segment file.
    File {
        /// The file (kept open by this handle even if the segment is deleted meanwhile).
        reader: Rc<R>,
        /// Start position.
        position: u64,
        /// Length in bytes.
        len: u64,
    },
}

impl<R> Chunk<R> {
    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Memory(bytes) => bytes.len() as u64,
            Chunk::File { len, .. } => *len,
        }
    }

    /// Whether the chunk is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bounds of a read.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Most bytes to return; the first batch is returned whole even if larger (as Kafka's
    /// fetch does, so a consumer always makes progress).
    pub max_bytes: u64,
    /// Exclusive upper bound on batch base offsets (the high watermark); `None` for the log
    /// end.
    pub max_offset: Option<Offset>,
}

/// What a read found.
#[derive(Debug)]
pub struct ReadResult<R> {
    /// The batches, in order.
    pub chunks: Vec<Chunk<R>>,
    /// The offset after the last batch returned (where the next read continues).
    pub next_offset: Offset,
    /// Log start at the time of the read.
    pub log_start: Offset,
    /// Log end at the time of the read.
    pub log_end: Offset,
}

impl<R> ReadResult<R> {
    /// Total bytes in the chunks.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(Chunk::len).sum()
    }
}

/// A segment's facts copied out of the log state, so no borrow is held across reads.
struct SegmentView<R> {
    base: Offset,
    reader: Rc<R>,
    path: std::path::PathBuf,
    /// Bytes of whole batches available in the file.
    file_end: u64,
    /// Offset after the last batch in the segment.
    next_offset: Offset,
}

impl<S: Storage> Log<S> {
    /// Reads whole batches starting with the one holding `from`.
    ///
    /// # Errors
    /// `OffsetOutOfRange` below the log start or past the log end; I/O failures.
    pub async fn read(
        &self,
        from: Offset,
        limits: ReadLimits,
    ) -> Result<ReadResult<S::Reader>, ReadError> {
        let result = self.read_batches(from, limits).await?;
        let mut stats = self.inner.stats.borrow_mut();
        stats.bytes_out += result.bytes();
        stats.records_out += u64::try_from(result.next_offset.0 - from.0).unwrap_or(0);
        Ok(result)
    }

    async fn read_batches(
        &self,
        from: Offset,
        limits: ReadLimits,
    ) -> Result<ReadResult<S::Reader>, ReadError> {
        let offsets = self.offsets();
        if from < offsets.log_start || from > offsets.log_end {
            return Err(ReadError::OffsetOutOfRange {
                requested: from,
                log_start: offsets.log_start,
                log_end: offsets.log_end,
            });
        }
        let bound = limits
            .max_offset
            .map_or(offsets.log_end, |max| max.min(offsets.log_end));
        let mut result = ReadResult {
            chunks: Vec::new(),
            next_offset: from,
            log_start: offsets.log_start,
            log_end: offsets.log_end,
        };
        if from >= bound {
            return Ok(result);
        }
        let cache = &self.inner.cache;
        if cache
            .first_offset(self.inner.cache_id)
            .is_some_and(|first| first <= from)
        {
            let mut total = 0u64;
            let batches = cache.collect(self.inner.cache_id, from, |batch, first| {
                let size = batch.bytes.len() as u64;
                let fits = first || total + size <= limits.max_bytes;
                if batch.base < bound && fits {
                    total += size;
                    true
                } else {
                    false
                }
            });
            if let Some(last) = batches.last() {
                result.next_offset = last.next;
            }
            result.chunks = batches
                .into_iter()
                .map(|batch| Chunk::Memory(batch.bytes))
                .collect();
            return Ok(result);
        }
        let view = self.segment_view(from);
        let Some((start, first)) = self.find_batch(&view, from).await? else {
            return Ok(result);
        };
        let (mut end, mut next_offset) = self
            .find_end(&view, start, first, limits.max_bytes, bound)
            .await?;
        let chunk = if view.reader.is_cached(start, end - start) {
            Chunk::File {
                reader: view.reader,
                position: start,
                len: end - start,
            }
        } else {
            // Not in the page cache: a sendfile would block the shard on the disk. Read it
            // here with an async read instead (at most COLD_READ_BYTES_MAX of whole batches,
            // the first one always) and hand it out as memory.
            if end - start > COLD_READ_BYTES_MAX {
                (end, next_offset) = self
                    .find_end(&view, start, first, COLD_READ_BYTES_MAX, bound)
                    .await?;
            }
            let len = usize::try_from(end - start).unwrap_or(usize::MAX);
            let bytes = view
                .reader
                .read_at(start, len)
                .await
                .map_err(|error| IoFailure::new("read", &view.path, error))?;
            if bytes.len() != len {
                return Err(ReadError::Corrupt {
                    path: view.path.clone(),
                    position: start + bytes.len() as u64,
                    cause: crate::error::BatchError::Truncated {
                        needed: len,
                        available: bytes.len(),
                    },
                });
            }
            Chunk::Memory(bytes)
        };
        result.next_offset = next_offset;
        result.chunks.push(chunk);
        Ok(result)
    }

    /// Position and header of the batch holding `offset` (which must be below the log end
    /// and in the file: the caller quiesced the log).
    pub(crate) async fn locate_in_segment(
        &self,
        offset: Offset,
    ) -> Result<Option<(u64, BatchInfo)>, ReadError> {
        let view = self.segment_view(offset);
        self.find_batch(&view, offset).await
    }

    fn segment_view(&self, offset: Offset) -> SegmentView<S::Reader> {
        let state = self.inner.state.borrow();
        let (_, segment) = state
            .segments
            .range(..=offset)
            .next_back()
            .expect("offset at or after log start has a segment");
        let is_active = state.active().base == segment.base;
        let file_end = if is_active {
            state.appender.as_ref().map_or(segment.size, |appender| {
                appender.written().min(segment.size)
            })
        } else {
            segment.size
        };
        SegmentView {
            base: segment.base,
            reader: segment.reader.clone(),
            path: segment.paths.log.clone(),
            file_end,
            next_offset: segment.next_offset,
        }
    }

    fn index_lookup(&self, base: Offset, offset: Offset) -> u64 {
        let state = self.inner.state.borrow();
        state
            .segments
            .get(&base)
            .and_then(|segment| segment.offset_index.lookup(relative(offset, base)))
            .map_or(0, |entry| u64::from(entry.position))
    }

    /// The header at `position`, if a whole batch there is in the file.
    async fn batch_at(
        &self,
        view: &SegmentView<S::Reader>,
        position: u64,
    ) -> Result<Option<BatchInfo>, ReadError> {
        // A header only partly written (the written end can fall anywhere) is not a batch yet.
        if position + crate::limits::BATCH_HEADER_SIZE as u64 > view.file_end {
            return Ok(None);
        }
        let header = segment::read_header(&*view.reader, position, usize::MAX)
            .await
            .map_err(|error| IoFailure::new("read", &view.path, error))?;
        match header {
            None => Ok(None),
            Some(Err(cause)) => Err(ReadError::Corrupt {
                path: view.path.clone(),
                position,
                cause,
            }),
            Some(Ok(info)) => Ok((position + info.size <= view.file_end).then_some(info)),
        }
    }

    /// Position and header of the batch holding `offset`, via the index and a header scan.
    async fn find_batch(
        &self,
        view: &SegmentView<S::Reader>,
        offset: Offset,
    ) -> Result<Option<(u64, BatchInfo)>, ReadError> {
        let mut position = self.index_lookup(view.base, offset);
        while let Some(info) = self.batch_at(view, position).await? {
            if info.next > offset {
                return Ok(Some((position, info)));
            }
            position += info.size;
        }
        Ok(None)
    }

    /// End position (a batch boundary) and next offset of a read starting at `start`.
    async fn find_end(
        &self,
        view: &SegmentView<S::Reader>,
        start: u64,
        first: BatchInfo,
        max_bytes: u64,
        bound: Offset,
    ) -> Result<(u64, Offset), ReadError> {
        let limit = start.saturating_add(max_bytes).min(view.file_end);
        let mut position = start + first.size;
        let mut next_offset = first.next;
        // Jump with the index to the last indexed batch that still fits, then scan.
        let jump = {
            let state = self.inner.state.borrow();
            state.segments.get(&view.base).and_then(|segment| {
                let entry = segment
                    .offset_index
                    .lookup_position(u32::try_from(limit).unwrap_or(u32::MAX))?;
                let entry = if Offset(view.base.0 + i64::from(entry.relative_offset)) >= bound {
                    segment
                        .offset_index
                        .lookup(relative(bound, view.base).saturating_sub(1))?
                } else {
                    entry
                };
                Some((
                    u64::from(entry.position),
                    Offset(view.base.0 + i64::from(entry.relative_offset)),
                ))
            })
        };
        if let Some((jump_position, jump_offset)) = jump
            && jump_position > position
            && jump_position <= limit
        {
            position = jump_position;
            next_offset = jump_offset;
        }
        while position < limit && next_offset < bound.min(view.next_offset) {
            let Some(info) = self.batch_at(view, position).await? else {
                break;
            };
            if position + info.size > limit || info.base >= bound {
                break;
            }
            position += info.size;
            next_offset = info.next;
        }
        Ok((position, next_offset))
    }

    /// ListOffsets by timestamp: the first offset whose timestamp is at or after
    /// `timestamp`, with that timestamp; `None` if every record is older. For uncompressed
    /// batches the answer is the exact record; for compressed ones, the batch's first offset
    /// and largest timestamp.
    ///
    /// # Errors
    /// I/O failures or corrupt stored data.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: TimestampMs,
    ) -> Result<Option<(Offset, TimestampMs)>, ReadError> {
        let candidates: Vec<(Offset, Offset)> = {
            let state = self.inner.state.borrow();
            state
                .segments
                .values()
                .filter(|segment| {
                    segment
                        .max_timestamp
                        .is_some_and(|(max, _)| max >= timestamp)
                })
                .map(|segment| {
                    let start = segment
                        .time_index
                        .last_below(timestamp)
                        .map_or(0, |entry| entry.relative_offset);
                    (segment.base, Offset(segment.base.0 + i64::from(start)))
                })
                .collect()
        };
        let log_start = self.offsets().log_start;
        for (_, start) in candidates {
            let mut offset = start.max(log_start);
            loop {
                let read = self
                    .read(
                        offset,
                        ReadLimits {
                            max_bytes: 1,
                            max_offset: None,
                        },
                    )
                    .await?;
                let Some(bytes) = self.first_batch_bytes(&read).await? else {
                    break;
                };
                let (header, _) = batch::check_header(&bytes, usize::MAX).map_err(|cause| {
                    ReadError::Corrupt {
                        path: self.inner.dir.clone(),
                        position: 0,
                        cause,
                    }
                })?;
                if header.max_timestamp() >= timestamp {
                    match batch::first_visible_record_at_or_after(&bytes, timestamp, log_start) {
                        Ok(Some(found)) => return Ok(Some(found)),
                        // Only records below the log start qualify: look further.
                        Ok(None) => {}
                        // Compressed: the batch is the finest answer without decompressing.
                        Err(()) => {
                            let offset = header.base_offset().max(log_start);
                            return Ok(Some((offset, header.max_timestamp())));
                        }
                    }
                }
                offset = read.next_offset;
            }
        }
        Ok(None)
    }

    /// The offset of the batch with the largest timestamp and that timestamp (ListOffsets
    /// `MAX_TIMESTAMP`), or `None` for an empty log.
    #[must_use]
    pub fn max_timestamp(&self) -> Option<(Offset, TimestampMs)> {
        let state = self.inner.state.borrow();
        let log_start = state.log_start;
        state
            .segments
            .values()
            .filter_map(|segment| segment.max_timestamp)
            .filter(|&(_, offset)| offset >= log_start)
            .fold(
                None,
                |best: Option<(TimestampMs, Offset)>, candidate| match best {
                    Some(best) if best.0 >= candidate.0 => Some(best),
                    _ => Some(candidate),
                },
            )
            .map(|(timestamp, offset)| (offset, timestamp))
    }

    /// The bytes of the first batch of a read.
    async fn first_batch_bytes(
        &self,
        read: &ReadResult<S::Reader>,
    ) -> Result<Option<Bytes>, ReadError> {
        match read.chunks.first() {
            None => Ok(None),
            Some(Chunk::Memory(bytes)) => Ok(Some(bytes.clone())),
            Some(Chunk::File {
                reader,
                position,
                len,
            }) => {
                let bytes = reader
                    .read_at(*position, *len as usize)
                    .await
                    .map_err(|error| IoFailure::new("read", &self.inner.dir, error))?;
                Ok(Some(bytes))
            }
        }
    }
}
