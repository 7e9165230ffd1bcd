//! The admin listener: `/health` and `/metrics`, scraped and parsed with a Prometheus
//! text-format parser (`prometheus-parse`), checked to move with real load: records and
//! bytes in and out per partition, offsets, segments, request counts and latencies, fsync
//! histograms, connections, memory, and errors by Kafka error code.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{Broker, TestDir};
use kafka_protocol::error::ResponseError;
use prometheus_parse::{Sample, Scrape, Value};

/// `(status, head, body)` of `METHOD path` on the admin listener at `port`.
fn exchange(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    Ok((status, head.to_string(), body.to_string()))
}

/// `(status, body)` of `METHOD path` on the broker's admin listener.
fn http(broker: &Broker, method: &str, path: &str) -> (u16, String) {
    let (status, head, body) =
        exchange(broker.admin_port, method, path).expect("admin listener answers");
    if method == "HEAD" {
        assert!(body.is_empty(), "HEAD answers carry no body");
    } else {
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
    }
    (status, body)
}

struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    fn scrape(broker: &Broker) -> Metrics {
        let (status, body) = http(broker, "GET", "/metrics");
        assert_eq!(status, 200);
        let scrape = Scrape::parse(body.lines().map(|line| Ok(line.to_string())))
            .expect("valid Prometheus text format");
        assert!(
            scrape.docs.contains_key("sluice_partition_bytes_in_total"),
            "HELP lines present"
        );
        Metrics {
            samples: scrape.samples,
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.metric == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(key) == Some(*value))
        })
    }

    /// Sum of the counter or gauge samples named `name` with `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .map(|sample| match &sample.value {
                Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => *value,
                other => panic!("{name} is not a counter or gauge: {other:?}"),
            })
            .sum()
    }

    /// (count, sum) over the histograms named `name` with `labels`, checking each one's
    /// buckets are cumulative and end with the count.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (f64, f64) {
        let mut buckets_total = 0.0;
        let mut found = false;
        for sample in self.matching(name, labels) {
            let Value::Histogram(buckets) = &sample.value else {
                panic!("{name} is not a histogram: {:?}", sample.value);
            };
            found = true;
            assert!(
                buckets
                    .windows(2)
                    .all(|pair| pair[0].count <= pair[1].count
                        && pair[0].less_than < pair[1].less_than),
                "{name}: buckets cumulative and ordered"
            );
            buckets_total += buckets.last().map_or(0.0, |bucket| bucket.count);
        }
        assert!(found, "no histogram {name} {labels:?}");
        let count = self.sum(&format!("{name}_count"), labels);
        let sum = self.sum(&format!("{name}_sum"), labels);
        assert_eq!(buckets_total, count, "{name}: +Inf bucket equals the count");
        (count, sum)
    }
}

fn batch(records: usize, value_bytes: usize) -> Bytes {
    let entries = (0..records)
        .map(|_| (None, Bytes::from(vec![b'x'; value_bytes])))
        .collect();
    common::raw_batch((-1, -1, -1), entries).freeze()
}

#[test]
fn metrics_move_with_load_and_parse_as_prometheus_text() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        let broker = Broker::start(&dir.data(), 2, &[]);
        assert_eq!(
            http(&broker, "GET", "/health"),
            (200, "ready\n".to_string())
        );
        assert_eq!(http(&broker, "HEAD", "/health").0, 200);
        assert_eq!(http(&broker, "GET", "/nope").0, 404);
        assert_eq!(http(&broker, "DELETE", "/metrics").0, 405);

        let before = Metrics::scrape(&broker);
        assert_eq!(before.sum("sluice_ready", &[]), 1.0);
        assert_eq!(
            before.sum("sluice_shard_up", &[]),
            2.0,
            "both shards answer"
        );

        let topic = "metered";
        common::create_topic(&broker, topic, 2, &[]);
        let mut stream = TcpStream::connect(broker.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let one = batch(10, 100);
        let mut produced = HashMap::new();
        for round in 0..5 {
            for partition in 0..2 {
                let (error, base) = common::produce(&mut stream, topic, partition, one.clone());
                assert_eq!((error, base), (0, round * 10));
                *produced.entry(partition).or_insert(0u64) += one.len() as u64;
            }
        }
        // An error, counted by code.
        let (error, _) = common::produce(&mut stream, topic, 7, one.clone());
        assert_eq!(error, ResponseError::UnknownTopicOrPartition.code());
        let consumed = common::consume(
            &broker,
            topic,
            2,
            100,
            Duration::from_secs(30),
            Duration::ZERO,
        );
        assert_eq!(consumed.len(), 100);

        let after = Metrics::scrape(&broker);
        for partition in ["0", "1"] {
            let labels = [("topic", topic), ("partition", partition)];
            assert_eq!(
                after.sum("sluice_partition_records_in_total", &labels),
                50.0
            );
            assert_eq!(
                after.sum("sluice_partition_bytes_in_total", &labels),
                produced[&partition.parse::<i32>().expect("index")] as f64
            );
            assert_eq!(after.sum("sluice_partition_log_end_offset", &labels), 50.0);
            assert_eq!(after.sum("sluice_partition_high_watermark", &labels), 50.0);
            assert_eq!(after.sum("sluice_partition_log_start_offset", &labels), 0.0);
            assert_eq!(
                after.sum("sluice_partition_records_out_total", &labels),
                50.0
            );
            assert!(
                after.sum("sluice_partition_bytes_out_total", &labels)
                    >= after.sum("sluice_partition_bytes_in_total", &labels)
            );
            assert_eq!(after.sum("sluice_partition_segments", &labels), 1.0);
            assert!(after.sum("sluice_partition_size_bytes", &labels) >= 5.0 * one.len() as f64);
            assert_eq!(after.sum("sluice_partition_writable", &labels), 1.0);
        }
        // The two partitions are owned by different shards.
        let this_topic = [("topic", topic)];
        let shards: std::collections::HashSet<&str> = after
            .matching("sluice_partition_log_end_offset", &this_topic)
            .filter_map(|sample| sample.labels.get("shard"))
            .collect();
        assert_eq!(shards.len(), 2, "partitions spread over the shards");

        let produce = [("api", "Produce")];
        let requests = after.sum("sluice_requests_total", &produce)
            - before.sum("sluice_requests_total", &produce);
        assert_eq!(requests, 11.0, "10 produces and the refused one");
        let (count, seconds) = after.histogram("sluice_request_duration_seconds", &produce);
        assert_eq!(count, after.sum("sluice_requests_total", &produce));
        assert!(seconds > 0.0);
        assert!(after.sum("sluice_requests_total", &[("api", "Fetch")]) >= 1.0);
        assert!(after.sum("sluice_request_bytes_total", &produce) >= 10.0 * one.len() as f64);
        assert_eq!(
            after.sum(
                "sluice_errors_total",
                &[
                    ("api", "Produce"),
                    ("error", "UNKNOWN_TOPIC_OR_PARTITION"),
                    ("code", "3")
                ]
            ),
            1.0
        );
        let (fsyncs, fsync_seconds) = after.histogram("sluice_fsync_duration_seconds", &[]);
        assert!(fsyncs >= 10.0, "acks=all produces waited for fdatasyncs");
        assert!(fsync_seconds > 0.0);
        let (syncs, batches) = after.histogram("sluice_fsync_batches", &[]);
        assert_eq!(syncs, fsyncs);
        assert!(batches >= 10.0, "every produced batch made durable");
        assert!(after.sum("sluice_fsync_bytes_total", &[]) >= 10.0 * one.len() as f64);
        assert!(
            after.sum("sluice_connections", &[]) >= 1.0,
            "our connection"
        );
        assert!(
            after.sum("sluice_connections_accepted_total", &[])
                > before.sum("sluice_connections_accepted_total", &[])
        );
        assert!(after.sum("sluice_memory_bytes", &[("kind", "batch_cache")]) > 0.0);
        assert!(after.sum("sluice_memory_bytes", &[("kind", "connection_buffers")]) > 0.0);
        // The consumer just left: its last long-poll fetches may still be waiting.
        assert_eq!(after.matching("sluice_inflight_requests", &[]).count(), 2);
        assert!(after.sum("sluice_inflight_requests", &[]) <= 4.0);

        // More load moves the counters again.
        assert_eq!(common::produce(&mut stream, topic, 0, one.clone()), (0, 50));
        let later = Metrics::scrape(&broker);
        let partition_0 = [("topic", topic), ("partition", "0")];
        assert_eq!(
            later.sum("sluice_partition_records_in_total", &partition_0),
            60.0
        );
        assert_eq!(
            later.sum("sluice_partition_high_watermark", &partition_0),
            60.0
        );
        drop(stream);
    });
}

/// `/health` status, or `None` while nothing listens.
fn health(port: u16) -> Option<u16> {
    exchange(port, "GET", "/health")
        .ok()
        .map(|(status, _, _)| status)
}

#[test]
fn health_is_ready_only_once_recovery_is_done_and_kafka_serves() {
    common::with_timeout(Duration::from_secs(120), || {
        let dir = TestDir::new();
        // A crashed broker with many partitions, so the restart has logs to recover.
        let mut broker = Broker::start(&dir.data(), 2, &[]);
        common::create_topic(&broker, "recovering", 32, &[]);
        let mut stream = TcpStream::connect(broker.addr()).expect("connect");
        for partition in 0..32 {
            assert_eq!(
                common::produce(&mut stream, "recovering", partition, batch(5, 100)).0,
                0
            );
        }
        drop(stream);
        broker.kill();

        // Restarted on fresh ports, and watched from the moment it is spawned.
        let mut broker = Broker::spawn_on(&dir.data(), common::free_port(), 2, &[]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            broker.assert_alive();
            let status = health(broker.admin_port);
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if status == Some(200) {
                // Ready means served: the Kafka listener answers a real request now.
                let mut kafka = TcpStream::connect(broker.addr())
                    .expect("the Kafka listener accepts once /health is 200");
                kafka
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                assert_eq!(
                    common::produce(&mut kafka, "recovering", 31, batch(1, 10)),
                    (0, 5),
                    "recovered log answers at once"
                );
                break;
            }
            assert!(
                matches!(status, None | Some(503)),
                "unexpected /health status {status:?}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "never ready: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        eprintln!("health went {seen:?}");
        assert_eq!(seen.last(), Some(&Some(200)), "{seen:?}");
    });
}
