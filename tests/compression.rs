//! Compressed batches: librdkafka produces with gzip, snappy, lz4 and zstd (one topic per
//! codec, two partitions on a two-shard broker), and:
//!
//! * every record comes back exactly (key, value, headers, timestamp), before and after a
//!   clean restart (the second read comes from the segment files, not the tail cache);
//! * a consumer that starts in the middle of a compressed batch gets exactly the records
//!   from its offset on;
//! * the broker stored the batches as the producer compressed them: every batch header in
//!   the segment files carries the codec, the record counts add up, and the segments are
//!   several times smaller than the raw payload.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, TestDir};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;
const RECORDS: usize = 20_000;

fn key(id: usize) -> Vec<u8> {
    format!("customer-{}", id % 1000).into_bytes()
}

/// A compressible value (~500 bytes of JSON-like text).
fn value(id: usize) -> Vec<u8> {
    format!(
        "{{\"id\":{id},\"customer\":\"customer-{}\",\"status\":\"{}\",\"note\":\"{}\"}}",
        id % 1000,
        ["active", "suspended", "closed"][id % 3],
        "the quick brown fox jumps over the lazy dog ".repeat(10)
    )
    .into_bytes()
}

fn timestamp(base_ts: i64, id: usize) -> i64 {
    base_ts + (id as i64) * 3
}

fn topic(codec: &str) -> String {
    format!("compressed-{codec}")
}

fn produce(broker: &Broker, codec: &str, base_ts: i64) -> u64 {
    let producer = common::producer(
        broker,
        "all",
        &[
            ("compression.type", codec),
            ("linger.ms", "50"),
            ("batch.num.messages", "5000"),
            ("batch.size", "1000000"),
        ],
    );
    let topic = topic(codec);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut raw = 0u64;
    for id in 0..RECORDS {
        let (key, value) = (key(id), value(id));
        raw += (key.len() + value.len()) as u64;
        let id_text = id.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "id",
            value: Some(&id_text),
        });
        let mut record = BaseRecord::with_opaque_to(&topic, id)
            .key(&key[..])
            .payload(&value[..])
            .timestamp(timestamp(base_ts, id))
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    assert!(Instant::now() < deadline, "queue stayed full");
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => panic!("{codec}: enqueueing {id}: {error}"),
            }
        }
    }
    common::flush_all(&producer, Duration::from_secs(120));
    assert_eq!(common::acked(&producer).len(), RECORDS);
    raw
}

fn check_all(broker: &Broker, codec: &str, base_ts: i64) {
    let records = common::consume(
        broker,
        &topic(codec),
        PARTITIONS,
        RECORDS,
        Duration::from_secs(120),
        Duration::from_millis(500),
    );
    assert_eq!(records.len(), RECORDS, "{codec}: records read");
    common::check_dense(&records, PARTITIONS);
    let mut seen = vec![false; RECORDS];
    for record in &records {
        let id = common::record_id(record);
        assert!(
            !std::mem::replace(&mut seen[id], true),
            "{codec}: {id} twice"
        );
        assert_eq!(
            record.key.as_deref(),
            Some(&key(id)[..]),
            "{codec}: key of {id}"
        );
        assert_eq!(
            record.value.as_deref(),
            Some(&value(id)[..]),
            "{codec}: value of {id}"
        );
        assert_eq!(
            record.timestamp,
            Some(timestamp(base_ts, id)),
            "{codec}: ts of {id}"
        );
        assert_eq!(
            record.partition,
            common::kafka_partition(&key(id), PARTITIONS),
            "{codec}: partition of {id}"
        );
    }
}

/// Starts a consumer at `offset` of partition 0 (inside a compressed batch, unless the
/// batch happens to start there) and checks the first records it gets.
fn check_mid_batch(broker: &Broker, codec: &str, offset: i64) {
    let consumer: BaseConsumer = common::consumer_config(broker).create().expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic(codec), 0, Offset::Offset(offset))
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut expected = offset;
    while expected < offset + 10 {
        assert!(
            Instant::now() < deadline,
            "{codec}: nothing read from {offset}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap_or_else(|error| panic!("{codec}: {error}"));
        assert_eq!(message.offset(), expected, "{codec}: read from {offset}");
        let id: usize = std::str::from_utf8(
            message
                .headers()
                .expect("headers")
                .get(0)
                .value
                .expect("id"),
        )
        .expect("utf-8")
        .parse()
        .expect("id");
        assert_eq!(message.payload(), Some(&value(id)[..]));
        expected += 1;
    }
}

/// Runs the scenario for `codecs` (name, codec id in the batch attributes).
fn round_trip_and_stay_compressed(codecs: &'static [(&'static str, u8)]) {
    common::with_timeout(Duration::from_secs(600), move || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        let base_ts = common::now_ms() - 86_400_000;
        let mut raw_bytes = Vec::new();
        for (codec, _) in codecs {
            common::create_topic(&broker, &topic(codec), PARTITIONS, &[]);
            raw_bytes.push(produce(&broker, codec, base_ts));
        }
        for (codec, _) in codecs {
            check_all(&broker, codec, base_ts);
            check_mid_batch(&broker, codec, 4321);
        }

        broker.stop();
        for ((codec, id), raw) in codecs.iter().copied().zip(raw_bytes) {
            let mut stored = 0u64;
            let mut records = 0i64;
            for partition in 0..PARTITIONS {
                let partition_dir = dir.data().join(format!("{}-{partition}", topic(codec)));
                let batches = common::stored_batches(&partition_dir);
                assert!(
                    batches.len() >= 2,
                    "{codec}: expected several batches, got {batches:?}"
                );
                let mut next = 0i64;
                for batch in &batches {
                    assert_eq!(batch.codec, id, "{codec}: stored batch {batch:?}");
                    assert_eq!(batch.base_offset, next, "{codec}: batch offsets");
                    next += i64::from(batch.records);
                }
                records += next;
                let size = common::segment_bytes(&partition_dir);
                assert_eq!(
                    size,
                    batches.iter().map(|b| b.size as u64).sum::<u64>(),
                    "{codec}: segment files hold exactly the batches after a clean stop"
                );
                stored += size;
            }
            assert_eq!(
                records, RECORDS as i64,
                "{codec}: records in stored batches"
            );
            eprintln!("{codec}: raw {raw} bytes, stored {stored} bytes");
            assert!(
                stored * 5 < raw,
                "{codec}: stored {stored} bytes for {raw} raw bytes: not compressed"
            );
        }

        broker.restart();
        for (codec, _) in codecs {
            check_all(&broker, codec, base_ts);
            check_mid_batch(&broker, codec, 4321);
        }
        broker.stop();
        assert_eq!(broker.warnings(), Vec::<String>::new(), "broker warnings");
    });
}

#[test]
fn gzip_snappy_zstd_batches_round_trip_and_stay_compressed() {
    round_trip_and_stay_compressed(&[("gzip", 1), ("snappy", 2), ("zstd", 4)]);
}

/// librdkafka compresses with LZ4 only when the broker's ApiVersions lists FindCoordinator
/// (its `RD_KAFKA_FEATURE_LZ4` depends on it, as a marker of Kafka 0.8.2+); otherwise it
/// logs "Broker does not support compression type lz4" and sends the batches uncompressed.
/// Until the broker advertises FindCoordinator this test fails at the stored-codec check.
#[test]
fn lz4_batches_round_trip_and_stay_compressed() {
    round_trip_and_stay_compressed(&[("lz4", 3)]);
}
