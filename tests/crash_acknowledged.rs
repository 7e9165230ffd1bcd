//! Acknowledged means durable: a broker on two shards is killed with SIGKILL in the middle
//! of an `acks=all` produce stream, three times over. After each restart on the same data
//! directory:
//!
//! * every record the producer saw acknowledged is there, at the partition and offset its
//!   delivery report gave, with its key, value, headers and timestamp intact;
//! * offsets are dense (crash recovery left no hole and no torn batch), and every record
//!   present is a whole, valid workload record (unacknowledged ones may or may not be there,
//!   as in Kafka, but never twice);
//! * new appends continue at the recovered end.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Broker, TestDir};

const TOPIC: &str = "crash-acked";
const PARTITIONS: i32 = 4;
const CYCLES: usize = 3;
/// Acknowledgements to wait for (per cycle) before the kill.
const ACKED_BEFORE_KILL: usize = 20_000;

/// Produces until `stop` is set, in chunks of ids starting at `first`. Returns the ids
/// enqueued (first..end).
fn produce_until(
    producer: &common::Producer,
    first: usize,
    base_ts: i64,
    stop: &AtomicBool,
) -> std::ops::Range<usize> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next = first;
    while !stop.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "producer never stopped");
        common::send_workload(producer, TOPIC, next..next + 500, base_ts, deadline);
        next += 500;
    }
    first..next
}

#[test]
fn acknowledged_records_survive_sigkill() {
    common::with_timeout(Duration::from_secs(600), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        common::create_topic(&broker, TOPIC, PARTITIONS, &[]);
        let base_ts = common::now_ms() - 3_600_000;
        let mut acked_all: HashMap<usize, (i32, i64)> = HashMap::new();
        let mut next_id = 0usize;

        for cycle in 0..CYCLES {
            // A small client queue, so enqueueing is paced by acknowledgements and the kill
            // lands mid-stream.
            let producer = Arc::new(common::producer(
                &broker,
                "all",
                &[("queue.buffering.max.messages", "5000")],
            ));
            let stop = Arc::new(AtomicBool::new(false));
            let sender = {
                let producer = producer.clone();
                let stop = stop.clone();
                let first = next_id;
                std::thread::spawn(move || produce_until(&producer, first, base_ts, &stop))
            };
            let context = common::deliveries(&producer);
            let deadline = Instant::now() + Duration::from_secs(120);
            while context.deliveries.acked_count() < ACKED_BEFORE_KILL {
                assert!(
                    Instant::now() < deadline,
                    "cycle {cycle}: only {} acknowledged",
                    context.deliveries.acked_count()
                );
                assert_eq!(
                    context.deliveries.failed_count(),
                    0,
                    "failures before the kill"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            broker.kill();
            stop.store(true, Ordering::Relaxed);
            // What the client still holds is unacknowledged: purge it (queued and in-flight
            // records get failed delivery reports), until the sender has stopped.
            let purge = || {
                use rdkafka::producer::{Producer as _, PurgeConfig};
                producer.purge(PurgeConfig::default().queue().inflight());
            };
            while !sender.is_finished() {
                purge();
                std::thread::sleep(Duration::from_millis(10));
            }
            let enqueued = sender.join().expect("sender thread");
            purge();
            {
                use rdkafka::producer::Producer as _;
                let _ = producer.flush(Duration::from_secs(30));
            }
            let acked = common::acked(&producer);
            let failed = context.deliveries.failed_count();
            assert_eq!(
                acked.len() + failed,
                enqueued.len(),
                "cycle {cycle}: every record acknowledged or failed"
            );
            assert!(
                failed > 0,
                "cycle {cycle}: the kill came after the stream ended"
            );
            eprintln!(
                "cycle {cycle}: enqueued {}, acknowledged {}, failed {failed}",
                enqueued.len(),
                acked.len()
            );
            drop(producer);
            acked_all.extend(acked);
            next_id = enqueued.end;

            broker.restart();
            // Everything stored, per the high watermarks after recovery.
            let ends: Vec<i64> = (0..PARTITIONS)
                .map(|partition| {
                    let (low, high) = common::watermarks(&broker, TOPIC, partition);
                    assert_eq!(low, 0);
                    high
                })
                .collect();
            let stored = usize::try_from(ends.iter().sum::<i64>()).expect("count");
            let records = common::consume(
                &broker,
                TOPIC,
                PARTITIONS,
                stored,
                Duration::from_secs(120),
                Duration::from_millis(500),
            );
            assert_eq!(records.len(), stored, "cycle {cycle}: records read");
            assert_eq!(common::check_dense(&records, PARTITIONS), ends);
            let mut found: HashMap<usize, (i32, i64)> = HashMap::new();
            for record in &records {
                let id = common::record_id(record);
                assert!(id < next_id, "record {id} was never produced");
                common::check_record(record, id, base_ts, PARTITIONS);
                let previous = found.insert(id, (record.partition, record.offset));
                assert!(previous.is_none(), "record {id} stored twice");
            }
            for (id, at) in &acked_all {
                assert_eq!(
                    found.get(id),
                    Some(at),
                    "cycle {cycle}: acknowledged record {id} lost or moved after SIGKILL"
                );
            }
            eprintln!(
                "cycle {cycle}: {} records stored, {} of them unacknowledged",
                stored,
                stored - acked_all.len()
            );

            // Appends continue at the recovered end.
            let producer = common::producer(&broker, "all", &[]);
            common::send_workload(&producer, TOPIC, next_id..next_id + 100, base_ts, deadline);
            common::flush_all(&producer, Duration::from_secs(60));
            let mut appended: Vec<(i32, i64)> = common::acked(&producer).into_values().collect();
            appended.sort_unstable();
            for partition in 0..PARTITIONS {
                let offsets: Vec<i64> = appended
                    .iter()
                    .filter(|(p, _)| *p == partition)
                    .map(|(_, offset)| *offset)
                    .collect();
                let end = ends[partition as usize];
                let want: Vec<i64> = (end..end + offsets.len() as i64).collect();
                assert_eq!(
                    offsets, want,
                    "partition {partition}: appends after recovery"
                );
            }
            acked_all.extend(common::acked(&producer));
            next_id += 100;
        }
        broker.stop();
    });
}
