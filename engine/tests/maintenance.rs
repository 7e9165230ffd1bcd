//! Log maintenance: truncation to any offset (whole batches, as replication needs), prefix
//! deletion (DeleteRecords, `retention.bytes`, `retention.ms`), `segment.ms` rolls,
//! timestamp lookups, multi-batch appends and `LogAppendTime` — each surviving a restart.

mod common;

use std::time::Duration;

use common::*;
use sluice_engine::{
    LogConfig, MaintenanceError, Offset, ReadError, ReadLimits, TimestampMs, TimestampType,
};

/// 40 batches of 2 records (offsets 2i, 2i+1), timestamps 1000+10i and +1.
async fn fill<S: sluice_engine::io::Storage>(log: &sluice_engine::Log<S>) {
    for i in 0..40 {
        log.append(batch(2, 600, 1_000 + i * 10))
            .await
            .expect("append");
    }
}

#[test]
fn truncate_to_every_offset() {
    for target in 0..=80 {
        let storage = memory();
        run(|spawner| async move {
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            fill(&log).await;
            let end = log.truncate(Offset(target)).await.expect("truncate");
            // Whole batches: a target inside a batch removes that batch.
            assert_eq!(end, Offset(target - target % 2), "target {target}");
            assert_eq!(log.offsets().log_end, end);
            let info = log
                .append(batch(1, 10, 5))
                .await
                .expect("append after truncate");
            assert_eq!(info.base_offset, end);
            log.flushed(info.next_offset()).await.expect("durable");
            let batches = read_all(&log, Offset(0)).await;
            assert_eq!(batches.len() as i64, end.0 / 2 + 1);
            log.close().await.expect("close");
            let log = open(&spawner, &storage, &dir(), small_config()).await;
            assert_eq!(log.offsets().log_end, info.next_offset(), "target {target}");
            assert_eq!(read_all(&log, Offset(0)).await.len(), batches.len());
        });
    }
}

#[test]
fn truncate_past_the_end_is_refused() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        fill(&log).await;
        assert!(matches!(
            log.truncate(Offset(81)).await,
            Err(MaintenanceError::PastEnd { .. })
        ));
    });
}

#[test]
fn delete_records_moves_the_log_start_and_frees_segments() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        fill(&log).await;
        let segments_before = log.segment_bases().len();
        let start = log
            .delete_records_before(Offset(51))
            .await
            .expect("delete records");
        assert_eq!(start, Offset(51));
        assert!(log.segment_bases().len() < segments_before);
        let error = log
            .read(
                Offset(50),
                ReadLimits {
                    max_bytes: 1 << 20,
                    max_offset: None,
                },
            )
            .await
            .expect_err("below start");
        assert!(matches!(
            error,
            ReadError::OffsetOutOfRange {
                log_start: Offset(51),
                ..
            }
        ));
        // Reading at the log start returns the batch holding it (Kafka clients skip below).
        let batches = read_all(&log, Offset(51)).await;
        assert_eq!(batches.first().map(|batch| batch.0), Some(Offset(50)));
        log.close().await.expect("close");
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert_eq!(
            log.offsets().log_start,
            Offset(51),
            "log start survives restart"
        );
        assert!(matches!(
            log.delete_records_before(Offset(81)).await,
            Err(MaintenanceError::PastEnd { .. })
        ));
    });
}

#[test]
fn retention_by_size_and_by_time() {
    let storage = memory();
    run(|spawner| async move {
        let config = LogConfig {
            retention_bytes: Some(20_000),
            ..small_config()
        };
        let log = open(&spawner, &storage, &dir(), config).await;
        fill(&log).await;
        let (segments, size_before) = log.size();
        let deleted = log.apply_retention().await.expect("retention");
        let (_, size_after) = log.size();
        assert!(deleted > 0 && size_after < size_before);
        assert!(
            size_after - log_active_size(&log) < 20_000 + 16 * 1024,
            "size {size_after}"
        );
        assert_eq!(log.segment_bases().len(), segments - deleted);
        assert_eq!(log.offsets().log_start, log.segment_bases()[0]);
    });
    let storage = memory();
    run(|spawner| async move {
        let config = LogConfig {
            retention_ms: Some(Duration::from_secs(3600)),
            ..small_config()
        };
        let log = open(&spawner, &storage, &dir(), config).await;
        let now = storage.now_for_tests();
        for i in 0..40 {
            // The first 20 batches are two hours old; the rest are fresh.
            let timestamp = if i < 20 { now - 7_200_000 } else { now };
            log.append(batch(2, 600, timestamp + i))
                .await
                .expect("append");
        }
        let report = log.tick().await.expect("tick");
        assert!(report.deleted_segments > 0);
        assert!(
            report.log_start > Offset(0) && report.log_start <= Offset(40),
            "{report:?}"
        );
        let oldest = read_all(&log, report.log_start).await;
        assert!(oldest.len() >= 20);
    });
}

fn log_active_size<S: sluice_engine::io::Storage>(log: &sluice_engine::Log<S>) -> u64 {
    let (_, total) = log.size();
    total.min(16 * 1024)
}

#[test]
fn segment_ms_rolls_an_old_segment() {
    let storage = memory();
    run(|spawner| async move {
        let config = LogConfig {
            segment_ms: Some(Duration::from_secs(60)),
            segment_bytes: 1 << 20,
            ..small_config()
        };
        let log = open(&spawner, &storage, &dir(), config).await;
        log.append(batch(1, 10, 1)).await.expect("append");
        log.append(batch(1, 10, 2)).await.expect("append");
        assert_eq!(log.segment_bases(), vec![Offset(0)]);
        storage.advance_ms(61_000);
        log.append(batch(1, 10, 3)).await.expect("append");
        assert_eq!(log.segment_bases(), vec![Offset(0), Offset(2)]);
    });
}

#[test]
fn timestamp_lookups() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        fill(&log).await;
        for i in 0..40i64 {
            for (query, expected) in [
                (1_000 + i * 10 - 5, 2 * i),
                (1_000 + i * 10, 2 * i),
                (1_000 + i * 10 + 1, 2 * i + 1),
            ] {
                let found = log
                    .offset_for_timestamp(TimestampMs(query))
                    .await
                    .expect("lookup");
                assert_eq!(
                    found.map(|(offset, _)| offset),
                    Some(Offset(expected)),
                    "query {query}"
                );
            }
        }
        assert_eq!(
            log.offset_for_timestamp(TimestampMs(2_000))
                .await
                .expect("lookup"),
            None
        );
        assert_eq!(log.max_timestamp(), Some((Offset(79), TimestampMs(1_391))));
    });
}

#[test]
fn multi_batch_appends_and_log_append_time() {
    let storage = memory();
    run(|spawner| async move {
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        };
        let log = open(&spawner, &storage, &dir(), config).await;
        let mut records = batch(3, 10, 1);
        records.extend_from_slice(&batch(2, 10, 1));
        let info = log.append(records).await.expect("append two batches");
        assert_eq!((info.base_offset, info.last_offset), (Offset(0), Offset(4)));
        let now = storage.now_for_tests();
        assert_eq!(info.log_append_time, Some(TimestampMs(now)));
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(batches.len(), 2);
        for (_, _, bytes) in &batches {
            let header = sluice_engine::batch::header(bytes).expect("header");
            assert!(header.is_log_append_time());
            assert_eq!(header.max_timestamp(), TimestampMs(now));
        }
        assert_eq!(batches[1].0, Offset(3));
    });
}

#[test]
fn reads_respect_max_bytes_and_the_upper_bound() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        fill(&log).await;
        log.close().await.expect("close");
        let log = open(&spawner, &storage, &dir(), small_config()).await; // cold: from files
        let one = log
            .read(
                Offset(10),
                ReadLimits {
                    max_bytes: 1,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        assert_eq!(
            one.next_offset,
            Offset(12),
            "first batch whole even over max_bytes"
        );
        let bounded = log
            .read(
                Offset(10),
                ReadLimits {
                    max_bytes: 1 << 20,
                    max_offset: Some(Offset(16)),
                },
            )
            .await
            .expect("read");
        assert_eq!(bounded.next_offset, Offset(16));
        let empty = log
            .read(
                Offset(16),
                ReadLimits {
                    max_bytes: 1 << 20,
                    max_offset: Some(Offset(16)),
                },
            )
            .await
            .expect("read");
        assert!(empty.chunks.is_empty());
        let at_end = log
            .read(
                Offset(80),
                ReadLimits {
                    max_bytes: 1 << 20,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        assert!(at_end.chunks.is_empty());
        assert!(
            log.read(
                Offset(81),
                ReadLimits {
                    max_bytes: 1,
                    max_offset: None
                }
            )
            .await
            .is_err()
        );
        let size = sluice_engine::testing::batch(0, 2, 600, 0).len() as u64;
        let two = log
            .read(
                Offset(0),
                ReadLimits {
                    max_bytes: 2 * size + 10,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        assert_eq!(two.next_offset, Offset(4), "two batches fit");
        let one = log
            .read(
                Offset(0),
                ReadLimits {
                    max_bytes: 2 * size - 1,
                    max_offset: None,
                },
            )
            .await
            .expect("read");
        assert_eq!(
            one.next_offset,
            Offset(2),
            "a partial second batch is never returned"
        );
        assert_eq!(one.bytes(), size);
    });
}

/// Regression: reopening resumed the index scan at the last index entry but dropped that
/// entry's time-index entry, so a largest timestamp reached between index entries was
/// forgotten (1,000,000 before close, 1007 after), breaking time lookups and retention.
#[test]
fn largest_timestamp_survives_reopen() {
    let storage = memory();
    let config = LogConfig {
        index_interval_bytes: 1_000,
        ..small_config()
    };
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), config.clone()).await;
        for i in 0..30 {
            let timestamp = if i == 17 { 1_000_000 } else { 1_000 + i };
            log.append(batch(1, 20, timestamp)).await.expect("append");
        }
        assert_eq!(
            log.max_timestamp().map(|(_, ts)| ts),
            Some(TimestampMs(1_000_000))
        );
        log.close().await.expect("close");
        for _ in 0..2 {
            let log = open(&spawner, &storage, &dir(), config.clone()).await;
            assert_eq!(
                log.max_timestamp().map(|(_, ts)| ts),
                Some(TimestampMs(1_000_000))
            );
            let found = log
                .offset_for_timestamp(TimestampMs(500_000))
                .await
                .expect("lookup");
            assert_eq!(found, Some((Offset(17), TimestampMs(1_000_000))));
            drop(log); // not closed: the next open is a recovery
        }
    });
}

/// Regression: a tick racing with close (a deleted topic's partition) rewrote the clean
/// checkpoint as unclean, or failed on the removed directory.
#[test]
fn tick_after_close_leaves_the_clean_checkpoint() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        fill(&log).await;
        log.close().await.expect("close");
        log.tick().await.expect("tick after close is a no-op");
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert!(log.recovery_report().clean_shutdown);
    });
}
