//! Idempotent producers at the log level: duplicates answered with the original offsets,
//! refused sequences and epochs storing nothing, and the producer state surviving a clean
//! restart, crashes (with, without and with a corrupt snapshot, and at every storage
//! operation), truncation, expiry and the producer limit.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use sluice_engine::io::memory::{CrashMode, MemoryStorage};
use sluice_engine::producers::{ProducerStates, SNAPSHOT_FILE_NAME};
use sluice_engine::{
    AppendError, AppendInfo, LogConfig, Offset, ProducerEntry, TimestampType, batch, testing,
};

/// Producer timestamps near the memory storage's clock, so nothing expires by accident.
const NOW: i64 = 1_700_000_000_000;

/// A batch of `records` records from producer `id` at `epoch`, sequences from `seq`.
fn idem(records: i32, id: i64, epoch: i16, seq: i32) -> BytesMut {
    idem_sized(records, 300, id, epoch, seq)
}

/// [`idem`] with `payload` bytes per record.
fn idem_sized(records: i32, payload: usize, id: i64, epoch: i16, seq: i32) -> BytesMut {
    BytesMut::from(&testing::idempotent_batch(0, records, payload, NOW, id, epoch, seq)[..])
}

fn snapshot_path() -> std::path::PathBuf {
    dir().join(SNAPSHOT_FILE_NAME)
}

/// The offset the snapshot file covers, if it is valid.
fn snapshot_offset(storage: &MemoryStorage) -> Option<Offset> {
    let bytes = storage.file_bytes(&snapshot_path())?;
    ProducerStates::decode(&bytes, usize::MAX).map(|(offset, _)| offset)
}

/// The producer state a log holding exactly `batches` must have (the table's own `record`
/// folded over the stored headers: this checks persistence and replay, not the rules).
fn expected_states(batches: &[(Offset, Offset, bytes::Bytes)]) -> ProducerStates {
    let mut states = ProducerStates::new(usize::MAX);
    for (_, _, bytes) in batches {
        states.record(batch::header(bytes).expect("header"));
    }
    states
}

fn producer_ids(batches: &[(Offset, Offset, bytes::Bytes)]) -> BTreeSet<i64> {
    batches
        .iter()
        .map(|(_, _, bytes)| batch::header(bytes).expect("header").producer_id.get())
        .filter(|&id| id >= 0)
        .collect()
}

async fn assert_state_matches_log<S: sluice_engine::io::Storage>(
    log: &sluice_engine::Log<S>,
    context: &str,
) {
    let batches = read_all(log, Offset(0)).await;
    let expected = expected_states(&batches);
    for id in producer_ids(&batches) {
        assert_eq!(
            log.producer_state(id),
            expected.get(id).copied(),
            "{context}: producer {id}"
        );
    }
    assert_eq!(log.producer_count(), expected.len(), "{context}");
}

fn out_of_order(result: Result<AppendInfo, AppendError>) -> (i64, i32, i32) {
    match result {
        Err(AppendError::OutOfOrderSequence {
            producer_id,
            expected,
            got,
        }) => (producer_id, expected, got),
        other => panic!("expected OutOfOrderSequence, got {other:?}"),
    }
}

fn fenced(result: Result<AppendInfo, AppendError>) -> (i64, i16, i16) {
    match result {
        Err(AppendError::InvalidProducerEpoch {
            producer_id,
            current,
            got,
        }) => (producer_id, current, got),
        other => panic!("expected InvalidProducerEpoch, got {other:?}"),
    }
}

#[test]
fn a_retried_batch_answers_its_original_offsets_and_stores_nothing() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        log.append(batch(2, 10, NOW)).await.expect("plain");
        let first = log.append(idem(3, 1, 0, 0)).await.expect("first");
        let second = log.append(idem(2, 1, 0, 3)).await.expect("second");
        assert_eq!(
            (first.base_offset, first.last_offset),
            (Offset(2), Offset(4))
        );
        assert!(!first.duplicate && !second.duplicate);
        let end = log.offsets().log_end;
        for (retry, original) in [(idem(3, 1, 0, 0), first), (idem(2, 1, 0, 3), second)] {
            let info = log.append(retry).await.expect("retry");
            assert!(info.duplicate, "{info:?}");
            assert_eq!(
                (info.base_offset, info.last_offset, info.log_append_time),
                (original.base_offset, original.last_offset, None)
            );
            log.flushed(info.next_offset())
                .await
                .expect("the original is durable");
        }
        assert_eq!(log.offsets().log_end, end, "nothing appended");
        assert_eq!(read_all(&log, Offset(0)).await.len(), 3);
        // A two-batch retry of both is one duplicate covering both.
        let mut both = idem(3, 1, 0, 0);
        both.extend_from_slice(&idem(2, 1, 0, 3));
        let info = log.append(both).await.expect("retry of both");
        assert!(info.duplicate);
        assert_eq!((info.base_offset, info.last_offset), (Offset(2), Offset(6)));
        // The producer goes on where it was.
        let next = log.append(idem(1, 1, 0, 5)).await.expect("next");
        assert_eq!(next.base_offset, end);
    });
}

#[test]
fn a_duplicate_on_a_log_append_time_topic_answers_the_original_append_time() {
    let storage = memory();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..small_config()
    };
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config).await;
            let first = log.append(idem(2, 9, 0, 0)).await.expect("first");
            let stamped = first.log_append_time.expect("append time");
            storage.advance_ms(5_000);
            let retry = log.append(idem(2, 9, 0, 0)).await.expect("retry");
            assert!(retry.duplicate);
            assert_eq!(retry.log_append_time, Some(stamped));
            assert_eq!(retry.base_offset, first.base_offset);
        }
    });
}

#[test]
fn gaps_and_fenced_epochs_are_refused_and_store_nothing() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        log.append(idem(2, 1, 3, 0)).await.expect("first");
        let before = log.offsets().log_end;
        let refusals = [
            (idem(1, 1, 3, 5), "gap"),
            (idem(1, 1, 3, 1), "overlap"),
            (idem(1, 1, 4, 2), "new epoch not at 0"),
        ];
        for (refused, what) in refusals {
            let (id, expected, got) = out_of_order(log.append(refused).await);
            assert_eq!(id, 1, "{what}");
            assert_eq!(
                (expected, got),
                match what {
                    "gap" => (2, 5),
                    "overlap" => (2, 1),
                    _ => (0, 2),
                },
                "{what}"
            );
        }
        assert_eq!(fenced(log.append(idem(1, 1, 2, 2)).await), (1, 3, 2));
        let error = log.append(idem(1, 1, 2, 2)).await.expect_err("fenced");
        assert!(error.to_string().contains("epoch 3"), "{error}");
        // A record set whose second batch is out of order stores nothing of the set.
        let mut set = idem(1, 1, 3, 2);
        set.extend_from_slice(&idem(1, 1, 3, 9));
        assert_eq!(out_of_order(log.append(set).await), (1, 3, 9));
        let error = log
            .append({
                let mut set = idem(1, 1, 3, 2);
                set.extend_from_slice(&idem(1, 1, 3, 9));
                set
            })
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("expected 3, got 9"), "{error}");
        assert_eq!(log.offsets().log_end, before, "nothing stored");
        assert_eq!(read_all(&log, Offset(0)).await.len(), 1);
        // The same set in order is fine, and so is a proper epoch bump.
        let mut set = idem(1, 1, 3, 2);
        set.extend_from_slice(&idem(2, 1, 3, 3));
        log.append(set).await.expect("in order");
        log.append(idem(1, 1, 4, 0)).await.expect("bump");
        assert_eq!(log.producer_state(1).map(|entry| entry.epoch()), Some(4));
        // A producer nobody knows may start anywhere.
        log.append(idem(1, 2, 7, 1_000)).await.expect("unknown");
    });
}

/// Three producers, 30 batches with plain ones in between, over several segments.
async fn produce<S: sluice_engine::io::Storage>(
    log: &sluice_engine::Log<S>,
    next_seq: &mut [i32; 3],
    batches: usize,
) -> Vec<(BytesMut, AppendInfo)> {
    let mut sent = Vec::new();
    for i in 0..batches {
        let id = (i % 3) as i64;
        let records = 1 + (i % 4) as i32;
        let bytes = idem(records, id, 0, next_seq[id as usize]);
        let info = log.append(bytes.clone()).await.expect("append");
        next_seq[id as usize] += records;
        sent.push((bytes, info));
        if i % 5 == 0 {
            log.append(batch(1, 700, NOW)).await.expect("plain");
        }
    }
    sent
}

#[test]
fn state_survives_a_clean_restart_without_a_replay() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let mut next_seq = [0; 3];
        let sent = produce(&log, &mut next_seq, 30).await;
        assert!(log.segment_bases().len() > 1, "spans segments");
        let before: Vec<Option<ProducerEntry>> = (0..3).map(|id| log.producer_state(id)).collect();
        log.close().await.expect("close");
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let report = log.recovery_report();
        assert_eq!(report.producer_snapshot, Some(log.offsets().log_end));
        assert_eq!(report.producer_batches_replayed, 0);
        let after: Vec<Option<ProducerEntry>> = (0..3).map(|id| log.producer_state(id)).collect();
        assert_eq!(after, before);
        // The last five batches of each producer are still recognized.
        for (bytes, original) in sent.iter().rev().take(15) {
            let info = log.append(bytes.clone()).await.expect("retry");
            assert!(info.duplicate);
            assert_eq!(info.base_offset, original.base_offset);
        }
        for (id, &seq) in next_seq.iter().enumerate() {
            log.append(idem(1, id as i64, 0, seq + 1))
                .await
                .expect_err("gap");
            log.append(idem(1, id as i64, 0, seq)).await.expect("next");
        }
    });
}

#[derive(Debug, Clone, Copy)]
enum SnapshotDamage {
    None,
    Deleted,
    Corrupt,
}

#[test]
fn state_survives_a_crash_with_without_and_with_a_corrupt_snapshot() {
    for damage in [
        SnapshotDamage::None,
        SnapshotDamage::Deleted,
        SnapshotDamage::Corrupt,
    ] {
        let storage = memory();
        let next_seq = Rc::new(Cell::new([0; 3]));
        let before = run(|spawner| {
            let storage = storage.clone();
            let next_seq = next_seq.clone();
            async move {
                let mut seqs = next_seq.get();
                let log = open(&spawner, &storage, &dir(), small_config()).await;
                produce(&log, &mut seqs, 20).await;
                log.close().await.expect("close");
                let log = open(&spawner, &storage, &dir(), small_config()).await;
                produce(&log, &mut seqs, 20).await;
                next_seq.set(seqs);
                log.flushed(log.offsets().log_end).await.expect("durable");
                let before: Vec<_> = (0..3).map(|id| log.producer_state(id)).collect();
                // An append the crash loses: the flusher never runs before it.
                let seq = next_seq.get()[0];
                log.append(idem(1, 0, 0, seq)).await.expect("append");
                assert_ne!(log.producer_state(0), before[0]);
                before
            }
        });
        storage.crash(CrashMode::LoseUnsynced);
        let snapshot_at = snapshot_offset(&storage).expect("rolls wrote a snapshot");
        match damage {
            SnapshotDamage::None => {}
            SnapshotDamage::Deleted => storage.delete_file(&snapshot_path()),
            SnapshotDamage::Corrupt => {
                let mut bytes = storage.file_bytes(&snapshot_path()).expect("snapshot");
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                storage.set_file_bytes(&snapshot_path(), bytes);
            }
        }
        run(|spawner| {
            let storage = storage.clone();
            let next_seq = next_seq.clone();
            async move {
                let log = open(&spawner, &storage, &dir(), small_config()).await;
                let report = log.recovery_report().clone();
                let batches = read_all(&log, Offset(0)).await;
                match damage {
                    SnapshotDamage::None => {
                        assert_eq!(report.producer_snapshot, Some(snapshot_at), "{report:?}");
                        let after = batches.iter().filter(|b| b.0 >= snapshot_at).count();
                        assert_eq!(report.producer_batches_replayed, after as u64);
                    }
                    SnapshotDamage::Deleted | SnapshotDamage::Corrupt => {
                        assert_eq!(report.producer_snapshot, None, "{damage:?}");
                        assert_eq!(report.producer_batches_replayed, batches.len() as u64);
                    }
                }
                let after: Vec<_> = (0..3).map(|id| log.producer_state(id)).collect();
                assert_eq!(after, before, "{damage:?}");
                assert_state_matches_log(&log, &format!("{damage:?}")).await;
                // A fresh snapshot at the log end was written by the open.
                assert_eq!(snapshot_offset(&storage), Some(log.offsets().log_end));
                let next_seq = next_seq.get();
                for (id, seq) in next_seq.into_iter().enumerate() {
                    log.append(idem(1, id as i64, 0, seq))
                        .await
                        .expect("continues");
                }
            }
        });
    }
}

/// Producers 0-2 in turn with growing sequences and plain batches in between, over a few
/// segments (each roll writes a snapshot); a durability wait every third batch; a tick that
/// writes a snapshot; close at the end.
async fn idempotent_scenario(
    spawner: &futures::executor::LocalSpawner,
    storage: &MemoryStorage,
) -> Option<()> {
    let log = sluice_engine::Log::open(
        storage.clone(),
        &dir(),
        small_config(),
        sluice_engine::BatchCache::new(1 << 16),
    )
    .await
    .ok()?;
    futures::task::LocalSpawnExt::spawn_local(spawner, log.clone().run_flusher()).ok()?;
    // Continue where a previous life left off.
    let stored = read_all(&log, Offset(0)).await;
    let states = expected_states(&stored);
    let mut next_seq: Vec<i32> = (0..3)
        .map(|id| states.get(id).map_or(0, |entry| entry.last_seq() + 1))
        .collect();
    for i in 0..12usize {
        let id = i % 3;
        let records = 1 + (i % 3) as i32;
        let bytes = idem_sized(records, 900, id as i64, 0, next_seq[id]);
        let info = log.append(bytes).await.ok()?;
        next_seq[id] += records;
        if i % 4 == 1 {
            log.append(batch(2, 900, NOW)).await.ok()?;
        }
        if i % 3 == 2 {
            log.flushed(info.next_offset()).await.ok()?;
        }
        if i == 8 {
            storage.advance_ms(60_000);
            let report = log.tick().await.ok()?;
            assert!(report.producer_snapshot, "durable to the end after a flush");
        }
    }
    log.close().await.ok()
}

#[test]
fn state_matches_the_surviving_log_after_power_loss_at_any_operation() {
    let storage = memory();
    run(|spawner| {
        let storage = storage.clone();
        async move { idempotent_scenario(&spawner, &storage).await }
    })
    .expect("uninterrupted run");
    let operations = storage.operations();
    for cut in 0..=operations {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn(700),
        ] {
            let storage = memory();
            storage.power_off_after(cut);
            run(|spawner| {
                let storage = storage.clone();
                async move { idempotent_scenario(&spawner, &storage).await }
            });
            storage.crash(mode);
            storage.restore_power();
            let context = format!("power lost after {cut} operations, {mode:?}");
            run(|spawner| {
                let storage = storage.clone();
                let context = context.clone();
                async move {
                    let log = open(&spawner, &storage, &dir(), small_config()).await;
                    assert_state_matches_log(&log, &context).await;
                    log.close().await.expect("close");
                }
            });
            // A second life on top, itself complete, still agrees.
            run(|spawner| {
                let storage = storage.clone();
                async move { idempotent_scenario(&spawner, &storage).await }
            })
            .unwrap_or_else(|| panic!("{context}: second life"));
            run(|spawner| {
                let storage = storage.clone();
                let context = context.clone();
                async move {
                    let log = open(&spawner, &storage, &dir(), small_config()).await;
                    assert!(log.recovery_report().clean_shutdown, "{context}");
                    assert_eq!(log.recovery_report().producer_batches_replayed, 0);
                    assert_state_matches_log(&log, &context).await;
                }
            });
        }
    }
}

#[test]
fn truncation_below_a_producers_batches_makes_its_sequences_acceptable_again() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let mut next_seq = [0; 3];
        let sent = produce(&log, &mut next_seq, 30).await;
        log.close().await.expect("close");
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let snapshot_at = log.offsets().log_end;
        assert_eq!(snapshot_offset(&storage), Some(snapshot_at));
        // Cut at the 20th batch: producer 2's batch 20 (index 20, 20 % 3 = 2) and later go.
        let (_, cut_at) = &sent[20];
        let end = log.truncate(cut_at.base_offset).await.expect("truncate");
        assert_eq!(end, cut_at.base_offset);
        assert_eq!(
            snapshot_offset(&storage),
            Some(end),
            "the snapshot past the cut was replaced"
        );
        assert_state_matches_log(&log, "after truncate").await;
        // The truncated batch's sequence is the next one again, not a duplicate.
        let (bytes, _) = &sent[20];
        let info = log.append(bytes.clone()).await.expect("accepted again");
        assert!(!info.duplicate);
        assert_eq!(info.base_offset, end);
        // A batch that survived is still a duplicate.
        let (bytes, original) = &sent[19];
        let info = log.append(bytes.clone()).await.expect("retry");
        assert!(info.duplicate);
        assert_eq!(info.base_offset, original.base_offset);
        // Truncating below every batch of the producers makes them unknown.
        log.truncate(Offset(1))
            .await
            .expect("truncate to the first batch");
        assert_eq!(
            log.producer_count(),
            1,
            "producer 0's first batch is at offset 0"
        );
        log.append(idem(1, 1, 5, 77))
            .await
            .expect("unknown producer");
    });
}

/// Large segments: no roll writes a snapshot that would hide a stale one.
fn no_roll_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..small_config()
    }
}

#[test]
fn a_crash_after_truncation_and_new_appends_never_uses_the_old_snapshot() {
    let storage = memory();
    let expected = run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), no_roll_config()).await;
            let mut next_seq = [0; 3];
            produce(&log, &mut next_seq, 24).await;
            log.close().await.expect("close");
            let log = open(&spawner, &storage, &dir(), no_roll_config()).await;
            let old_end = log.offsets().log_end;
            log.truncate(Offset(old_end.0 / 3)).await.expect("truncate");
            // New history past the cut, beyond the old snapshot's offset, from another
            // producer, in one-record batches so that offset is a batch boundary again.
            let mut seq = 0;
            while log.offsets().log_end <= old_end.plus(5) {
                log.append(idem(1, 40, 0, seq)).await.expect("append");
                seq += 1;
            }
            log.flushed(log.offsets().log_end).await.expect("durable");
            (0..3)
                .chain([40])
                .map(|id| log.producer_state(id))
                .collect::<Vec<_>>()
        }
    });
    storage.crash(CrashMode::LoseUnsynced);
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), no_roll_config()).await;
        let got: Vec<_> = (0..3)
            .chain([40])
            .map(|id| log.producer_state(id))
            .collect();
        assert_eq!(got, expected);
        assert_state_matches_log(&log, "after truncate, appends and crash").await;
    });
}

#[test]
fn tick_forgets_expired_producers() {
    let storage = memory();
    let config = LogConfig {
        producer_id_expiration_ms: Duration::from_secs(3600),
        ..small_config()
    };
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config.clone()).await;
            let now = storage.now_for_tests();
            let at = |id: i64, timestamp: i64| {
                BytesMut::from(&testing::idempotent_batch(0, 1, 10, timestamp, id, 0, 0)[..])
            };
            log.append(at(1, now - 1_000)).await.expect("append");
            log.append(at(2, now + 600_000)).await.expect("append");
            assert_eq!(log.tick().await.expect("tick").expired_producers, 0);
            storage.advance_ms(3_600_000 - 1_000);
            let report = log.tick().await.expect("tick");
            assert_eq!(report.expired_producers, 1);
            assert!(log.producer_state(1).is_none());
            assert!(log.producer_state(2).is_some());
            // Forgotten: any sequence goes again.
            log.append(idem(1, 1, 0, 500)).await.expect("accepted");
            log.close().await.expect("close");
            let log = open(&spawner, &storage, &dir(), config).await;
            assert_eq!(
                log.producer_state(1).map(|entry| entry.last_seq()),
                Some(500)
            );
            assert!(log.producer_state(2).is_some());
        }
    });
}

#[test]
fn the_producer_limit_evicts_the_least_recently_used() {
    let storage = memory();
    let config = LogConfig {
        producers_max: 2,
        ..small_config()
    };
    run(|spawner| {
        let storage = storage.clone();
        let config = config.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config.clone()).await;
            log.append(idem(1, 1, 0, 0)).await.expect("1");
            log.append(idem(1, 2, 0, 0)).await.expect("2");
            log.append(idem(1, 1, 0, 1)).await.expect("1 again");
            log.append(idem(1, 3, 0, 0)).await.expect("3");
            assert_eq!(log.producer_count(), 2);
            assert!(log.producer_state(2).is_none(), "2 was least recently used");
            log.close().await.expect("close");
            let log = open(&spawner, &storage, &dir(), config.clone()).await;
            assert_eq!(log.producer_count(), 2);
            assert!(log.producer_state(1).is_some() && log.producer_state(3).is_some());
            // Lowering the limit applies at once.
            log.set_config(LogConfig {
                producers_max: 1,
                ..config
            })
            .expect("config");
            assert_eq!(log.producer_count(), 1);
            assert!(log.producer_state(3).is_some());
        }
    });
    assert!(
        LogConfig {
            producers_max: 0,
            ..LogConfig::default()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn tick_writes_a_snapshot_at_most_every_interval_and_only_when_durable_to_the_end() {
    let storage = memory();
    let config = LogConfig {
        flush_policy: sluice_engine::FlushPolicy::Never,
        ..small_config()
    };
    let written_at = run(|spawner| {
        let storage = storage.clone();
        let config = config.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), config).await;
            log.append(idem(2, 1, 0, 0)).await.expect("append");
            assert!(
                !log.tick().await.expect("tick").producer_snapshot,
                "too soon"
            );
            storage.advance_ms(30_000);
            assert!(
                !log.tick().await.expect("tick").producer_snapshot,
                "not durable: flush policy Never"
            );
            log.close().await.expect("close");
            assert_eq!(snapshot_offset(&storage), Some(Offset(2)));
            Offset(2)
        }
    });
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            assert_eq!(log.recovery_report().producer_snapshot, Some(written_at));
            log.append(idem(2, 1, 0, 2)).await.expect("append");
            log.flushed(Offset(4)).await.expect("durable");
            storage.advance_ms(29_999);
            assert!(!log.tick().await.expect("tick").producer_snapshot);
            storage.advance_ms(1);
            assert!(log.tick().await.expect("tick").producer_snapshot);
            assert_eq!(snapshot_offset(&storage), Some(Offset(4)));
            storage.advance_ms(30_000);
            assert!(
                !log.tick().await.expect("tick").producer_snapshot,
                "nothing changed"
            );
        }
    });
    storage.crash(CrashMode::LoseUnsynced);
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert_eq!(log.recovery_report().producer_snapshot, Some(Offset(4)));
        assert_eq!(log.recovery_report().producer_batches_replayed, 0);
        assert_eq!(log.producer_state(1).map(|entry| entry.last_seq()), Some(3));
    });
}

#[test]
fn a_snapshot_past_the_log_end_is_ignored_and_replaced() {
    let storage = memory();
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            log.append(idem(2, 1, 0, 0)).await.expect("append");
            log.close().await.expect("close");
        }
    });
    // A snapshot claiming a producer at offsets the log does not have.
    let mut states = ProducerStates::new(10);
    let foreign = testing::idempotent_batch(50, 1, 10, NOW, 1, 0, 40);
    states.record(batch::header(&foreign).expect("header"));
    storage.set_file_bytes(&snapshot_path(), states.encode(Offset(60)));
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert_eq!(log.recovery_report().producer_snapshot, None);
        assert_eq!(log.producer_state(1).map(|entry| entry.last_seq()), Some(1));
        assert_eq!(snapshot_offset(&storage), Some(Offset(2)), "replaced");
    });
}

/// A closed log of 24 producer batches; returns the storage.
fn closed_idempotent_log() -> MemoryStorage {
    let storage = memory();
    run(|spawner| {
        let storage = storage.clone();
        async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            produce(&log, &mut [0; 3], 24).await;
            log.close().await.expect("close");
        }
    });
    storage
}

/// Truncates to a third, appends a new history past the old end, closes.
async fn truncate_scenario(
    spawner: &futures::executor::LocalSpawner,
    storage: &MemoryStorage,
) -> Option<()> {
    let log = sluice_engine::Log::open(
        storage.clone(),
        &dir(),
        small_config(),
        sluice_engine::BatchCache::new(1 << 16),
    )
    .await
    .ok()?;
    futures::task::LocalSpawnExt::spawn_local(spawner, log.clone().run_flusher()).ok()?;
    let old_end = log.offsets().log_end;
    log.truncate(Offset(old_end.0 / 3)).await.ok()?;
    let mut seq = 0;
    while log.offsets().log_end <= old_end.plus(5) {
        let info = log.append(idem(2, 40, 0, seq)).await.ok()?;
        seq += 2;
        if seq % 6 == 0 {
            log.flushed(info.next_offset()).await.ok()?;
        }
    }
    log.close().await.ok()
}

#[test]
fn state_matches_the_surviving_log_after_power_loss_during_truncation() {
    let storage = closed_idempotent_log();
    let base = storage.operations();
    run(|spawner| {
        let storage = storage.clone();
        async move { truncate_scenario(&spawner, &storage).await }
    })
    .expect("uninterrupted run");
    let operations = storage.operations() - base;
    for cut in 0..=operations {
        for mode in [CrashMode::LoseUnsynced, CrashMode::KeepUnsynced] {
            let storage = closed_idempotent_log();
            storage.power_off_after(storage.operations() + cut);
            run(|spawner| {
                let storage = storage.clone();
                async move { truncate_scenario(&spawner, &storage).await }
            });
            storage.crash(mode);
            storage.restore_power();
            let context = format!("power lost {cut} operations into the truncation, {mode:?}");
            run(|spawner| async move {
                let log = open(&spawner, &storage, &dir(), small_config()).await;
                assert_state_matches_log(&log, &context).await;
            });
        }
    }
}
