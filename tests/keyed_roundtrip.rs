//! The main end-to-end scenario, with librdkafka (rdkafka) as the client and a broker on two
//! shards (`--cores 2`, so requests cross shards to reach partition owners):
//!
//! * an 8-partition topic created with the AdminClient;
//! * 100,000 keyed records with headers and explicit timestamps produced with `acks=all`,
//!   then 100,000 more with `acks=1`, with Kafka's murmur2 partitioner;
//! * every record consumed back (assign from the beginning) and checked field by field:
//!   key, value, headers (including empty and null values), CreateTime timestamp, the
//!   partition murmur2(key) % 8 that Kafka's default partitioner picks, the offset the
//!   producer's delivery report gave, dense offsets 0..n per partition, per-producer order,
//!   no extra records, and the watermarks;
//! * a clean restart (SIGTERM, start again on the same data directory and port) serves
//!   exactly the same records; appends continue at the old end;
//! * a restart with another core count (partitions move to other shards) serves them too.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Broker, Consumed, TestDir};

const TOPIC: &str = "keyed-roundtrip";
const PARTITIONS: i32 = 8;
const PER_RUN: usize = 100_000;

#[test]
fn murmur2_matches_kafka_vectors() {
    // Kafka's UtilsTest.testMurmur2.
    assert_eq!(common::murmur2(b"21"), -973_932_308);
    assert_eq!(common::murmur2(b"foobar"), -790_332_482);
    assert_eq!(common::murmur2(b"a-little-bit-long-string"), -985_981_536);
    assert_eq!(
        common::murmur2(b"a-little-bit-longer-string"),
        -1_486_304_829
    );
    assert_eq!(
        common::murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
        -58_897_971
    );
    assert_eq!(common::murmur2(b"abc"), 479_470_107);
}

/// Checks a full read of the topic against the workload and the delivery reports.
fn verify(
    records: &[Consumed],
    acked: &HashMap<usize, (i32, i64)>,
    base_ts: i64,
    total: usize,
) -> Vec<i64> {
    assert_eq!(records.len(), total, "records read");
    let ends = common::check_dense(records, PARTITIONS);
    let mut seen = vec![false; total];
    // Per partition, the last id read from each run (a producer's records keep their order).
    let mut last = vec![[None::<usize>; 2]; PARTITIONS as usize];
    for record in records {
        let id = common::record_id(record);
        assert!(id < total, "unknown id {id}");
        assert!(!seen[id], "record {id} read twice");
        seen[id] = true;
        common::check_record(record, id, base_ts, PARTITIONS);
        assert_eq!(
            acked.get(&id),
            Some(&(record.partition, record.offset)),
            "record {id}: read at {}:{} but acknowledged elsewhere",
            record.partition,
            record.offset
        );
        let run = &mut last[record.partition as usize][id / PER_RUN];
        if let Some(previous) = *run {
            assert!(
                previous < id,
                "partition {}: record {id} after {previous} (producer order lost)",
                record.partition
            );
        }
        *run = Some(id);
    }
    assert_eq!(ends.iter().sum::<i64>(), total as i64);
    assert!(
        ends.iter().all(|&n| n > 0),
        "every partition gets records: {ends:?}"
    );
    ends
}

fn check_watermarks(broker: &Broker, ends: &[i64]) {
    for (partition, &end) in ends.iter().enumerate() {
        assert_eq!(
            common::watermarks(broker, TOPIC, partition as i32),
            (0, end),
            "watermarks of partition {partition}"
        );
    }
}

#[test]
fn keyed_records_round_trip_across_shards_and_restarts() {
    common::with_timeout(Duration::from_secs(600), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        common::create_topic(&broker, TOPIC, PARTITIONS, &[]);
        let base_ts = common::now_ms() - 3_600_000;
        let deadline = Instant::now() + Duration::from_secs(300);

        let mut acked = HashMap::new();
        for (run, acks) in ["all", "1"].into_iter().enumerate() {
            let started = Instant::now();
            let producer = common::producer(&broker, acks, &[]);
            common::send_workload(
                &producer,
                TOPIC,
                run * PER_RUN..(run + 1) * PER_RUN,
                base_ts,
                deadline,
            );
            common::flush_all(&producer, Duration::from_secs(120));
            let deliveries = common::acked(&producer);
            assert_eq!(deliveries.len(), PER_RUN, "acks={acks}: acknowledged");
            acked.extend(deliveries);
            eprintln!("acks={acks}: {PER_RUN} records in {:?}", started.elapsed());
        }
        let total = 2 * PER_RUN;

        let started = Instant::now();
        let records = common::consume(
            &broker,
            TOPIC,
            PARTITIONS,
            total,
            Duration::from_secs(120),
            Duration::from_secs(1),
        );
        eprintln!(
            "consumed {} records in {:?}",
            records.len(),
            started.elapsed()
        );
        let ends = verify(&records, &acked, base_ts, total);
        check_watermarks(&broker, &ends);

        // Clean restart on the same data directory and port.
        broker.stop();
        broker.restart();
        let records = common::consume(
            &broker,
            TOPIC,
            PARTITIONS,
            total,
            Duration::from_secs(120),
            Duration::from_secs(1),
        );
        verify(&records, &acked, base_ts, total);
        check_watermarks(&broker, &ends);

        // Appends continue at the old end of each partition.
        let producer = common::producer(&broker, "all", &[]);
        common::send_workload(&producer, TOPIC, total..total + 1000, base_ts, deadline);
        common::flush_all(&producer, Duration::from_secs(60));
        for (id, (partition, offset)) in common::acked(&producer) {
            assert!(
                offset >= ends[partition as usize],
                "record {id} appended at {partition}:{offset}, below the old end"
            );
            acked.insert(id, (partition, offset));
        }
        drop(producer);
        let total = total + 1000;

        // Another core count: partitions are reassigned to shards; all data stays.
        broker.stop();
        broker.restart_with_cores(1);
        let records = common::consume(
            &broker,
            TOPIC,
            PARTITIONS,
            total,
            Duration::from_secs(120),
            Duration::from_secs(1),
        );
        assert_eq!(records.len(), total);
        common::check_dense(&records, PARTITIONS);
        for record in &records {
            let id = common::record_id(record);
            common::check_record(record, id, base_ts, PARTITIONS);
            assert_eq!(acked.get(&id), Some(&(record.partition, record.offset)));
        }
        broker.stop();
        assert_eq!(broker.warnings(), Vec::<String>::new(), "broker warnings");
    });
}
