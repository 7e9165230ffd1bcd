//! Proves the basic life of a log: append across segment rolls, wait for durability, read
//! everything back from memory and from files, close, reopen without a scan, read again.

mod common;

use common::*;
use sluice_engine::Offset;

#[test]
fn append_read_close_reopen() {
    let storage = memory();
    run(|spawner| async move {
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let mut last = None;
        for i in 0..200 {
            let info = log
                .append(batch(1 + i % 5, 100, 1_000 + i64::from(i)))
                .await
                .expect("append");
            last = Some(info);
        }
        let last = last.expect("appended");
        log.flushed(last.next_offset()).await.expect("durable");
        let offsets = log.offsets();
        assert_eq!(offsets.durable_end, last.next_offset());
        assert!(
            log.segment_bases().len() > 3,
            "small segments must roll: {:?}",
            log.segment_bases()
        );
        let records: u64 = (0..200u64).map(|i| 1 + i % 5).sum();
        let stats = log.stats();
        assert_eq!((stats.batches_in, stats.records_in), (200, records));
        assert!(stats.fsyncs >= 1, "group commit synced: {stats:?}");
        assert_eq!(stats.fsync_seconds.count(), stats.fsyncs);
        assert_eq!(
            stats.fsync_batches.sum() as u64,
            200,
            "every batch made durable by exactly one fdatasync"
        );
        let batches = read_all(&log, Offset(0)).await;
        assert_eq!(batches.len(), 200);
        let stats = log.stats();
        assert_eq!(stats.records_out, records, "reads count what they returned");
        assert_eq!(
            stats.bytes_out,
            batches
                .iter()
                .map(|(_, _, bytes)| bytes.len() as u64)
                .sum::<u64>()
        );
        let mut expected = Offset(0);
        for (base, next, _) in &batches {
            assert_eq!(*base, expected);
            expected = *next;
        }
        log.close().await.expect("close");
        let log = open(&spawner, &storage, &dir(), small_config()).await;
        let report = log.recovery_report().clone();
        assert!(report.clean_shutdown);
        assert_eq!(
            report.validated_bytes, 0,
            "clean shutdown needs no validation: {report:?}"
        );
        assert_eq!(log.offsets().log_end, last.next_offset());
        let again = read_all(&log, Offset(0)).await;
        assert_eq!(again.len(), 200);
        for (a, b) in batches.iter().zip(&again) {
            assert_eq!(a.2, b.2, "bytes identical after reopen");
        }
        log.close().await.expect("close");
    });
}
