//! Failure handling: a failed fdatasync or write poisons the partition (writes refused with
//! the cause, durability waits fail, reads of what is there still served), and a full disk
//! refuses appends cleanly without losing anything already acknowledged.

mod common;

use common::*;
use sluice_engine::{AppendError, FlushError, LogConfig, Offset};

#[test]
fn failed_fdatasync_poisons_writes_but_not_reads() {
    let storage = memory();
    let first_life = storage.clone();
    run(|spawner| async move {
        let storage = first_life;
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let first = log.append(batch(2, 100, 1)).await.expect("append");
        log.flushed(first.next_offset()).await.expect("durable");
        storage.fail_next_fdatasyncs(1);
        let second = log
            .append(batch(2, 100, 2))
            .await
            .expect("ordered before the failure");
        let error = log
            .flushed(second.next_offset())
            .await
            .expect_err("fdatasync failed");
        assert!(
            matches!(error, FlushError::Poisoned(ref failure) if failure.operation == "fdatasync"),
            "{error}"
        );
        assert!(log.poisoned().is_some());
        // Offsets durable before the failure still report durable.
        log.flushed(first.next_offset())
            .await
            .expect("earlier data stays durable");
        let refused = log
            .append(batch(1, 10, 3))
            .await
            .expect_err("poisoned log refuses writes");
        assert!(matches!(refused, AppendError::Poisoned(_)), "{refused}");
        assert!(
            refused.to_string().contains("injected fdatasync failure"),
            "cause kept: {refused}"
        );
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(
            batches.first().map(|batch| batch.0),
            Some(Offset(0)),
            "reads still served"
        );
        assert_eq!(log.offsets().durable_end, first.next_offset());
    });
    // A restart (new process) recovers what was durable and accepts writes again.
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert!(log.offsets().log_end >= Offset(2));
        log.append(batch(1, 10, 4))
            .await
            .expect("writable after reopen");
    });
}

#[test]
fn failed_write_poisons_the_partition() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        storage.fail_next_writes(1);
        let info = log.append(batch(1, 100, 1)).await.expect("ordered");
        let error = log
            .flushed(info.next_offset())
            .await
            .expect_err("write failed");
        assert!(
            matches!(error, FlushError::Poisoned(ref failure) if failure.operation == "write"),
            "{error}"
        );
        assert!(matches!(
            log.append(batch(1, 1, 1)).await,
            Err(AppendError::Poisoned(_))
        ));
        // close on a poisoned log does not pretend to seal it.
        log.close().await.expect("close of a poisoned log");
    });
}

#[test]
fn full_disk_refuses_appends_and_loses_nothing_acknowledged() {
    let storage = memory();
    let config = LogConfig {
        preallocate_bytes: 4096,
        ..small_config()
    };
    let first_life = storage.clone();
    run(|spawner| async move {
        let storage = first_life;
        let log = open(&spawner, &storage, &dir(), config.clone()).await;
        let used: u64 = storage
            .paths()
            .iter()
            .filter_map(|path| storage.file_bytes(path))
            .map(|bytes| bytes.len() as u64)
            .sum();
        storage.set_capacity(Some(used + 12 * 1024));
        let mut acknowledged = Offset(0);
        let mut refused = None;
        for i in 0..100 {
            match log.append(batch(1, 1_000, i)).await {
                Ok(info) => {
                    log.flushed(info.next_offset()).await.expect("durable");
                    acknowledged = info.next_offset();
                }
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        let refused = refused.expect("disk fills up");
        assert!(
            matches!(refused, AppendError::DiskFull(ref failure) if failure.is_disk_full()),
            "{refused}"
        );
        assert!(log.poisoned().is_none(), "a full disk is not a broken disk");
        assert!(acknowledged > Offset(5));
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(batches.last().map(|batch| batch.1), Some(acknowledged));
        // Space comes back: appends resume.
        storage.set_capacity(None);
        let info = log
            .append(batch(1, 1_000, 999))
            .await
            .expect("append after space freed");
        assert_eq!(info.base_offset, acknowledged);
        log.flushed(info.next_offset()).await.expect("durable");
        log.close().await.expect("close");
    });
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        assert!(log.recovery_report().clean_shutdown);
        assert_eq!(
            read_all(&log, Offset(0)).await.len() as i64,
            log.offsets().log_end.0
        );
    });
}

#[test]
fn invalid_batches_are_refused_and_store_nothing() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(
            &spawner,
            &storage,
            &dir(),
            LogConfig {
                max_batch_bytes: 2048,
                ..small_config()
            },
        )
        .await;
        let mut corrupt = batch(1, 100, 1);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(matches!(
            log.append(corrupt).await,
            Err(AppendError::InvalidBatch(_))
        ));
        assert!(matches!(
            log.append(batch(1, 4000, 1)).await,
            Err(AppendError::InvalidBatch(_))
        ));
        let mut truncated = batch(1, 100, 1);
        truncated.truncate(50);
        assert!(matches!(
            log.append(truncated).await,
            Err(AppendError::InvalidBatch(_))
        ));
        assert!(matches!(
            log.append(bytes::BytesMut::new()).await,
            Err(AppendError::InvalidBatch(_))
        ));
        assert_eq!(log.offsets().log_end, Offset(0));
        let info = log
            .append(batch(3, 100, 1))
            .await
            .expect("valid batch after invalid ones");
        assert_eq!(info.base_offset, Offset(0));
    });
}
