//! Cost of the sparse segment indexes at their largest realistic size.
//!
//! A 1 GiB segment indexed every 4 KiB (`index.interval.bytes` default) has 262,144 offset
//! entries (2 MiB on disk) and as many time entries. Measured:
//!
//! * `index.offset.lookup` / `index.offset.lookup_position`: one binary search of the
//!   in-memory offset index, as every fetch that misses the batch cache does (by offset) and
//!   as truncation does (by position). Targets are pseudo-random so the branch predictor and
//!   caches see the access pattern of many consumers at different offsets.
//! * `index.time.last_below`: one binary search of the time index (ListOffsets by time).
//! * `index.offset.decode` / `index.time.decode`: decoding and validating a whole index file,
//!   which happens once per segment when a log is opened — it bounds how long opening a
//!   partition with many full segments takes.
//!
//! Run with `cargo bench -p sluice-engine --bench index`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_engine::TimestampMs;
use sluice_engine::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};

/// Entries of a 1 GiB segment at a 4 KiB index interval.
const ENTRIES: u32 = 262_144;
/// Records per index interval (e.g. ten ~400-byte records per 4 KiB).
const OFFSETS_PER_ENTRY: u32 = 10;
const SEGMENT_BYTES: u64 = 1 << 30;
const TIMESTAMP: i64 = 1_700_000_000_000;
/// Number of distinct lookup targets cycled through (a power of two).
const TARGETS: usize = 4096;

fn offset_index() -> OffsetIndex {
    let mut index = OffsetIndex::default();
    for i in 0..ENTRIES {
        index.push(OffsetEntry {
            relative_offset: i * OFFSETS_PER_ENTRY,
            // Batches do not end exactly on the interval: jitter the positions a little.
            position: i * 4096 + (i % 13) * 64,
        });
    }
    index
}

fn time_index() -> TimeIndex {
    let mut index = TimeIndex::default();
    for i in 0..ENTRIES {
        index.maybe_push(TimeEntry {
            timestamp: TimestampMs(TIMESTAMP + i64::from(i) * 7),
            relative_offset: i * OFFSETS_PER_ENTRY,
        });
    }
    index
}

/// `TARGETS` pseudo-random values in `0..bound` (xorshift64, fixed seed).
fn targets(bound: u64, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..TARGETS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % bound
        })
        .collect()
}

fn bench_lookups(c: &mut Criterion) {
    let offsets = offset_index();
    let times = time_index();
    assert_eq!(offsets.len(), ENTRIES as usize);
    assert_eq!(times.len(), ENTRIES as usize);

    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(1));

    let by_offset: Vec<u32> = targets(u64::from(ENTRIES * OFFSETS_PER_ENTRY), 1)
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let mut i = 0usize;
    group.bench_function("offset.lookup", |b| {
        b.iter(|| {
            i = (i + 1) & (TARGETS - 1);
            offsets.lookup(black_box(by_offset[i]))
        });
    });

    let by_position: Vec<u32> = targets(u64::from(ENTRIES) * 4096, 2)
        .into_iter()
        .map(|t| t as u32)
        .collect();
    group.bench_function("offset.lookup_position", |b| {
        b.iter(|| {
            i = (i + 1) & (TARGETS - 1);
            offsets.lookup_position(black_box(by_position[i]))
        });
    });

    let by_time: Vec<TimestampMs> = targets(u64::from(ENTRIES) * 7, 3)
        .into_iter()
        .map(|t| TimestampMs(TIMESTAMP + t as i64))
        .collect();
    group.bench_function("time.last_below", |b| {
        b.iter(|| {
            i = (i + 1) & (TARGETS - 1);
            times.last_below(black_box(by_time[i]))
        });
    });
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let offset_bytes = offset_index().encode();
    let time_bytes = time_index().encode();
    let relative_end = u64::from(ENTRIES * OFFSETS_PER_ENTRY);

    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Bytes(offset_bytes.len() as u64));
    group.bench_function("offset.decode", |b| {
        b.iter(|| {
            let index = OffsetIndex::decode(black_box(&offset_bytes), SEGMENT_BYTES);
            assert_eq!(index.len(), ENTRIES as usize);
            index
        });
    });
    group.throughput(Throughput::Bytes(time_bytes.len() as u64));
    group.bench_function("time.decode", |b| {
        b.iter(|| {
            let index = TimeIndex::decode(black_box(&time_bytes), relative_end);
            assert_eq!(index.len(), ENTRIES as usize);
            index
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench_lookups, bench_decode
}
criterion_main!(benches);
