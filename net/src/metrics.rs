//! Broker metrics: what each shard counts, the snapshot it hands out, and the Prometheus text
//! rendering of all shards' snapshots.
//!
//! Counting is per shard and lock-free (`Cell`s on the shard's own thread). A scrape asks
//! every shard for a [`ShardSnapshot`] over its mailbox (message passing, as all cross-shard
//! work) and renders them together: the shard-per-core design means there is nothing
//! global to lock. Names follow Prometheus conventions: `_total` counters, `_seconds` and
//! `_bytes` units, histograms with cumulative `le` buckets.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use sluice_engine::stats::{Histogram, LogStats};

/// Per-connection buffers whose size does not depend on traffic: the read chunk, the
/// initial frame buffer and the write buffer (see `connection.rs`).
pub const CONNECTION_BUFFER_BYTES: u64 = 3 * 64 * 1024;

#[derive(Debug, Clone)]
struct ApiCounters {
    requests: u64,
    bytes: u64,
    latency: Histogram,
}

/// What one shard counts about its connections and requests. Engine counters live in each
/// log ([`sluice_engine::Log::stats`]); logs removed with their topic are folded into
/// `retired` so the shard's totals never go backwards.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    connections_open: Cell<u64>,
    connections_total: Cell<u64>,
    inflight_requests: Cell<u64>,
    inflight_bytes: Cell<u64>,
    apis: RefCell<BTreeMap<i16, ApiCounters>>,
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
    retired: RefCell<LogStats>,
}

impl ShardMetrics {
    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_open.set(self.connections_open.get() + 1);
        self.connections_total.set(self.connections_total.get() + 1);
    }

    /// A connection ended.
    pub fn connection_closed(&self) {
        self.connections_open
            .set(self.connections_open.get().saturating_sub(1));
    }

    /// A request of `bytes` was read; it is in flight until [`Self::request_answered`].
    pub fn request_received(&self, bytes: usize) {
        self.inflight_requests.set(self.inflight_requests.get() + 1);
        self.inflight_bytes
            .set(self.inflight_bytes.get() + bytes as u64);
    }

    /// The answer to a request of `bytes` was written (or dropped with its connection).
    pub fn request_answered(&self, bytes: usize) {
        self.inflight_requests
            .set(self.inflight_requests.get().saturating_sub(1));
        self.inflight_bytes
            .set(self.inflight_bytes.get().saturating_sub(bytes as u64));
    }

    /// A request of API `api_key` and `bytes` was handled in `elapsed`.
    pub fn observe_request(&self, api_key: i16, bytes: usize, elapsed: Duration) {
        let mut apis = self.apis.borrow_mut();
        let counters = apis.entry(api_key).or_insert_with(|| ApiCounters {
            requests: 0,
            bytes: 0,
            latency: Histogram::latency(),
        });
        counters.requests += 1;
        counters.bytes += bytes as u64;
        counters.latency.observe(elapsed.as_secs_f64());
    }

    /// An answer of API `api_key` carried error `code` (0 is not an error).
    pub fn count_error(&self, api_key: i16, code: i16) {
        if code != 0 {
            *self.errors.borrow_mut().entry((api_key, code)).or_insert(0) += 1;
        }
    }

    /// Counts every error code in `response`.
    pub fn count_response_errors(&self, api_key: i16, response: &ResponseKind) {
        for_each_error_code(response, |code| self.count_error(api_key, code));
    }

    /// Keeps the counters of a log that is going away (its topic was deleted).
    pub fn retire(&self, stats: &LogStats) {
        self.retired.borrow_mut().merge(stats);
    }

    /// The shard-level part of a snapshot; the shard adds its partitions and memory.
    #[must_use]
    pub fn snapshot(&self, shard: usize) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            connections_open: self.connections_open.get(),
            connections_total: self.connections_total.get(),
            inflight_requests: self.inflight_requests.get(),
            inflight_bytes: self.inflight_bytes.get(),
            apis: self
                .apis
                .borrow()
                .iter()
                .map(|(&key, counters)| ApiSnapshot {
                    api: api_name(key),
                    requests: counters.requests,
                    bytes: counters.bytes,
                    latency: counters.latency.clone(),
                })
                .collect(),
            errors: self
                .errors
                .borrow()
                .iter()
                .map(|(&(key, code), &count)| ErrorSnapshot {
                    api: api_name(key),
                    code,
                    count,
                })
                .collect(),
            engine: self.retired.borrow().clone(),
            memory: Vec::new(),
            partitions: Vec::new(),
        }
    }
}

/// `Produce`, `Fetch`, … (the Kafka API's name), or the number for an unknown key.
fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| key.to_string(), |api| format!("{api:?}"))
}

/// `NOT_LEADER_OR_FOLLOWER`-style name of a Kafka error code.
fn error_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "UNKNOWN".to_string();
    };
    let camel = format!("{error:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (index, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Calls `found` with each error code an answer carries (top level and per partition or
/// per group), for the APIs whose answers have them.
fn for_each_error_code(response: &ResponseKind, mut found: impl FnMut(i16)) {
    match response {
        ResponseKind::Produce(answer) => answer
            .responses
            .iter()
            .flat_map(|topic| &topic.partition_responses)
            .for_each(|partition| found(partition.error_code)),
        ResponseKind::ListOffsets(answer) => answer
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .for_each(|partition| found(partition.error_code)),
        ResponseKind::Metadata(answer) => {
            answer
                .topics
                .iter()
                .for_each(|topic| found(topic.error_code));
        }
        ResponseKind::CreateTopics(answer) => {
            answer
                .topics
                .iter()
                .for_each(|topic| found(topic.error_code));
        }
        ResponseKind::DeleteTopics(answer) => answer
            .responses
            .iter()
            .for_each(|topic| found(topic.error_code)),
        ResponseKind::CreatePartitions(answer) => answer
            .results
            .iter()
            .for_each(|topic| found(topic.error_code)),
        ResponseKind::DeleteRecords(answer) => answer
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .for_each(|partition| found(partition.error_code)),
        ResponseKind::FindCoordinator(answer) => {
            found(answer.error_code);
            answer
                .coordinators
                .iter()
                .for_each(|coordinator| found(coordinator.error_code));
        }
        ResponseKind::JoinGroup(answer) => found(answer.error_code),
        ResponseKind::SyncGroup(answer) => found(answer.error_code),
        ResponseKind::Heartbeat(answer) => found(answer.error_code),
        ResponseKind::LeaveGroup(answer) => found(answer.error_code),
        ResponseKind::OffsetCommit(answer) => answer
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .for_each(|partition| found(partition.error_code)),
        ResponseKind::OffsetFetch(answer) => {
            found(answer.error_code);
            answer
                .groups
                .iter()
                .for_each(|group| found(group.error_code));
        }
        ResponseKind::DescribeGroups(answer) => {
            answer
                .groups
                .iter()
                .for_each(|group| found(group.error_code));
        }
        ResponseKind::ListGroups(answer) => found(answer.error_code),
        ResponseKind::DeleteGroups(answer) => answer
            .results
            .iter()
            .for_each(|group| found(group.error_code)),
        ResponseKind::InitProducerId(answer) => found(answer.error_code),
        ResponseKind::ApiVersions(answer) => found(answer.error_code),
        ResponseKind::DescribeConfigs(answer) => answer
            .results
            .iter()
            .for_each(|resource| found(resource.error_code)),
        ResponseKind::AlterConfigs(answer) => answer
            .responses
            .iter()
            .for_each(|resource| found(resource.error_code)),
        ResponseKind::IncrementalAlterConfigs(answer) => answer
            .responses
            .iter()
            .for_each(|resource| found(resource.error_code)),
        _ => {}
    }
}

/// Counters of one API on one shard.
#[derive(Debug, Clone)]
pub struct ApiSnapshot {
    /// The API's name.
    pub api: String,
    /// Requests handled.
    pub requests: u64,
    /// Request bytes received.
    pub bytes: u64,
    /// Time from a decoded request to its answer (Fetch long-polls included).
    pub latency: Histogram,
}

/// How often one API answered with one error code.
#[derive(Debug, Clone)]
pub struct ErrorSnapshot {
    /// The API's name.
    pub api: String,
    /// The Kafka error code.
    pub code: i16,
    /// Occurrences (per partition or group for batched answers).
    pub count: u64,
}

/// One partition, as its owner shard sees it.
#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Traffic and fdatasync counters since the log was opened.
    pub stats: LogStats,
    /// First readable offset.
    pub log_start: i64,
    /// Offset of the next append.
    pub log_end: i64,
    /// What consumers may read up to.
    pub high_watermark: i64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in the segments.
    pub size_bytes: u64,
    /// False once a write or fdatasync failed (writes refused).
    pub writable: bool,
}

/// Everything one shard reports to a scrape.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: usize,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Requests read and not yet answered.
    pub inflight_requests: u64,
    /// Their bytes.
    pub inflight_bytes: u64,
    /// Per API.
    pub apis: Vec<ApiSnapshot>,
    /// Per API and error code.
    pub errors: Vec<ErrorSnapshot>,
    /// Engine counters of every log of the shard, including removed ones.
    pub engine: LogStats,
    /// `(kind, bytes)` of memory held by buffers and caches.
    pub memory: Vec<(&'static str, u64)>,
    /// The partitions the shard owns.
    pub partitions: Vec<PartitionSnapshot>,
}

/// Prometheus text exposition (format 0.0.4) of the broker's metrics: `ready` and the
/// snapshots of the shards that answered out of `shards`.
#[must_use]
pub fn render(ready: bool, shards: usize, snapshots: &[ShardSnapshot]) -> String {
    let mut out = Text::default();
    out.family(
        "sluice_ready",
        "gauge",
        "1 once every partition is recovered and the Kafka listener serves.",
    );
    out.sample("sluice_ready", &[], u64::from(ready));
    out.family(
        "sluice_shard_up",
        "gauge",
        "1 if the shard answered this scrape.",
    );
    for shard in 0..shards {
        let up = snapshots.iter().any(|snapshot| snapshot.shard == shard);
        out.sample(
            "sluice_shard_up",
            &[("shard", &shard.to_string())],
            u64::from(up),
        );
    }
    render_shards(&mut out, snapshots);
    render_partitions(&mut out, snapshots);
    out.text
}

fn render_shards(out: &mut Text, snapshots: &[ShardSnapshot]) {
    type ShardValue = fn(&ShardSnapshot) -> u64;
    let gauges: [(&str, &str, &str, ShardValue); 4] = [
        (
            "sluice_connections",
            "gauge",
            "Client connections open.",
            |s| s.connections_open,
        ),
        (
            "sluice_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            |s| s.connections_total,
        ),
        (
            "sluice_inflight_requests",
            "gauge",
            "Requests read and not yet answered.",
            |s| s.inflight_requests,
        ),
        (
            "sluice_inflight_request_bytes",
            "gauge",
            "Bytes of requests read and not yet answered.",
            |s| s.inflight_bytes,
        ),
    ];
    for (name, kind, help, value) in gauges {
        out.family(name, kind, help);
        for snapshot in snapshots {
            out.sample(
                name,
                &[("shard", &snapshot.shard.to_string())],
                value(snapshot),
            );
        }
    }
    type ApiValue = fn(&ApiSnapshot) -> u64;
    let api_counters: [(&str, &str, ApiValue); 2] = [
        (
            "sluice_requests_total",
            "Kafka requests handled, by API.",
            |api| api.requests,
        ),
        (
            "sluice_request_bytes_total",
            "Bytes of Kafka requests received, by API.",
            |api| api.bytes,
        ),
    ];
    // Every sample of a family follows its HELP and TYPE lines, family after family.
    for (name, help, value) in api_counters {
        out.family(name, "counter", help);
        for snapshot in snapshots {
            let shard = snapshot.shard.to_string();
            for api in &snapshot.apis {
                let labels = [("shard", shard.as_str()), ("api", api.api.as_str())];
                out.sample(name, &labels, value(api));
            }
        }
    }
    out.family(
        "sluice_request_duration_seconds",
        "histogram",
        "Time from a decoded request to its answer, by API (Fetch long-polls included).",
    );
    for snapshot in snapshots {
        let shard = snapshot.shard.to_string();
        for api in &snapshot.apis {
            let labels = [("shard", shard.as_str()), ("api", api.api.as_str())];
            out.histogram("sluice_request_duration_seconds", &labels, &api.latency);
        }
    }
    out.family(
        "sluice_errors_total",
        "counter",
        "Error codes in answers, by API and Kafka error (per partition or group).",
    );
    for snapshot in snapshots {
        let shard = snapshot.shard.to_string();
        for error in &snapshot.errors {
            let code = error.code.to_string();
            let name = error_name(error.code);
            let labels = [
                ("shard", shard.as_str()),
                ("api", error.api.as_str()),
                ("error", name.as_str()),
                ("code", code.as_str()),
            ];
            out.sample("sluice_errors_total", &labels, error.count);
        }
    }
    type EngineHistogram = fn(&LogStats) -> &Histogram;
    let histograms: [(&str, &str, EngineHistogram); 2] = [
        (
            "sluice_fsync_duration_seconds",
            "Duration of the fdatasyncs of segment data.",
            |stats| &stats.fsync_seconds,
        ),
        (
            "sluice_fsync_batches",
            "Record batches made durable by one fdatasync (the group-commit batch size).",
            |stats| &stats.fsync_batches,
        ),
    ];
    for (name, help, histogram) in histograms {
        out.family(name, "histogram", help);
        for snapshot in snapshots {
            let shard = snapshot.shard.to_string();
            out.histogram(
                name,
                &[("shard", shard.as_str())],
                histogram(&snapshot.engine),
            );
        }
    }
    out.family(
        "sluice_fsync_bytes_total",
        "counter",
        "Bytes made durable by fdatasyncs.",
    );
    for snapshot in snapshots {
        let shard = snapshot.shard.to_string();
        out.sample(
            "sluice_fsync_bytes_total",
            &[("shard", shard.as_str())],
            snapshot.engine.fsync_bytes,
        );
    }
    out.family(
        "sluice_memory_bytes",
        "gauge",
        "Memory held by buffers and caches, by kind.",
    );
    for snapshot in snapshots {
        let shard = snapshot.shard.to_string();
        for (kind, bytes) in &snapshot.memory {
            out.sample(
                "sluice_memory_bytes",
                &[("shard", shard.as_str()), ("kind", kind)],
                *bytes,
            );
        }
    }
}

fn render_partitions(out: &mut Text, snapshots: &[ShardSnapshot]) {
    type Value = fn(&PartitionSnapshot) -> i64;
    let families: [(&str, &str, &str, Value); 10] = [
        (
            "sluice_partition_bytes_in_total",
            "counter",
            "Bytes appended to the partition (whole batches).",
            |p| i64::try_from(p.stats.bytes_in).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_records_in_total",
            "counter",
            "Records appended to the partition.",
            |p| i64::try_from(p.stats.records_in).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_bytes_out_total",
            "counter",
            "Bytes read from the partition (fetches, coordinator loads).",
            |p| i64::try_from(p.stats.bytes_out).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_records_out_total",
            "counter",
            "Records read from the partition (offsets read past).",
            |p| i64::try_from(p.stats.records_out).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_log_start_offset",
            "gauge",
            "First readable offset.",
            |p| p.log_start,
        ),
        (
            "sluice_partition_log_end_offset",
            "gauge",
            "Offset the next record gets.",
            |p| p.log_end,
        ),
        (
            "sluice_partition_high_watermark",
            "gauge",
            "Offset consumers may read up to (acknowledged and durable).",
            |p| p.high_watermark,
        ),
        (
            "sluice_partition_segments",
            "gauge",
            "Segment files of the partition.",
            |p| i64::try_from(p.segments).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_size_bytes",
            "gauge",
            "Bytes in the partition's segments.",
            |p| i64::try_from(p.size_bytes).unwrap_or(i64::MAX),
        ),
        (
            "sluice_partition_writable",
            "gauge",
            "0 once a write or fdatasync failed and the partition refuses writes.",
            |p| i64::from(p.writable),
        ),
    ];
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        for snapshot in snapshots {
            let shard = snapshot.shard.to_string();
            for partition in &snapshot.partitions {
                let index = partition.partition.to_string();
                let labels = [
                    ("topic", partition.topic.as_str()),
                    ("partition", index.as_str()),
                    ("shard", shard.as_str()),
                ];
                out.sample(name, &labels, value(partition));
            }
        }
    }
}

/// A Prometheus text document being written.
#[derive(Default)]
struct Text {
    text: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
        let all: Vec<(&str, &str)> = labels.iter().copied().chain(extra).collect();
        if all.is_empty() {
            return;
        }
        self.text.push('{');
        for (index, (key, value)) in all.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{key}=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let cumulative = histogram.cumulative();
        let bucket = format!("{name}_bucket");
        for (bound, count) in histogram.bounds().iter().zip(&cumulative) {
            let le = bound.to_string();
            self.text.push_str(&bucket);
            self.labels(labels, Some(("le", &le)));
            let _ = writeln!(self.text, " {count}");
        }
        self.text.push_str(&bucket);
        self.labels(labels, Some(("le", "+Inf")));
        let _ = writeln!(self.text, " {}", histogram.count());
        self.sample(&format!("{name}_sum"), labels, histogram.sum());
        self.sample(&format!("{name}_count"), labels, histogram.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafka_style() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
    }

    #[test]
    fn rendering_has_types_buckets_and_escaped_labels() {
        let metrics = ShardMetrics::default();
        metrics.connection_opened();
        metrics.observe_request(0, 100, Duration::from_millis(2));
        metrics.count_error(0, 10);
        let mut snapshot = metrics.snapshot(0);
        snapshot.partitions.push(PartitionSnapshot {
            topic: "odd\"name".to_string(),
            partition: 3,
            stats: LogStats::default(),
            log_start: 0,
            log_end: 42,
            high_watermark: 40,
            segments: 1,
            size_bytes: 4096,
            writable: true,
        });
        let text = render(true, 2, &[snapshot]);
        assert!(text.contains("sluice_ready 1\n"));
        assert!(text.contains("sluice_shard_up{shard=\"1\"} 0\n"));
        assert!(text.contains("sluice_requests_total{shard=\"0\",api=\"Produce\"} 1\n"));
        assert!(text.contains(
            "sluice_request_duration_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"0.0025\"} 1\n"
        ));
        assert!(text.contains(
            "sluice_request_duration_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"0.001\"} 0\n"
        ));
        assert!(text.contains("error=\"MESSAGE_TOO_LARGE\",code=\"10\"} 1\n"));
        assert!(text.contains(
            "sluice_partition_log_end_offset{topic=\"odd\\\"name\",partition=\"3\",shard=\"0\"} 42\n"
        ));
        assert!(text.contains("# TYPE sluice_fsync_duration_seconds histogram\n"));
        // Each family's samples come in one group, right after its TYPE line.
        let mut seen = std::collections::HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap_or_default().to_string();
                assert!(seen.insert(current.clone()), "{current} declared twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|base| *base == current))
                    .unwrap_or(name);
                assert_eq!(family, current, "{line} outside its family");
            }
        }
    }
}
