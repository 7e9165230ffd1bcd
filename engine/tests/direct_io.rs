//! The engine on real files through glommio (io_uring, O_DIRECT, real fdatasync): many
//! concurrent appenders with group commit, rolls, uncached reads into memory (async) and
//! cached ones as file ranges with a file descriptor for sendfile, a clean restart without a scan, and recovery after the process
//! "dies" (log dropped without close) with a damaged tail written by another program; the
//! idempotent-producer snapshot through real files.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::BytesMut;
use glommio::LocalExecutorBuilder;
use sluice_engine::io::ReadFile;
use sluice_engine::io::glommio_storage::GlommioStorage;
use sluice_engine::{BatchCache, Chunk, Log, LogConfig, Offset, ReadLimits, testing};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        retention_ms: None,
        max_batch_bytes: 256 * 1024,
        ..LogConfig::default()
    }
}

async fn open(dir: &Path) -> Log<GlommioStorage> {
    let log = Log::open(GlommioStorage, dir, config(), BatchCache::new(4 << 20))
        .await
        .expect("open");
    glommio::spawn_local(log.clone().run_flusher()).detach();
    log
}

/// Drops the page cache of the directory's files (POSIX_FADV_DONTNEED); false where the
/// file system keeps everything in memory (tmpfs), so nothing can be uncached.
fn drop_page_cache(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let mut dropped = true;
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let file = std::fs::File::open(&path).expect("open");
        // `f_type`'s integer type differs between targets.
        #[allow(clippy::useless_conversion)]
        let is_tmpfs = |stat: &libc::statfs| i64::from(stat.f_type) == TMPFS_MAGIC;
        // SAFETY: fstatfs writes into a zeroed statfs owned here; the fd is open.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstatfs(file.as_raw_fd(), &raw mut stat) } == 0 && is_tmpfs(&stat) {
            dropped = false;
        }
        // SAFETY: fadvise on an open descriptor; no memory is involved.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
    dropped
}

/// Reads the whole log in 256 KiB reads, checking every batch; returns (batches, memory
/// chunks, file chunks).
async fn read_everything(log: &Log<GlommioStorage>) -> (usize, usize, usize) {
    let (mut batches, mut memory, mut files) = (0, 0, 0);
    let mut offset = Offset(0);
    while offset < log.offsets().log_end {
        let read = log
            .read(
                offset,
                ReadLimits {
                    max_bytes: 256 * 1024,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        for chunk in &read.chunks {
            let bytes = match chunk {
                Chunk::Memory(bytes) => {
                    memory += 1;
                    bytes.clone()
                }
                Chunk::File {
                    reader,
                    position,
                    len,
                } => {
                    files += 1;
                    assert!(
                        reader.raw_fd().is_some(),
                        "file ranges carry an fd for sendfile"
                    );
                    reader
                        .read_at(*position, *len as usize)
                        .await
                        .expect("read file")
                }
            };
            let mut at = 0;
            while at < bytes.len() {
                let (_, size) =
                    sluice_engine::batch::validate(&bytes[at..], usize::MAX).expect("valid batch");
                at += size;
                batches += 1;
            }
        }
        offset = read.next_offset;
    }
    (batches, memory, files)
}

fn sizes() -> impl Iterator<Item = usize> {
    (0..600).map(|i| [200, 1_000, 5_000, 70_000][i % 4] + i)
}

#[test]
fn real_files_round_trip_with_group_commit_and_crash_recovery() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = temp.path().join("topic-0");
    let dir_for_executor = dir.clone();
    let end = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let dir = dir_for_executor;
            let log = Rc::new(open(&dir).await);
            // Four concurrent producers; appends are ordered, durability is group-committed.
            let mut tasks = Vec::new();
            for producer in 0..4 {
                let log = log.clone();
                tasks.push(glommio::spawn_local(async move {
                    for size in sizes().skip(producer).step_by(4) {
                        let batch = BytesMut::from(&testing::batch_of_size(size, 1_000)[..]);
                        let info = log.append(batch).await.expect("append");
                        log.flushed(info.next_offset()).await.expect("durable");
                    }
                }));
            }
            for task in tasks {
                task.await;
            }
            let offsets = log.offsets();
            assert_eq!(offsets.durable_end, offsets.log_end);
            assert!(log.segment_bases().len() > 10, "1 MiB segments roll");
            log.close().await.expect("close");

            // Clean restart: no validation. Nothing is in the page cache (the data was
            // written with O_DIRECT, and is dropped again here to be sure): reads come as
            // memory read asynchronously, so no sendfile blocks the shard on the disk. Once
            // those reads have filled the page cache, the same reads come as file ranges
            // with an fd for sendfile.
            let log = open(&dir).await;
            assert!(log.recovery_report().clean_shutdown);
            assert_eq!(log.recovery_report().validated_bytes, 0);
            let droppable = drop_page_cache(&dir);
            let (batches, memory, _) = read_everything(&log).await;
            assert_eq!(batches, 600);
            if droppable {
                assert!(memory > 0, "uncached ranges are read into memory");
            }
            let (batches, memory, files) = read_everything(&log).await;
            assert_eq!(batches, 600);
            assert_eq!(memory, 0, "cached ranges go as file ranges");
            assert!(files > 0);
            // Append more, then "die": drop the log without close.
            for size in sizes().take(20) {
                let info = log
                    .append(BytesMut::from(&testing::batch_of_size(size, 2_000)[..]))
                    .await
                    .expect("append");
                log.flushed(info.next_offset()).await.expect("durable");
            }
            log.offsets().log_end
        })
        .expect("executor")
        .join()
        .expect("join");

    // Another program damages the active segment's tail: a torn half batch.
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    let active = segments.last().expect("segments").clone();
    let torn = testing::batch_of_size(3_000, 3_000);
    let mut file = OpenOptions::new()
        .write(true)
        .open(&active)
        .expect("open segment");
    let logical_end = {
        // The file was preallocated: find the logical end by scanning batch headers.
        let bytes = std::fs::read(&active).expect("read segment");
        let mut at = 0;
        while let Ok((_, size)) = sluice_engine::batch::validate(&bytes[at..], usize::MAX) {
            at += size;
        }
        at as u64
    };
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(logical_end)).expect("seek");
    file.write_all(&torn[..1_500]).expect("write torn batch");
    drop(file);

    let dir_for_executor = dir.clone();
    let recovered_end = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let log = open(&dir_for_executor).await;
            let report = log.recovery_report().clone();
            assert!(!report.clean_shutdown);
            assert!(report.cut_reason.is_some(), "{report:?}");
            let end = log.offsets().log_end;
            log.close().await.expect("close");
            end
        })
        .expect("executor")
        .join()
        .expect("join");
    assert_eq!(
        recovered_end, end,
        "every durable batch survives, the torn one is cut"
    );
    let size = std::fs::metadata(&active).expect("segment").len();
    assert_eq!(
        size, logical_end,
        "clean close cuts the preallocated file to its logical size"
    );
}

fn idempotent(producer: i64, seq: i32) -> BytesMut {
    BytesMut::from(&testing::idempotent_batch(0, 2, 1_000, 1_000, producer, 0, seq)[..])
}

#[test]
fn idempotent_state_survives_restarts_on_real_files() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = temp.path().join("topic-0");
    let dir_for_executor = dir.clone();
    let (at_close, at_death) = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let dir = dir_for_executor;
            let log = open(&dir).await;
            for i in 0..12 {
                let info = log.append(idempotent(i % 2, (i / 2) as i32 * 2)).await;
                log.flushed(info.expect("append").next_offset())
                    .await
                    .expect("durable");
            }
            log.close().await.expect("close");
            let at_close = log.offsets().log_end;
            let log = open(&dir).await;
            assert_eq!(log.recovery_report().producer_snapshot, Some(at_close));
            assert_eq!(log.recovery_report().producer_batches_replayed, 0);
            let retry = log.append(idempotent(1, 10)).await.expect("retry");
            assert!(retry.duplicate);
            assert_eq!(retry.next_offset(), at_close);
            // Three more, then "die" without close.
            for seq in [12, 14, 16] {
                let info = log.append(idempotent(0, seq)).await.expect("append");
                log.flushed(info.next_offset()).await.expect("durable");
            }
            (at_close, log.offsets().log_end)
        })
        .expect("executor")
        .join()
        .expect("join");
    assert!(dir.join("producers.snapshot").exists());

    let dir_for_executor = dir.clone();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let log = open(&dir_for_executor).await;
            let report = log.recovery_report().clone();
            assert_eq!(report.producer_snapshot, Some(at_close), "{report:?}");
            assert_eq!(report.producer_batches_replayed, 3, "{report:?}");
            assert_eq!(log.offsets().log_end, at_death);
            assert_eq!(
                log.producer_state(0).map(|entry| entry.last_seq()),
                Some(17)
            );
            let retry = log.append(idempotent(0, 16)).await.expect("retry");
            assert!(retry.duplicate);
            // Truncation drops producer 0's last three batches: seq 12 is next again.
            log.truncate(at_close).await.expect("truncate");
            let info = log.append(idempotent(0, 12)).await.expect("accepted again");
            assert!(!info.duplicate);
            log.close().await.expect("close");
        })
        .expect("executor")
        .join()
        .expect("join");
}
