//! Deleting a topic, on a two-shard broker with topic auto-creation off
//! (`--auto-create-topics false`):
//!
//! * after the AdminClient's DeleteTopics the topic is gone from metadata (all topics, and
//!   by name: UNKNOWN_TOPIC_OR_PARTITION), and stays gone after a clean restart;
//! * producing to it fails (nothing creates it again), as does producing to a topic that
//!   never existed;
//! * deleting it again answers UNKNOWN_TOPIC_OR_PARTITION;
//! * its partition directories are removed from the data directory;
//! * a topic created again under the same name (with another partition count) starts
//!   empty: none of the deleted records come back, offsets start at 0;
//! * another topic's records are untouched throughout.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, TestDir};
use rdkafka::error::RDKafkaErrorCode;

const DOOMED: &str = "doomed";
const BYSTANDER: &str = "bystander";

/// Produces workload records `ids` to `topic` and returns how many were acknowledged and failed.
fn produce(
    broker: &Broker,
    topic: &str,
    ids: std::ops::Range<usize>,
    base_ts: i64,
) -> (usize, usize) {
    let producer = common::producer(
        broker,
        "all",
        &[
            ("message.timeout.ms", "5000"),
            ("topic.metadata.propagation.max.ms", "1000"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    common::send_workload(&producer, topic, ids, base_ts, deadline);
    {
        use rdkafka::producer::Producer as _;
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
    let context = common::deliveries(&producer);
    (
        context.deliveries.acked_count(),
        context.deliveries.failed_count(),
    )
}

fn delete(broker: &Broker, topic: &str) -> Result<String, (String, RDKafkaErrorCode)> {
    let admin = common::admin(broker);
    let mut results =
        futures::executor::block_on(admin.delete_topics(&[topic], &common::admin_options()))
            .expect("DeleteTopics request");
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// The metadata error for one topic asked by name.
fn metadata_error(broker: &Broker, topic: &str) -> Option<rdkafka::types::RDKafkaRespErr> {
    let admin = common::admin(broker);
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("the asked topic is in the answer");
    found.error()
}

fn assert_gone(broker: &Broker, when: &str) {
    assert!(
        !common::topic_names(broker).contains(&DOOMED.to_string()),
        "{when}: {DOOMED} still listed"
    );
    assert_eq!(
        metadata_error(broker, DOOMED),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        "{when}: metadata of {DOOMED} by name"
    );
}

#[test]
fn deleted_topics_are_gone() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &["--auto-create-topics", "false"]);
        let base_ts = common::now_ms() - 3_600_000;
        common::create_topic(&broker, DOOMED, 4, &[]);
        common::create_topic(&broker, BYSTANDER, 3, &[]);
        assert_eq!(produce(&broker, DOOMED, 0..2000, base_ts), (2000, 0));
        assert_eq!(produce(&broker, BYSTANDER, 0..1000, base_ts), (1000, 0));
        let records = common::consume(
            &broker,
            DOOMED,
            4,
            2000,
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        assert_eq!(records.len(), 2000);

        assert_eq!(delete(&broker, DOOMED), Ok(DOOMED.to_string()));
        assert_gone(&broker, "after delete");
        let deadline = Instant::now() + Duration::from_secs(10);
        while (0..4).any(|p| dir.data().join(format!("{DOOMED}-{p}")).exists()) {
            assert!(
                Instant::now() < deadline,
                "partition directories of a deleted topic are still on disk"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (acked, failed) = produce(&broker, DOOMED, 0..10, base_ts);
        assert_eq!(
            (acked, failed),
            (0, 10),
            "producing to a deleted topic must fail"
        );
        assert_gone(&broker, "after producing to it");
        let (acked, failed) = produce(&broker, "never-existed", 0..10, base_ts);
        assert_eq!((acked, failed), (0, 10), "producing to a missing topic");
        assert!(!common::topic_names(&broker).contains(&"never-existed".to_string()));
        assert_eq!(
            delete(&broker, DOOMED),
            Err((
                DOOMED.to_string(),
                RDKafkaErrorCode::UnknownTopicOrPartition
            ))
        );

        broker.stop();
        broker.restart();
        assert_gone(&broker, "after a restart");

        // Same name, new topic: empty, offsets from 0.
        common::create_topic(&broker, DOOMED, 2, &[]);
        for partition in 0..2 {
            assert_eq!(common::watermarks(&broker, DOOMED, partition), (0, 0));
        }
        assert_eq!(produce(&broker, DOOMED, 5000..5100, base_ts), (100, 0));
        let records = common::consume(
            &broker,
            DOOMED,
            2,
            100,
            Duration::from_secs(60),
            Duration::from_millis(500),
        );
        assert_eq!(records.len(), 100, "only the new topic's records");
        common::check_dense(&records, 2);
        for record in &records {
            let id = common::record_id(record);
            assert!((5000..5100).contains(&id), "old record {id} came back");
            common::check_record(record, id, base_ts, 2);
        }

        // The other topic never noticed.
        let records = common::consume(
            &broker,
            BYSTANDER,
            3,
            1000,
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        assert_eq!(records.len(), 1000);
        common::check_dense(&records, 3);
        for record in &records {
            common::check_record(record, common::record_id(record), base_ts, 3);
        }
        broker.stop();
        assert_eq!(broker.warnings(), Vec::<String>::new(), "broker warnings");
    });
}
