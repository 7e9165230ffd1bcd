//! Everything that changes a log's shape rather than appending to it: segment creation and
//! rolling, checkpoints, truncation, prefix deletion (retention, DeleteRecords), the
//! periodic tick, and a clean close.
//!
//! Each operation that rewrites files first takes the append turn and waits until every
//! appended byte is durable ("quiesce"), so it works on a log whose files and memory agree
//! and the flusher is idle.

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use crate::appender::{Appender, align_down};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{FlushPolicy, LogConfig};
use crate::error::{AppendError, IoFailure, MaintenanceError, OpenError};
use crate::io::{DirectFile, ReadFile, Storage};
use crate::limits::PRODUCER_SNAPSHOT_INTERVAL_MS;
use crate::log::Log;
use crate::offset::{Offset, TimestampMs};
use crate::recovery::remove_segment_files;
use crate::segment::{BatchInfo, Segment, SegmentPaths};

/// Creates the files of a new, empty segment at `base` and syncs the directory.
pub(crate) async fn create_segment_files<S: Storage>(
    storage: &S,
    dir: &Path,
    base: Offset,
) -> Result<Segment<S::Reader>, IoFailure> {
    let paths = SegmentPaths::new(dir, base);
    let file = storage
        .open_direct(&paths.log, true)
        .await
        .map_err(|error| IoFailure::new("create", &paths.log, error))?;
    file.truncate(0)
        .await
        .map_err(|error| IoFailure::new("truncate", &paths.log, error))?;
    file.close()
        .await
        .map_err(|error| IoFailure::new("close", &paths.log, error))?;
    for path in [&paths.index, &paths.time_index] {
        storage
            .replace_file(path, Vec::new())
            .await
            .map_err(|error| IoFailure::new("create", path, error))?;
    }
    storage
        .sync_dir(dir)
        .await
        .map_err(|error| IoFailure::new("sync directory", dir, error))?;
    let reader = storage
        .open_read(&paths.log)
        .await
        .map_err(|error| IoFailure::new("open", &paths.log, error))?;
    Ok(Segment::new(dir, base, Rc::new(reader)))
}

/// Opens the active segment for appending: cuts anything after its logical end (torn tails,
/// preallocated space) and reloads the partial last page so it can be rewritten.
pub(crate) async fn open_appender<S: Storage>(
    storage: &S,
    segment: &Segment<S::Reader>,
    config: &LogConfig,
) -> Result<Appender<S::File>, IoFailure> {
    let path = &segment.paths.log;
    let file = storage
        .open_direct(path, false)
        .await
        .map_err(|error| IoFailure::new("open", path, error))?;
    let end = segment.size;
    let size = file
        .size()
        .await
        .map_err(|error| IoFailure::new("size", path, error))?;
    if size != end {
        file.truncate(end)
            .await
            .map_err(|error| IoFailure::new("truncate", path, error))?;
        file.fdatasync()
            .await
            .map_err(|error| IoFailure::new("fdatasync", path, error))?;
    }
    let tail_start = align_down(end);
    let tail = segment
        .reader
        .read_at(tail_start, (end - tail_start) as usize)
        .await
        .map_err(|error| IoFailure::new("read", path, error))?;
    assert_eq!(
        tail.len() as u64,
        end - tail_start,
        "tail page must be readable"
    );
    Ok(Appender::new(
        Rc::new(file),
        path,
        config.write_buffer_bytes,
        end,
        end,
        &tail,
    ))
}

/// What a [`Log::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// An interval fdatasync was requested.
    pub flush_requested: bool,
    /// Segments deleted by retention.
    pub deleted_segments: usize,
    /// The log start after retention.
    pub log_start: Offset,
    /// Idempotent producers forgotten because their last batch is older than
    /// `producer.id.expiration.ms`.
    pub expired_producers: usize,
    /// A producer snapshot was written (at most every 30 s, when the log is durable to its
    /// end and the state changed).
    pub producer_snapshot: bool,
}

impl<S: Storage> Log<S> {
    /// Writes the checkpoint: recovery point = durable end, log start, clean flag.
    ///
    /// Writes are serialized (they share one temp file) and skipped when nothing changed.
    pub(crate) async fn write_checkpoint(&self, clean: bool) -> Result<(), IoFailure> {
        let _turn = self.inner.checkpoint_turns.take().await;
        let checkpoint = {
            let state = self.inner.state.borrow();
            Checkpoint {
                recovery_point: state.durable_end,
                log_start: state.log_start,
                log_end: state.log_end.max(state.durable_end),
                clean,
            }
        };
        if *self.inner.last_checkpoint.borrow() == Some(checkpoint) {
            return Ok(());
        }
        let path = self.inner.dir.join(checkpoint::FILE_NAME);
        self.inner
            .storage
            .replace_file(&path, checkpoint.encode())
            .await
            .map_err(|error| IoFailure::new("write checkpoint", &path, error))?;
        *self.inner.last_checkpoint.borrow_mut() = Some(checkpoint);
        Ok(())
    }

    /// After recovery, writes in full the indexes that recovery rebuilt or completed.
    pub(crate) async fn persist_repaired_indexes(
        &self,
        reindexed: &[Offset],
    ) -> Result<(), IoFailure> {
        let files: Vec<_> = {
            let mut state = self.inner.state.borrow_mut();
            state
                .segments
                .values_mut()
                .filter_map(|segment| {
                    segment.offset_index.mark_persisted();
                    segment.time_index.mark_persisted();
                    reindexed.contains(&segment.base).then_some(segment)
                })
                .flat_map(|segment| {
                    [
                        (segment.paths.index.clone(), segment.offset_index.encode()),
                        (
                            segment.paths.time_index.clone(),
                            segment.time_index.encode(),
                        ),
                    ]
                })
                .collect()
        };
        for (path, bytes) in files {
            self.inner
                .storage
                .replace_file(&path, bytes)
                .await
                .map_err(|error| IoFailure::new("write index", &path, error))?;
        }
        Ok(())
    }

    /// Writes index entries added since the last call (hints, not synced).
    async fn persist_index_hints(&self) -> Result<(), IoFailure> {
        let writes: Vec<_> = {
            let mut state = self.inner.state.borrow_mut();
            let segment = state.active_mut();
            let mut writes = Vec::new();
            if let Some((position, bytes)) = segment.offset_index.take_unpersisted() {
                writes.push((segment.paths.index.clone(), position, bytes));
            }
            if let Some((position, bytes)) = segment.time_index.take_unpersisted() {
                writes.push((segment.paths.time_index.clone(), position, bytes));
            }
            writes
        };
        for (path, position, bytes) in writes {
            self.inner
                .storage
                .write_hint(&path, position, bytes)
                .await
                .map_err(|error| IoFailure::new("write index", &path, error))?;
        }
        Ok(())
    }

    /// Waits until every appended byte is durable (forcing an fdatasync whatever the policy).
    /// Call with the append turn held.
    pub(crate) async fn quiesce(&self) -> Result<(), IoFailure> {
        loop {
            let progress = self.inner.progress.listen();
            {
                let mut state = self.inner.state.borrow_mut();
                if let Some(failure) = &state.poisoned {
                    return Err(failure.clone());
                }
                if state.durable_end >= state.log_end
                    && state.appender.as_ref().is_none_or(|a| a.unwritten() == 0)
                {
                    return Ok(());
                }
                state.force_sync = true;
            }
            self.inner.flusher_wake.notify_all();
            progress.await;
        }
    }

    /// Rolls to a new segment if appending `len` bytes would overflow the active one or it
    /// is older than `segment.ms`. Called with the append turn held.
    pub(crate) async fn roll_if_needed(&self, len: u64, records: i64) -> Result<(), AppendError> {
        let needed = {
            let state = self.inner.state.borrow();
            let config = self.inner.config.borrow();
            let active = state.active();
            let too_big = active.size > 0 && active.size + len > config.segment_bytes;
            // Index entries hold offsets relative to the segment base in 32 bits.
            let too_many_offsets =
                active.size > 0 && state.log_end.0 - active.base.0 + records > i64::from(u32::MAX);
            let too_old = match (config.segment_ms, active.first_append_at) {
                (Some(limit), Some(first)) => {
                    active.size > 0 && elapsed(first, self.inner.storage.now()) >= limit
                }
                _ => false,
            };
            too_big || too_many_offsets || too_old
        };
        if needed {
            self.roll().await.map_err(|failure| {
                if self.poisoned().is_some() {
                    AppendError::Poisoned(failure)
                } else {
                    AppendError::Roll(failure)
                }
            })?;
        }
        Ok(())
    }

    /// Seals the active segment (durable, cut to size, full indexes) and starts a new one.
    /// A failure after the old segment is sealed leaves no active segment to append to: the
    /// log is poisoned then (reopening it recovers).
    async fn roll(&self) -> Result<(), IoFailure> {
        self.seal_active().await?;
        let base = self.inner.state.borrow().log_end;
        let config = self.inner.config.borrow().clone();
        let opened = async {
            let segment = create_segment_files(&self.inner.storage, &self.inner.dir, base).await?;
            let appender = open_appender(&self.inner.storage, &segment, &config).await?;
            Ok::<_, IoFailure>((segment, appender))
        }
        .await;
        let (mut segment, appender) = opened.map_err(|failure| self.poison(failure))?;
        segment.first_append_at = Some(self.inner.storage.now());
        {
            let mut state = self.inner.state.borrow_mut();
            state.segments.insert(base, segment);
            state.appender = Some(appender);
            state.pending.clear();
        }
        // Durable to the end here: the snapshot bounds a crash's header replay to about a
        // segment. Best effort: without it the replay starts further back, nothing is lost.
        if let Err(failure) = self.write_producer_snapshot().await {
            tracing::warn!(dir = %self.inner.dir.display(), %failure, "producer snapshot not written at roll");
        }
        self.write_checkpoint(false).await
    }

    /// Makes the active segment durable and final: data synced, file cut to its logical
    /// size, indexes written in full. Leaves the log without an appender.
    async fn seal_active(&self) -> Result<(), IoFailure> {
        self.quiesce().await?;
        let (appender, end, index_files) = {
            let mut state = self.inner.state.borrow_mut();
            let appender = state.appender.take().expect("open log has an appender");
            let segment = state.active_mut();
            segment.seal_time_index();
            segment.offset_index.mark_persisted();
            segment.time_index.mark_persisted();
            let index_files = [
                (segment.paths.index.clone(), segment.offset_index.encode()),
                (
                    segment.paths.time_index.clone(),
                    segment.time_index.encode(),
                ),
            ];
            (appender, segment.size, index_files)
        };
        let path = appender.path().to_path_buf();
        let file = appender.into_file();
        let result = async {
            file.truncate(end)
                .await
                .map_err(|error| IoFailure::new("truncate", &path, error))?;
            file.fdatasync()
                .await
                .map_err(|error| IoFailure::new("fdatasync", &path, error))?;
            for (index_path, bytes) in index_files {
                self.inner
                    .storage
                    .replace_file(&index_path, bytes)
                    .await
                    .map_err(|error| IoFailure::new("write index", &index_path, error))?;
            }
            Ok(())
        }
        .await;
        if let Err(failure) = result {
            return Err(self.poison(failure));
        }
        if let Ok(file) = Rc::try_unwrap(file) {
            file.close()
                .await
                .map_err(|error| IoFailure::new("close", &path, error))?;
        }
        Ok(())
    }

    /// Removes every batch whose last offset is at or after `offset` (whole batches, as
    /// Kafka does), making the cut durable. Returns the new log end (≤ `offset`).
    ///
    /// # Errors
    /// `PastEnd` for an offset beyond the log end; I/O failures (which poison the log).
    pub async fn truncate(&self, offset: Offset) -> Result<Offset, MaintenanceError> {
        let _turn = self.inner.turns.take().await;
        let log_end = self.offsets().log_end;
        if offset > log_end {
            return Err(MaintenanceError::PastEnd {
                requested: offset,
                log_end,
            });
        }
        if offset == log_end {
            return Ok(log_end);
        }
        self.quiesce().await.map_err(MaintenanceError::Poisoned)?;
        let cut = self.locate_cut(offset).await?;
        // The producer snapshot may describe batches being cut: remove it first (durably),
        // so a crash can never pair it with what is appended after the cut.
        let _snapshot_turn = self.inner.snapshot_turns.take().await;
        self.remove_producer_snapshot_above(cut.offset).await?;
        self.apply_cut(cut).await?;
        self.rebuild_producers()
            .await
            .map_err(|failure| MaintenanceError::Io(self.poison(failure)))?;
        if let Err(failure) = self.write_producer_snapshot_in_turn().await {
            tracing::warn!(dir = %self.inner.dir.display(), %failure, "producer snapshot not written after truncation");
        }
        Ok(cut.offset)
    }

    /// The batch boundary at which to cut for a truncation to `offset`.
    async fn locate_cut(&self, offset: Offset) -> Result<Cut, MaintenanceError> {
        let (segment_base, below) = {
            let state = self.inner.state.borrow();
            let (&base, _) = state
                .segments
                .range(..=offset)
                .next_back()
                .unwrap_or_else(|| {
                    state
                        .segments
                        .iter()
                        .next()
                        .expect("a log always has a segment")
                });
            (base, base > offset)
        };
        if below {
            return Ok(Cut {
                segment_base,
                position: 0,
                offset: segment_base,
            });
        }
        let located = self.locate_in_segment(offset).await?;
        Ok(Cut {
            segment_base,
            position: located
                .map_or_else(|| self.segment_size(segment_base), |(position, _)| position),
            offset: located.map_or(offset, |(_, info)| info.base),
        })
    }

    fn segment_size(&self, base: Offset) -> u64 {
        self.inner
            .state
            .borrow()
            .segments
            .get(&base)
            .map_or(0, |segment| segment.size)
    }

    /// Batch headers from `start` up to `end` (batch boundaries) of a segment file.
    async fn replay_headers<R: ReadFile>(
        &self,
        reader: &R,
        path: &Path,
        start: u64,
        end: u64,
    ) -> Result<Vec<(BatchInfo, u64)>, IoFailure> {
        let mut batches = Vec::new();
        let mut position = start;
        while position < end {
            let header = crate::segment::read_header(reader, position, usize::MAX)
                .await
                .map_err(|error| IoFailure::new("read", path, error))?;
            let Some(Ok(info)) = header else {
                let cause = std::io::Error::other(format!(
                    "no valid batch header at {position} below the cut at {end}"
                ));
                return Err(IoFailure::new("replay", path, cause));
            };
            batches.push((info, position));
            position += info.size;
        }
        Ok(batches)
    }

    async fn apply_cut(&self, cut: Cut) -> Result<(), MaintenanceError> {
        let storage = self.inner.storage.clone();
        let doomed: Vec<SegmentPaths> = {
            let state = self.inner.state.borrow();
            state
                .segments
                .range(cut.segment_base..)
                .skip(1)
                .map(|(_, segment)| segment.paths.clone())
                .collect()
        };
        // Drop the appender (its file is re-opened below), later segments, and the cut state.
        let old_appender = self.inner.state.borrow_mut().appender.take();
        if let Some(appender) = old_appender
            && let Ok(file) = Rc::try_unwrap(appender.into_file())
        {
            let _ = file.close().await;
        }
        let (reader, path, resume) = {
            let mut state = self.inner.state.borrow_mut();
            state.segments.retain(|&base, _| base <= cut.segment_base);
            let segment = state.active_mut();
            let resume = segment.rewind_before(cut.position);
            (segment.reader.clone(), segment.paths.log.clone(), resume)
        };
        let replay = self
            .replay_headers(&*reader, &path, resume, cut.position)
            .await;
        let batches = replay.map_err(|failure| MaintenanceError::Io(self.poison(failure)))?;
        let index_files = {
            let mut state = self.inner.state.borrow_mut();
            let interval = self.inner.config.borrow().index_interval_bytes;
            let segment = state.active_mut();
            for (info, position) in batches {
                segment.record_batch(info, position, interval);
            }
            assert_eq!(
                (segment.size, segment.next_offset),
                (cut.position, cut.offset),
                "replay ends at the cut"
            );
            segment.offset_index.mark_persisted();
            segment.time_index.mark_persisted();
            state.log_end = cut.offset;
            state.written_end = state.written_end.min(cut.offset);
            state.durable_end = state.durable_end.min(cut.offset);
            state.log_start = state.log_start.min(cut.offset);
            state.pending.clear();
            let segment = state.active();
            [
                (segment.paths.index.clone(), segment.offset_index.encode()),
                (
                    segment.paths.time_index.clone(),
                    segment.time_index.encode(),
                ),
            ]
        };
        self.inner.cache.truncate(self.inner.cache_id, cut.offset);
        let result: Result<(), IoFailure> = async {
            for paths in &doomed {
                remove_segment_files(&storage, paths).await?;
            }
            for (path, bytes) in index_files {
                storage
                    .replace_file(&path, bytes)
                    .await
                    .map_err(|error| IoFailure::new("write index", &path, error))?;
            }
            let config = self.inner.config.borrow().clone();
            let appender = {
                let state = self.inner.state.borrow();
                let segment = state.active();
                // Cannot hold the borrow across the await: copy what open_appender needs.
                SegmentSnapshot {
                    paths: segment.paths.clone(),
                    size: segment.size,
                    reader: segment.reader.clone(),
                }
            }
            .open(&storage, &config)
            .await?;
            self.inner.state.borrow_mut().appender = Some(appender);
            storage
                .sync_dir(&self.inner.dir)
                .await
                .map_err(|error| IoFailure::new("sync directory", &self.inner.dir, error))?;
            self.write_checkpoint(false).await
        }
        .await;
        self.inner.progress.notify_all();
        result.map_err(|failure| MaintenanceError::Io(self.poison(failure)))
    }

    /// Moves the log start forward to `offset` (DeleteRecords) and deletes segments wholly
    /// below it. Returns the new log start.
    ///
    /// # Errors
    /// `PastEnd` beyond the log end; I/O failures.
    pub async fn delete_records_before(&self, offset: Offset) -> Result<Offset, MaintenanceError> {
        let log_end = self.offsets().log_end;
        if offset > log_end {
            return Err(MaintenanceError::PastEnd {
                requested: offset,
                log_end,
            });
        }
        if offset > self.offsets().durable_end {
            // The log start never passes the durable end: a crash must not leave a start
            // above the recovered end. (Kafka bounds DeleteRecords by the high watermark.)
            let _turn = self.inner.turns.take().await;
            self.quiesce().await.map_err(MaintenanceError::Poisoned)?;
        }
        {
            let mut state = self.inner.state.borrow_mut();
            state.log_start = state.log_start.max(offset);
        }
        self.write_checkpoint(false).await?;
        self.delete_segments_below_start().await?;
        Ok(self.offsets().log_start)
    }

    /// Deletes sealed segments that end at or below the log start.
    async fn delete_segments_below_start(&self) -> Result<usize, MaintenanceError> {
        let doomed: Vec<(Offset, SegmentPaths)> = {
            let mut state = self.inner.state.borrow_mut();
            let log_start = state.log_start;
            let active_base = state.active().base;
            let bases: Vec<Offset> = state
                .segments
                .values()
                .filter(|segment| segment.base != active_base && segment.next_offset <= log_start)
                .map(|segment| segment.base)
                .collect();
            bases
                .into_iter()
                .filter_map(|base| {
                    state
                        .segments
                        .remove(&base)
                        .map(|segment| (base, segment.paths))
                })
                .collect()
        };
        for (_, paths) in &doomed {
            remove_segment_files(&self.inner.storage, paths).await?;
        }
        Ok(doomed.len())
    }

    /// Retention: deletes the oldest sealed segments while the log is over `retention.bytes`
    /// or their newest record is older than `retention.ms`. Returns segments deleted.
    ///
    /// # Errors
    /// I/O failures removing files or writing the checkpoint.
    pub async fn apply_retention(&self) -> Result<usize, MaintenanceError> {
        let now = self.inner.storage.now();
        let new_start = {
            let state = self.inner.state.borrow();
            let config = self.inner.config.borrow();
            let mut total: u64 = state.segments.values().map(|segment| segment.size).sum();
            let active_base = state.active().base;
            let mut new_start = None;
            for segment in state
                .segments
                .values()
                .filter(|segment| segment.base != active_base)
            {
                let over_size = config
                    .retention_bytes
                    .is_some_and(|limit| total - segment.size >= limit);
                let expired = match (config.retention_ms, segment.max_timestamp) {
                    (Some(limit), Some((newest, _))) => elapsed(newest, now) > limit,
                    _ => false,
                };
                if !(over_size || expired) {
                    break;
                }
                total -= segment.size;
                new_start = Some(segment.next_offset);
            }
            new_start
        };
        let Some(new_start) = new_start else {
            return Ok(0);
        };
        {
            let mut state = self.inner.state.borrow_mut();
            state.log_start = state.log_start.max(new_start);
        }
        self.write_checkpoint(false).await?;
        self.delete_segments_below_start().await
    }

    /// Periodic work; call every few hundred milliseconds from the owning shard: interval
    /// flushes, retention, index hints and a checkpoint of the recovery point.
    ///
    /// # Errors
    /// I/O failures of retention or the checkpoint.
    pub async fn tick(&self) -> Result<TickReport, MaintenanceError> {
        let mut report = TickReport::default();
        // A closed log's files are final (and may be gone: a deleted topic); its clean
        // checkpoint must not be overwritten.
        if self.inner.state.borrow().closed {
            report.log_start = self.offsets().log_start;
            return Ok(report);
        }
        if let FlushPolicy::Interval { interval, .. } = self.inner.config.borrow().flush_policy {
            let mut state = self.inner.state.borrow_mut();
            let due = elapsed(state.last_sync_at, self.inner.storage.now()) >= interval;
            let unsynced = state
                .appender
                .as_ref()
                .is_some_and(|appender| appender.end() > appender.synced());
            if due && unsynced {
                state.force_sync = true;
                report.flush_requested = true;
            }
        }
        if report.flush_requested {
            self.inner.flusher_wake.notify_all();
        }
        report.deleted_segments = self.apply_retention().await?;
        if self.poisoned().is_none() {
            self.persist_index_hints().await?;
            self.write_checkpoint(false).await?;
        }
        let now = self.inner.storage.now();
        let expiration = self.inner.config.borrow().producer_id_expiration_ms;
        report.expired_producers = self
            .inner
            .state
            .borrow_mut()
            .producers
            .remove_expired(now, expiration);
        let since_snapshot = now.0.saturating_sub(self.inner.snapshot.get().written_at.0);
        if since_snapshot >= PRODUCER_SNAPSHOT_INTERVAL_MS {
            report.producer_snapshot = self.write_producer_snapshot().await?;
        }
        report.log_start = self.offsets().log_start;
        Ok(report)
    }

    /// Closes cleanly: waits for appends in progress, makes everything durable, cuts the
    /// active file to size, writes full indexes and a clean checkpoint, stops the flusher.
    /// The next open needs no scan.
    ///
    /// # Errors
    /// I/O failures; the log is then closed anyway, and the next open recovers.
    pub async fn close(&self) -> Result<(), MaintenanceError> {
        let _turn = self.inner.turns.take().await;
        let result = async {
            if self.poisoned().is_some() {
                return Ok(());
            }
            self.seal_active().await?;
            self.write_producer_snapshot().await?;
            self.write_checkpoint(true).await?;
            Ok::<(), IoFailure>(())
        }
        .await;
        self.inner.state.borrow_mut().closed = true;
        self.inner.progress.notify_all();
        self.inner.flusher_wake.notify_all();
        result.map_err(MaintenanceError::Io)
    }
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    segment_base: Offset,
    position: u64,
    offset: Offset,
}

struct SegmentSnapshot<R> {
    paths: SegmentPaths,
    size: u64,
    reader: Rc<R>,
}

impl<R: ReadFile> SegmentSnapshot<R> {
    async fn open<S: Storage<Reader = R>>(
        self,
        storage: &S,
        config: &LogConfig,
    ) -> Result<Appender<S::File>, IoFailure> {
        let mut segment = Segment::new(
            self.paths.log.parent().unwrap_or(Path::new(".")),
            Offset(0),
            self.reader,
        );
        segment.paths = self.paths;
        segment.size = self.size;
        open_appender(storage, &segment, config).await
    }
}

fn elapsed(since: TimestampMs, now: TimestampMs) -> Duration {
    Duration::from_millis(u64::try_from(now.0.saturating_sub(since.0)).unwrap_or(0))
}

impl From<OpenError> for MaintenanceError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Io(failure) => MaintenanceError::Io(failure),
            OpenError::Config(message) => MaintenanceError::Io(IoFailure::new(
                "configure",
                "",
                std::io::Error::other(message),
            )),
        }
    }
}
