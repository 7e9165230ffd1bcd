//! Timestamp lookups (ListOffsets by time) through librdkafka's `offsets_for_times`, on a
//! two-shard broker:
//!
//! * partition 0 holds increasing timestamps, many records per batch: a target between
//!   two records finds the later one, an exact timestamp finds its record, a target before
//!   everything finds offset 0 and one after everything finds the end (`-1`);
//! * partition 1 holds timestamps out of order: the answer is Kafka's, the first offset
//!   whose timestamp is at or after the target;
//! * the answers are the same after a clean restart (time indexes persisted) and after a
//!   crash (time indexes rebuilt), and the earliest/latest offsets are the watermarks.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, TestDir};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "by-time";
/// Records in partition 0, timestamps `T0 + 1000 * i`.
const ORDERED: i64 = 5_000;
/// Timestamps (offsets from T0) of partition 1, in log order.
const SHUFFLED: [i64; 8] = [100, 300, 200, 400, 400, 50, 900, 700];

fn produce(broker: &Broker, t0: i64) {
    let producer = common::producer(broker, "all", &[("linger.ms", "20")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let enqueue = |partition: i32, id: usize, timestamp: i64| {
        let payload = format!("{partition}:{id}");
        let mut record = BaseRecord::with_opaque_to(TOPIC, id)
            .partition(partition)
            .key("k")
            .payload(&payload)
            .timestamp(timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, back)) => {
                    assert!(Instant::now() < deadline, "enqueue: {error}");
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    };
    for i in 0..ORDERED {
        enqueue(0, i as usize, t0 + 1000 * i);
    }
    for (i, delta) in SHUFFLED.iter().enumerate() {
        enqueue(1, ORDERED as usize + i, t0 + delta);
    }
    common::flush_all(&producer, Duration::from_secs(60));
}

/// Asks `offsets_for_times` for each (partition, timestamp) and returns the offsets.
fn lookup(broker: &Broker, queries: &[(i32, i64)]) -> Vec<Offset> {
    let consumer: BaseConsumer = common::consumer_config(broker).create().expect("consumer");
    queries
        .iter()
        .map(|&(partition, timestamp)| {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(TOPIC, partition, Offset::Offset(timestamp))
                .expect("partition");
            let answer = consumer
                .offsets_for_times(list, Duration::from_secs(10))
                .unwrap_or_else(|error| panic!("offsets_for_times({timestamp}): {error}"));
            let element = answer
                .find_partition(TOPIC, partition)
                .expect("partition in the answer");
            assert!(
                element.error().is_ok(),
                "partition {partition}: {:?}",
                element.error()
            );
            element.offset()
        })
        .collect()
}

fn check(broker: &Broker, t0: i64, when: &str) {
    let ordered = [
        (t0 - 1, Offset::Offset(0)),
        (t0, Offset::Offset(0)),
        (t0 + 1, Offset::Offset(1)),
        (t0 + 999, Offset::Offset(1)),
        (t0 + 1000, Offset::Offset(1)),
        (t0 + 1234 * 1000, Offset::Offset(1234)),
        (t0 + 1234 * 1000 + 500, Offset::Offset(1235)),
        (t0 + (ORDERED - 1) * 1000, Offset::Offset(ORDERED - 1)),
        (t0 + (ORDERED - 1) * 1000 + 1, Offset::End),
    ];
    // First offset whose timestamp >= target, over [100, 300, 200, 400, 400, 50, 900, 700].
    let shuffled = [
        (t0, Offset::Offset(0)),
        (t0 + 100, Offset::Offset(0)),
        (t0 + 150, Offset::Offset(1)),
        (t0 + 250, Offset::Offset(1)),
        (t0 + 301, Offset::Offset(3)),
        (t0 + 400, Offset::Offset(3)),
        (t0 + 401, Offset::Offset(6)),
        (t0 + 800, Offset::Offset(6)),
        (t0 + 901, Offset::End),
    ];
    let queries: Vec<(i32, i64)> = ordered
        .iter()
        .map(|(timestamp, _)| (0, *timestamp))
        .chain(shuffled.iter().map(|(timestamp, _)| (1, *timestamp)))
        .collect();
    let wanted: Vec<Offset> = ordered
        .iter()
        .chain(shuffled.iter())
        .map(|(_, offset)| *offset)
        .collect();
    let answers = lookup(broker, &queries);
    for ((query, want), got) in queries.iter().zip(&wanted).zip(&answers) {
        assert_eq!(
            got,
            want,
            "{when}: partition {} at t0{:+}",
            query.0,
            query.1 - t0
        );
    }
    assert_eq!(common::watermarks(broker, TOPIC, 0), (0, ORDERED));
    assert_eq!(
        common::watermarks(broker, TOPIC, 1),
        (0, SHUFFLED.len() as i64)
    );
}

#[test]
fn offsets_for_times_finds_the_first_offset_at_or_after() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        common::create_topic(&broker, TOPIC, 2, &[]);
        let t0 = common::now_ms() - 3 * 3_600_000;
        produce(&broker, t0);
        check(&broker, t0, "live");
        broker.stop();
        broker.restart();
        check(&broker, t0, "after a clean restart");
        broker.kill();
        broker.restart();
        check(&broker, t0, "after a crash");
        broker.stop();
        assert_eq!(broker.warnings(), Vec::<String>::new(), "broker warnings");
    });
}
