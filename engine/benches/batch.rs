//! CPU cost of the per-batch work on the append path, independent of any I/O.
//!
//! * `batch.validate/<size>`: [`batch::validate`] — header checks plus CRC32C over the whole
//!   batch. Every produced batch is validated once on append, so this bounds how many bytes
//!   per second one core can accept; it should run at several GB/s (hardware CRC32C) so that
//!   a single shard is never CPU-bound before the disk is.
//! * `batch.assign/<type>/<size>`: [`batch::assign`], the in-place header rewrite. For
//!   `CreateTime` it touches only fields outside the CRC (constant, a few nanoseconds
//!   whatever the size); for `LogAppendTime` it must recompute the CRC, so it costs about
//!   as much as a second validation. Throughput is reported in bytes so the two can be
//!   compared with `validate` and with the raw disk bandwidth.
//!
//! Batches come from [`testing::batch_of_size`]: one uncompressed record filling the batch.
//! Run with `cargo bench -p sluice-engine --bench batch`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_engine::batch::{self, Stamp};
use sluice_engine::{Offset, TimestampMs, testing};

const TIMESTAMP: i64 = 1_700_000_000_000;

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s => format!("{}KiB", s >> 10),
    }
}

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch.validate");
    for size in [1 << 10, 16 << 10, 1 << 20] {
        let bytes = testing::batch_of_size(size, TIMESTAMP);
        assert_eq!(bytes.len(), size, "batch_of_size must hit the size exactly");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(label(size)),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    batch::validate(black_box(bytes), usize::MAX)
                        .map(|(_, total)| total)
                        .expect("valid batch")
                });
            },
        );
    }
    group.finish();
}

fn bench_assign(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch.assign");
    for (kind, log_append_time) in [
        ("CreateTime", None),
        ("LogAppendTime", Some(TimestampMs(TIMESTAMP + 5))),
    ] {
        for size in [1 << 10, 16 << 10] {
            let mut bytes = testing::batch_of_size(size, TIMESTAMP);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            let mut next = 0i64;
            group.bench_function(BenchmarkId::new(kind, label(size)), |b| {
                b.iter(|| {
                    next += 1;
                    let stamp = Stamp {
                        base_offset: Offset(next),
                        partition_leader_epoch: 3,
                        log_append_time,
                    };
                    batch::assign(black_box(&mut bytes[..]), stamp);
                });
            });
            // The rewrite must leave a valid batch (CRC intact or recomputed).
            batch::validate(&bytes, usize::MAX).expect("assign keeps the batch valid");
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench_validate, bench_assign
}
criterion_main!(benches);
