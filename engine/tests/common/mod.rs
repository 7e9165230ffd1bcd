//! Shared helpers for the engine's integration tests: a single-threaded executor that can
//! spawn the flusher, batch builders, and whole-log readers.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use sluice_engine::io::memory::MemoryStorage;
use sluice_engine::io::{ReadFile, Storage};
use sluice_engine::{BatchCache, Chunk, Log, LogConfig, Offset, ReadLimits, batch, testing};

/// Runs `body` on a fresh local executor (deterministic, no io_uring needed).
pub fn run<F: std::future::Future>(
    body: impl FnOnce(futures::executor::LocalSpawner) -> F,
) -> F::Output {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    pool.run_until(body(spawner))
}

/// Opens a log and spawns its flusher.
pub async fn open<S: Storage>(
    spawner: &futures::executor::LocalSpawner,
    storage: &S,
    dir: &Path,
    config: LogConfig,
) -> Log<S> {
    let log = Log::open(storage.clone(), dir, config, BatchCache::new(1 << 20))
        .await
        .expect("open log");
    spawner
        .spawn_local(log.clone().run_flusher())
        .expect("spawn flusher");
    log
}

pub fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

/// A batch of `records` records with `payload`-byte values.
pub fn batch(records: i32, payload: usize, timestamp: i64) -> BytesMut {
    BytesMut::from(&testing::batch(0, records, payload, timestamp)[..])
}

/// A small config that rolls often and indexes densely. Retention is off: test batches carry
/// timestamps from 1970, which any `retention.ms` would expire at once.
pub fn small_config() -> LogConfig {
    LogConfig {
        retention_ms: None,
        segment_bytes: 16 * 1024,
        index_interval_bytes: 512,
        write_buffer_bytes: 8192,
        unwritten_bytes_max: 64 * 1024,
        preallocate_bytes: 8192,
        ..LogConfig::default()
    }
}

/// Reads every batch from `from` to the end, returning `(base offset, next offset, bytes)`.
pub async fn read_all<S: Storage>(log: &Log<S>, from: Offset) -> Vec<(Offset, Offset, Bytes)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let result = log
            .read(
                offset,
                ReadLimits {
                    max_bytes: 7000,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        if result.chunks.is_empty() {
            break;
        }
        for chunk in result.chunks {
            let bytes = match chunk {
                Chunk::Memory(bytes) => bytes,
                Chunk::File {
                    reader,
                    position,
                    len,
                } => reader
                    .read_at(position, len as usize)
                    .await
                    .expect("read file"),
            };
            let mut position = 0;
            while position < bytes.len() {
                let (header, size) =
                    batch::validate(&bytes[position..], usize::MAX).expect("stored batch is valid");
                out.push((
                    header.base_offset(),
                    header.next_offset(),
                    bytes.slice(position..position + size),
                ));
                position += size;
            }
        }
        assert!(result.next_offset > offset, "reads make progress");
        offset = result.next_offset;
    }
    out
}

pub fn memory() -> MemoryStorage {
    MemoryStorage::new()
}
