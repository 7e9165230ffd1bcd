//! Opening a log directory: find segments, trust what the checkpoint says is durable,
//! validate the rest batch by batch, and cut the log at the first torn or corrupt byte.
//!
//! * Segments wholly below the checkpoint's recovery point are trusted: their indexes are
//!   loaded and only the few batch headers after the last index entry are read (to find the
//!   end and complete a stale index). After a clean shutdown that is all there is.
//! * From the last index entry at or below the recovery point onwards, every batch is checked
//!   (header, length, CRC32C, and that its base offset follows the previous batch). The first
//!   failure ends the log: the file is cut there and later segments are removed.
//! * Zero bytes where a header should be are the clean end of a preallocated file.

use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;

use crate::batch;
use crate::checkpoint::{self, Checkpoint};
use crate::config::LogConfig;
use crate::error::{BatchError, IoFailure};
use crate::index::{OffsetIndex, TimeIndex, relative};
use crate::io::{ReadFile, Storage};
use crate::limits::{BATCH_HEADER_SIZE, SCAN_CHUNK_SIZE};
use crate::offset::Offset;
use crate::segment::{self, BatchInfo, Segment, SegmentPaths};

/// What opening a log found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments kept.
    pub segments: usize,
    /// Whether the previous shutdown was clean.
    pub clean_shutdown: bool,
    /// Bytes read and checked batch by batch.
    pub validated_bytes: u64,
    /// Bytes after the last valid batch that were cut away (torn or corrupt tails).
    pub truncated_bytes: u64,
    /// Whole segments removed because they followed a cut.
    pub removed_segments: usize,
    /// Segments whose index was rebuilt or completed by scanning.
    pub reindexed_segments: usize,
    /// Why the log was cut, if it was.
    pub cut_reason: Option<String>,
    /// Offset of the producer snapshot the idempotence state was loaded from (`None`: none
    /// was usable, the state was rebuilt from the first segment).
    pub producer_snapshot: Option<Offset>,
    /// Batch headers replayed into the idempotence state after the snapshot.
    pub producer_batches_replayed: u64,
}

/// The recovered segments and offsets, ready for the log to take over.
pub(crate) struct Recovered<R> {
    pub segments: Vec<Segment<R>>,
    pub log_start: Offset,
    pub report: RecoveryReport,
    /// Segments whose index files differ from what recovery rebuilt (to be rewritten).
    pub reindexed: Vec<Offset>,
}

enum Stop {
    End,
    Corrupt(String),
}

/// Reads through a segment file in large chunks.
struct Scanner<'a, R> {
    reader: &'a R,
    chunk_start: u64,
    chunk: Bytes,
}

impl<'a, R: ReadFile> Scanner<'a, R> {
    fn new(reader: &'a R) -> Self {
        Self {
            reader,
            chunk_start: 0,
            chunk: Bytes::new(),
        }
    }

    async fn bytes_at(&mut self, position: u64, len: usize) -> std::io::Result<Bytes> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if position < self.chunk_start || position + len as u64 > chunk_end {
            self.chunk = self
                .reader
                .read_at(position, len.max(SCAN_CHUNK_SIZE))
                .await?;
            self.chunk_start = position;
        }
        let start = (position - self.chunk_start) as usize;
        let end = (start + len).min(self.chunk.len());
        Ok(self.chunk.slice(start..end))
    }
}

/// Scans batches from `segment.size` to the file end, recording each valid one.
async fn scan<R: ReadFile>(
    segment: &mut Segment<R>,
    file_size: u64,
    validate_crc: bool,
    config: &LogConfig,
    report: &mut RecoveryReport,
) -> Result<Stop, IoFailure> {
    let path = segment.paths.log.clone();
    let failure = |error| IoFailure::new("read", &path, error);
    let reader = segment.reader.clone();
    let mut scanner = Scanner::new(&*reader);
    loop {
        let position = segment.size;
        if position + BATCH_HEADER_SIZE as u64 > file_size {
            return Ok(Stop::End);
        }
        let header_bytes = scanner
            .bytes_at(position, BATCH_HEADER_SIZE)
            .await
            .map_err(failure)?;
        if header_bytes.len() < BATCH_HEADER_SIZE {
            return Ok(Stop::End);
        }
        if header_bytes.iter().all(|&byte| byte == 0) {
            return Ok(Stop::End);
        }
        let info = match batch::check_header(
            &header_bytes,
            config.max_batch_bytes.max(crate::limits::BATCH_SIZE_MAX),
        ) {
            Ok((header, _)) => BatchInfo::from_header(header),
            Err(error) => return Ok(Stop::Corrupt(format!("bad header at {position}: {error}"))),
        };
        if info.base != segment.next_offset {
            return Ok(Stop::Corrupt(format!(
                "batch at {position} has base offset {} where {} was expected",
                info.base, segment.next_offset
            )));
        }
        if position + info.size > file_size {
            return Ok(Stop::Corrupt(format!(
                "batch at {position} is torn: {} bytes past the file end",
                position + info.size - file_size
            )));
        }
        if validate_crc {
            let bytes = scanner
                .bytes_at(position, info.size as usize)
                .await
                .map_err(failure)?;
            if let Err(error) = batch::validate(&bytes, usize::MAX) {
                let reason = match error {
                    BatchError::Truncated { .. } => format!("batch at {position} is torn"),
                    other => format!("batch at {position}: {other}"),
                };
                return Ok(Stop::Corrupt(reason));
            }
            report.validated_bytes += info.size;
        }
        segment.record_batch(info, position, config.index_interval_bytes);
    }
}

/// Loads a segment's indexes and positions it at the last index entry usable as a start for
/// scanning: at or below `trusted_until` (an absolute offset).
async fn load_indexes<S: Storage>(
    storage: &S,
    segment: &mut Segment<S::Reader>,
    file_size: u64,
    trusted_until: Offset,
) -> Result<(Vec<u8>, Vec<u8>), IoFailure> {
    let paths = segment.paths.clone();
    let offset_bytes = storage
        .read_whole(&paths.index)
        .await
        .map_err(|error| IoFailure::new("read", &paths.index, error))?
        .unwrap_or_default();
    let time_bytes = storage
        .read_whole(&paths.time_index)
        .await
        .map_err(|error| IoFailure::new("read", &paths.time_index, error))?
        .unwrap_or_default();
    let offset_index = OffsetIndex::decode(&offset_bytes, file_size);
    if trusted_until <= segment.base {
        return Ok((offset_bytes, time_bytes));
    }
    let limit = relative(
        trusted_until.min(Offset(segment.base.0 + i64::from(u32::MAX))),
        segment.base,
    );
    let Some(start) = offset_index.lookup(limit.saturating_sub(1)) else {
        return Ok((offset_bytes, time_bytes));
    };
    if start.relative_offset == 0 {
        return Ok((offset_bytes, time_bytes));
    }
    let mut time_index = TimeIndex::decode(&time_bytes, u64::from(start.relative_offset) + 1);
    time_index.truncate_to_offset(start.relative_offset + 1);
    let mut kept = offset_index;
    kept.truncate_to_position(start.position);
    let start_offset = Offset(segment.base.0 + i64::from(start.relative_offset));
    segment.resume_at(kept, time_index, u64::from(start.position), start_offset);
    Ok((offset_bytes, time_bytes))
}

/// Opens and repairs the log in `dir`.
pub(crate) async fn recover<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
) -> Result<Recovered<S::Reader>, IoFailure> {
    let list_failure = |error| IoFailure::new("list", dir, error);
    storage.create_dir_all(dir).await.map_err(list_failure)?;
    let names = storage.list_dir(dir).await.map_err(list_failure)?;
    for name in names.iter().filter(|name| name.ends_with(".tmp")) {
        let path = dir.join(name);
        storage
            .remove(&path)
            .await
            .map_err(|error| IoFailure::new("remove", &path, error))?;
    }
    let mut bases: Vec<Offset> = names
        .iter()
        .filter_map(|name| segment::parse_log_file_name(name))
        .collect();
    bases.sort();
    let checkpoint_path = dir.join(checkpoint::FILE_NAME);
    let checkpoint = storage
        .read_whole(&checkpoint_path)
        .await
        .map_err(|error| IoFailure::new("read", &checkpoint_path, error))?
        .and_then(|bytes| Checkpoint::decode(&bytes));
    let recovery_point = checkpoint.map_or(Offset(0), |checkpoint| checkpoint.recovery_point);
    let mut report = RecoveryReport {
        clean_shutdown: checkpoint.is_some_and(|c| c.clean),
        ..RecoveryReport::default()
    };

    remove_orphan_indexes(storage, dir, &names, &bases).await?;
    let mut segments: Vec<Segment<S::Reader>> = Vec::with_capacity(bases.len());
    let mut reindexed = Vec::new();
    let mut cut = false;
    for (index, &base) in bases.iter().enumerate() {
        let paths = SegmentPaths::new(dir, base);
        if cut
            || segments
                .last()
                .is_some_and(|previous| previous.next_offset != base)
        {
            if !cut {
                report.cut_reason = Some(format!(
                    "segment {base} does not follow the previous segment"
                ));
            }
            cut = true;
            remove_segment_files(storage, &paths).await?;
            report.removed_segments += 1;
            continue;
        }
        let reader = storage
            .open_read(&paths.log)
            .await
            .map_err(|error| IoFailure::new("open", &paths.log, error))?;
        let file_size = reader
            .size()
            .await
            .map_err(|error| IoFailure::new("size", &paths.log, error))?;
        let reader = Rc::new(reader);
        let is_last = index + 1 == bases.len();
        let clean_end = checkpoint
            .filter(|checkpoint| checkpoint.clean && is_last)
            .map(|c| c.log_end);
        let fully_trusted = bases
            .get(index + 1)
            .is_some_and(|&next| next <= recovery_point)
            || clean_end.is_some();
        let mut segment = Segment::new(dir, base, reader.clone());
        let trusted_until = if fully_trusted {
            Offset(i64::MAX)
        } else {
            recovery_point
        };
        let (offset_bytes, time_bytes) =
            load_indexes(storage, &mut segment, file_size, trusted_until).await?;
        let resumed_at = segment.next_offset;
        let mut stop = scan(&mut segment, file_size, !fully_trusted, config, &mut report).await?;
        let distrusted = clean_end.is_some_and(|end| end != segment.next_offset)
            || (fully_trusted && matches!(stop, Stop::Corrupt(_)))
            // A stale index hint sent the scan to a wrong position before the recovery point.
            || (resumed_at > base && matches!(stop, Stop::Corrupt(_)) && segment.next_offset < recovery_point);
        if distrusted {
            tracing::warn!(segment = %paths.log.display(), "segment disagrees with its checkpoint or index; validating it fully");
            segment = Segment::new(dir, base, reader);
            stop = scan(&mut segment, file_size, true, config, &mut report).await?;
        }
        if segment.offset_index.encode() != offset_bytes
            || segment.time_index.encode() != time_bytes
        {
            report.reindexed_segments += 1;
            reindexed.push(base);
        }
        if let Stop::Corrupt(reason) = stop {
            tracing::warn!(segment = %paths.log.display(), %reason, "cutting log at first invalid batch");
            report.truncated_bytes += file_size - segment.size;
            report.cut_reason = Some(reason);
            cut = true;
        }
        segments.push(segment);
    }
    report.segments = segments.len();
    let log_start = segments.first().map_or(Offset(0), |segment| segment.base);
    let log_end = segments
        .last()
        .map_or(log_start, |segment| segment.next_offset);
    let log_start = checkpoint
        .map_or(log_start, |checkpoint| checkpoint.log_start.max(log_start))
        .min(log_end);
    Ok(Recovered {
        segments,
        log_start,
        report,
        reindexed,
    })
}

/// Removes index files whose segment file is gone (a crash between removals).
async fn remove_orphan_indexes<S: Storage>(
    storage: &S,
    dir: &Path,
    names: &[String],
    bases: &[Offset],
) -> Result<(), IoFailure> {
    for name in names {
        let stem = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".timeindex"));
        let Some(stem) = stem else { continue };
        let orphan = segment::parse_log_file_name(&format!("{stem}.log"))
            .is_some_and(|base| !bases.contains(&base));
        if orphan {
            let path = dir.join(name);
            storage
                .remove(&path)
                .await
                .map_err(|error| IoFailure::new("remove", &path, error))?;
        }
    }
    Ok(())
}

/// Removes a segment's three files.
pub(crate) async fn remove_segment_files<S: Storage>(
    storage: &S,
    paths: &SegmentPaths,
) -> Result<(), IoFailure> {
    for path in [&paths.log, &paths.index, &paths.time_index] {
        storage
            .remove(path)
            .await
            .map_err(|error| IoFailure::new("remove", path, error))?;
    }
    Ok(())
}
