//! Model-based test of the partition log: random sequences of appends, durability waits,
//! reads, truncations, prefix deletions, timestamp lookups, ticks, clean restarts and crashes
//! run against a [`Log`] on a [`MemoryStorage`] and, side by side, against a trivial model
//! (a list of the batches appended, with the bytes each should read back as).
//!
//! What it proves, for every generated sequence:
//! * Appends get dense offsets starting at the log end, and a read from any offset in
//!   `[log_start, log_end)` returns whole batches starting with the one holding that offset:
//!   the first batch always, then as many as `max_bytes` and `max_offset` allow (stopping
//!   early only at a segment boundary or at data not yet written to the file), each
//!   byte-identical to what was appended except for the base offset the log assigned.
//! * `truncate(offset)` removes exactly the batches whose last offset is at or after
//!   `offset` and returns the base of the first one removed; `delete_records_before(offset)`
//!   moves the log start to `offset` and nothing else.
//! * `offset_for_timestamp(t)` answers the first offset at or after the log start whose
//!   record timestamp is at or after `t`, with that record's timestamp (or `None`), also
//!   when timestamps go backwards between batches.
//! * `log_start ≤ durable_end ≤ written_end ≤ log_end` after every operation, and a
//!   `flushed(end)` wait that resolves means `durable_end ≥ end` (`written_end` under the
//!   `Never` flush policy); one for an end above the log end fails with `Truncated`.
//! * No operation waits forever: with in-memory storage nothing ever blocks, so an operation
//!   still pending once the flusher has nothing left to do is reported as a deadlock.
//! * Idempotent producers (four ids, one of them with sequences wrapping past `i32::MAX`)
//!   get Kafka's answers: in-sequence batches (alone or two in a set) are appended, retries
//!   of their five newest batches are duplicates answered with the stored offsets, older
//!   retries and gaps are `OutOfOrderSequence`, older epochs `InvalidProducerEpoch`, a new
//!   epoch must start at 0. The expected state is computed from the model's batches alone,
//!   so after truncations, crashes and restarts the log's rebuilt state (snapshot + header
//!   replay) must equal what the surviving batches say. (A producer whose batches sit only
//!   in segments deleted below the log start may be remembered or not; it is checked again
//!   once it starts a new epoch, which both cases accept.)
//! * After `close()` and reopen, the log is exactly what it was, and the shutdown is clean
//!   (and the producer state needs no replay).
//! * After a crash (power loss that keeps none, all or a torn part of the unsynced bytes of
//!   every file, with no `close()`), reopening never fails, every batch below the
//!   `durable_end` observed before the crash survives, and what survives is exactly a prefix
//!   of the batches that were appended, byte for byte: the new log end lies in
//!   `[durable_end, log_end]` of before the crash and falls on a batch boundary.
//!
//! Each "life" of a log runs in its own executor ([`run_life`], `common::run` plus deadlock
//! detection), so a crashed log's flusher is dropped with the executor and never touches the
//! storage again; the `MemoryStorage` is kept across lives. Segments are small
//! (`small_config`: 16 KiB), the batch cache is 0, 16 KiB or 1 MiB, and the flush policy is
//! group commit, `Interval` or `Never` (the last two leave written but unsynced bytes for
//! crashes to keep or tear), so segment rolls, index lookups, multi-segment reads, reads from
//! files and from the cache, and cuts of torn tails all happen.
//!
//! 256 cases of up to 100 operations run in about a second; for a long hunt run
//! `PROPTEST_CASES=20000 cargo test --release -p sluice-engine --test model`. The fixed tests
//! at the end pin the engine bugs this test has found, each with its smallest reproduction.

mod common;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{batch, dir, read_all, small_config};
use futures::executor::{LocalPool, LocalSpawner};
use futures::task::LocalSpawnExt;
use proptest::prelude::*;
use sluice_engine::io::ReadFile;
use sluice_engine::io::memory::{CrashMode, MemoryStorage};
use sluice_engine::producers::increment_sequence;
use sluice_engine::{
    AppendError, BatchCache, Chunk, FlushError, FlushPolicy, Log, LogConfig, LogOffsets,
    MaintenanceError, Offset, ProducerEntry, ReadLimits, TimestampMs,
};

/// One batch the model holds: where the log put it and the bytes a read must return.
#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    records: i64,
    /// Timestamp of the first record; record `i` has `base_timestamp + i`.
    base_timestamp: i64,
    bytes: Bytes,
    /// `(producer id, epoch, first sequence)` of an idempotent producer's batch.
    producer: Option<(i64, i16, i32)>,
}

impl ModelBatch {
    fn next(&self) -> i64 {
        self.base + self.records
    }
}

/// The whole expected state of the log.
#[derive(Debug, Default)]
struct Model {
    /// Every batch below `log_end`, oldest first (also those below `log_start`, which the
    /// log may still hold in a segment and which a crash or truncation can expose as
    /// boundaries).
    batches: Vec<ModelBatch>,
    log_start: i64,
    log_end: i64,
    /// The producer's clock: the next batch's base timestamp.
    clock: i64,
    /// End of the most recent append, for `flushed`.
    last_append_end: Option<i64>,
}

impl Model {
    /// The batches holding offsets at or after the log start.
    fn visible(&self) -> &[ModelBatch] {
        let first = self
            .batches
            .partition_point(|batch| batch.next() <= self.log_start);
        &self.batches[first..]
    }

    /// Index (in `batches`) of the batch holding `offset`.
    fn batch_index(&self, offset: i64) -> usize {
        let index = self.batches.partition_point(|batch| batch.next() <= offset);
        assert!(
            index < self.batches.len() && self.batches[index].base <= offset,
            "model: no batch holds offset {offset}"
        );
        index
    }

    /// Drops batches at or after `end` (a batch boundary) and lowers the offsets to match.
    fn cut_at(&mut self, end: i64) {
        assert!(
            end == self.log_end || self.batches.iter().any(|batch| batch.base == end),
            "{end} is not a batch boundary of the model (log end {})",
            self.log_end
        );
        self.batches.retain(|batch| batch.next() <= end);
        self.log_end = end;
        self.log_start = self.log_start.min(end);
    }

    /// The first record at or after the log start with a timestamp at or after `target`.
    fn offset_for_timestamp(&self, target: i64) -> Option<(i64, i64)> {
        self.visible().iter().find_map(|batch| {
            (0..batch.records)
                .map(|i| (batch.base + i, batch.base_timestamp + i))
                .find(|&(offset, timestamp)| offset >= self.log_start && timestamp >= target)
        })
    }

    /// The timestamp of the record at `offset`.
    fn timestamp_of(&self, offset: i64) -> i64 {
        let batch = &self.batches[self.batch_index(offset)];
        batch.base_timestamp + (offset - batch.base)
    }

    /// Kafka's producer state of `producer` after the batches at or after `from`: the epoch
    /// of its last batch and the last five batches of that epoch.
    fn producer_state(&self, producer: i64, from: i64) -> Option<RefEntry> {
        let mut state: Option<RefEntry> = None;
        for batch in self.batches.iter().filter(|batch| batch.base >= from) {
            let Some((id, epoch, first_seq)) = batch.producer else {
                continue;
            };
            if id != producer {
                continue;
            }
            let stored = RefBatch {
                first_seq,
                last_seq: increment_sequence(first_seq, (batch.records - 1) as i32),
                base_offset: batch.base,
                last_offset: batch.next() - 1,
                max_timestamp: batch.base_timestamp + batch.records - 1,
            };
            match &mut state {
                Some(entry) if entry.epoch == epoch => {
                    entry.batches.push(stored);
                    if entry.batches.len() > 5 {
                        entry.batches.remove(0);
                    }
                }
                _ => {
                    state = Some(RefEntry {
                        epoch,
                        batches: vec![stored],
                    });
                }
            }
        }
        state
    }

    /// The producer's state, if the log must know it exactly: the same whether or not the
    /// log still holds the batches in segments deleted below the log start (a rebuild from
    /// the first segment, after a truncation below the snapshot or without one, only sees
    /// what is left). `Err(())` when the two differ.
    fn certain_producer_state(
        &self,
        producer: i64,
        first_segment: i64,
    ) -> Result<Option<RefEntry>, ()> {
        let all = self.producer_state(producer, i64::MIN);
        if all == self.producer_state(producer, first_segment) {
            Ok(all)
        } else {
            Err(())
        }
    }
}

/// The model's view of one producer's state (compare `sluice_engine::ProducerEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RefEntry {
    epoch: i16,
    batches: Vec<RefBatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RefBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
}

impl From<ProducerEntry> for RefEntry {
    fn from(entry: ProducerEntry) -> Self {
        Self {
            epoch: entry.epoch(),
            batches: entry
                .batches()
                .iter()
                .map(|batch| RefBatch {
                    first_seq: batch.first_seq,
                    last_seq: batch.last_seq,
                    base_offset: batch.base_offset.0,
                    last_offset: batch.last_offset.0,
                    max_timestamp: batch.max_timestamp.0,
                })
                .collect(),
        }
    }
}

/// Idempotent producers of the model: ids `0..PRODUCERS`.
const PRODUCERS: i64 = 4;

/// What an idempotent producer sends.
#[derive(Debug, Clone, Copy)]
enum ProduceKind {
    /// The next batch in sequence (an unknown producer starts at 0, producer 3 just below
    /// `i32::MAX` so its sequences wrap).
    Next,
    /// Two batches in sequence in one record set.
    NextTwo,
    /// A retry of one of its last seven batches of the current epoch (the five newest are
    /// duplicates, older ones out of order).
    Retry(Pick),
    /// A gap of 1..=3 sequence numbers.
    Gap(i32),
    /// The epoch before its current one.
    StaleEpoch,
    /// A new epoch, starting at sequence 0 or (refused) not.
    Bump { at_zero: bool },
}

/// What the log must answer to a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Append,
    Duplicate { base: i64, last: i64 },
    OutOfOrder { expected: i32, got: i32 },
    Fenced { current: i16, got: i16 },
}

/// Kafka's verdict on one batch `(epoch, first, last sequence)` from a producer in `state`.
fn expect(state: Option<&RefEntry>, epoch: i16, first_seq: i32, last_seq: i32) -> Expect {
    let Some(state) = state else {
        return Expect::Append;
    };
    if epoch < state.epoch {
        return Expect::Fenced {
            current: state.epoch,
            got: epoch,
        };
    }
    if epoch == state.epoch
        && let Some(stored) = state
            .batches
            .iter()
            .find(|batch| batch.first_seq == first_seq && batch.last_seq == last_seq)
    {
        return Expect::Duplicate {
            base: stored.base_offset,
            last: stored.last_offset,
        };
    }
    let expected = if epoch > state.epoch {
        0
    } else {
        increment_sequence(state.batches.last().expect("non-empty").last_seq, 1)
    };
    if first_seq == expected {
        Expect::Append
    } else {
        Expect::OutOfOrder {
            expected,
            got: first_seq,
        }
    }
}

/// How a generated operation picks a timestamp to look up.
#[derive(Debug, Clone, Copy)]
enum TimestampTarget {
    /// Near the timestamp of a record picked among the visible ones.
    NearRecord(Pick, i64),
    /// Older than every record.
    Oldest,
    /// Newer than every record.
    Newest,
}

#[derive(Debug, Clone)]
enum Op {
    /// One append of whole batches: `(records, payload bytes per record)` each, the first
    /// batch's timestamp moved from the producer clock by `clock_step` (sometimes back).
    Append {
        batches: Vec<(i32, usize)>,
        clock_step: i64,
    },
    /// Waits until the last append is durable (under `Interval`, after a tick past
    /// `flush.ms`, as nothing else syncs what is below the byte threshold).
    Flushed,
    /// Lets the flusher run for a few executor turns without waiting for anything.
    Yield(u8),
    /// Reads from an offset in `[log_start, log_end]`, optionally bounded by a `max_offset`
    /// in `[from, log_end]`.
    Read {
        from: Pick,
        max_bytes: u64,
        bound: Option<Pick>,
    },
    /// Truncates to an offset in `[log_start, log_end]`, or (`past_end`) beyond the end.
    Truncate { at: Pick, past_end: bool },
    /// Deletes records before an offset in `[log_start, log_end]`.
    DeleteBefore { at: Pick },
    /// ListOffsets by timestamp.
    OffsetForTimestamp { target: TimestampTarget },
    /// The periodic tick: index hints and a checkpoint of the recovery point.
    Tick,
    /// `close()` and reopen.
    CloseReopen,
    /// An idempotent producer (id `producer % PRODUCERS`) sends `records` records per batch.
    Produce {
        producer: u8,
        send: ProduceKind,
        records: i32,
    },
    /// Power loss without close, then reopen.
    Crash(CrashMode),
}

fn payload() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0..=200usize, 1 => 0..=3000usize]
}

fn append_op() -> impl Strategy<Value = Op> {
    let batches = prop_oneof![
        6 => prop::collection::vec((1..=8i32, payload()), 1..=1),
        1 => prop::collection::vec((1..=8i32, payload()), 2..=3),
    ];
    let clock_step = prop_oneof![8 => 0..=100i64, 1 => -5000..0i64];
    (batches, clock_step).prop_map(|(batches, clock_step)| Op::Append {
        batches,
        clock_step,
    })
}

fn produce_op() -> impl Strategy<Value = Op> {
    let send = prop_oneof![
        10 => Just(ProduceKind::Next),
        2 => Just(ProduceKind::NextTwo),
        4 => any::<Pick>().prop_map(ProduceKind::Retry),
        1 => (1..=3i32).prop_map(ProduceKind::Gap),
        1 => Just(ProduceKind::StaleEpoch),
        1 => any::<bool>().prop_map(|at_zero| ProduceKind::Bump { at_zero }),
    ];
    (any::<u8>(), send, 1..=4i32).prop_map(|(producer, send, records)| Op::Produce {
        producer,
        send,
        records,
    })
}

fn crash_mode() -> impl Strategy<Value = CrashMode> {
    prop_oneof![
        Just(CrashMode::LoseUnsynced),
        Just(CrashMode::KeepUnsynced),
        prop_oneof![0..300usize, 0..20_000usize].prop_map(CrashMode::Torn),
    ]
}

fn timestamp_target() -> impl Strategy<Value = TimestampTarget> {
    prop_oneof![
        8 => (any::<Pick>(), -2..=2i64)
            .prop_map(|(pick, delta)| TimestampTarget::NearRecord(pick, delta)),
        1 => Just(TimestampTarget::Oldest),
        1 => Just(TimestampTarget::Newest),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let max_bytes = prop_oneof![0..=200u64, 0..=40_000u64, Just(u64::MAX)];
    prop_oneof![
        30 => append_op(),
        20 => produce_op(),
        6 => Just(Op::Flushed),
        8 => (1..=4u8).prop_map(Op::Yield),
        20 => (any::<Pick>(), max_bytes, prop::option::weighted(0.2, any::<Pick>()))
            .prop_map(|(from, max_bytes, bound)| Op::Read { from, max_bytes, bound }),
        5 => (any::<Pick>(), prop::bool::weighted(0.1))
            .prop_map(|(at, past_end)| Op::Truncate { at, past_end }),
        4 => any::<Pick>().prop_map(|at| Op::DeleteBefore { at }),
        8 => timestamp_target().prop_map(|target| Op::OffsetForTimestamp { target }),
        3 => Just(Op::Tick),
        3 => Just(Op::CloseReopen),
        5 => crash_mode().prop_map(Op::Crash),
    ]
}

/// Chooses a position in a range known only when the operation runs: `pick(p, range)` maps
/// `p` proportionally onto the range (0 is its start; shrinking goes there).
type Pick = u64;

/// Picks an offset in `range` (which must not be empty).
fn pick(p: Pick, range: Range<i64>) -> i64 {
    let len = u128::try_from(range.end - range.start).expect("non-empty range");
    assert!(len > 0, "pick from an empty range");
    let chosen = (u128::from(p) * len) >> 64;
    range.start + i64::try_from(chosen).expect("within the range")
}

/// What stays fixed for one generated case.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// Budget of the batch cache: 0 sends every read of written data to the files.
    cache_bytes: usize,
    /// Group commit syncs right after every write; `Interval` and `Never` leave written but
    /// unsynced data in the files, which is what crashes that keep or tear unsynced bytes
    /// need.
    flush_policy: FlushPolicy,
}

fn setup() -> impl Strategy<Value = Setup> {
    let cache_bytes = prop_oneof![Just(0usize), Just(16 * 1024), Just(1 << 20)];
    let flush_policy = prop_oneof![
        Just(FlushPolicy::GroupCommit),
        (0..=64 * 1024u64).prop_map(|bytes| FlushPolicy::Interval {
            interval: FLUSH_INTERVAL,
            bytes,
        }),
        Just(FlushPolicy::Never),
    ];
    (cache_bytes, flush_policy).prop_map(|(cache_bytes, flush_policy)| Setup {
        cache_bytes,
        flush_policy,
    })
}

/// `flush.ms` of the `Interval` policy; the `Flushed` operation moves the clock past it.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The config under test: small segments, dense indexes; no time-based retention (the
/// model's timestamps are far in the past of the storage clock).
fn config(setup: Setup) -> LogConfig {
    LogConfig {
        retention_ms: None,
        flush_policy: setup.flush_policy,
        // The model's producer timestamps are from 1970: nothing may expire.
        producer_id_expiration_ms: Duration::from_secs(200 * 365 * 24 * 3600),
        ..small_config()
    }
}

/// `common::open` with the case's cache budget and flush policy.
async fn open_log(
    spawner: &LocalSpawner,
    storage: &MemoryStorage,
    setup: Setup,
) -> Log<MemoryStorage> {
    let log = Log::open(
        storage.clone(),
        &dir(),
        config(setup),
        BatchCache::new(setup.cache_bytes),
    )
    .await
    .expect("open log");
    spawner
        .spawn_local(log.clone().run_flusher())
        .expect("spawn flusher");
    log
}

/// Returns `Pending` once (after waking itself), so the executor runs other ready tasks.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|context| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            context.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// How the previous life of the log ended.
#[derive(Debug, Clone, Copy)]
enum Start {
    Fresh,
    AfterClose,
    AfterCrash(LogOffsets),
}

/// How a life of the log ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Closed,
    Crashed(CrashMode, LogOffsets),
    /// No operations left; the log was closed.
    Finished,
}

/// The log's start and end are the model's, and its offsets are in order.
fn check_offsets(log: &Log<MemoryStorage>, model: &Model, context: &str) {
    let offsets = log.offsets();
    assert_eq!(
        (offsets.log_start, offsets.log_end),
        (Offset(model.log_start), Offset(model.log_end)),
        "{context}: log start/end differ from the model; offsets {offsets:?}"
    );
    assert!(
        offsets.log_start <= offsets.durable_end
            && offsets.durable_end <= offsets.written_end
            && offsets.written_end <= offsets.log_end,
        "{context}: log_start ≤ durable_end ≤ written_end ≤ log_end violated: {offsets:?}"
    );
}

/// Reads the whole log and compares it with the model's visible batches.
async fn check_contents(log: &Log<MemoryStorage>, model: &Model, context: &str) {
    let got = read_all(log, Offset(model.log_start)).await;
    let expected = model.visible();
    assert_eq!(
        got.len(),
        expected.len(),
        "{context}: the log holds {} batches from {}, the model {}",
        got.len(),
        model.log_start,
        expected.len()
    );
    for ((base, next, bytes), want) in got.iter().zip(expected) {
        assert_eq!(
            (base.0, next.0),
            (want.base, want.next()),
            "{context}: batch offsets"
        );
        assert!(
            *bytes == want.bytes,
            "{context}: bytes of batch {} differ from what was appended",
            want.base
        );
    }
}

/// The bytes of a read chunk, from memory or from its file.
async fn chunk_bytes(chunk: Chunk<sluice_engine::io::memory::MemoryFile>) -> Bytes {
    match chunk {
        Chunk::Memory(bytes) => bytes,
        Chunk::File {
            reader,
            position,
            len,
        } => {
            let bytes = reader
                .read_at(position, usize::try_from(len).expect("small"))
                .await
                .expect("read file chunk");
            assert_eq!(bytes.len() as u64, len, "file chunk shorter than announced");
            bytes
        }
    }
}

/// Splits read bytes into batches, checking each is valid.
fn split_batches(bytes: &[u8]) -> Vec<(i64, i64, Bytes)> {
    let bytes = Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let (header, size) = sluice_engine::batch::validate(&bytes[position..], usize::MAX)
            .expect("read returned a valid whole batch");
        out.push((
            header.base_offset().0,
            header.next_offset().0,
            bytes.slice(position..position + size),
        ));
        position += size;
    }
    out
}

/// One read against the model: whole batches from the one holding `from`, byte-identical,
/// within `max_bytes` (except a lone first batch) and the bound, stopping only for a reason.
async fn check_read(
    log: &Log<MemoryStorage>,
    model: &Model,
    from: i64,
    max_bytes: u64,
    bound: Option<i64>,
) {
    let context = format!("read from {from} max_bytes {max_bytes} bound {bound:?}");
    let written_end = log.offsets().written_end.0;
    let result = log
        .read(
            Offset(from),
            ReadLimits {
                max_bytes,
                max_offset: bound.map(Offset),
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{context}: {error}"));
    assert_eq!(result.log_start, Offset(model.log_start), "{context}");
    assert_eq!(result.log_end, Offset(model.log_end), "{context}");
    let mut got = Vec::new();
    for chunk in result.chunks {
        let bytes = chunk_bytes(chunk).await;
        got.extend(split_batches(&bytes));
    }
    let limit = bound.unwrap_or(model.log_end).min(model.log_end);
    if from >= limit {
        assert!(got.is_empty(), "{context}: expected nothing, got {got:?}");
        assert_eq!(result.next_offset, Offset(from), "{context}");
        return;
    }
    let first = model.batch_index(from);
    assert!(
        !got.is_empty(),
        "{context}: the first batch must be returned"
    );
    let expected = &model.batches[first..];
    assert!(got.len() <= expected.len(), "{context}: too many batches");
    let mut total = 0u64;
    for (i, ((base, next, bytes), want)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            (*base, *next),
            (want.base, want.next()),
            "{context}: batch {i} of the result"
        );
        assert!(
            *bytes == want.bytes,
            "{context}: bytes of batch {} differ from what was appended",
            want.base
        );
        assert!(
            i == 0 || want.base < limit,
            "{context}: batch {} at or past the bound",
            want.base
        );
        total += bytes.len() as u64;
    }
    assert!(
        got.len() == 1 || total <= max_bytes,
        "{context}: {total} bytes returned in {} batches",
        got.len()
    );
    let last_next = got.last().map(|(_, next, _)| *next).expect("non-empty");
    assert_eq!(result.next_offset, Offset(last_next), "{context}");
    // The read stops only for a reason: the next batch does not fit or is past the bound,
    // starts another segment (file reads stay in one segment), or is not written yet.
    if let Some(following) = expected.get(got.len()) {
        let fits = total.saturating_add(following.bytes.len() as u64) <= max_bytes;
        let new_segment = log.segment_bases().contains(&Offset(following.base));
        let unwritten = following.next() > written_end;
        assert!(
            !fits || following.base >= limit || new_segment || unwritten,
            "{context}: stopped before batch {} ({} bytes) though {total} bytes were returned \
             and it is written in the same segment",
            following.base,
            following.bytes.len()
        );
    }
}

/// Opens the log for a new life and checks it against the model (updating the model to what
/// survived a crash).
async fn open_and_check(
    spawner: &LocalSpawner,
    storage: &MemoryStorage,
    setup: Setup,
    model: &mut Model,
    start: Start,
) -> Log<MemoryStorage> {
    doing("open");
    let log = open_log(spawner, storage, setup).await;
    let offsets = log.offsets();
    assert!(
        offsets.written_end == offsets.log_end && offsets.durable_end == offsets.log_end,
        "a freshly opened log is durable to its end: {offsets:?}"
    );
    match start {
        Start::Fresh => {}
        Start::AfterClose => {
            assert!(
                log.recovery_report().clean_shutdown,
                "close must leave a clean shutdown: {:?}",
                log.recovery_report()
            );
        }
        Start::AfterCrash(before) => {
            let end = offsets.log_end;
            assert!(
                before.durable_end <= end && end <= before.log_end,
                "after a crash the log end {end} must lie in [durable_end, log_end] of before: \
                 {before:?}; recovery: {:?}",
                log.recovery_report()
            );
            model.cut_at(end.0);
        }
    }
    check_offsets(&log, model, "after open");
    check_contents(&log, model, "after open").await;
    check_producers(&log, model, "after open");
    if let Start::AfterClose = start {
        assert_eq!(
            log.recovery_report().producer_batches_replayed,
            0,
            "close leaves a snapshot at the log end: {:?}",
            log.recovery_report()
        );
    }
    log
}

/// The log's idempotent-producer state is the model's, for every producer whose state the
/// log must know exactly.
fn check_producers(log: &Log<MemoryStorage>, model: &Model, context: &str) {
    let first_segment = log.segment_bases().first().map_or(0, |base| base.0);
    for producer in 0..PRODUCERS {
        let Ok(expected) = model.certain_producer_state(producer, first_segment) else {
            continue;
        };
        assert_eq!(
            log.producer_state(producer).map(RefEntry::from),
            expected,
            "{context}: producer {producer}"
        );
    }
}

/// One idempotent produce against the model.
async fn produce(
    log: &Log<MemoryStorage>,
    model: &mut Model,
    producer: i64,
    send: ProduceKind,
    records: i32,
) {
    let first_segment = log.segment_bases().first().map_or(0, |base| base.0);
    let certain = model.certain_producer_state(producer, first_segment);
    let state = certain.clone().ok().flatten();
    let epoch_max = model
        .batches
        .iter()
        .filter_map(|batch| batch.producer)
        .filter(|&(id, _, _)| id == producer)
        .map(|(_, epoch, _)| epoch)
        .max();
    let start = if producer == 3 { i32::MAX - 5 } else { 0 };
    let next = state
        .as_ref()
        .map_or((epoch_max.unwrap_or(0), start), |state| {
            (
                state.epoch,
                increment_sequence(state.batches.last().expect("non-empty").last_seq, 1),
            )
        });
    let bump = (epoch_max.unwrap_or(0) + 1, 0);
    // `(epoch, first sequence, records)` of each batch to send.
    let batches: Vec<(i16, i32, i32)> = match (certain, send) {
        // The log may or may not remember this producer: only a new epoch at 0 has one
        // answer either way (and makes its state certain again).
        (Err(()), _) => vec![(bump.0, bump.1, records)],
        (Ok(_), ProduceKind::Next) => vec![(next.0, next.1, records)],
        (Ok(_), ProduceKind::NextTwo) => vec![
            (next.0, next.1, records),
            (next.0, increment_sequence(next.1, records), 1),
        ],
        (Ok(Some(state)), ProduceKind::Retry(which)) => {
            let mut candidates: Vec<(i32, i32)> = model
                .batches
                .iter()
                .filter(|batch| {
                    batch
                        .producer
                        .is_some_and(|(id, epoch, _)| id == producer && epoch == state.epoch)
                })
                .map(|batch| (batch.producer.expect("filtered").2, batch.records as i32))
                .collect();
            let keep = candidates.len().saturating_sub(7);
            candidates.drain(..keep);
            let (first_seq, records) = candidates
                [usize::try_from(pick(which, 0..candidates.len() as i64)).expect("index")];
            vec![(state.epoch, first_seq, records)]
        }
        (Ok(_), ProduceKind::Gap(gap)) => vec![(next.0, increment_sequence(next.1, gap), records)],
        (Ok(Some(state)), ProduceKind::StaleEpoch) if state.epoch > i16::MIN => {
            vec![(state.epoch - 1, next.1, records)]
        }
        (Ok(_), ProduceKind::Bump { at_zero }) => {
            vec![(bump.0, if at_zero { 0 } else { 1 }, records)]
        }
        (Ok(_), ProduceKind::Retry(_) | ProduceKind::StaleEpoch) => vec![(next.0, next.1, records)],
    };
    let expected = if let [(epoch, first_seq, records)] = batches[..] {
        expect(
            state.as_ref(),
            epoch,
            first_seq,
            increment_sequence(first_seq, records - 1),
        )
    } else {
        Expect::Append // the two-batch set continues the sequence
    };
    let mut set = BytesMut::new();
    let mut planned = Vec::new();
    for &(epoch, first_seq, count) in &batches {
        let bytes = sluice_engine::testing::idempotent_batch(
            0,
            count,
            50,
            model.clock,
            producer,
            epoch,
            first_seq,
        );
        planned.push((epoch, first_seq, count, model.clock, bytes.len()));
        model.clock += i64::from(count);
        set.extend_from_slice(&bytes);
    }
    let appended = set.clone().freeze();
    let context = format!("producer {producer} sends {batches:?}, expecting {expected:?}");
    let result = log.append(set).await;
    match (expected, result) {
        (Expect::Append, Ok(info)) => {
            assert!(!info.duplicate, "{context}");
            assert_eq!(info.base_offset, Offset(model.log_end), "{context}");
            let mut position = 0;
            for (epoch, first_seq, count, base_timestamp, len) in planned {
                let mut bytes = appended[position..position + len].to_vec();
                bytes[..8].copy_from_slice(&model.log_end.to_be_bytes());
                model.batches.push(ModelBatch {
                    base: model.log_end,
                    records: i64::from(count),
                    base_timestamp,
                    bytes: Bytes::from(bytes),
                    producer: Some((producer, epoch, first_seq)),
                });
                model.log_end += i64::from(count);
                position += len;
            }
            model.last_append_end = Some(model.log_end);
        }
        (Expect::Duplicate { base, last }, Ok(info)) => {
            assert!(info.duplicate, "{context}: {info:?}");
            assert_eq!(
                (info.base_offset, info.last_offset),
                (Offset(base), Offset(last)),
                "{context}"
            );
        }
        (
            Expect::OutOfOrder { expected, got },
            Err(AppendError::OutOfOrderSequence {
                producer_id,
                expected: log_expected,
                got: log_got,
            }),
        ) => assert_eq!(
            (producer_id, log_expected, log_got),
            (producer, expected, got),
            "{context}"
        ),
        (
            Expect::Fenced { current, got },
            Err(AppendError::InvalidProducerEpoch {
                producer_id,
                current: log_current,
                got: log_got,
            }),
        ) => assert_eq!(
            (producer_id, log_current, log_got),
            (producer, current, got),
            "{context}"
        ),
        (_, result) => panic!("{context}: the log answered {result:?}"),
    }
}

/// Runs operations on one life of the log until a restart, a crash, or the end.
async fn life(
    spawner: &LocalSpawner,
    storage: &MemoryStorage,
    setup: Setup,
    model: &mut Model,
    start: Start,
    ops: &mut std::vec::IntoIter<Op>,
) -> End {
    let log = open_and_check(spawner, storage, setup, model, start).await;
    for op in ops.by_ref() {
        let context = format!("{op:?}");
        doing(&context);
        match op {
            Op::Append {
                batches,
                clock_step,
            } => {
                model.clock = (model.clock + clock_step).max(0);
                let mut records = BytesMut::new();
                let mut planned = Vec::new();
                for (count, payload) in batches {
                    let bytes = batch(count, payload, model.clock);
                    planned.push((i64::from(count), model.clock, bytes.len()));
                    model.clock += i64::from(count);
                    records.extend_from_slice(&bytes);
                }
                let appended = records.clone().freeze();
                let info = log.append(records).await.expect("append");
                let total: i64 = planned.iter().map(|&(count, _, _)| count).sum();
                assert_eq!(info.base_offset, Offset(model.log_end), "{context}");
                assert_eq!(info.last_offset, Offset(model.log_end + total - 1));
                let mut position = 0;
                for (count, base_timestamp, len) in planned {
                    let mut bytes = appended[position..position + len].to_vec();
                    bytes[..8].copy_from_slice(&model.log_end.to_be_bytes());
                    model.batches.push(ModelBatch {
                        base: model.log_end,
                        records: count,
                        base_timestamp,
                        bytes: Bytes::from(bytes),
                        producer: None,
                    });
                    model.log_end += count;
                    position += len;
                }
                model.last_append_end = Some(model.log_end);
            }
            Op::Flushed => {
                let end = model.last_append_end.unwrap_or(model.log_end);
                if let FlushPolicy::Interval { .. } = log.config().flush_policy {
                    // Nothing else would sync what is below the byte threshold.
                    storage.advance_ms(i64::try_from(FLUSH_INTERVAL.as_millis()).expect("small"));
                    log.tick().await.expect("tick");
                }
                let result = log.flushed(Offset(end)).await;
                if end <= model.log_end {
                    result.unwrap_or_else(|error| panic!("flushed({end}): {error}"));
                    let offsets = log.offsets();
                    let reached = match log.config().flush_policy {
                        FlushPolicy::Never => offsets.written_end,
                        _ => offsets.durable_end,
                    };
                    assert!(
                        reached >= Offset(end),
                        "flushed({end}) resolved too early under {:?}: {offsets:?}",
                        setup.flush_policy
                    );
                } else {
                    assert!(
                        matches!(result, Err(FlushError::Truncated(_))),
                        "flushed({end}) past the log end {}: {result:?}",
                        model.log_end
                    );
                }
            }
            Op::Yield(turns) => {
                for _ in 0..turns {
                    yield_now().await;
                }
            }
            Op::Read {
                from,
                max_bytes,
                bound,
            } => {
                let from = pick(from, model.log_start..model.log_end + 1);
                let bound = bound.map(|bound| pick(bound, from..model.log_end + 1));
                check_read(&log, model, from, max_bytes, bound).await;
            }
            Op::Truncate { at, past_end } => {
                if past_end {
                    let offset = model.log_end + 1 + pick(at, 0..1000);
                    let result = log.truncate(Offset(offset)).await;
                    assert!(
                        matches!(result, Err(MaintenanceError::PastEnd { .. })),
                        "truncate({offset}) past the end {}: {result:?}",
                        model.log_end
                    );
                } else {
                    let offset = pick(at, model.log_start..model.log_end + 1);
                    let expected = model
                        .batches
                        .iter()
                        .find(|batch| batch.next() > offset)
                        .map_or(model.log_end, |batch| batch.base);
                    let end = log
                        .truncate(Offset(offset))
                        .await
                        .unwrap_or_else(|error| panic!("truncate({offset}): {error}"));
                    assert_eq!(end, Offset(expected), "truncate({offset}) returned");
                    model.cut_at(expected);
                    check_offsets(&log, model, &context);
                    check_contents(&log, model, &context).await;
                    check_producers(&log, model, &context);
                }
            }
            Op::DeleteBefore { at } => {
                let offset = pick(at, model.log_start..model.log_end + 1);
                let start = log
                    .delete_records_before(Offset(offset))
                    .await
                    .unwrap_or_else(|error| panic!("delete_records_before({offset}): {error}"));
                assert_eq!(start, Offset(offset), "delete_records_before({offset})");
                model.log_start = offset;
                check_offsets(&log, model, &context);
                check_contents(&log, model, &context).await;
            }
            Op::OffsetForTimestamp { target } => {
                let visible = model.visible();
                let target = match target {
                    TimestampTarget::NearRecord(index, delta)
                        if model.log_start < model.log_end =>
                    {
                        let offset = pick(index, model.log_start..model.log_end);
                        model.timestamp_of(offset) + delta
                    }
                    TimestampTarget::NearRecord(..) | TimestampTarget::Oldest => -1,
                    TimestampTarget::Newest => visible
                        .iter()
                        .map(|batch| batch.base_timestamp + batch.records)
                        .max()
                        .unwrap_or(0),
                };
                let expected = model
                    .offset_for_timestamp(target)
                    .map(|(offset, timestamp)| (Offset(offset), TimestampMs(timestamp)));
                let got = log
                    .offset_for_timestamp(TimestampMs(target))
                    .await
                    .unwrap_or_else(|error| panic!("offset_for_timestamp({target}): {error}"));
                assert_eq!(
                    got, expected,
                    "offset_for_timestamp({target}) with log start {}",
                    model.log_start
                );
            }
            Op::Produce {
                producer,
                send,
                records,
            } => {
                produce(&log, model, i64::from(producer) % PRODUCERS, send, records).await;
            }
            Op::Tick => {
                let report = log.tick().await.expect("tick");
                assert_eq!(report.deleted_segments, 0, "no retention configured");
                assert_eq!(report.log_start, Offset(model.log_start));
            }
            Op::CloseReopen => {
                log.close().await.expect("close");
                check_offsets(&log, model, "after close");
                return End::Closed;
            }
            Op::Crash(mode) => {
                check_offsets(&log, model, "before crash");
                return End::Crashed(mode, log.offsets());
            }
        }
        check_offsets(&log, model, &context);
    }
    doing("close at the end");
    log.close().await.expect("close");
    End::Finished
}

thread_local! {
    /// What the current life is doing, for the deadlock report.
    static DOING: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn doing(what: &str) {
    DOING.with_borrow_mut(|doing| what.clone_into(doing));
}

/// `common::run`, except that it fails instead of hanging when the body waits for something
/// that can never happen: with in-memory storage every I/O completes at once, so if the body
/// is still pending once every spawned task (the flusher) has stalled and nothing woke it,
/// it is deadlocked. The executor, and with it the log's flusher, is dropped on return.
fn run_life<F: Future>(body: impl FnOnce(LocalSpawner) -> F) -> F::Output {
    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Self>) {
            flag.0.store(true, Ordering::SeqCst);
        }
    }
    let mut pool = LocalPool::new();
    let mut body = std::pin::pin!(body(pool.spawner()));
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut context = std::task::Context::from_waker(&waker);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let std::task::Poll::Ready(output) = body.as_mut().poll(&mut context) {
            return output;
        }
        pool.run_until_stalled();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "deadlock: {} waits for something that never happens",
            DOING.with_borrow(Clone::clone)
        );
    }
}

fn run_sequence(ops: Vec<Op>, setup: Setup) {
    let storage = MemoryStorage::new();
    let mut model = Model {
        clock: 1_000_000,
        ..Model::default()
    };
    let mut ops = ops.into_iter();
    let mut start = Start::Fresh;
    let mut finished = false;
    loop {
        let end = run_life(|spawner| {
            let storage = &storage;
            let model = &mut model;
            let ops = &mut ops;
            async move { life(&spawner, storage, setup, model, start, ops).await }
        });
        start = match end {
            End::Closed => Start::AfterClose,
            End::Crashed(mode, before) => {
                storage.crash(mode);
                Start::AfterCrash(before)
            }
            // One more life with no operations: the final state survives a reopen.
            End::Finished if !finished => {
                finished = true;
                Start::AfterClose
            }
            End::Finished => break,
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=20000 (with --release) for a long hunt; the default stays ~1 s.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(256),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(
        ops in prop::collection::vec(op(), 1..=100),
        setup in setup(),
    ) {
        run_sequence(ops, setup);
    }
}

// Fixed sequences that the model test found to break the engine once: each pins one bug
// with the smallest reproduction, so a regression names itself.

fn fixed_setup(flush_policy: FlushPolicy, cache_bytes: usize) -> Setup {
    Setup {
        cache_bytes,
        flush_policy,
    }
}

/// `delete_records_before` past the durable end moved the log start above `durable_end`,
/// breaking `log_start ≤ durable_end` (a crash then loses records below the log start).
#[test]
fn delete_records_before_keeps_log_start_at_or_below_durable_end() {
    let storage = MemoryStorage::new();
    let storage = &storage;
    run_life(|spawner| async move {
        let setup = fixed_setup(FlushPolicy::GroupCommit, 1 << 20);
        let log = open_log(&spawner, storage, setup).await;
        log.append(batch(1, 0, 1_000_000)).await.expect("append");
        let start = log
            .delete_records_before(Offset(1))
            .await
            .expect("delete records");
        assert_eq!(start, Offset(1));
        let offsets = log.offsets();
        assert!(
            offsets.log_start <= offsets.durable_end,
            "log_start ≤ durable_end violated: {offsets:?}"
        );
    });
}

/// ListOffsets by time with the log start inside a batch answered the log start with the
/// timestamp of a record below it.
#[test]
fn offset_for_timestamp_inside_the_first_batch_answers_that_records_timestamp() {
    let storage = MemoryStorage::new();
    let storage = &storage;
    run_life(|spawner| async move {
        let setup = fixed_setup(FlushPolicy::GroupCommit, 1 << 20);
        let log = open_log(&spawner, storage, setup).await;
        log.append(batch(2, 0, 1_000_000)).await.expect("append");
        log.flushed(Offset(2)).await.expect("flushed");
        log.delete_records_before(Offset(1))
            .await
            .expect("delete records");
        let found = log
            .offset_for_timestamp(TimestampMs(1_000_000))
            .await
            .expect("lookup");
        assert_eq!(found, Some((Offset(1), TimestampMs(1_000_001))));
    });
}

/// After a truncation the segment's largest timestamp was only the last time-index entry's,
/// so ListOffsets by time skipped a segment holding later timestamps and answered `None`.
#[test]
fn offset_for_timestamp_after_truncate_finds_records_between_index_entries() {
    let storage = MemoryStorage::new();
    let storage = &storage;
    run_life(|spawner| async move {
        let setup = fixed_setup(FlushPolicy::GroupCommit, 1 << 20);
        let log = open_log(&spawner, storage, setup).await;
        for i in 0..4 {
            log.append(batch(1, 0, 1_000_000 + i))
                .await
                .expect("append");
        }
        assert_eq!(log.truncate(Offset(2)).await.expect("truncate"), Offset(2));
        let found = log
            .offset_for_timestamp(TimestampMs(1_000_001))
            .await
            .expect("lookup");
        assert_eq!(found, Some((Offset(1), TimestampMs(1_000_001))));
    });
}

/// With timestamps going back, reopening rebuilt a time index that claimed a smaller largest
/// timestamp up to its last entry, so ListOffsets by time skipped the batch that held it.
#[test]
fn offset_for_timestamp_survives_reopen_with_backward_timestamps() {
    let storage = MemoryStorage::new();
    let storage = &storage;
    let setup = fixed_setup(FlushPolicy::GroupCommit, 0);
    // (records, payload, timestamp): the 6-record batch reaches 1_000_007, the next goes back.
    let batches = [
        (1, 0, 1_000_000),
        (1, 0, 1_000_001),
        (6, 426, 1_000_002),
        (1, 186, 1_000_004),
        (5, 2515, 1_000_005),
        (5, 107, 1_000_010),
        (1, 0, 1_000_015),
    ];
    let expected = Some((Offset(7), TimestampMs(1_000_007)));
    run_life(|spawner| async move {
        let log = open_log(&spawner, storage, setup).await;
        for (records, payload, timestamp) in batches {
            log.append(batch(records, payload, timestamp))
                .await
                .expect("append");
        }
        let found = log.offset_for_timestamp(TimestampMs(1_000_007)).await;
        assert_eq!(found.expect("lookup"), expected, "before close");
        log.close().await.expect("close");
    });
    run_life(|spawner| async move {
        let log = open_log(&spawner, storage, setup).await;
        let found = log.offset_for_timestamp(TimestampMs(1_000_007)).await;
        assert_eq!(found.expect("lookup"), expected, "after reopen");
    });
}

/// With the `Interval` policy the flusher writes whole buffers only, so the written end can
/// fall inside a batch header; a file read then parsed the unwritten zeros as a header and
/// failed with `Corrupt` instead of stopping before that batch.
#[test]
fn read_stops_before_a_batch_whose_header_is_not_fully_written() {
    let storage = MemoryStorage::new();
    let storage = &storage;
    run_life(|spawner| async move {
        let policy = FlushPolicy::Interval {
            interval: FLUSH_INTERVAL,
            bytes: 1 << 20,
        };
        let log = open_log(&spawner, storage, fixed_setup(policy, 0)).await;
        let first = sluice_engine::testing::batch_of_size(8176, 1_000_000);
        log.append(BytesMut::from(&first[..]))
            .await
            .expect("append");
        log.append(batch(1, 200, 1_000_001)).await.expect("append");
        yield_now().await; // the flusher writes the first full 8 KiB buffer
        assert_eq!(
            log.offsets().written_end,
            Offset(1),
            "precondition: the second batch's header straddles the written end"
        );
        let read = log
            .read(
                Offset(0),
                ReadLimits {
                    max_bytes: u64::MAX,
                    max_offset: None,
                },
            )
            .await
            .expect("read below the written end");
        assert_eq!(read.next_offset, Offset(1));
        assert_eq!(read.bytes(), first.len() as u64);
    });
}
