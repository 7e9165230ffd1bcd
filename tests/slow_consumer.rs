//! A consumer that stops reading its socket must not stall anyone else on its shard. Fetch
//! answers go out with sendfile; on a blocking socket sendfile sleeps until the client
//! drains it, which put the whole shard (every partition and connection on that core) to
//! sleep behind one slow consumer. The broker makes sockets non-blocking, so sendfile
//! answers EAGAIN and the writer waits for room through the reactor.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Broker, TestDir};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "big";
const REQUESTS: usize = 40;

#[test]
fn a_consumer_that_stops_reading_does_not_stall_its_shard() {
    common::with_timeout(Duration::from_secs(180), || {
        let dir = TestDir::new();
        // One shard, so the stalled connection and the others share it; a tiny batch cache,
        // so fetches are served from segment files (sendfile) rather than from memory.
        let config = dir.data().with_extension("toml");
        std::fs::write(&config, "cache_bytes_per_shard = 1048576\n").expect("config");
        let config = config.to_string_lossy().into_owned();
        let broker = Broker::start(&dir.data(), 1, &["--config", &config]);
        common::create_topic(&broker, TOPIC, 1, &[]);
        let mut stream = TcpStream::connect(broker.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let value = Bytes::from(vec![b'v'; 100_000]);
        for round in 0..REQUESTS {
            let batch = common::raw_batch((-1, -1, -1), vec![(None, value.clone()); 10]).freeze();
            assert_eq!(
                common::produce(&mut stream, TOPIC, 0, batch),
                (0, (round * 10) as i64)
            );
        }
        // Read it all once: the segment file is now in the page cache, so the next fetch
        // goes out with sendfile.
        let records = common::consume(
            &broker,
            TOPIC,
            1,
            REQUESTS * 10,
            Duration::from_secs(60),
            Duration::ZERO,
        );
        assert_eq!(records.len(), REQUESTS * 10);

        // The slow consumer: asks for everything (~40 MB) and never reads the answer.
        let mut stalled = TcpStream::connect(broker.addr()).expect("connect");
        let fetch = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(64 << 20),
                    ]),
            ]);
        let frame = common::request(ApiKey::Fetch, 11, 1, &fetch);
        stalled
            .write_all(&(frame.len() as u32).to_be_bytes())
            .expect("send");
        stalled.write_all(&frame).expect("send");
        std::thread::sleep(Duration::from_millis(500)); // let its socket buffers fill

        // Everyone else on the shard is still served, promptly.
        let started = Instant::now();
        let batch =
            common::raw_batch((-1, -1, -1), vec![(None, Bytes::from_static(b"x"))]).freeze();
        assert_eq!(
            common::produce(&mut stream, TOPIC, 0, batch),
            (0, (REQUESTS * 10) as i64)
        );
        let mut other = TcpStream::connect(broker.addr()).expect("connect");
        other
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let metadata: MetadataResponse =
            common::call(&mut other, ApiKey::Metadata, 9, &MetadataRequest::default());
        assert_eq!(metadata.brokers.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "other clients waited {:?} behind the stalled consumer",
            started.elapsed()
        );
        drop(stalled);
    });
}
