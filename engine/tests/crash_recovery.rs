//! Crash recovery: whatever step of a write the machine dies at, the reopened log holds every
//! batch that was acknowledged durable, nothing that is not a prefix of what was appended,
//! and accepts appends again. Also: torn tail pages, half-written batches, garbage and zeroed
//! pages after the end, missing and stale indexes — each cut or rebuilt, never a panic.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use sluice_engine::checkpoint::Checkpoint;
use sluice_engine::io::memory::{CrashMode, MemoryStorage};
use sluice_engine::segment::SegmentPaths;
use sluice_engine::{FlushPolicy, LogConfig, Offset, TimestampMs, testing};

/// The batches the scenario appends, with the offsets the log must give them.
fn scenario_batches() -> Vec<Vec<u8>> {
    let mut base = 0;
    (0..14)
        .map(|i: i64| {
            let records = 1 + (i % 4) as i32;
            let payload = ((i * 700) % 3000 + 100) as usize;
            let batch = testing::batch(base, records, payload, 1_000 + i);
            base += i64::from(records);
            batch
        })
        .collect()
}

/// Appends the scenario, waiting for durability every third batch; returns the highest
/// end offset acknowledged durable. Errors (power loss) end the scenario early.
async fn run_scenario(
    spawner: &futures::executor::LocalSpawner,
    storage: &MemoryStorage,
    acknowledged: Rc<Cell<Offset>>,
) {
    let Ok(log) = sluice_engine::Log::open(
        storage.clone(),
        &dir(),
        small_config(),
        sluice_engine::BatchCache::new(1 << 16),
    )
    .await
    else {
        return;
    };
    futures::task::LocalSpawnExt::spawn_local(spawner, log.clone().run_flusher()).expect("spawn");
    for (i, bytes) in scenario_batches().into_iter().enumerate() {
        let Ok(info) = log.append(bytes::BytesMut::from(&bytes[..])).await else {
            // Regression: a roll that failed after sealing left no active segment, and the
            // next append panicked. It must fail cleanly, and so must close.
            assert!(log.append(batch(1, 10, 1)).await.is_err());
            let _ = log.close().await;
            return;
        };
        if i % 3 == 2 {
            if log.flushed(info.next_offset()).await.is_err() {
                return;
            }
            acknowledged.set(info.next_offset());
        }
    }
    if log.tick().await.is_err() {
        return;
    }
    if log.close().await.is_ok() {
        acknowledged.set(log.offsets().log_end);
    }
}

/// Reopens after a crash and checks the durability and prefix contracts.
fn verify_after_crash(storage: &MemoryStorage, acknowledged: Offset, context: &str) {
    let expected = scenario_batches();
    run(|spawner| async move {
        let log = open(&spawner, storage, &dir(), small_config()).await;
        let stored = read_all(&log, Offset(0)).await;
        assert!(
            stored.len() <= expected.len(),
            "{context}: more batches than appended"
        );
        for (index, (_, _, bytes)) in stored.iter().enumerate() {
            assert_eq!(
                &bytes[..],
                &expected[index][..],
                "{context}: batch {index} differs"
            );
        }
        let log_end = log.offsets().log_end;
        assert!(
            log_end >= acknowledged,
            "{context}: acknowledged {acknowledged} but log ends at {log_end}"
        );
        assert_eq!(
            stored.last().map_or(Offset(0), |batch| batch.1),
            log_end,
            "{context}: log end is the end of the prefix"
        );
        // The log takes appends again and they survive a clean restart.
        let info = log
            .append(batch(2, 50, 5_000))
            .await
            .expect("append after recovery");
        assert_eq!(info.base_offset, log_end, "{context}");
        log.flushed(info.next_offset())
            .await
            .expect("durable after recovery");
        log.close().await.expect("close after recovery");
        let log = open(&spawner, storage, &dir(), small_config()).await;
        assert_eq!(
            log.offsets().log_end,
            info.next_offset(),
            "{context}: append after recovery survives"
        );
    });
}

#[test]
fn power_loss_at_every_storage_operation_keeps_acknowledged_batches() {
    // Count the operations of a full, uninterrupted run.
    let storage = memory();
    let total = Rc::new(Cell::new(Offset(0)));
    run(|spawner| {
        let storage = storage.clone();
        let total = total.clone();
        async move { run_scenario(&spawner, &storage, total).await }
    });
    let operations = storage.operations();
    assert!(
        operations > 20,
        "scenario too small to be interesting: {operations} operations"
    );
    for cut in 0..=operations {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn(1_500),
        ] {
            let storage = memory();
            let acknowledged = Rc::new(Cell::new(Offset(0)));
            storage.power_off_after(cut);
            run(|spawner| {
                let storage = storage.clone();
                let acknowledged = acknowledged.clone();
                async move { run_scenario(&spawner, &storage, acknowledged).await }
            });
            storage.crash(mode);
            storage.restore_power();
            verify_after_crash(
                &storage,
                acknowledged.get(),
                &format!("power lost after {cut} operations, {mode:?}"),
            );
        }
    }
}

/// Appends `count` batches with fsync off and returns the storage (no close: a crash).
fn unsynced_log(count: i64) -> (MemoryStorage, Offset) {
    let storage = memory();
    let config = LogConfig {
        flush_policy: FlushPolicy::Never,
        ..small_config()
    };
    let durable = run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config).await;
            for i in 0..count {
                log.append(batch(3, 400, 1_000 + i)).await.expect("append");
            }
            let end = log.offsets().log_end;
            log.flushed(end).await.expect("written");
            log.offsets().durable_end
        }
    });
    (storage, durable)
}

#[test]
fn torn_tail_at_every_byte_is_cut_to_a_valid_prefix() {
    for keep in (0..6_000).step_by(97) {
        let (storage, durable) = unsynced_log(8);
        storage.crash(CrashMode::Torn(keep));
        run(|spawner| async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            let batches = read_all(&log, Offset(0)).await;
            assert!(log.offsets().log_end >= durable, "keep {keep}");
            assert_eq!(
                batches
                    .iter()
                    .map(|batch| batch.1)
                    .last()
                    .unwrap_or(Offset(0)),
                log.offsets().log_end
            );
            for (index, (base, _, _)) in batches.iter().enumerate() {
                assert_eq!(
                    *base,
                    Offset(index as i64 * 3),
                    "keep {keep}: offsets dense"
                );
            }
        });
    }
}

/// Writes a cleanly closed log of `count` batches and returns its storage.
fn closed_log(count: i64) -> MemoryStorage {
    let storage = memory();
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            for i in 0..count {
                log.append(batch(2, 500, 1_000 + i * 10))
                    .await
                    .expect("append");
            }
            log.close().await.expect("close");
        }
    });
    storage
}

fn active_segment(storage: &MemoryStorage) -> SegmentPaths {
    let last = storage
        .paths()
        .into_iter()
        .filter_map(|path| {
            sluice_engine::segment::parse_log_file_name(&path.file_name()?.to_string_lossy())
        })
        .max()
        .expect("a segment");
    SegmentPaths::new(&dir(), last)
}

fn reopen_and_count(storage: &MemoryStorage) -> (Offset, usize, sluice_engine::RecoveryReport) {
    run(|spawner| async move {
        let log = open(&spawner, storage, &dir(), small_config()).await;
        let batches = read_all(&log, Offset(0)).await;
        (
            log.offsets().log_end,
            batches.len(),
            log.recovery_report().clone(),
        )
    })
}

#[test]
fn half_written_last_batch_is_cut_even_after_a_clean_shutdown() {
    let storage = closed_log(20);
    let (end_before, batches_before, _) = reopen_and_count(&storage);
    // reopen_and_count did not close: the next open is a crash recovery; damage the file.
    let storage = closed_log(20);
    let paths = active_segment(&storage);
    let mut bytes = storage.file_bytes(&paths.log).expect("segment");
    bytes.truncate(bytes.len() - 100);
    storage.set_file_bytes(&paths.log, bytes);
    let (end, batches, report) = reopen_and_count(&storage);
    assert_eq!(batches, batches_before - 1, "{report:?}");
    assert_eq!(end, end_before.plus(-2));
    assert!(report.cut_reason.is_some(), "{report:?}");
}

#[test]
fn garbage_and_zeroed_tails_are_cut() {
    for garbage in [
        vec![0xAB; 3000],
        vec![0; 5000],
        testing::batch(999, 1, 10, 0),
    ] {
        let storage = closed_log(20);
        let paths = active_segment(&storage);
        let mut bytes = storage.file_bytes(&paths.log).expect("segment");
        bytes.extend_from_slice(&garbage);
        storage.set_file_bytes(&paths.log, bytes);
        let (end, batches, report) = reopen_and_count(&storage);
        assert_eq!(end, Offset(40), "{report:?}");
        assert_eq!(batches, 20);
    }
}

#[test]
fn corrupt_batch_after_the_recovery_point_cuts_there_and_drops_later_segments() {
    let storage = memory();
    let config = LogConfig {
        flush_policy: FlushPolicy::Never,
        ..small_config()
    };
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config).await;
            for i in 0..60 {
                log.append(batch(2, 500, 1_000 + i)).await.expect("append");
            }
            let end = log.offsets().log_end;
            log.flushed(end).await.expect("written");
            assert!(log.segment_bases().len() >= 4);
        }
    });
    storage.crash(CrashMode::KeepUnsynced);
    // An old checkpoint (recovery point 0) makes every segment subject to validation.
    let stale = Checkpoint {
        recovery_point: Offset(0),
        log_start: Offset(0),
        log_end: Offset(0),
        clean: false,
    };
    storage.set_file_bytes(&dir().join("checkpoint"), stale.encode());
    let mut bases: Vec<Offset> = storage
        .paths()
        .iter()
        .filter_map(|path| {
            sluice_engine::segment::parse_log_file_name(&path.file_name()?.to_string_lossy())
        })
        .collect();
    bases.sort();
    let damaged = SegmentPaths::new(&dir(), bases[1]);
    let mut bytes = storage.file_bytes(&damaged.log).expect("segment");
    let second_batch = sluice_engine::batch::header(&bytes)
        .expect("header")
        .total_size();
    bytes[second_batch + 70] ^= 0xFF; // inside the second batch's records: a CRC mismatch
    storage.set_file_bytes(&damaged.log, bytes);
    let (end, batches, report) = reopen_and_count(&storage);
    assert_eq!(
        end,
        bases[1].plus(2),
        "cut after the first batch of segment 2: {report:?}"
    );
    assert_eq!(batches as i64, end.0 / 2);
    assert_eq!(report.removed_segments, bases.len() - 2, "{report:?}");
    assert!(
        report
            .cut_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("CRC")),
        "{report:?}"
    );
    for base in &bases[2..] {
        assert!(
            storage
                .file_bytes(&SegmentPaths::new(&dir(), *base).log)
                .is_none(),
            "segment {base} removed"
        );
    }
}

#[test]
fn missing_and_stale_indexes_are_rebuilt() {
    for damage in ["delete", "halve", "garbage"] {
        let storage = closed_log(60);
        for path in storage.paths() {
            let name = path.to_string_lossy().into_owned();
            if name.ends_with(".index") || name.ends_with(".timeindex") {
                match damage {
                    "delete" => storage.delete_file(&path),
                    "halve" => {
                        let bytes = storage.file_bytes(&path).expect("index");
                        storage.set_file_bytes(&path, bytes[..bytes.len() / 2].to_vec());
                    }
                    _ => storage.set_file_bytes(&path, vec![0x5A; 64]),
                }
            }
        }
        run(|spawner| async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            assert_eq!(log.offsets().log_end, Offset(120), "{damage}");
            // Every offset is found, from every starting point.
            for offset in 0..120 {
                let batches = read_all(&log, Offset(offset)).await;
                assert_eq!(
                    batches.first().map(|b| b.0),
                    Some(Offset(offset - offset % 2)),
                    "{damage}: read at {offset}"
                );
            }
            // Time lookups work with rebuilt time indexes (batch i has timestamps 1000+10i, +1).
            for i in 0..60 {
                let found = log
                    .offset_for_timestamp(TimestampMs(1_000 + i * 10 + 1))
                    .await
                    .expect("lookup");
                assert_eq!(
                    found,
                    Some((Offset(i * 2 + 1), TimestampMs(1_000 + i * 10 + 1))),
                    "{damage}: batch {i}"
                );
            }
        });
    }
}
