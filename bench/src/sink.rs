//! `sluice-bench sink`: a Kafka-protocol endpoint that accepts produce requests and throws
//! the records away, to measure the load tool's own ceiling (how fast the clients can
//! generate load when nothing downstream costs anything) on the same machine as a broker.
//!
//! It answers just what a librdkafka producer needs: ApiVersions, Metadata (one broker,
//! itself; every requested topic exists with `partitions` partitions), CreateTopics
//! (success) and Produce (nothing for `acks=0`, otherwise success with made-up offsets).
//! Each connection is one blocking thread that reads whole frames, so the sink's own cost
//! is about one kernel copy per byte. Nothing is stored and nothing can be consumed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsResponse, MetadataResponse, RequestHeader,
    RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::report::{MB, ResultLine};

/// The APIs and versions the sink serves.
const VERSIONS: [(ApiKey, i16, i16); 4] = [
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::Produce, 3, 9),
    (ApiKey::CreateTopics, 2, 7),
];
/// Largest frame accepted.
const MAX_FRAME: usize = 256 << 20;

/// What the sink has received, shared by its connection threads.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Produce requests.
    pub requests: AtomicU64,
    /// Bytes of produce requests (frames, headers included).
    pub bytes: AtomicU64,
}

/// A running sink: its address and counters.
#[derive(Debug)]
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it has received.
    pub stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    /// Starts listening on `listen` (port 0: any free port) in a background thread.
    ///
    /// # Errors
    /// Binding failed.
    pub fn start(listen: &str, partitions: i32) -> anyhow::Result<Self> {
        anyhow::ensure!(partitions > 0, "--partitions must be at least 1");
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(SinkStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_stats, thread_stop) = (stats.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sink-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if thread_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let stats = thread_stats.clone();
                    let _ = std::thread::Builder::new()
                        .name("sink-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve(stream, addr, partitions, &stats) {
                                eprintln!("sink: connection closed: {e:#}");
                            }
                        });
                }
            })
            .context("spawning the accept thread")?;
        Ok(Self { addr, stats, stop })
    }

    /// Bytes and produce requests received so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.stats.bytes.load(Ordering::Relaxed),
            self.stats.requests.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

/// Runs a sink on `listen` for `duration` (forever if `None`), printing the receive rate
/// each second on stderr; returns what it received.
///
/// # Errors
/// Binding failed.
pub fn run(
    listen: &str,
    partitions: i32,
    duration: Option<Duration>,
) -> anyhow::Result<ResultLine> {
    let sink = Sink::start(listen, partitions)?;
    eprintln!(
        "sink: listening on {} ({partitions} partitions per topic); records are discarded",
        sink.addr
    );
    let start = Instant::now();
    let mut last = (0u64, 0u64);
    let mut active = Duration::ZERO;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let (bytes, requests) = sink.totals();
        if bytes > last.0 {
            active += Duration::from_secs(1);
            eprintln!(
                "[{:>6.1}s] sink {:>8.1} MB/s {:>7} requests/s",
                start.elapsed().as_secs_f64(),
                (bytes - last.0) as f64 / MB,
                requests - last.1
            );
        }
        last = (bytes, requests);
        if duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
    }
    Ok(ResultLine::new("sink", last.0, last.1, active))
}

fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    partitions: i32,
    stats: &SinkStats,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut length = [0u8; 4];
    loop {
        match stream.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let size = usize::try_from(i32::from_be_bytes(length)).unwrap_or(usize::MAX);
        if !(8..=MAX_FRAME).contains(&size) {
            bail!("bad frame length {size}");
        }
        let mut frame = vec![0u8; size];
        stream.read_exact(&mut frame)?;
        if let Some(response) = answer(Bytes::from(frame), addr, partitions, stats)? {
            stream.write_all(&response)?;
        }
    }
}

/// The response frame to one request frame (without its length), if it needs one.
fn answer(
    mut frame: Bytes,
    addr: SocketAddr,
    partitions: i32,
    stats: &SinkStats,
) -> anyhow::Result<Option<Bytes>> {
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let size = frame.len() as u64 + 4;
    let api_key = ApiKey::try_from(raw_key).map_err(|()| anyhow::anyhow!("API key {raw_key}"))?;
    let Some(&(_, min, max)) = VERSIONS.iter().find(|(key, _, _)| *key == api_key) else {
        bail!("{api_key:?} is not served by the sink");
    };
    if !(min..=max).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer v0 with UNSUPPORTED_VERSION and our ranges.
            let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let response = api_versions().with_error_code(35);
            return Ok(Some(encode(
                correlation_id,
                api_key,
                0,
                &ResponseKind::ApiVersions(response),
            )?));
        }
        bail!("{api_key:?} v{version} is not served by the sink");
    }
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))?;
    let body = RequestKind::decode(api_key, &mut frame, version)?;
    let response = match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
        RequestKind::Metadata(request) => {
            let broker = MetadataResponseBroker::default()
                .with_node_id(BrokerId(0))
                .with_host(StrBytes::from_string(addr.ip().to_string()))
                .with_port(i32::from(addr.port()));
            let topics = request
                .topics
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.name)
                .map(|name| {
                    let partitions = (0..partitions)
                        .map(|index| {
                            MetadataResponsePartition::default()
                                .with_partition_index(index)
                                .with_leader_id(BrokerId(0))
                                .with_replica_nodes(vec![BrokerId(0)])
                                .with_isr_nodes(vec![BrokerId(0)])
                        })
                        .collect();
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_partitions(partitions)
                })
                .collect();
            let mut response = MetadataResponse::default()
                .with_brokers(vec![broker])
                .with_topics(topics);
            if version >= 1 {
                response = response.with_controller_id(BrokerId(0));
            }
            ResponseKind::Metadata(response)
        }
        RequestKind::CreateTopics(request) => {
            let topics = request
                .topics
                .into_iter()
                .map(|t| CreatableTopicResult::default().with_name(t.name))
                .collect();
            ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(topics))
        }
        RequestKind::Produce(request) => {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(size, Ordering::Relaxed);
            if request.acks == 0 {
                return Ok(None);
            }
            let responses = request
                .topic_data
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_data
                        .into_iter()
                        .map(|p| PartitionProduceResponse::default().with_index(p.index))
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(topic.name)
                        .with_partition_responses(partitions)
                })
                .collect();
            ResponseKind::Produce(
                kafka_protocol::messages::ProduceResponse::default().with_responses(responses),
            )
        }
        other => bail!("unexpected request {other:?}"),
    };
    Ok(Some(encode(
        header.correlation_id,
        api_key,
        version,
        &response,
    )?))
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        VERSIONS
            .iter()
            .map(|(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(*key as i16)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect(),
    )
}

fn encode(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let mut buffer = BytesMut::with_capacity(256);
    buffer.put_i32(0);
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buffer, header_version)?;
    response.encode(&mut buffer, version)?;
    let length = i32::try_from(buffer.len() - 4)?;
    buffer[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::keys::KeyDist;
    use crate::load::{Limit, LoadOptions, ProducerSpec};

    /// librdkafka producers (acks 0 and 1) run against the sink, and it counts their bytes.
    #[test]
    fn librdkafka_produces_into_the_sink() -> anyhow::Result<()> {
        let sink = Sink::start("127.0.0.1:0", 4)?;
        for acks in ["0", "1"] {
            let mut options = LoadOptions::new(sink.addr.to_string(), "t");
            options.producer = Some(ProducerSpec {
                producers: 1,
                record_size: 1000,
                keys: KeyDist::RoundRobin(4),
                partitions: 4,
                acks: acks.into(),
                batch_size: 100_000,
                linger_ms: 1,
                compression: "none".into(),
                rate: None,
            });
            options.limit = Limit::Count(5_000);
            options.progress = false;
            let report = crate::load::run(&options)?;
            assert_eq!(report.results[0].ops, 5_000);
        }
        let (bytes, requests) = sink.totals();
        assert!(bytes > 2 * 5_000 * 1000, "{bytes}");
        assert!(requests > 0);
        Ok(())
    }
}
