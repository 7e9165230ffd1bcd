//! `sluice-bench produce`, `consume` and `e2e` (librdkafka load) against a real broker:
//! every record sent is acknowledged and read back and the result lines count them; a
//! short open-loop e2e run through the command line prints one JSON object per side with
//! its latencies and writes the histograms.

mod common;

use std::time::Duration;

use common::{Broker, TestDir};
use sluice_bench::load::consumer::StartAt;
use sluice_bench::load::keys::KeyDist;
use sluice_bench::load::{ConsumerSpec, Limit, LoadOptions, ProducerSpec, run};

fn producer(acks: &str) -> ProducerSpec {
    ProducerSpec {
        producers: 2,
        record_size: 1024,
        keys: KeyDist::RoundRobin(16),
        partitions: 4,
        acks: acks.to_string(),
        batch_size: 1_000_000,
        linger_ms: 5,
        compression: "none".to_string(),
        rate: None,
    }
}

#[test]
fn produce_then_consume_counts_every_record() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let broker = Broker::start(&dir.data(), 2, &[]);
        for acks in ["1", "all"] {
            let topic = format!("load-{acks}");
            let mut options = LoadOptions::new(broker.bootstrap(), &topic);
            options.producer = Some(producer(acks));
            options.limit = Limit::Count(20_000);
            options.progress = false;
            let produced = run(&options).expect("produce");
            let line = &produced.results[0];
            assert_eq!(line.name, "produce");
            assert_eq!((line.ops, line.bytes), (20_000, 20_000 * 1024));
            assert_eq!(produced.ack.map(|a| a.count()), Some(20_000));

            let mut options = LoadOptions::new(broker.bootstrap(), &topic);
            options.consumer = Some(ConsumerSpec {
                consumers: 2,
                group: None,
                start: StartAt::Beginning,
            });
            options.limit = Limit::Count(20_000);
            options.progress = false;
            options.label = Some("test".to_string());
            let consumed = run(&options).expect("consume");
            let line = &consumed.results[0];
            assert_eq!(line.name, "consume.test");
            assert_eq!((line.ops, line.bytes), (20_000, 20_000 * 1024));
        }
    });
}

#[test]
fn e2e_json_reports_both_sides() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let broker = Broker::start(&dir.data(), 2, &[]);
        let hdr = dir.data().with_file_name("e2e.hdr");
        let mut out = Vec::new();
        let bootstrap = broker.bootstrap();
        let hdr_arg = hdr.to_string_lossy().to_string();
        sluice_bench::cli::run_args(
            [
                "sluice-bench",
                "--json",
                "e2e",
                "--brokers",
                &bootstrap,
                "--topic",
                "e2e",
                "--partitions",
                "4",
                "--producers",
                "2",
                "--consumers",
                "2",
                "--acks",
                "1",
                "--rate",
                "5000",
                "--warmup",
                "1",
                "--duration",
                "3",
                "--keys",
                "random:8",
                "--record-size",
                "200",
                "--hdr-out",
                &hdr_arg,
                "--hdr-format",
                "v2",
            ],
            &mut out,
        )
        .expect("e2e");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (produce, consume) = (&lines[0], &lines[1]);
        assert_eq!(produce["name"], "e2e.produce");
        assert_eq!(consume["name"], "e2e.consume");
        // 3 s at 5000 records/s after the warmup: 15,000 measured records each way.
        assert_eq!(produce["ops"], 15_000, "{text}");
        assert_eq!(consume["ops"], 15_000, "{text}");
        assert_eq!(consume["missing_records"], 0.0, "{text}");
        assert_eq!(produce["bytes"], 15_000 * 200, "{text}");
        for (line, label) in [(produce, "ack"), (consume, "e2e")] {
            let latency = &line[label];
            assert_eq!(latency["count"], 15_000, "{text}");
            let p50 = latency["p50_us"].as_f64().unwrap_or(0.0);
            let max = latency["max_us"].as_f64().unwrap_or(0.0);
            assert!(p50 > 0.0 && p50 <= max, "{text}");
            // The open-loop rate is met: throughput is the target, within timing slack.
            let rate = line["ops_per_s"].as_f64().unwrap_or(0.0);
            assert!((4_000.0..=5_500.0).contains(&rate), "{text}");
        }
        assert_eq!(produce["target_rate"], 5000.0);
        assert_eq!(produce["acks"], "1");
        assert!(std::fs::metadata(&hdr).map(|m| m.len()).unwrap_or(0) > 0);
        assert!(
            std::fs::metadata(hdr.with_file_name("e2e.ack.hdr"))
                .map(|m| m.len())
                .unwrap_or(0)
                > 0
        );
    });
}
