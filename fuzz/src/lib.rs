//! The checks behind Sluice's fuzz targets, as plain functions.
//!
//! `fuzz_targets/*.rs` hand libFuzzer's inputs to these functions (`cargo +nightly fuzz run
//! <target>`); the tests at the bottom feed them thousands of pseudo-random and hand-made
//! inputs on stable Rust (`cargo test`), so the checks themselves are always exercised.
//! Each function panics exactly when it finds a bug.
//!
//! * [`batch_parser`]: arbitrary bytes through the RecordBatch v2 parsing functions
//!   (`check_header`, `validate`, `validate_all`, `first_record_at_or_after`, and `assign` on
//!   what validated). None may panic, and their answers must agree with each other: a batch
//!   that validates has the CRC32C it claims, every error is the one the header checks give,
//!   `validate_all` accepts exactly the inputs that are a sequence of valid batches.
//! * [`segment_recovery`]: a valid log on in-memory storage whose active segment file is
//!   then damaged (cut short, overwritten, extended) as the input says, and reopened.
//!   Reopening must not fail or panic, and what it recovers must be a prefix of the original
//!   batches, byte for byte, keeping every batch the damage did not touch, with the log end
//!   at the end of that prefix; the log must then take and keep new appends.

#![allow(clippy::missing_panics_doc)] // every function here panics by design, on a bug

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::executor::{LocalPool, LocalSpawner};
use futures::task::{ArcWake, LocalSpawnExt};
use sluice_engine::batch::{self, Stamp};
use sluice_engine::error::BatchError;
use sluice_engine::io::ReadFile;
use sluice_engine::io::memory::{CrashMode, MemoryStorage};
use sluice_engine::limits::{BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD};
use sluice_engine::{
    BatchCache, Chunk, FlushPolicy, Log, LogConfig, Offset, ReadLimits, TimestampMs, testing,
};

// ---------------------------------------------------------------------------------------
// batch_parser
// ---------------------------------------------------------------------------------------

/// Feeds `data` to the batch parsing functions. The first byte (if any) picks the size limit
/// and lookup parameters; the rest is the record set.
pub fn batch_parser(data: &[u8]) {
    let (selector, bytes) = match data.split_first() {
        Some((&selector, rest)) => (selector, rest),
        None => (0, data),
    };
    let size_max = match selector % 4 {
        0 => usize::MAX,
        1 => 1 << 20,
        2 => BATCH_HEADER_SIZE + usize::from(selector),
        _ => bytes.len(),
    };
    check_one_batch(bytes, size_max, selector);
    check_record_set(bytes, size_max);
}

/// `check_header` and `validate` on the batch at the start of `bytes`, and what follows from
/// them (record lookups by time, stamping).
fn check_one_batch(bytes: &[u8], size_max: usize, selector: u8) {
    let checked = batch::check_header(bytes, size_max);
    match &checked {
        Ok((header, total)) => {
            let total = *total;
            assert!(bytes.len() >= BATCH_HEADER_SIZE, "header from short input");
            assert_eq!(
                total,
                BATCH_LOG_OVERHEAD + usize::try_from(header.batch_length.get()).expect("≥ 0")
            );
            assert!(
                (BATCH_HEADER_SIZE..=size_max).contains(&total),
                "size {total}"
            );
            assert_eq!(header.magic, batch::MAGIC_V2);
            assert!(header.last_offset_delta.get() >= 0);
            assert!(header.records_count.get() >= 0);
        }
        Err(BatchError::CrcMismatch { .. }) => panic!("check_header looked at the CRC"),
        Err(_) if bytes.len() < BATCH_HEADER_SIZE => {
            assert!(
                matches!(checked, Err(BatchError::Truncated { .. })),
                "short input must be Truncated: {checked:?}"
            );
        }
        Err(_) => {}
    }

    let validated = batch::validate(bytes, size_max);
    match (&validated, &checked) {
        (Ok((header, total)), Ok((_, checked_total))) => {
            assert_eq!(
                total, checked_total,
                "validate and check_header disagree on size"
            );
            assert!(*total <= bytes.len());
            assert_eq!(
                batch::compute_crc(&bytes[..*total]),
                header.crc.get(),
                "validate accepted a batch whose CRC32C does not match"
            );
        }
        (Err(BatchError::CrcMismatch { stored, computed }), Ok((header, total))) => {
            assert!(*total <= bytes.len(), "CRC checked over missing bytes");
            assert_eq!(*stored, header.crc.get());
            assert_eq!(*computed, batch::compute_crc(&bytes[..*total]));
            assert_ne!(stored, computed);
        }
        (Err(BatchError::Truncated { needed, available }), Ok((_, total))) => {
            assert_eq!((*needed, *available), (*total, bytes.len()));
            assert!(*total > bytes.len());
        }
        (Err(error), Err(header_error)) => {
            assert_eq!(
                error, header_error,
                "validate must fail as the header check does"
            );
        }
        (validated, checked) => {
            panic!("validate {validated:?} contradicts check_header {checked:?}")
        }
    }

    // Record lookups by time: any input, never a panic; answers must qualify.
    let base_timestamp = batch::header(bytes).map_or(0, |header| header.base_timestamp.get());
    let base_offset = batch::header(bytes).map_or(0, |header| header.base_offset.get());
    let delta = i64::from(selector as i8);
    for timestamp in [
        i64::MIN,
        base_timestamp,
        base_timestamp.saturating_add(delta),
        i64::MAX,
    ] {
        let found = batch::first_record_at_or_after(bytes, TimestampMs(timestamp));
        if let Some((_, found_timestamp)) = found {
            assert!(
                found_timestamp.0 >= timestamp,
                "record older than asked for"
            );
        }
        let everything = batch::first_visible_record_at_or_after(
            bytes,
            TimestampMs(timestamp),
            Offset(i64::MIN),
        );
        assert_eq!(found, everything.ok().flatten(), "the two lookups disagree");
        let log_start = Offset(base_offset.saturating_add(delta.abs()));
        if let Ok(Some((offset, found_timestamp))) =
            batch::first_visible_record_at_or_after(bytes, TimestampMs(timestamp), log_start)
        {
            assert!(offset >= log_start, "record below the log start");
            assert!(
                found_timestamp.0 >= timestamp,
                "record older than asked for"
            );
        }
    }

    // What validates can be stamped, and stays valid.
    if let Ok((header, total)) = validated {
        let crc = header.crc.get();
        for log_append_time in [None, Some(TimestampMs(base_timestamp ^ 0x5a5a))] {
            let mut stamped = bytes.to_vec();
            let stamp = Stamp {
                base_offset: Offset(base_offset.wrapping_add(12_345)),
                partition_leader_epoch: i32::from(selector),
                log_append_time,
            };
            batch::assign(&mut stamped, stamp);
            assert_eq!(
                stamped[total..],
                bytes[total..],
                "assign wrote past its batch"
            );
            let (header, size) =
                batch::validate(&stamped, size_max).expect("a stamped batch stays valid");
            assert_eq!(size, total);
            assert_eq!(header.base_offset(), stamp.base_offset);
            assert_eq!(header.partition_leader_epoch.get(), i32::from(selector));
            match log_append_time {
                None => assert_eq!(header.crc.get(), crc, "CreateTime stamping changed the CRC"),
                Some(now) => {
                    assert!(header.is_log_append_time());
                    assert_eq!(header.max_timestamp(), now);
                }
            }
        }
    }
}

/// `validate_all` against a walk over the batches with `validate`.
fn check_record_set(bytes: &[u8], size_max: usize) {
    let mut expected = Ok((0usize, 0i64));
    let mut position = 0;
    while position < bytes.len() {
        match batch::validate(&bytes[position..], size_max) {
            Ok((header, total)) => {
                let (count, delta) = (header.records_count.get(), header.last_offset_delta.get());
                if i64::from(count) != i64::from(delta) + 1 {
                    expected = Err(());
                    break;
                }
                if let Ok((batches, records)) = &mut expected {
                    *batches += 1;
                    *records += i64::from(delta) + 1;
                }
                position += total;
            }
            Err(_) => {
                expected = Err(());
                break;
            }
        }
    }
    if bytes.is_empty() {
        expected = Err(());
    }
    match (batch::validate_all(bytes, size_max), expected) {
        (Ok(summary), Ok((batches, records))) => {
            assert_eq!((summary.batches, summary.records), (batches, records));
        }
        (Err(_), Err(())) => {}
        (got, expected) => panic!("validate_all gave {got:?}, walking the batches {expected:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// segment_recovery
// ---------------------------------------------------------------------------------------

/// How [`segment_recovery`] reads its input.
///
/// Byte 0: bits 0–1 pick the log's shape, bit 7 a clean `close()` (else the log crashes
/// after everything was made durable). Bytes 1–2: where to cut the active segment file
/// (big-endian, modulo its length + 1; `0xFFFF`: no cut). Bytes 3–4: where to write
/// (modulo the cut length + 4097, so up to a page past the end). The rest: the bytes written
/// there (the file grows with zeros if needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Which of the [`SHAPES`] to build.
    pub shape: u8,
    /// Close cleanly before damaging (recovery then trusts the checkpoint unless the files
    /// disagree with it) instead of crashing.
    pub clean: bool,
    /// Cut the file to this length (modulo length + 1); `None` keeps it.
    pub cut: Option<u16>,
    /// Where to write `bytes`.
    pub write_at: u16,
    /// What to write.
    pub bytes: Vec<u8>,
}

impl Damage {
    /// Reads a fuzz input (any bytes are a valid input).
    #[must_use]
    pub fn decode(data: &[u8]) -> Self {
        let byte = |index: usize| data.get(index).copied().unwrap_or(0);
        let cut = u16::from_be_bytes([byte(1), byte(2)]);
        Self {
            shape: byte(0) & 0x03,
            clean: byte(0) & 0x80 != 0,
            cut: (data.len() >= 3 && cut != u16::MAX).then_some(cut),
            write_at: u16::from_be_bytes([byte(3), byte(4)]),
            bytes: data.get(5..).unwrap_or_default().to_vec(),
        }
    }

    /// The fuzz input that decodes to this damage.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut data = vec![(self.shape & 0x03) | if self.clean { 0x80 } else { 0 }];
        data.extend_from_slice(&self.cut.unwrap_or(u16::MAX).to_be_bytes());
        data.extend_from_slice(&self.write_at.to_be_bytes());
        data.extend_from_slice(&self.bytes);
        data
    }

    /// The damaged file.
    #[must_use]
    pub fn apply(&self, file: &[u8]) -> Vec<u8> {
        let mut damaged = file.to_vec();
        if let Some(cut) = self.cut {
            damaged.truncate(usize::from(cut) % (file.len() + 1));
        }
        if !self.bytes.is_empty() {
            let at = usize::from(self.write_at) % (damaged.len() + 4097);
            let end = at + self.bytes.len();
            if damaged.len() < end {
                damaged.resize(end, 0);
            }
            damaged[at..end].copy_from_slice(&self.bytes);
        }
        damaged
    }
}

/// The logs [`segment_recovery`] builds: batches as `(records, payload bytes per record)`
/// and the `segment.bytes` they are written with.
pub const SHAPES: [(&[(i32, usize)], u64); 4] = [
    // A few batches in one segment.
    (&[(1, 40), (3, 120), (2, 300), (1, 0), (5, 60)], 16 * 1024),
    // One batch.
    (&[(4, 100)], 16 * 1024),
    // Many small batches: several index entries, the last page partly filled.
    (&[(1, 30); 40], 16 * 1024),
    // Rolls: the active segment is the third, the first two must stay untouched.
    (
        &[
            (2, 900),
            (1, 1500),
            (3, 400),
            (2, 700),
            (1, 2000),
            (2, 50),
            (1, 10),
        ],
        4096,
    ),
];

/// One stored batch: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredBatch {
    /// Base offset of the segment holding it.
    segment: Offset,
    /// Byte position in that segment's file.
    position: usize,
    /// Base offset.
    base: Offset,
    /// Offset after its last record.
    next: Offset,
    /// The batch as stored.
    bytes: Bytes,
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 512,
        write_buffer_bytes: 8192,
        unwritten_bytes_max: 64 * 1024,
        preallocate_bytes: 8192,
        retention_ms: None,
        flush_policy: FlushPolicy::GroupCommit,
        ..LogConfig::default()
    }
}

fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

fn log_path(segment: Offset) -> PathBuf {
    dir().join(format!("{:020}.log", segment.0))
}

/// Builds the log of `shape`, makes it durable, then closes it (`clean`) or crashes.
/// Returns every batch stored and the active segment's base.
fn build_log(storage: &MemoryStorage, shape: u8, clean: bool) -> (Vec<StoredBatch>, Offset) {
    let (batches, segment_bytes) = SHAPES[usize::from(shape) % SHAPES.len()];
    let stored = run_life(|spawner| async move {
        let log = open_log(&spawner, storage, segment_bytes).await;
        for (i, &(records, payload)) in batches.iter().enumerate() {
            let timestamp = 1_000 + 10 * i64::try_from(i).expect("few batches");
            let records = BytesMut::from(&testing::batch(0, records, payload, timestamp)[..]);
            log.append(records).await.expect("append");
        }
        log.flushed(log.offsets().log_end).await.expect("flushed");
        let stored = stored_batches(&log, true)
            .await
            .expect("an intact log reads back whole");
        if clean {
            log.close().await.expect("close");
        }
        (stored, *log.segment_bases().last().expect("a segment"))
    });
    if !clean {
        storage.crash(CrashMode::LoseUnsynced);
    }
    stored
}

/// Builds a log, damages its active segment file as `data` says, reopens it and checks what
/// recovery kept. See [`Damage`] for how `data` is read.
pub fn segment_recovery(data: &[u8]) {
    check_damage(&Damage::decode(data));
}

/// [`segment_recovery`] for one damage; returns how many batches recovery kept (`None` after
/// a clean close, where only "no panic" is checked).
fn check_damage(damage: &Damage) -> Option<usize> {
    let storage = MemoryStorage::new();
    let (original, active) = build_log(&storage, damage.shape, damage.clean);
    let path = log_path(active);
    let before = storage.file_bytes(&path).expect("active segment file");
    let damaged = damage.apply(&before);
    storage.set_file_bytes(&path, damaged.clone());
    // Bytes of the active file that are as they were.
    let intact = before
        .iter()
        .zip(&damaged)
        .position(|(a, b)| a != b)
        .unwrap_or(before.len().min(damaged.len()));
    let survivors: Vec<&StoredBatch> = original
        .iter()
        .take_while(|batch| batch.segment < active || batch.position + batch.bytes.len() <= intact)
        .collect();

    let recovered = run_life(|spawner| {
        let storage = &storage;
        let original = &original;
        async move {
            let log = open_log(&spawner, storage, segment_bytes(damage.shape)).await;
            check_offsets(&log);
            if damage.clean {
                // After a clean close recovery trusts the files (as Kafka does) unless their
                // end disagrees with the checkpoint: damage that keeps the end can go
                // unnoticed, and reads may then meet it. Only "no panic" is asked.
                let _ = stored_batches(&log, false).await;
                return None;
            }
            let recovered = stored_batches(&log, true)
                .await
                .unwrap_or_else(|error| panic!("reading the recovered log: {error}"));
            check_recovered(original, &recovered, active, intact, survivors.len());
            let end = recovered.last().map_or(active, |batch| batch.next);
            assert_eq!(
                log.offsets().log_end,
                end,
                "log end is not the end of what was kept"
            );
            // The log goes on from there: a new batch lands after the recovered prefix.
            let info = log
                .append(BytesMut::from(&testing::batch(0, 2, 77, 5_000)[..]))
                .await
                .expect("append after recovery");
            assert_eq!(info.base_offset, end);
            log.flushed(info.next_offset()).await.expect("flushed");
            let after = stored_batches(&log, true).await.expect("read after append");
            assert_eq!(after.len(), recovered.len() + 1, "append after recovery");
            assert_eq!(after[..recovered.len()], recovered[..]);
            Some((recovered.len(), after))
        }
    });
    let (kept, expected) = recovered?;
    {
        // What was durable after recovery survives another crash unchanged.
        storage.crash(CrashMode::LoseUnsynced);
        let again = run_life(|spawner| {
            let storage = &storage;
            async move {
                let log = open_log(&spawner, storage, segment_bytes(damage.shape)).await;
                check_offsets(&log);
                stored_batches(&log, true)
                    .await
                    .expect("read after the second recovery")
            }
        });
        assert_eq!(again, expected, "the second recovery changed the log");
    }
    Some(kept)
}

fn segment_bytes(shape: u8) -> u64 {
    SHAPES[usize::from(shape) % SHAPES.len()].1
}

/// Recovered batches must be the original ones, in order, from the start: all those the
/// damage left intact, and possibly more. A batch the damage touched may only survive
/// unchanged — or, which random input never achieves, replaced by bytes that form a whole
/// valid batch with the right base offset (no checksum can tell those from a real append).
fn check_recovered(
    original: &[StoredBatch],
    recovered: &[StoredBatch],
    active: Offset,
    intact: usize,
    survivors: usize,
) {
    assert!(
        recovered.len() >= survivors,
        "recovery lost batches the damage did not touch: kept {} of {survivors} (intact bytes \
         of the active segment: {intact})",
        recovered.len()
    );
    for (i, batch) in recovered.iter().enumerate() {
        match original.get(i) {
            Some(want) if want == batch => {}
            want => {
                let forged = batch.segment == active && batch.position + batch.bytes.len() > intact;
                assert!(
                    forged,
                    "recovered batch {i} differs from the original without being damaged: \
                     {batch:?} vs {want:?}"
                );
                batch::validate(&batch.bytes, usize::MAX).expect("a forged batch is valid");
            }
        }
    }
}

fn check_offsets<S: sluice_engine::io::Storage>(log: &Log<S>) {
    let offsets = log.offsets();
    assert!(
        offsets.log_start <= offsets.durable_end
            && offsets.durable_end <= offsets.written_end
            && offsets.written_end <= offsets.log_end,
        "offsets out of order: {offsets:?}"
    );
}

async fn open_log(
    spawner: &LocalSpawner,
    storage: &MemoryStorage,
    segment_bytes: u64,
) -> Log<MemoryStorage> {
    let log = Log::open(
        storage.clone(),
        &dir(),
        config(segment_bytes),
        BatchCache::new(0),
    )
    .await
    .expect("opening a damaged log must not fail");
    spawner
        .spawn_local(log.clone().run_flusher())
        .expect("spawn flusher");
    log
}

/// Every batch of the log, read through `Log::read` (from files: the cache is off), with
/// where it is stored. With `validate`, each must pass `batch::validate`. `Err` when a read
/// fails or returns something that is not whole batches.
async fn stored_batches(
    log: &Log<MemoryStorage>,
    validate: bool,
) -> Result<Vec<StoredBatch>, String> {
    let segments = log.segment_bases();
    let mut out: Vec<StoredBatch> = Vec::new();
    let mut offset = log.offsets().log_start;
    loop {
        let limits = ReadLimits {
            max_bytes: 5000,
            max_offset: None,
        };
        let read = log
            .read(offset, limits)
            .await
            .map_err(|error| error.to_string())?;
        if read.chunks.is_empty() {
            break;
        }
        for chunk in read.chunks {
            let bytes = match chunk {
                Chunk::Memory(bytes) => bytes,
                Chunk::File {
                    reader,
                    position,
                    len,
                } => reader
                    .read_at(position, usize::try_from(len).expect("small"))
                    .await
                    .map_err(|error| error.to_string())?,
            };
            let mut at = 0;
            while at < bytes.len() {
                let (header, size) = if validate {
                    batch::validate(&bytes[at..], usize::MAX)
                } else {
                    batch::check_header(&bytes[at..], usize::MAX)
                }
                .map_err(|error| format!("read returned a bad batch: {error}"))?;
                let base = header.base_offset();
                let segment = *segments
                    .iter()
                    .rev()
                    .find(|&&segment| segment <= base)
                    .ok_or("batch below the first segment")?;
                let position = match out.last() {
                    Some(last) if last.segment == segment => last.position + last.bytes.len(),
                    _ => 0,
                };
                if out.last().is_some_and(|last| last.next != base) {
                    return Err(format!("offsets not dense at {base}"));
                }
                out.push(StoredBatch {
                    segment,
                    position,
                    base,
                    next: header.next_offset(),
                    bytes: bytes.slice(at..(at + size).min(bytes.len())),
                });
                at += size;
            }
        }
        if read.next_offset <= offset {
            return Err(format!("read made no progress at {offset}"));
        }
        offset = read.next_offset;
    }
    Ok(out)
}

/// Runs one life of a log on a fresh executor (dropped, with the log's flusher, on return).
/// With in-memory storage every I/O completes at once, so a body still pending after every
/// spawned task has stalled, with nothing having woken it, is deadlocked: that panics
/// instead of hanging.
pub fn run_life<F: Future>(body: impl FnOnce(LocalSpawner) -> F) -> F::Output {
    struct Flag(AtomicBool);
    impl ArcWake for Flag {
        fn wake_by_ref(flag: &Arc<Self>) {
            flag.0.store(true, Ordering::SeqCst);
        }
    }
    let mut pool = LocalPool::new();
    let mut body = pin!(body(pool.spawner()));
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut context = Context::from_waker(&waker);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = body.as_mut().poll(&mut context) {
            return output;
        }
        pool.run_until_stalled();
        assert!(
            flag.0.load(Ordering::SeqCst),
            "deadlock: the log waits for something that never happens"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic pseudo-random inputs without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(bound).expect("fits")).expect("fits")
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
        }
    }

    fn valid_batch(rng: &mut Rng) -> Vec<u8> {
        let records = i32::try_from(1 + rng.below(6)).expect("small");
        let payload = rng.below(200);
        let timestamp = i64::try_from(rng.below(1 << 40)).expect("small");
        testing::batch(
            i64::try_from(rng.below(1000)).expect("small"),
            records,
            payload,
            timestamp,
        )
    }

    /// One to three valid batches, then a random kind of damage.
    fn mutated_record_set(rng: &mut Rng) -> Vec<u8> {
        let mut set = Vec::new();
        for _ in 0..=rng.below(3) {
            set.extend(valid_batch(rng));
        }
        match rng.below(9) {
            0 => {}
            1 => {
                let at = rng.below(set.len());
                set[at] ^= 1 << rng.below(8);
            }
            2 => set.truncate(rng.below(set.len())),
            3 => {
                let len = 1 + rng.below(100);
                let garbage = rng.bytes(len);
                set.extend(garbage);
            }
            4 => {
                // A header field replaced by an extreme value.
                let fields: [(usize, usize); 6] =
                    [(0, 8), (8, 4), (16, 1), (23, 4), (43, 8), (57, 4)];
                let (at, len) = fields[rng.below(fields.len())];
                let value: [u8; 8] = match rng.below(4) {
                    0 => [0xff; 8],
                    1 => [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    2 => [0x80, 0, 0, 0, 0, 0, 0, 0],
                    _ => [0; 8],
                };
                set[at..at + len].copy_from_slice(&value[..len]);
            }
            5 => {
                // Records replaced by varint garbage (continuation bits everywhere).
                let end = set.len().min(BATCH_HEADER_SIZE + 40);
                for byte in &mut set[BATCH_HEADER_SIZE..end] {
                    *byte = 0x80 | (rng.next().to_le_bytes()[0]);
                }
            }
            6 => {
                let at = rng.below(set.len());
                let end = (at + rng.below(64)).min(set.len());
                set[at..end].fill(0);
            }
            7 => set.insert(rng.below(set.len()), rng.bytes(1)[0]),
            _ => {
                let at = rng.below(set.len());
                set.remove(at);
            }
        }
        set
    }

    fn with_selector(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
        let mut input = vec![rng.bytes(1)[0]];
        input.extend_from_slice(bytes);
        input
    }

    #[test]
    fn batch_parser_takes_random_bytes() {
        let mut rng = Rng(0x5eed_0001);
        for _ in 0..3000 {
            let len = rng.below(300);
            batch_parser(&rng.bytes(len));
        }
    }

    #[test]
    fn batch_parser_takes_damaged_batches() {
        let mut rng = Rng(0x5eed_0002);
        let mut valid = 0;
        for _ in 0..4000 {
            let set = mutated_record_set(&mut rng);
            if batch::validate_all(&set, usize::MAX).is_ok() {
                valid += 1;
            }
            batch_parser(&with_selector(&mut rng, &set));
        }
        assert!(
            valid > 300,
            "the generator should keep some record sets valid: {valid}"
        );
    }

    #[test]
    fn batch_parser_takes_hand_made_inputs() {
        let batch = testing::batch(7, 3, 20, 1_000);
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0; 62],
            vec![0xff; 62],
            batch.clone(),
            [batch.clone(), batch.clone()].concat(),
            batch[..60].to_vec(),
            batch[..batch.len() - 1].to_vec(),
        ];
        let mut patched = |at: usize, value: &[u8]| {
            let mut copy = batch.clone();
            copy[at..at + value.len()].copy_from_slice(value);
            inputs.push(copy);
        };
        patched(8, &i32::MAX.to_be_bytes()); // batch_length huge
        patched(8, &(-1i32).to_be_bytes()); // batch_length negative
        patched(8, &48i32.to_be_bytes()); // batch_length one short of a header
        patched(16, &[1]); // magic v1
        patched(17, &[0xde, 0xad, 0xbe, 0xef]); // CRC
        patched(23, &i32::MAX.to_be_bytes()); // last_offset_delta
        patched(23, &(-1i32).to_be_bytes());
        patched(57, &i32::MAX.to_be_bytes()); // records_count
        patched(57, &(-1i32).to_be_bytes());
        patched(27, &i64::MAX.to_be_bytes()); // base_timestamp: record timestamps overflow
        patched(0, &i64::MAX.to_be_bytes()); // base_offset: record offsets overflow
        patched(BATCH_HEADER_SIZE, &[0xff; 10]); // record length varint runs over
        for input in inputs {
            for selector in [0u8, 1, 2, 3, 0x80, 0xff] {
                let mut data = vec![selector];
                data.extend_from_slice(&input);
                batch_parser(&data);
            }
        }
    }

    /// The active segment's file and batches for a shape, to aim damage at.
    fn layout(shape: u8, clean: bool) -> (Vec<u8>, Vec<StoredBatch>) {
        let storage = MemoryStorage::new();
        let (stored, active) = build_log(&storage, shape, clean);
        let file = storage.file_bytes(&log_path(active)).expect("active file");
        let in_active = stored
            .into_iter()
            .filter(|batch| batch.segment == active)
            .collect();
        (file, in_active)
    }

    fn u16_of(value: usize) -> u16 {
        u16::try_from(value).expect("small file")
    }

    fn damage(shape: u8, cut: Option<usize>, write_at: usize, bytes: Vec<u8>) -> Damage {
        Damage {
            shape,
            clean: false,
            cut: cut.map(u16_of),
            write_at: u16_of(write_at),
            bytes,
        }
    }

    /// Batches of the log outside its active segment.
    fn sealed_batches(shape: u8) -> usize {
        let storage = MemoryStorage::new();
        let (stored, active) = build_log(&storage, shape, false);
        stored.iter().filter(|batch| batch.segment < active).count()
    }

    #[test]
    fn encoding_round_trips() {
        let damage = Damage {
            shape: 3,
            clean: true,
            cut: Some(1234),
            write_at: 77,
            bytes: vec![1, 2, 3],
        };
        assert_eq!(Damage::decode(&damage.encode()), damage);
        assert_eq!(Damage::decode(&[]).cut, None);
    }

    #[test]
    fn segment_recovery_keeps_an_undamaged_log() {
        for shape in 0..4 {
            for clean in [false, true] {
                let untouched = Damage {
                    shape,
                    clean,
                    cut: None,
                    write_at: 0,
                    bytes: Vec::new(),
                };
                let kept = check_damage(&untouched);
                if !clean {
                    let (_, active) = layout(shape, clean);
                    assert_eq!(kept, Some(sealed_batches(shape) + active.len()));
                }
            }
        }
    }

    #[test]
    fn segment_recovery_cuts_a_torn_tail() {
        for shape in 0..4 {
            let (_, batches) = layout(shape, false);
            let last = batches.last().expect("a batch");
            let sealed = sealed_batches(shape);
            for into in [1, 12, 60, 61, last.bytes.len() / 2, last.bytes.len() - 1] {
                let cut = last.position + into;
                let kept = check_damage(&damage(shape, Some(cut), 0, Vec::new()));
                assert_eq!(kept, Some(sealed + batches.len() - 1), "cut at {cut}");
            }
            // Cut exactly at a batch boundary: the batches before it stay.
            for (index, batch) in batches.iter().enumerate() {
                let kept = check_damage(&damage(shape, Some(batch.position), 0, Vec::new()));
                assert_eq!(kept, Some(sealed + index));
            }
            // The same torn tails after a clean close must not panic either.
            let torn = Damage {
                clean: true,
                ..damage(shape, Some(last.position + 30), 0, Vec::new())
            };
            assert_eq!(check_damage(&torn), None);
        }
    }

    #[test]
    fn segment_recovery_cuts_a_garbage_tail() {
        let mut rng = Rng(0x5eed_0003);
        for shape in 0..4 {
            for clean in [false, true] {
                let (_, batches) = layout(shape, clean);
                let last = batches.last().expect("a batch");
                let end = last.position + last.bytes.len();
                let sealed = sealed_batches(shape);
                for _ in 0..20 {
                    let len = 1 + rng.below(300);
                    let garbage = Damage {
                        clean,
                        ..damage(shape, None, end + rng.below(3), rng.bytes(len))
                    };
                    let kept = check_damage(&garbage);
                    if !clean {
                        assert_eq!(kept, Some(sealed + batches.len()));
                    }
                }
                // A copy of the last batch after the end has the wrong base offset.
                let replay = Damage {
                    clean,
                    ..damage(shape, None, end, last.bytes.to_vec())
                };
                let kept = check_damage(&replay);
                if !clean {
                    assert_eq!(kept, Some(sealed + batches.len()));
                }
            }
        }
    }

    #[test]
    fn segment_recovery_survives_a_zeroed_page() {
        for shape in 0..4 {
            let (file, batches) = layout(shape, false);
            let sealed = sealed_batches(shape);
            for page in (0..file.len()).step_by(4096) {
                let zeros = vec![0; 4096.min(file.len() - page)];
                let kept = check_damage(&damage(shape, None, page, zeros));
                let before = batches
                    .iter()
                    .take_while(|batch| batch.position + batch.bytes.len() <= page)
                    .count();
                assert_eq!(kept, Some(sealed + before), "zeroed page at {page}");
            }
        }
    }

    #[test]
    fn segment_recovery_cuts_at_a_flipped_crc_byte() {
        for shape in 0..4 {
            let (file, batches) = layout(shape, false);
            let sealed = sealed_batches(shape);
            for (index, batch) in batches.iter().enumerate() {
                for at in [
                    batch::CRC_FIELD_OFFSET,
                    batch::CRC_FIELD_OFFSET + 3,
                    batch::CRC_COVERAGE_START,
                    batch.bytes.len() - 1,
                ] {
                    let position = batch.position + at;
                    let flipped = vec![file[position] ^ 0x01];
                    let kept = check_damage(&damage(shape, None, position, flipped));
                    assert_eq!(kept, Some(sealed + index), "flip at {position}");
                }
            }
        }
    }

    #[test]
    fn segment_recovery_takes_random_damage() {
        let mut rng = Rng(0x5eed_0004);
        for _ in 0..1500 {
            let len = match rng.below(4) {
                0 => 0,
                1 => 1 + rng.below(4),
                2 => 1 + rng.below(100),
                _ => 1 + rng.below(5000),
            };
            let mut data = rng.bytes(5);
            if rng.below(2) == 0 {
                data[1..3].copy_from_slice(&u16::MAX.to_be_bytes()); // no cut
            }
            data.extend(rng.bytes(len));
            segment_recovery(&data);
        }
    }

    #[test]
    fn segment_recovery_takes_random_flips_and_cuts_near_batches() {
        let mut rng = Rng(0x5eed_0005);
        let layouts: Vec<_> = (0..4).map(|shape| layout(shape, false)).collect();
        for _ in 0..1500 {
            let shape = u8::try_from(rng.below(4)).expect("small");
            let (file, batches) = &layouts[usize::from(shape)];
            let batch = &batches[rng.below(batches.len())];
            let position = batch.position + rng.below(batch.bytes.len());
            let cut = (rng.below(3) == 0).then(|| position + rng.below(100));
            let mut bytes = vec![file[position] ^ (1 << rng.below(8))];
            if rng.below(4) == 0 {
                let len = rng.below(200);
                bytes.extend(rng.bytes(len));
            }
            let damage = Damage {
                clean: rng.below(4) == 0,
                ..damage(shape, cut, position, bytes)
            };
            check_damage(&damage);
        }
    }
}
