//! `sluice-bench produce` and `consume` (librdkafka load) against a real broker: every record
//! sent is acknowledged and read back, and the result lines count them.

mod common;

use std::time::Duration;

use common::{Broker, TestDir};
use sluice_bench::kafka::{ConsumeOptions, ProduceOptions, consume, produce};

#[test]
fn produce_then_consume_counts_every_record() {
    common::with_timeout(Duration::from_secs(90), || {
        let dir = TestDir::new();
        let broker = Broker::start(&dir.data(), 2, &[]);
        for acks in ["1", "all"] {
            let topic = format!("load-{acks}");
            let produced = produce(&ProduceOptions {
                brokers: broker.bootstrap(),
                topic: topic.clone(),
                partitions: 4,
                record_size: 1024,
                count: 20_000,
                acks: acks.to_string(),
                linger_ms: 5,
                batch_size: 1_000_000,
            })
            .expect("produce");
            assert_eq!((produced.ops, produced.bytes), (20_000, 20_000 * 1024));
            let consumed = consume(&ConsumeOptions {
                brokers: broker.bootstrap(),
                topic,
                count: 20_000,
                label: "test".to_string(),
            })
            .expect("consume");
            assert_eq!((consumed.ops, consumed.bytes), (20_000, 20_000 * 1024));
        }
    });
}
