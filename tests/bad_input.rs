//! Bad input over raw TCP (requests built with `kafka-protocol`, frames written by hand),
//! against a two-shard broker holding some data.
//!
//! Requests the broker cannot serve — garbage bytes, a frame length over
//! `socket.request.max.bytes` (100 MiB), a frame cut short by the client closing, an
//! unknown API key, an API it does not serve, Produce at an unsupported version, a
//! malformed body — make it close that connection, and only that one: a new connection gets
//! a correct ApiVersions answer, the stored data is unchanged and the process is alive.
//!
//! Requests that are well-formed but wrong get Kafka's error codes and the connection stays
//! open: ApiVersions v99 → a v0 answer with UNSUPPORTED_VERSION (35) and the API list
//! (KIP-511); a batch with a flipped byte → CORRUPT_MESSAGE (2); a batch over the topic's
//! `max.message.bytes` → MESSAGE_TOO_LARGE (10); Produce to a missing topic with
//! auto-creation off → UNKNOWN_TOPIC_OR_PARTITION (3); Fetch past the end (or before the
//! start) → OFFSET_OUT_OF_RANGE (1).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Broker, TestDir};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

/// The topic seeded with records before each bad input.
const SEED_TOPIC: &str = "intact";
const SEED_PARTITIONS: i32 = 2;
const SEED_RECORDS: usize = 200;
/// A topic whose batches may be at most 1000 bytes.
const SMALL_TOPIC: &str = "small-batches";

const CORRUPT_MESSAGE: i16 = 2;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_VERSION: i16 = 35;

/// A broker with auto-creation off, seeded with [`SEED_RECORDS`] records.
struct Fixture {
    broker: Broker,
    base_ts: i64,
    _dir: TestDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TestDir::new();
        let broker = Broker::start(&dir.data(), 2, &["--auto-create-topics", "false"]);
        common::create_topic(&broker, SEED_TOPIC, SEED_PARTITIONS, &[]);
        common::create_topic(&broker, SMALL_TOPIC, 1, &[("max.message.bytes", "1000")]);
        let base_ts = common::now_ms() - 3_600_000;
        let producer = common::producer(&broker, "all", &[]);
        common::send_workload(
            &producer,
            SEED_TOPIC,
            0..SEED_RECORDS,
            base_ts,
            std::time::Instant::now() + Duration::from_secs(60),
        );
        common::flush_all(&producer, Duration::from_secs(60));
        Fixture {
            broker,
            base_ts,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.broker.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(15)))
            .expect("write timeout");
        stream
    }

    /// The broker serves a new connection, the seeded data is intact, the process lives.
    fn assert_healthy(&mut self) {
        self.broker.assert_alive();
        let mut stream = self.connect();
        let response: ApiVersionsResponse = call(
            &mut stream,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        );
        assert_eq!(response.error_code, 0, "ApiVersions on a new connection");
        assert_lists_produce_and_fetch(&response);
        let records = common::consume(
            &self.broker,
            SEED_TOPIC,
            SEED_PARTITIONS,
            SEED_RECORDS,
            Duration::from_secs(30),
            Duration::from_millis(200),
        );
        assert_eq!(records.len(), SEED_RECORDS, "seeded records");
        let ends = common::check_dense(&records, SEED_PARTITIONS);
        for record in &records {
            common::check_record(
                record,
                common::record_id(record),
                self.base_ts,
                SEED_PARTITIONS,
            );
        }
        for (partition, end) in ends.iter().enumerate() {
            assert_eq!(
                common::watermarks(&self.broker, SEED_TOPIC, partition as i32),
                (0, *end)
            );
        }
        self.broker.assert_alive();
    }

    /// The high watermark of a partition.
    fn high_watermark(&self, topic: &str, partition: i32) -> i64 {
        common::watermarks(&self.broker, topic, partition).1
    }
}

fn assert_lists_produce_and_fetch(response: &ApiVersionsResponse) {
    for api in [ApiKey::Produce, ApiKey::Fetch, ApiKey::ApiVersions] {
        assert!(
            response
                .api_keys
                .iter()
                .any(|key| key.api_key == api as i16),
            "{api:?} missing from {:?}",
            response.api_keys
        );
    }
}

use common::{call, produce, produce_request, request};

/// Asserts the broker closes the connection: a read returns end-of-file or an error
/// (reset), and never data or a timeout.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => panic!("{what}: the broker answered {read} bytes instead of closing"),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{what}: the connection is still open")
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return, // reset: closed
        }
    }
}

/// Writes `bytes` (ignoring a reset: the broker may close while we write).
fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// One uncompressed RecordBatch of `count` records with `value_size`-byte values.
fn batch(count: usize, value_size: usize) -> BytesMut {
    let entries = (0..count)
        .map(|i| {
            (
                Some(Bytes::from(format!("raw-{i}"))),
                Bytes::from(vec![b'x'; value_size]),
            )
        })
        .collect();
    common::raw_batch((-1, -1, -1), entries)
}

/// Fetches (v12) from `offset` and returns (error code, high watermark, record bytes).
fn fetch(stream: &mut TcpStream, topic: &str, partition: i32, offset: i64) -> (i16, i64, usize) {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &request);
    assert_eq!(response.error_code, 0);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.partition_index, partition);
    (
        data.error_code,
        data.high_watermark,
        data.records.as_ref().map_or(0, Bytes::len),
    )
}

/// Runs one connection-closing case: send `bytes` (then half-close if `then_close`), expect
/// the connection closed and the broker healthy.
fn closes(what: &str, bytes: &[u8], then_close: bool) {
    common::with_timeout(Duration::from_secs(180), {
        let what = what.to_string();
        let bytes = bytes.to_vec();
        move || {
            let mut fixture = Fixture::new();
            let mut stream = fixture.connect();
            send_raw(&mut stream, &bytes);
            if then_close {
                let _ = stream.shutdown(Shutdown::Write);
            }
            assert_closed(&mut stream, &what);
            fixture.assert_healthy();
            let warnings = fixture.broker.warnings();
            assert!(
                warnings
                    .iter()
                    .any(|line| line.contains("closing connection")),
                "{what}: the broker logs why it closed the connection: {warnings:?}"
            );
            // Twice, on several connections at once: still only those connections close.
            let mut streams: Vec<TcpStream> = (0..4).map(|_| fixture.connect()).collect();
            for stream in &mut streams {
                send_raw(stream, &bytes);
                if then_close {
                    let _ = stream.shutdown(Shutdown::Write);
                }
            }
            for stream in &mut streams {
                assert_closed(stream, &what);
            }
            fixture.assert_healthy();
            fixture.broker.stop();
        }
    });
}

#[test]
fn garbage_bytes_close_the_connection() {
    // An HTTP request: its first four bytes read as a length of ~1.1 GiB.
    closes(
        "HTTP request",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
    );
}

#[test]
fn garbage_inside_a_valid_length_closes_the_connection() {
    let mut body = vec![0u8; 64];
    for (i, byte) in body.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(97).wrapping_add(13);
    }
    // Api key 0x0d6e (3438): no such API.
    closes("garbage frame", &framed(&body), false);
}

#[test]
fn negative_and_tiny_frame_lengths_close_the_connection() {
    closes("negative length", &(-1i32).to_be_bytes(), false);
    closes("length 3", &[0, 0, 0, 3, 1, 2, 3], false);
}

#[test]
fn frame_over_the_request_size_limit_closes_the_connection() {
    // 200 MiB declared, against socket.request.max.bytes = 100 MiB; a little body follows.
    let mut bytes = (200i32 * 1024 * 1024).to_be_bytes().to_vec();
    bytes.extend_from_slice(&request(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    ));
    closes("200 MiB frame", &bytes, false);
}

#[test]
fn truncated_frame_then_close() {
    let body = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    let mut frame = framed(&body);
    frame.truncate(frame.len() - 5);
    closes("truncated frame", &frame, true);
}

#[test]
fn unknown_api_key_closes_the_connection() {
    let mut body = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    body[0..2].copy_from_slice(&9999i16.to_be_bytes());
    closes("api key 9999", &framed(&body), false);
}

#[test]
fn unserved_api_closes_the_connection() {
    // ConsumerGroupHeartbeat (68, KIP-848) exists in Kafka but not in this broker: same
    // as unknown.
    let mut body = request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    body[0..2].copy_from_slice(&(ApiKey::ConsumerGroupHeartbeat as i16).to_be_bytes());
    closes("ConsumerGroupHeartbeat", &framed(&body), false);
}

#[test]
fn unsupported_produce_version_closes_the_connection() {
    let records = batch(3, 10).freeze();
    let mut body = request(
        ApiKey::Produce,
        3,
        1,
        &produce_request(SEED_TOPIC, 0, records),
    );
    body[2..4].copy_from_slice(&1i16.to_be_bytes());
    closes("Produce v1", &framed(&body), false);
}

#[test]
fn malformed_request_body_closes_the_connection() {
    // A Produce v9 whose topic array claims more entries than the frame holds.
    let mut body = request(
        ApiKey::Produce,
        9,
        1,
        &produce_request(SEED_TOPIC, 0, batch(3, 10).freeze()),
    );
    body.truncate(body.len() / 2);
    closes("Produce v9 cut in half", &framed(&body), false);
}

#[test]
fn api_versions_v99_gets_a_v0_answer_with_unsupported_version() {
    common::with_timeout(Duration::from_secs(120), || {
        let mut fixture = Fixture::new();
        let mut stream = fixture.connect();
        let mut frame = request(ApiKey::ApiVersions, 3, 77, &ApiVersionsRequest::default());
        frame[2..4].copy_from_slice(&99i16.to_be_bytes());
        let mut response =
            Bytes::from(common::roundtrip(&mut stream, &frame).expect("an answer to v99"));
        let header = ResponseHeader::decode(&mut response, 0).expect("header v0");
        assert_eq!(header.correlation_id, 77);
        let body = ApiVersionsResponse::decode(&mut response, 0).expect("body v0");
        assert_eq!(body.error_code, UNSUPPORTED_VERSION);
        assert_lists_produce_and_fetch(&body);
        assert!(
            body.api_keys
                .iter()
                .all(|key| key.min_version <= key.max_version)
        );
        assert_eq!(
            response.len(),
            0,
            "a v0 body has nothing after the api list"
        );
        // The connection stays usable: the client retries with a version we know.
        let retry: ApiVersionsResponse = call(
            &mut stream,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        );
        assert_eq!(retry.error_code, 0);
        assert_eq!(retry.api_keys, body.api_keys, "same ranges at v3 and v0");
        fixture.assert_healthy();
        fixture.broker.stop();
    });
}

#[test]
fn corrupt_batch_gets_corrupt_message() {
    common::with_timeout(Duration::from_secs(120), || {
        let mut fixture = Fixture::new();
        let mut stream = fixture.connect();
        let before = fixture.high_watermark(SEED_TOPIC, 0);
        let good = batch(5, 50);
        for position in [good.len() - 3, 30, 61] {
            // A value byte, the base timestamp, the first record's length: all under
            // the CRC.
            let mut corrupt = good.clone();
            corrupt[position] ^= 0x5a;
            assert_eq!(
                produce(&mut stream, SEED_TOPIC, 0, corrupt.freeze()).0,
                CORRUPT_MESSAGE,
                "byte {position} flipped"
            );
        }
        // A wrong CRC field itself.
        let mut corrupt = good.clone();
        corrupt[18] ^= 0xff;
        assert_eq!(
            produce(&mut stream, SEED_TOPIC, 0, corrupt.freeze()).0,
            CORRUPT_MESSAGE,
            "CRC flipped"
        );
        // A batch length that runs past the record set.
        let mut corrupt = good.clone();
        corrupt[8..12].copy_from_slice(&(good.len() as i32).to_be_bytes());
        assert_eq!(
            produce(&mut stream, SEED_TOPIC, 0, corrupt.freeze()).0,
            CORRUPT_MESSAGE,
            "batch length too long"
        );
        // A good batch followed by a corrupt one: the whole record set is refused.
        let mut pair = good.clone();
        let mut corrupt = good.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        pair.extend_from_slice(&corrupt);
        assert_eq!(
            produce(&mut stream, SEED_TOPIC, 0, pair.freeze()).0,
            CORRUPT_MESSAGE,
            "good batch + corrupt batch"
        );
        // Trailing bytes after a good batch (a partial second header).
        let mut trailing = good.clone();
        trailing.extend_from_slice(&good[..20]);
        assert_eq!(
            produce(&mut stream, SEED_TOPIC, 0, trailing.freeze()).0,
            CORRUPT_MESSAGE,
            "good batch + 20 stray bytes"
        );
        assert_eq!(
            fixture.high_watermark(SEED_TOPIC, 0),
            before,
            "nothing stored"
        );
        // The same connection still works, and the good batch lands at the end.
        assert_eq!(
            produce(&mut stream, SEED_TOPIC, 0, good.freeze()),
            (0, before)
        );
        assert_eq!(fixture.high_watermark(SEED_TOPIC, 0), before + 5);
        fixture.broker.assert_alive();
        fixture.broker.stop();
    });
}

#[test]
fn batch_over_max_message_bytes_gets_message_too_large() {
    common::with_timeout(Duration::from_secs(120), || {
        let mut fixture = Fixture::new();
        let mut stream = fixture.connect();
        let small = batch(2, 100);
        assert!(small.len() <= 1000);
        assert_eq!(produce(&mut stream, SMALL_TOPIC, 0, small.freeze()), (0, 0));
        let large = batch(4, 400);
        assert!(large.len() > 1000);
        assert_eq!(
            produce(&mut stream, SMALL_TOPIC, 0, large.freeze()).0,
            MESSAGE_TOO_LARGE
        );
        assert_eq!(fixture.high_watermark(SMALL_TOPIC, 0), 2, "nothing stored");
        fixture.assert_healthy();
        fixture.broker.stop();
    });
}

#[test]
fn produce_to_a_missing_topic_gets_unknown_topic() {
    common::with_timeout(Duration::from_secs(120), || {
        let mut fixture = Fixture::new();
        let mut stream = fixture.connect();
        assert_eq!(
            produce(&mut stream, "no-such-topic", 0, batch(1, 10).freeze()).0,
            UNKNOWN_TOPIC_OR_PARTITION
        );
        // A missing partition of an existing topic too.
        assert_eq!(
            produce(
                &mut stream,
                SEED_TOPIC,
                SEED_PARTITIONS,
                batch(1, 10).freeze()
            )
            .0,
            UNKNOWN_TOPIC_OR_PARTITION
        );
        assert!(
            !common::topic_names(&fixture.broker).contains(&"no-such-topic".to_string()),
            "auto-creation is off"
        );
        fixture.assert_healthy();
        fixture.broker.stop();
    });
}

#[test]
fn fetch_out_of_range_gets_offset_out_of_range() {
    common::with_timeout(Duration::from_secs(120), || {
        let mut fixture = Fixture::new();
        let mut stream = fixture.connect();
        let end = fixture.high_watermark(SEED_TOPIC, 1);
        assert!(end > 0);
        // At the end: no error, no records.
        assert_eq!(fetch(&mut stream, SEED_TOPIC, 1, end), (0, end, 0));
        // Inside: records.
        let (error, high_watermark, bytes) = fetch(&mut stream, SEED_TOPIC, 1, 0);
        assert_eq!((error, high_watermark), (0, end));
        assert!(bytes > 0);
        for offset in [end + 1, end + 1_000_000, -5] {
            let (error, _, bytes) = fetch(&mut stream, SEED_TOPIC, 1, offset);
            assert_eq!(
                (error, bytes),
                (OFFSET_OUT_OF_RANGE, 0),
                "fetch at {offset} (end {end})"
            );
        }
        fixture.assert_healthy();
        fixture.broker.stop();
    });
}
