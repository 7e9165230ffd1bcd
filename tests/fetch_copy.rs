//! `--fetch-zero-copy false` (the copying fetch path kept to measure what zero-copy is
//! worth) serves exactly what the zero-copy path serves: every record, from the cache right
//! after producing and from segment files after a restart.

mod common;

use std::time::{Duration, Instant};

use common::{Broker, TestDir};

const TOPIC: &str = "copied";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;

#[test]
fn the_copying_fetch_path_serves_every_record_from_memory_and_files() {
    common::with_timeout(Duration::from_secs(300), || {
        let dir = TestDir::new();
        let mut broker = Broker::start(&dir.data(), 2, &["--fetch-zero-copy", "false"]);
        common::create_topic(&broker, TOPIC, PARTITIONS, &[]);
        let base_ts = common::now_ms() - 60_000;
        let producer = common::producer(&broker, "all", &[]);
        common::send_workload(
            &producer,
            TOPIC,
            0..RECORDS,
            base_ts,
            Instant::now() + Duration::from_secs(120),
        );
        common::flush_all(&producer, Duration::from_secs(120));
        drop(producer);
        for source in ["cache", "files after a restart"] {
            let records = common::consume(
                &broker,
                TOPIC,
                PARTITIONS,
                RECORDS,
                Duration::from_secs(60),
                Duration::from_millis(500),
            );
            assert_eq!(records.len(), RECORDS, "{source}");
            let ends = common::check_dense(&records, PARTITIONS);
            assert_eq!(ends.iter().sum::<i64>(), RECORDS as i64, "{source}");
            let mut seen = vec![false; RECORDS];
            for record in &records {
                let id = common::record_id(record);
                assert!(
                    !std::mem::replace(&mut seen[id], true),
                    "{source}: {id} twice"
                );
                common::check_record(record, id, base_ts, PARTITIONS);
            }
            broker.stop();
            broker.restart();
        }
        broker.assert_alive();
    });
}
