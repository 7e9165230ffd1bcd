//! The log of one partition: ordered appends, durability waits, and the background flusher.
//!
//! Lives on the shard that owns the partition (`!Send`, shared through `Rc`). Contract:
//! * [`Log::append`] validates the batches, assigns their offsets and copies them into the
//!   write-behind buffer. It resolves when the order is fixed; callers are served in call
//!   order. It waits only for a segment roll, preallocation or backpressure.
//! * [`Log::flushed`] resolves once an offset is durable under the topic's flush policy.
//! * [`Log::run_flusher`] must be spawned on the same executor; it writes buffers with direct
//!   I/O and runs the group-committed fdatasyncs.
//! * A failed write or fdatasync poisons the log: appends and flush waits fail with the
//!   cause, reads go on. Nothing already reported durable is affected.
//!
//! Reads are in `read.rs`; truncation, retention, checkpoints and close in `maintenance.rs`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::BytesMut;

use crate::appender::{Appender, WriteRound, align_up};
use crate::batch::{self, Stamp};
use crate::cache::{BatchCache, CachedBatch};
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::error::{AppendError, FlushError, IoFailure, OpenError};
use crate::io::{DirectFile, IoBuffer, Storage};
use crate::offset::{Offset, TimestampMs};
use crate::producers::{self, ProducerCheck, ProducerStates, RecordSetBatches, SnapshotFile};
use crate::recovery::{self, RecoveryReport};
use crate::segment::{BatchInfo, Segment};
use crate::sync::{Notify, Turns};

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub base_offset: Offset,
    /// Offset of the last record.
    pub last_offset: Offset,
    /// The append time, for `LogAppendTime` topics.
    pub log_append_time: Option<TimestampMs>,
    /// The record set was a retry of batches already stored (idempotent producer): nothing
    /// was appended, and the offsets (and append time) are those of the stored batches, all
    /// below the log end, so [`Log::flushed`] on [`AppendInfo::next_offset`] waits for the
    /// originals to be durable.
    pub duplicate: bool,
}

impl AppendInfo {
    /// The offset after the last record: what [`Log::flushed`] waits for.
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.last_offset.plus(1)
    }
}

/// Offsets of a log at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// First offset readable.
    pub log_start: Offset,
    /// Offset the next append gets.
    pub log_end: Offset,
    /// Everything below is written to the segment file.
    pub written_end: Offset,
    /// Everything below is fdatasynced.
    pub durable_end: Offset,
}

pub(crate) struct State<S: Storage> {
    pub segments: BTreeMap<Offset, Segment<S::Reader>>,
    pub appender: Option<Appender<S::File>>,
    pub log_start: Offset,
    pub log_end: Offset,
    pub written_end: Offset,
    pub durable_end: Offset,
    /// `(end position in the active segment, end offset)` of appends not yet durable.
    pub pending: VecDeque<(u64, Offset)>,
    pub poisoned: Option<IoFailure>,
    pub closed: bool,
    pub force_write: bool,
    pub force_sync: bool,
    pub last_sync_at: TimestampMs,
    /// Idempotent-producer state of every batch below `log_end`.
    pub producers: ProducerStates,
}

impl<S: Storage> State<S> {
    pub(crate) fn active(&self) -> &Segment<S::Reader> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment<S::Reader> {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn appender(&self) -> &Appender<S::File> {
        self.appender.as_ref().expect("open log has an appender")
    }

    pub(crate) fn appender_mut(&mut self) -> &mut Appender<S::File> {
        self.appender.as_mut().expect("open log has an appender")
    }

    /// The last pending end offset whose bytes end at or before `position`.
    fn offset_covered(&self, position: u64, fallback: Offset) -> Offset {
        let covered = self.pending.partition_point(|&(end, _)| end <= position);
        covered
            .checked_sub(1)
            .map_or(fallback, |index| self.pending[index].1)
    }
}

pub(crate) struct Inner<S: Storage> {
    pub storage: S,
    pub dir: PathBuf,
    pub config: RefCell<LogConfig>,
    pub state: RefCell<State<S>>,
    pub cache: BatchCache,
    pub cache_id: u64,
    pub turns: Turns,
    pub checkpoint_turns: Turns,
    /// Serializes producer-snapshot writes with each other and with truncation.
    pub snapshot_turns: Turns,
    pub snapshot: Cell<SnapshotFile>,
    pub last_checkpoint: RefCell<Option<crate::checkpoint::Checkpoint>>,
    pub leader_epoch: std::cell::Cell<i32>,
    pub appended: Notify,
    pub flusher_wake: Notify,
    pub progress: Notify,
    pub recovery: RecoveryReport,
    /// Traffic and fdatasync counters (see [`Log::stats`]).
    pub stats: RefCell<crate::stats::LogStats>,
    /// Batches appended since the last fdatasync was planned.
    pub unsynced_batches: Cell<u64>,
}

/// The log of one partition. Cloning gives another handle to the same log.
pub struct Log<S: Storage> {
    pub(crate) inner: Rc<Inner<S>>,
}

impl<S: Storage> Clone for Log<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Storage> std::fmt::Debug for Log<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Log")
            .field("dir", &self.inner.dir)
            .field("offsets", &self.offsets())
            .finish()
    }
}

impl<S: Storage> Drop for Inner<S> {
    fn drop(&mut self) {
        self.cache.unregister(self.cache_id);
    }
}

impl<S: Storage> Log<S> {
    /// Opens (creating if needed) the log in `dir`, recovering from a crash if the last
    /// shutdown was not clean. Spawn [`Log::run_flusher`] next.
    ///
    /// # Errors
    /// Bad configuration, or file operations that failed while opening or repairing.
    pub async fn open(
        storage: S,
        dir: &Path,
        config: LogConfig,
        cache: BatchCache,
    ) -> Result<Self, OpenError> {
        config.validate()?;
        let recovered = recovery::recover(&storage, dir, &config).await?;
        let reindexed = recovered.reindexed.clone();
        let mut segments: BTreeMap<Offset, Segment<S::Reader>> = recovered
            .segments
            .into_iter()
            .map(|segment| (segment.base, segment))
            .collect();
        let opened_at = storage.now();
        if let Some(active) = segments.values_mut().next_back()
            && active.size > 0
        {
            active.first_append_at = Some(opened_at);
        }
        if segments.is_empty() {
            let segment =
                crate::maintenance::create_segment_files(&storage, dir, recovered.log_start)
                    .await?;
            segments.insert(segment.base, segment);
        }
        let active = segments.values().next_back().expect("created above");
        let appender = crate::maintenance::open_appender(&storage, active, &config).await?;
        let log_end = active.next_offset;
        let rebuilt = producers::rebuild(&storage, dir, log_end, config.producers_max, |from| {
            producers::plan_replay(&segments, from)
        })
        .await?;
        let snapshot_current = rebuilt.snapshot == Some(log_end);
        let snapshot_needed = !snapshot_current && (rebuilt.file_found || rebuilt.replayed > 0);
        let snapshot = SnapshotFile {
            on_disk_max: snapshot_current.then_some(log_end),
            written: snapshot_current.then(|| (log_end, rebuilt.states.generation())),
            written_at: storage.now(),
        };
        let mut report = recovered.report;
        report.producer_snapshot = rebuilt.snapshot;
        report.producer_batches_replayed = rebuilt.replayed;
        let cache_id = cache.register();
        let state = State {
            segments,
            appender: Some(appender),
            log_start: recovered.log_start,
            log_end,
            written_end: log_end,
            durable_end: log_end,
            pending: VecDeque::new(),
            poisoned: None,
            closed: false,
            force_write: false,
            force_sync: false,
            last_sync_at: storage.now(),
            producers: rebuilt.states,
        };
        let log = Self {
            inner: Rc::new(Inner {
                storage,
                dir: dir.to_path_buf(),
                config: RefCell::new(config),
                state: RefCell::new(state),
                cache,
                cache_id,
                turns: Turns::default(),
                checkpoint_turns: Turns::default(),
                snapshot_turns: Turns::default(),
                snapshot: Cell::new(snapshot),
                last_checkpoint: RefCell::new(None),
                leader_epoch: std::cell::Cell::new(0),
                appended: Notify::default(),
                flusher_wake: Notify::default(),
                progress: Notify::default(),
                recovery: report,
                stats: RefCell::new(crate::stats::LogStats::default()),
                unsynced_batches: Cell::new(0),
            }),
        };
        log.persist_repaired_indexes(&reindexed).await?;
        log.write_checkpoint(false).await.map_err(OpenError::Io)?;
        if snapshot_needed {
            // Also replaces a snapshot past the log end before anything is appended there.
            log.write_producer_snapshot().await?;
        }
        Ok(log)
    }

    /// What recovery found when this log was opened.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The log's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Current offsets.
    #[must_use]
    pub fn offsets(&self) -> LogOffsets {
        let state = self.inner.state.borrow();
        LogOffsets {
            log_start: state.log_start,
            log_end: state.log_end,
            written_end: state.written_end,
            durable_end: state.durable_end,
        }
    }

    /// Number of segments and their total logical size in bytes.
    #[must_use]
    pub fn size(&self) -> (usize, u64) {
        let state = self.inner.state.borrow();
        (
            state.segments.len(),
            state.segments.values().map(|segment| segment.size).sum(),
        )
    }

    /// What this log counted since it was opened: traffic in and out, fdatasyncs.
    #[must_use]
    pub fn stats(&self) -> crate::stats::LogStats {
        self.inner.stats.borrow().clone()
    }

    /// Bytes appended but not yet written to the segment file (held in write buffers).
    #[must_use]
    pub fn unwritten_bytes(&self) -> u64 {
        self.inner
            .state
            .borrow()
            .appender
            .as_ref()
            .map_or(0, |appender| appender.unwritten())
    }

    /// Base offsets of the segments, oldest first.
    #[must_use]
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.inner.state.borrow().segments.keys().copied().collect()
    }

    /// The failure that poisoned the log, if any.
    #[must_use]
    pub fn poisoned(&self) -> Option<IoFailure> {
        self.inner.state.borrow().poisoned.clone()
    }

    /// A copy of the configuration.
    #[must_use]
    pub fn config(&self) -> LogConfig {
        self.inner.config.borrow().clone()
    }

    /// Changes the configuration (topic config altered). Takes effect for later appends.
    ///
    /// # Errors
    /// If the new configuration is invalid; the old one stays.
    pub fn set_config(&self, config: LogConfig) -> Result<(), OpenError> {
        config.validate()?;
        self.inner
            .state
            .borrow_mut()
            .producers
            .set_producers_max(config.producers_max);
        *self.inner.config.borrow_mut() = config;
        self.inner.flusher_wake.notify_all();
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<(), AppendError> {
        let state = self.inner.state.borrow();
        if let Some(failure) = &state.poisoned {
            return Err(AppendError::Poisoned(failure.clone()));
        }
        if state.closed {
            return Err(AppendError::Closed);
        }
        Ok(())
    }

    /// Appends one or more whole batches (a produce request's record set for this
    /// partition), assigning consecutive offsets. Resolves when the order is fixed.
    ///
    /// Batches of idempotent producers (producer id ≥ 0) are checked against the producer
    /// state first ([`crate::producers`]): a retry of stored batches appends nothing and
    /// answers their offsets with [`AppendInfo::duplicate`] set.
    ///
    /// # Errors
    /// Invalid batches, an out-of-order sequence or fenced producer epoch, a poisoned or
    /// closed log, a full disk: nothing of the record set is stored then.
    pub async fn append(&self, records: BytesMut) -> Result<AppendInfo, AppendError> {
        let _turn = self.inner.turns.take().await;
        self.check_writable()?;
        let max_batch_bytes = self.inner.config.borrow().max_batch_bytes;
        let summary = batch::validate_all(&records, max_batch_bytes)?;
        // Checked in the turn, so nothing changes the producer state before these batches
        // are recorded (expiry in `tick` only forgets, which accepts anything).
        let verdict = self
            .inner
            .state
            .borrow()
            .producers
            .check(RecordSetBatches::new(&records))?;
        if let ProducerCheck::Duplicate {
            base_offset,
            last_offset,
            max_timestamp,
        } = verdict
        {
            let log_append_time = (self.inner.config.borrow().timestamp_type
                == TimestampType::LogAppendTime)
                .then_some(max_timestamp);
            return Ok(AppendInfo {
                base_offset,
                last_offset,
                log_append_time,
                duplicate: true,
            });
        }
        self.roll_if_needed(records.len() as u64, summary.records)
            .await?;
        self.ensure_allocated(records.len() as u64).await?;
        self.wait_for_room(records.len() as u64).await?;
        self.check_writable()?;
        Ok(self.append_validated(records))
    }

    async fn ensure_allocated(&self, len: u64) -> Result<(), AppendError> {
        let (file, path, target) = {
            let state = self.inner.state.borrow();
            let appender = state.appender();
            let needed = appender.end() + len;
            if needed <= appender.allocated() {
                return Ok(());
            }
            let config = self.inner.config.borrow();
            let step_end = appender.allocated() + config.preallocate_bytes;
            let target = align_up(needed.max(step_end.min(config.segment_bytes)));
            (
                appender.file().clone(),
                appender.path().to_path_buf(),
                target,
            )
        };
        file.preallocate(target).await.map_err(|error| {
            let failure = IoFailure::new("preallocate", &path, error);
            if failure.is_disk_full() {
                AppendError::DiskFull(failure)
            } else {
                AppendError::Poisoned(self.poison(failure))
            }
        })?;
        self.inner
            .state
            .borrow_mut()
            .appender_mut()
            .set_allocated(target);
        Ok(())
    }

    async fn wait_for_room(&self, len: u64) -> Result<(), AppendError> {
        loop {
            let progress = self.inner.progress.listen();
            {
                let mut state = self.inner.state.borrow_mut();
                if let Some(failure) = &state.poisoned {
                    return Err(AppendError::Poisoned(failure.clone()));
                }
                let unwritten = state.appender().unwritten();
                let limit = self.inner.config.borrow().unwritten_bytes_max as u64;
                if unwritten == 0 || unwritten + len <= limit {
                    return Ok(());
                }
                state.force_write = true;
            }
            self.inner.flusher_wake.notify_all();
            progress.await;
        }
    }

    /// Stamps, indexes, buffers and caches validated batches. Never waits.
    fn append_validated(&self, records: BytesMut) -> AppendInfo {
        let now = self.inner.storage.now();
        let config = self.inner.config.borrow();
        let log_append_time =
            (config.timestamp_type == TimestampType::LogAppendTime).then_some(now);
        let mut records = records;
        let mut state = self.inner.state.borrow_mut();
        let base_offset = state.log_end;
        let segment_base = state.active().base;
        let start_position = state.active().size;
        let mut batches = Vec::new();
        let mut position = 0usize;
        while position < records.len() {
            let stamp = Stamp {
                base_offset: state.log_end,
                partition_leader_epoch: self.inner.leader_epoch.get(),
                log_append_time,
            };
            batch::assign(&mut records[position..], stamp);
            let header = batch::header(&records[position..]).expect("validated");
            state.producers.record(header);
            let info = BatchInfo::from_header(header);
            let segment = state.active_mut();
            segment.first_append_at.get_or_insert(now);
            segment.record_batch(
                info,
                start_position + position as u64,
                config.index_interval_bytes,
            );
            state.log_end = info.next;
            batches.push((position, info));
            position += info.size as usize;
        }
        let records = records.freeze();
        {
            let mut stats = self.inner.stats.borrow_mut();
            stats.batches_in += batches.len() as u64;
            stats.records_in += u64::try_from(state.log_end.0 - base_offset.0).unwrap_or(0);
            stats.bytes_in += records.len() as u64;
        }
        self.inner
            .unsynced_batches
            .set(self.inner.unsynced_batches.get() + batches.len() as u64);
        state.appender_mut().append(&records);
        let end_position = state.appender().end();
        let log_end = state.log_end;
        state.pending.push_back((end_position, log_end));
        drop(state);
        for (position, info) in batches {
            let bytes = records.slice(position..position + info.size as usize);
            let cached = CachedBatch {
                base: info.base,
                next: info.next,
                segment_base,
                position: start_position + position as u64,
                max_timestamp: info.max_timestamp,
                bytes,
            };
            self.inner.cache.push(self.inner.cache_id, cached);
        }
        if self.flusher_has_work(&config) {
            self.inner.flusher_wake.notify_all();
        }
        self.inner.appended.notify_all();
        AppendInfo {
            base_offset,
            last_offset: log_end.plus(-1),
            log_append_time,
            duplicate: false,
        }
    }

    fn flusher_has_work(&self, config: &LogConfig) -> bool {
        let state = self.inner.state.borrow();
        match config.flush_policy {
            FlushPolicy::GroupCommit | FlushPolicy::Never => true,
            FlushPolicy::Interval { bytes, .. } => {
                let appender = state.appender();
                appender.has_ready() || appender.end() - appender.synced() >= bytes
            }
        }
    }

    /// The leader epoch stamped into batches appended from now on (replication sets it).
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.inner.leader_epoch.set(epoch);
    }

    /// Resolves once the log end passes `after` (or the log is truncated or closed), so a
    /// fetch long-poll can wake on appends. Callers bound the wait with their own timer.
    pub async fn wait_for_append(&self, after: Offset) {
        loop {
            let appended = self.inner.appended.listen();
            {
                let state = self.inner.state.borrow();
                if state.log_end > after || state.closed {
                    return;
                }
            }
            appended.await;
        }
    }

    /// Resolves once every offset below `end` is durable under the flush policy (with
    /// `Never`: written to the device).
    ///
    /// # Errors
    /// The log was poisoned, truncated below `end`, or closed before that happened.
    pub async fn flushed(&self, end: Offset) -> Result<(), FlushError> {
        loop {
            let progress = self.inner.progress.listen();
            {
                let state = self.inner.state.borrow();
                let reached = match self.inner.config.borrow().flush_policy {
                    FlushPolicy::Never => state.written_end,
                    _ => state.durable_end,
                };
                if reached >= end {
                    return Ok(());
                }
                if let Some(failure) = &state.poisoned {
                    return Err(FlushError::Poisoned(failure.clone()));
                }
                if state.log_end < end {
                    return Err(FlushError::Truncated(end));
                }
                if state.closed {
                    return Err(FlushError::Closed);
                }
            }
            progress.await;
        }
    }

    /// Marks the log poisoned (first failure wins) and wakes every waiter.
    pub(crate) fn poison(&self, failure: IoFailure) -> IoFailure {
        let kept = {
            let mut state = self.inner.state.borrow_mut();
            if state.poisoned.is_none() {
                tracing::error!(dir = %self.inner.dir.display(), %failure, "partition poisoned: writes refused");
                state.poisoned = Some(failure);
            }
            state.poisoned.clone().expect("set above")
        };
        self.inner.progress.notify_all();
        self.inner.flusher_wake.notify_all();
        kept
    }

    /// The background writer: spawn it on the log's executor right after [`Log::open`]. It
    /// returns when the log is closed.
    pub async fn run_flusher(self) {
        loop {
            let round = loop {
                let wake = self.inner.flusher_wake.listen();
                match self.plan_round() {
                    Plan::Exit => return,
                    Plan::Idle => wake.await,
                    Plan::Work(round) => break round,
                }
            };
            self.execute_round(round).await;
        }
    }

    fn plan_round(&self) -> Plan<S> {
        let mut state = self.inner.state.borrow_mut();
        if state.poisoned.is_some() || state.appender.is_none() {
            return if state.closed { Plan::Exit } else { Plan::Idle };
        }
        let policy = self.inner.config.borrow().flush_policy;
        let force_sync = state.force_sync;
        let appender = state.appender();
        let unsynced = appender.end() - appender.synced();
        let sync = unsynced > 0
            && (force_sync
                || match policy {
                    FlushPolicy::GroupCommit => true,
                    FlushPolicy::Interval { bytes, .. } => unsynced >= bytes,
                    FlushPolicy::Never => false,
                });
        let include_tail =
            sync || state.force_write || !matches!(policy, FlushPolicy::Interval { .. });
        let writes = state.appender_mut().take_writes(include_tail);
        if writes.writes.is_empty() && !sync {
            state.force_write = false;
            if state.force_sync && unsynced == 0 {
                state.force_sync = false;
            }
            return if state.closed { Plan::Exit } else { Plan::Idle };
        }
        state.force_write = false;
        if sync {
            state.force_sync = false;
        }
        let appender = state.appender();
        let synced = sync.then(|| (self.inner.unsynced_batches.replace(0), unsynced));
        Plan::Work(Round {
            file: appender.file().clone(),
            path: appender.path().to_path_buf(),
            writes,
            synced,
        })
    }

    async fn execute_round(&self, round: Round<S>) {
        let Round {
            file,
            path,
            writes,
            synced,
        } = round;
        let covers_end = writes.covers_end;
        let results = write_all(&*file, writes.writes).await;
        if let Err(error) = results {
            self.poison(IoFailure::new("write", &path, error));
            return;
        }
        self.after_write(covers_end);
        if let Some((batches, bytes)) = synced {
            let started = std::time::Instant::now();
            if let Err(error) = file.fdatasync().await {
                self.poison(IoFailure::new("fdatasync", &path, error));
                return;
            }
            {
                let mut stats = self.inner.stats.borrow_mut();
                stats.fsyncs += 1;
                stats.fsync_seconds.observe(started.elapsed().as_secs_f64());
                stats.fsync_batches.observe(batches as f64);
                stats.fsync_bytes += bytes;
            }
            self.after_sync(covers_end);
        }
    }

    fn after_write(&self, position: u64) {
        let mut state = self.inner.state.borrow_mut();
        state.appender_mut().mark_written(position);
        let written_end = if position >= state.appender().end() {
            state.log_end
        } else {
            state.offset_covered(position, state.written_end)
        };
        state.written_end = state.written_end.max(written_end);
        if self.inner.config.borrow().flush_policy == FlushPolicy::Never {
            // Nothing waits on fdatasync; keep only what maps unwritten positions.
            while state
                .pending
                .front()
                .is_some_and(|&(end, _)| end <= position)
            {
                state.pending.pop_front();
            }
        }
        let written_end = state.written_end;
        drop(state);
        self.inner
            .cache
            .set_written(self.inner.cache_id, written_end);
        self.inner.progress.notify_all();
    }

    fn after_sync(&self, position: u64) {
        let now = self.inner.storage.now();
        let mut state = self.inner.state.borrow_mut();
        state.appender_mut().mark_synced(position);
        let durable_end = if position >= state.appender().end() {
            state.log_end
        } else {
            state.offset_covered(position, state.durable_end)
        };
        state.durable_end = state.durable_end.max(durable_end);
        while state
            .pending
            .front()
            .is_some_and(|&(end, _)| end <= position)
        {
            state.pending.pop_front();
        }
        state.last_sync_at = now;
        drop(state);
        self.inner.progress.notify_all();
    }
}

pub(crate) struct Round<S: Storage> {
    file: Rc<S::File>,
    path: PathBuf,
    writes: WriteRound<<S::File as DirectFile>::Buffer>,
    /// `(batches, bytes)` this round makes durable with an fdatasync, if it syncs.
    synced: Option<(u64, u64)>,
}

pub(crate) enum Plan<S: Storage> {
    Exit,
    Idle,
    Work(Round<S>),
}

/// Issues all writes of a round at once (the kernel gets them together) and waits for all;
/// the first error wins. A short write is an error: direct I/O writes whole pages or fails.
async fn write_all<F: DirectFile>(file: &F, writes: Vec<(u64, F::Buffer)>) -> std::io::Result<()> {
    let futures = writes.into_iter().map(|(position, buffer)| {
        let expected = buffer.as_slice().len();
        async move {
            let written = file.write_at(buffer, position).await?;
            if written != expected {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short direct write: {written} of {expected} bytes at {position}"),
                ));
            }
            Ok(())
        }
    });
    let results = futures::future::join_all(futures).await;
    results.into_iter().collect()
}
