//! Shared helpers of the integration tests: start the real `sluice` binary on a free
//! loopback port with its data in a temporary directory, stop it (SIGTERM), crash it
//! (SIGKILL), bound every test in time, and build rdkafka clients pointed at it.
//!
//! Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::protocol::{Decodable as _, Encodable as _};
use rdkafka::ClientConfig;

/// How long a broker may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Brokers still running, as (test that started it, PID), so a timed-out test can kill
/// its own brokers before failing.
static RUNNING: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());
/// Source of test tokens for [`with_timeout`].
static NEXT_TEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// The token of the test running on this thread (0 outside [`with_timeout`]).
    static TEST: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn running() -> std::sync::MutexGuard<'static, Vec<(u64, u32)>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn forget(pid: u32) {
    running().retain(|(_, p)| *p != pid);
}

/// A free loopback port: bind port 0, read the port, release it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Runs `body` on its own thread and fails the test if it takes longer than `limit`
/// (killing every broker the test started, so nothing outlives it).
pub fn with_timeout<F: FnOnce() + Send + 'static>(limit: Duration, body: F) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let test = NEXT_TEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let thread = std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            TEST.with(|cell| cell.set(test));
            body();
            let _ = done_tx.send(());
        })
        .expect("spawn test thread");
    match done_rx.recv_timeout(limit) {
        Ok(()) => thread.join().expect("test thread"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let mut running = running();
            for (_, pid) in running.iter().filter(|(owner, _)| *owner == test) {
                kill_pid(*pid, libc::SIGKILL);
            }
            running.retain(|(owner, _)| *owner != test);
            panic!("test did not finish within {limit:?}");
        }
    }
}

fn kill_pid(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the PID is one of our children.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A running `sluice serve` process. Dropping it kills the process (SIGKILL) and waits.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    /// The Kafka listener's port.
    pub port: u16,
    /// The admin listener's port (`/metrics`, `/health`).
    pub admin_port: u16,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where the broker's stderr goes.
    pub log_path: PathBuf,
    /// Extra flags it was started with (reused by [`Broker::restart`]).
    pub extra: Vec<String>,
    /// `--cores`.
    pub cores: usize,
}

impl Broker {
    /// Starts a broker on a free port with its data in `data_dir`.
    pub fn start(data_dir: &Path, cores: usize, extra: &[&str]) -> Broker {
        Self::start_on(data_dir, free_port(), cores, extra)
    }

    /// Starts a broker on `port` with its data in `data_dir`, and waits until it accepts
    /// connections.
    pub fn start_on(data_dir: &Path, port: u16, cores: usize, extra: &[&str]) -> Broker {
        let mut broker = Self::spawn_on(data_dir, port, cores, extra);
        broker.wait_ready();
        broker
    }

    /// Starts a broker on `port` with its data in `data_dir`, without waiting for it (to
    /// watch it start).
    pub fn spawn_on(data_dir: &Path, port: u16, cores: usize, extra: &[&str]) -> Broker {
        let log_path = data_dir.with_extension("broker.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open broker log");
        let admin_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--kafka-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{admin_port}"))
            .arg("--cores")
            .arg(cores.to_string())
            .args(extra)
            .env("SLUICE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of
        // the parent; it makes the broker die with the thread that started it, so a test
        // process that is killed leaves no broker behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn sluice");
        running().push((TEST.with(std::cell::Cell::get), child.id()));
        Broker {
            child: Some(child),
            port,
            admin_port,
            data_dir: data_dir.to_path_buf(),
            log_path,
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
            cores,
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("try_wait") {
                panic!(
                    "broker exited during startup with {status}\n{}",
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "broker not ready after {START_TIMEOUT:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("broker is running")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The last lines of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        let tail: Vec<String> = lines[start..].iter().map(|line| strip_ansi(line)).collect();
        format!(
            "--- broker log ({}) ---\n{}",
            self.log_path.display(),
            tail.join("\n")
        )
    }

    /// Lines of the broker's log at level WARN or ERROR (colour codes removed), except
    /// connections the client reset: a client that closes a socket with a response still
    /// unread (a consumer dropped mid-fetch) resets it, which is no broker problem.
    pub fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .map(strip_ansi)
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .filter(|line| !line.contains("Connection reset by peer"))
            .collect()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Asserts the process is still running.
    pub fn assert_alive(&mut self) {
        assert!(self.is_alive(), "broker died\n{}", self.log_tail());
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                forget(child.id());
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker with SIGTERM and waits for a clean exit (status 0).
    pub fn stop(&mut self) {
        kill_pid(self.pid(), libc::SIGTERM);
        let status = self.wait_exit(STOP_TIMEOUT);
        match status {
            Some(status) => assert!(
                status.success(),
                "broker exited with {status} after SIGTERM\n{}",
                self.log_tail()
            ),
            None => {
                let tail = self.log_tail();
                self.kill();
                panic!("broker did not stop within {STOP_TIMEOUT:?} of SIGTERM\n{tail}");
            }
        }
    }

    /// Kills the broker with SIGKILL (a crash) and waits for it.
    pub fn kill(&mut self) {
        if self.child.is_some() {
            kill_pid(self.pid(), libc::SIGKILL);
            let _ = self.wait_exit(STOP_TIMEOUT);
        }
    }

    /// Starts the broker again on the same data directory, port and flags (after
    /// [`Broker::stop`] or [`Broker::kill`]).
    pub fn restart(&mut self) {
        self.restart_with_cores(self.cores);
    }

    /// Like [`Broker::restart`], with another core count.
    pub fn restart_with_cores(&mut self, cores: usize) {
        assert!(self.child.is_none(), "restart of a running broker");
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let deadline = Instant::now() + START_TIMEOUT;
        // A killed broker's listening socket can outlive the process for a moment (the
        // kernel tears its io_uring down asynchronously) and still completes handshakes:
        // a client connecting then would be reset. Wait until the port refuses.
        while TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the old listener on {} did not go away",
                self.addr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The port was just released; retry while the old listener's socket lingers.
        loop {
            let mut attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Broker::start_on(&self.data_dir, self.port, cores, &extra)
            }));
            match &mut attempt {
                Ok(broker) => {
                    self.child = broker.child.take();
                    self.admin_port = broker.admin_port;
                    self.cores = cores;
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(_) => panic!("broker did not restart\n{}", self.log_tail()),
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_pid(child.id(), libc::SIGKILL);
            let _ = child.wait();
            forget(child.id());
        }
    }
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A temporary directory with a `data` subdirectory for a broker (its log lands beside it).
#[derive(Debug)]
pub struct TestDir {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

impl TestDir {
    /// A new temporary directory.
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("sluice-it-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// The broker's data directory inside it.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// Client settings shared by every rdkafka client of the tests.
pub fn client_config(broker: &Broker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("log_level", "6");
    config
}

/// A producer configuration: idempotent with `acks=all` (librdkafka requires acks=all for
/// it), Kafka's murmur2 partitioner for keyed records.
pub fn producer_config(broker: &Broker, acks: &str) -> ClientConfig {
    let mut config = client_config(broker);
    config
        .set(
            "enable.idempotence",
            if matches!(acks, "all" | "-1") {
                "true"
            } else {
                "false"
            },
        )
        .set("acks", acks)
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    config
}

/// A consumer configuration for `assign()` with explicit offsets (no group coordination,
/// no commits).
pub fn consumer_config(broker: &Broker) -> ClientConfig {
    let mut config = client_config(broker);
    config
        .set("group.id", "sluice-integration-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    config
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let seed: u32 = 0x9747_b28c;
    let length = data.len();
    let mut h: u32 = seed ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a keyed record.
pub fn kafka_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// One RecordBatch header as stored in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    /// Base offset.
    pub base_offset: i64,
    /// Bytes of the whole batch (length field + 12).
    pub size: usize,
    /// Compression codec (attributes & 7): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub codec: u8,
    /// Records in the batch.
    pub records: i32,
}

/// Parses the batch headers of every `.log` segment in a partition directory, in offset
/// order. Stops at the first zero or truncated header (end of data).
pub fn stored_batches(partition_dir: &Path) -> Vec<StoredBatch> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", partition_dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    segments.sort();
    let mut batches = Vec::new();
    for segment in segments {
        let bytes = std::fs::read(&segment).expect("read segment");
        let mut position = 0usize;
        while position + 61 <= bytes.len() {
            let header = &bytes[position..];
            let base_offset = i64::from_be_bytes(header[0..8].try_into().expect("8 bytes"));
            let length = i32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
            if length <= 0 {
                break;
            }
            let size = length as usize + 12;
            if position + size > bytes.len() {
                break;
            }
            assert_eq!(
                header[16], 2,
                "magic of the batch at {position} in {segment:?}"
            );
            let attributes = i16::from_be_bytes([header[21], header[22]]);
            let records = i32::from_be_bytes(header[57..61].try_into().expect("4 bytes"));
            batches.push(StoredBatch {
                base_offset,
                size,
                codec: (attributes & 7) as u8,
                records,
            });
            position += size;
        }
    }
    batches
}

/// Sum of the sizes of the `.log` segment files of a partition directory.
pub fn segment_bytes(partition_dir: &Path) -> u64 {
    std::fs::read_dir(partition_dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", partition_dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .map(|path| std::fs::metadata(path).expect("metadata").len())
        .sum()
}

/// Sends one raw Kafka frame (length prefix added) and reads one response frame (length
/// prefix removed), with a read timeout.
pub fn roundtrip(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame)?;
    read_frame(stream)
}

/// Reads one response frame (length prefix removed).
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = i32::from_be_bytes(length);
    let length = usize::try_from(length)
        .map_err(|_| std::io::Error::other(format!("negative frame length {length}")))?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// A request frame body (header + request), without the length prefix.
pub fn request<R: kafka_protocol::protocol::Encodable>(
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Vec<u8> {
    let mut buffer = bytes::BytesMut::new();
    kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "sluice-raw-test",
        )))
        .encode(&mut buffer, api.request_header_version(version))
        .expect("encode header");
    body.encode(&mut buffer, version).expect("encode request");
    buffer.to_vec()
}

/// Sends a request and decodes its response (header version per the API and version).
pub fn call<R: kafka_protocol::protocol::Encodable, S: kafka_protocol::protocol::Decodable>(
    stream: &mut TcpStream,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    body: &R,
) -> S {
    let frame = request(api, version, 4242, body);
    let response = roundtrip(stream, &frame)
        .unwrap_or_else(|error| panic!("{api:?} v{version}: no answer: {error}"));
    let mut response = bytes::Bytes::from(response);
    let header_version = if api == kafka_protocol::messages::ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = kafka_protocol::messages::ResponseHeader::decode(&mut response, header_version)
        .expect("response header");
    assert_eq!(header.correlation_id, 4242);
    S::decode(&mut response, version).expect("response body")
}

/// One uncompressed batch of `entries` (key, value), from `producer` = (producer id, epoch,
/// first sequence); `(-1, -1, -1)` for a producer without idempotence.
pub fn raw_batch(
    producer: (i64, i16, i32),
    entries: Vec<(Option<bytes::Bytes>, bytes::Bytes)>,
) -> bytes::BytesMut {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let (producer_id, producer_epoch, first_sequence) = producer;
    let now = now_ms();
    let records: Vec<Record> = entries
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch where offset - sequence changes; the base
            // sequence is the first record's (-1 without idempotence).
            sequence: first_sequence + i as i32,
            timestamp: now,
            key,
            value: Some(value),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    let length = i32::from_be_bytes(buffer[8..12].try_into().expect("4 bytes"));
    assert_eq!(length as usize + 12, buffer.len(), "one batch");
    buffer
}

/// A Produce request (acks=all) of one record set to one partition.
pub fn produce_request(
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_string(topic.to_string()),
                ))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// Produces one record set (Produce v9) and returns (error code, base offset) of the
/// partition.
pub fn produce(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> (i16, i64) {
    let response: kafka_protocol::messages::ProduceResponse = call(
        stream,
        kafka_protocol::messages::ApiKey::Produce,
        9,
        &produce_request(topic, partition, records),
    );
    assert_eq!(response.responses.len(), 1);
    let partitions = &response.responses[0].partition_responses;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].index, partition);
    (partitions[0].error_code, partitions[0].base_offset)
}

// ---------------------------------------------------------------------------------------
// A deterministic keyed workload: record `id` has a key, a value, headers and a timestamp
// that are functions of `id`, so a consumer can check every field of what it reads.

/// What record `id` of the workload holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The key (`key-<id mod 40000>`: keys repeat, so one key's records share a partition).
    pub key: Vec<u8>,
    /// The value: the id in text, then binary filler of 0..300 bytes.
    pub value: Vec<u8>,
    /// Headers in order; some empty, some null.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// CreateTime: `base_ts + id`.
    pub timestamp: i64,
}

impl Expected {
    /// Record `id` with timestamps counted from `base_ts`.
    pub fn of(id: usize, base_ts: i64) -> Expected {
        let mut value = format!("value-{id}:").into_bytes();
        let filler = (id * 7919) % 300;
        value.extend((0..filler).map(|j| ((id * 31 + j * 17) % 251) as u8));
        let mut headers = vec![
            ("id".to_string(), Some(id.to_string().into_bytes())),
            ("kind".to_string(), Some(b"integration".to_vec())),
        ];
        if id.is_multiple_of(5) {
            headers.push(("empty".to_string(), Some(Vec::new())));
        }
        if id.is_multiple_of(7) {
            headers.push(("null".to_string(), None));
        }
        Expected {
            key: format!("key-{}", id % 40_000).into_bytes(),
            value,
            headers,
            timestamp: base_ts + id as i64,
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Delivery reports of a producer: where each acknowledged record went, and the failures.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// id → (partition, offset) of acknowledged records.
    pub acked: Mutex<std::collections::HashMap<usize, (i32, i64)>>,
    /// id → error of failed records.
    pub failed: Mutex<Vec<(usize, String)>>,
}

impl Deliveries {
    /// Acknowledged records so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().expect("acked").len()
    }

    /// Failed records so far.
    pub fn failed_count(&self) -> usize {
        self.failed.lock().expect("failed").len()
    }
}

/// A producer context recording delivery reports; the delivery opaque is the record id.
#[derive(Debug, Clone, Default)]
pub struct DeliveryContext {
    /// The reports.
    pub deliveries: std::sync::Arc<Deliveries>,
}

impl rdkafka::ClientContext for DeliveryContext {}

impl rdkafka::producer::ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, id: usize) {
        use rdkafka::Message;
        match result {
            Ok(message) => {
                let previous = self
                    .deliveries
                    .acked
                    .lock()
                    .expect("acked")
                    .insert(id, (message.partition(), message.offset()));
                assert!(previous.is_none(), "record {id} acknowledged twice");
            }
            Err((error, _)) => self
                .deliveries
                .failed
                .lock()
                .expect("failed")
                .push((id, error.to_string())),
        }
    }
}

/// The producer type of the tests.
pub type Producer = rdkafka::producer::ThreadedProducer<DeliveryContext>;

/// A producer with `acks` (see [`producer_config`]) and extra settings.
pub fn producer(broker: &Broker, acks: &str, extra: &[(&str, &str)]) -> Producer {
    let mut config = producer_config(broker, acks);
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(DeliveryContext::default())
        .expect("create producer")
}

/// Enqueues records `ids` of the workload on `topic` (partition chosen by the client's
/// partitioner), waiting while the client's queue is full.
pub fn send_workload(
    producer: &Producer,
    topic: &str,
    ids: std::ops::Range<usize>,
    base_ts: i64,
    deadline: Instant,
) {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    for id in ids {
        let expected = Expected::of(id, base_ts);
        let mut headers = OwnedHeaders::new_with_capacity(expected.headers.len());
        for (key, value) in &expected.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut record = BaseRecord::with_opaque_to(topic, id)
            .key(&expected.key[..])
            .payload(&expected.value[..])
            .timestamp(expected.timestamp)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    assert!(Instant::now() < deadline, "producer queue stayed full");
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => panic!("enqueueing record {id}: {error}"),
            }
        }
    }
}

/// Flushes a producer and asserts every record was acknowledged.
pub fn flush_all(producer: &Producer, limit: Duration) {
    use rdkafka::producer::Producer as _;
    producer.flush(limit).expect("flush");
    let deliveries = &producer.context().deliveries;
    let failed = deliveries.failed.lock().expect("failed");
    assert!(
        failed.is_empty(),
        "{} records failed, first: {:?}",
        failed.len(),
        failed.first()
    );
}

/// One record as a consumer read it.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp and whether it is CreateTime.
    pub timestamp: Option<i64>,
    /// Whether the timestamp type is CreateTime.
    pub create_time: bool,
}

/// A consumer assigned to every partition of `topic` from the beginning.
pub fn assigned_consumer(
    broker: &Broker,
    topic: &str,
    partitions: i32,
) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// Reads every partition of `topic` from the beginning until `count` records arrived, then
/// keeps polling for `settle` to catch anything extra. Panics on a consumer error or when
/// `limit` passes first.
pub fn consume(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    count: usize,
    limit: Duration,
    settle: Duration,
) -> Vec<Consumed> {
    use rdkafka::Message;
    use rdkafka::message::Headers;
    let consumer = assigned_consumer(broker, topic, partitions);
    let deadline = Instant::now() + limit;
    let mut records = Vec::with_capacity(count);
    let mut settle_end: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if records.len() >= count {
            let end = *settle_end.get_or_insert(now + settle);
            if now >= end {
                break;
            }
        }
        assert!(
            now < deadline,
            "consumed {} of {count} records of {topic} within {limit:?}",
            records.len()
        );
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.unwrap_or_else(|error| panic!("consumer error on {topic}: {error}"));
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let (timestamp, create_time) = match message.timestamp() {
            rdkafka::Timestamp::NotAvailable => (None, false),
            rdkafka::Timestamp::CreateTime(ms) => (Some(ms), true),
            rdkafka::Timestamp::LogAppendTime(ms) => (Some(ms), false),
        };
        records.push(Consumed {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp,
            create_time,
        });
    }
    records
}

/// The workload id of a consumed record (from its `id` header).
pub fn record_id(record: &Consumed) -> usize {
    let (_, value) = record
        .headers
        .iter()
        .find(|(key, _)| key == "id")
        .unwrap_or_else(|| {
            panic!(
                "record at {}:{} has no id header",
                record.partition, record.offset
            )
        });
    std::str::from_utf8(value.as_deref().expect("id header value"))
        .expect("utf-8 id")
        .parse()
        .expect("numeric id")
}

/// Asserts a consumed record is exactly workload record `id` (key, value, headers,
/// CreateTime timestamp) in the partition Kafka's murmur2 partitioner picks for its key.
pub fn check_record(record: &Consumed, id: usize, base_ts: i64, partitions: i32) {
    let expected = Expected::of(id, base_ts);
    let at = format!("record {id} at {}:{}", record.partition, record.offset);
    assert_eq!(record.key.as_deref(), Some(&expected.key[..]), "{at}: key");
    assert_eq!(
        record.value.as_deref(),
        Some(&expected.value[..]),
        "{at}: value"
    );
    assert_eq!(record.headers, expected.headers, "{at}: headers");
    assert_eq!(
        record.timestamp,
        Some(expected.timestamp),
        "{at}: timestamp"
    );
    assert!(record.create_time, "{at}: timestamp type is not CreateTime");
    assert_eq!(
        record.partition,
        kafka_partition(&expected.key, partitions),
        "{at}: not the murmur2 partition of its key"
    );
}

/// Asserts offsets are dense per partition: each partition's records are exactly offsets
/// `0..n` in order. Returns n per partition.
pub fn check_dense(records: &[Consumed], partitions: i32) -> Vec<i64> {
    let mut next = vec![0i64; partitions as usize];
    for record in records {
        let slot = &mut next[usize::try_from(record.partition).expect("partition")];
        assert_eq!(
            record.offset, *slot,
            "partition {}: offset {} read where {} was next",
            record.partition, record.offset, slot
        );
        *slot += 1;
    }
    next
}

/// Low and high watermarks of a partition (ListOffsets earliest and latest).
pub fn watermarks(broker: &Broker, topic: &str, partition: i32) -> (i64, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = consumer_config(broker).create().expect("create consumer");
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("watermarks of {topic}-{partition}: {error}"))
}

/// An admin client.
pub fn admin(
    broker: &Broker,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    client_config(broker).create().expect("create admin client")
}

/// Admin options with bounded timeouts.
pub fn admin_options() -> rdkafka::admin::AdminOptions {
    rdkafka::admin::AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(15)))
        .operation_timeout(Some(Duration::from_secs(15)))
}

/// Creates a topic with `partitions` partitions (replication 1) and `configs`, and asserts
/// it was created.
pub fn create_topic(broker: &Broker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results =
        futures::executor::block_on(admin(broker).create_topics(&[topic], &admin_options()))
            .expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    if let Err((topic, code)) = &results[0] {
        panic!("creating {topic}: {code:?}");
    }
}

/// Topic names in the broker's metadata (all topics).
pub fn topic_names(broker: &Broker) -> Vec<String> {
    let admin = admin(broker);
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_string())
        .collect()
}

/// A copy of the producer's acknowledged records: id → (partition, offset).
pub fn acked(producer: &Producer) -> std::collections::HashMap<usize, (i32, i64)> {
    use rdkafka::producer::Producer as _;
    producer
        .context()
        .deliveries
        .acked
        .lock()
        .expect("acked")
        .clone()
}

/// The producer's delivery reports.
pub fn deliveries(producer: &Producer) -> std::sync::Arc<DeliveryContext> {
    use rdkafka::producer::Producer as _;
    producer.context().clone()
}
