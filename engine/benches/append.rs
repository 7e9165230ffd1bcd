//! CPU cost of one [`Log::append`] on the full engine write path, without a real disk.
//!
//! The log runs on the in-memory [`MemoryStorage`] with `FlushPolicy::Never` on a
//! single-threaded `futures` `LocalPool`, its flusher spawned as in production. One
//! measured append covers: the FIFO append turn, validation (CRC32C), the roll /
//! preallocation / backpressure checks, offset stamping, sparse-index bookkeeping, the copy
//! into the write buffer, the batch-cache insert, and — amortised — the flusher's share (the
//! "direct write", here a memcpy into the in-memory file) and cache eviction. Each timed run
//! ends with `flushed()` on the last offset, so no flusher work is left outside the timing.
//!
//! This is the engine's own overhead per append: comparing the 16 KiB figure (in bytes/s)
//! with the raw disk bandwidth (`sluice-bench disk`) tells whether one shard can keep a disk
//! busy, and the 1 KiB figure gives the per-batch fixed cost that dominates small batches.
//!
//! Batches are cloned from a template *before* the timed section (the clone is a memcpy the
//! broker would not do). To keep memory bounded, a fresh log on fresh in-memory storage is
//! used for every [`CHUNK_BYTES`] of appends; opening it and its first append (which
//! preallocates the whole chunk) are not timed. What remains specific to the in-memory
//! storage is its buffer allocation (`vec![0; write_buffer_bytes]` per write buffer) and
//! the memcpy standing in for the device write. glibc would serve each 1 MiB buffer with a
//! fresh `mmap` and give it back with `munmap`, so every appended page would also cost a page
//! fault and a zeroing (about 2/3 of the 16 KiB figure on a VM); production buffers come from
//! glommio's pre-registered pool instead, so `main` keeps glibc from unmapping (see
//! [`keep_freed_memory`]).
//!
//! Run with `cargo bench -p sluice-engine --bench append`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use sluice_engine::io::memory::MemoryStorage;
use sluice_engine::{BatchCache, FlushPolicy, Log, LogConfig, testing};

/// Bytes appended to one log before it is dropped and a fresh one opened.
const CHUNK_BYTES: usize = 64 << 20;
/// Batch cache budget (the broker's is per shard and larger; the size barely matters here
/// because batches are evicted as soon as they are written).
const CACHE_BYTES: usize = 8 << 20;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 30,
        max_batch_bytes: 2 << 20,
        flush_policy: FlushPolicy::Never,
        // The whole chunk is "preallocated" by the first, untimed append: on memory storage
        // preallocation is a `Vec` resize that zero-fills (page-faults) the whole file image,
        // which would otherwise dominate the measurement and say nothing about the engine.
        preallocate_bytes: CHUNK_BYTES as u64 + (4 << 20),
        ..LogConfig::default()
    }
}

/// Opens a fresh log, appends one untimed warm-up batch, then appends `count` clones of
/// `template` and returns the time of those appends plus the final wait until everything
/// is written.
fn timed_appends(template: &[u8], count: usize) -> Duration {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let storage = MemoryStorage::new();
    let log = pool
        .run_until(Log::open(
            storage,
            Path::new("/bench/topic-0"),
            config(),
            BatchCache::new(CACHE_BYTES),
        ))
        .expect("open log on memory storage");
    spawner
        .spawn_local(log.clone().run_flusher())
        .expect("spawn flusher");
    let batches: Vec<BytesMut> = (0..count).map(|_| BytesMut::from(template)).collect();
    pool.run_until(async {
        let warm_up = log.append(BytesMut::from(template)).await.expect("append");
        log.flushed(warm_up.next_offset()).await.expect("flushed");
        let start = Instant::now();
        let mut next = None;
        for batch in batches {
            let info = log.append(batch).await.expect("append");
            next = Some(info.next_offset());
        }
        if let Some(next) = next {
            log.flushed(next).await.expect("flushed");
        }
        start.elapsed()
    })
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append.memory.never");
    for (name, size) in [("1KiB", 1usize << 10), ("16KiB", 16 << 10)] {
        let template = testing::batch_of_size(size, 1_700_000_000_000);
        let per_log = (CHUNK_BYTES / size).max(1);
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &template, |b, t| {
            b.iter_custom(|iters| {
                let mut left = usize::try_from(iters).expect("iteration count fits usize");
                let mut total = Duration::ZERO;
                while left > 0 {
                    let count = left.min(per_log);
                    total += timed_appends(t, count);
                    left -= count;
                }
                total
            });
        });
    }
    group.finish();
}

/// Makes glibc serve large allocations from the heap and keep freed memory, so the in-memory
/// storage's 1 MiB write buffers are recycled instead of mmapped, faulted in and unmapped.
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tunables; it is called before any other thread
    // exists, and either value is valid for these parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench_append
}

// `criterion_main!` with the allocator tuning first.
fn main() {
    keep_freed_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
