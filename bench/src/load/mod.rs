//! The load tool: `produce`, `consume` and `e2e` against any Kafka-protocol broker, with
//! librdkafka (the `rdkafka` crate) as the client.
//!
//! * Each producer and each consumer is its own librdkafka client (its own connections)
//!   driven by its own thread. Producers send `--record-size` values (stamped with their
//!   intended send time, see [`keys`]) keyed by `--keys`, paced by an open-loop
//!   [`schedule`] when `--rate` is given, and time each record from its intended send time
//!   to its delivery report (`ack` latency).
//! * Consumers are assigned a share of the partitions (no consumer group needed) or
//!   subscribe in a group (`--group`); in `e2e` they read the stamp back and time each
//!   record from its intended send time to its receipt (`e2e` latency).
//! * Records intended (producers, e2e consumers) or received (plain consume) in the first
//!   `--warmup` seconds are moved but not counted. A result's throughput is its measured
//!   records and bytes over the time from the end of the warmup to the last measured
//!   delivery or receipt, so a run that drains a backlog after its sending stops is not
//!   flattered.
//!
//! [`run`] prints a progress line each second on stderr and returns one
//! [`ResultLine`] per side with the latency histograms for `--hdr-out`.

pub mod consumer;
pub mod keys;
pub mod meter;
pub mod producer;
pub mod schedule;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::report::{LatencyRecorder, MB, ResultLine};
use consumer::{LoadConsumer, Measure, StartAt, partitions_of};
use keys::{KeyDist, KeyGen, STAMP_LEN, Value};
use meter::{Clock, Meter, MeterState, process_cpu, total};
use producer::{LoadProducer, SendPlan};
use schedule::{Pacer, Schedule, Stop, share};

/// How often the coordinator checks whether the run is over.
const TICK: Duration = Duration::from_millis(20);
/// How long e2e consumers in a group may take to be given partitions.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the producers send.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    /// Producers (clients and threads).
    pub producers: usize,
    /// Value bytes of each record.
    pub record_size: usize,
    /// How records are keyed.
    pub keys: KeyDist,
    /// Partitions of the topic if it has to be created.
    pub partitions: i32,
    /// `acks`: `0`, `1` or `all`.
    pub acks: String,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `compression.type`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// Total records per second, open-loop; `None`: as fast as the clients take them.
    pub rate: Option<f64>,
}

/// How the consumers read.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumers (clients and threads).
    pub consumers: usize,
    /// Consumer group to subscribe in; `None`: partitions are assigned directly.
    pub group: Option<String>,
    /// Where reading starts (e2e always starts at the end).
    pub start: StartAt,
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this many measured records (produced; or consumed, for plain consume).
    Count(u64),
    /// After the warmup plus this long.
    Duration(Duration),
}

/// One load run: produce (producers only), consume (consumers only) or e2e (both).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Extra librdkafka properties for every client.
    pub client_config: Vec<(String, String)>,
    /// The producers, if any.
    pub producer: Option<ProducerSpec>,
    /// The consumers, if any.
    pub consumer: Option<ConsumerSpec>,
    /// When to stop.
    pub limit: Limit,
    /// Leading time whose records are not counted.
    pub warmup: Duration,
    /// Appended to the result names (`produce.<label>`).
    pub label: Option<String>,
    /// Print a progress line each second on stderr.
    pub progress: bool,
    /// Consumers stop after this long without a record (plain consume, and e2e once the
    /// producers are done).
    pub idle_timeout: Duration,
    /// Longest wait for outstanding delivery reports once sending stops.
    pub drain_timeout: Duration,
}

impl LoadOptions {
    /// Options with the tool's defaults for `brokers` and `topic`: no producers or
    /// consumers yet, one million records, no warmup, progress on.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            client_config: Vec::new(),
            producer: None,
            consumer: None,
            limit: Limit::Count(1_000_000),
            warmup: Duration::ZERO,
            label: None,
            progress: true,
            idle_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(120),
        }
    }

    fn mode(&self) -> &'static str {
        match (&self.producer, &self.consumer) {
            (Some(_), Some(_)) => "e2e",
            (None, Some(_)) => "consume",
            _ => "produce",
        }
    }

    fn name(&self, side: &str) -> String {
        let mode = self.mode();
        let mut name = if mode == side {
            mode.to_string()
        } else {
            format!("{mode}.{side}")
        };
        if let Some(label) = &self.label {
            name.push('.');
            name.push_str(label);
        }
        name
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// One line per side: `produce`, `consume`, or `e2e.produce` and `e2e.consume`.
    pub results: Vec<ResultLine>,
    /// Send → delivery report latencies of the measured records (producers).
    pub ack: Option<LatencyRecorder>,
    /// Send → receipt latencies of the measured records (e2e consumers).
    pub e2e: Option<LatencyRecorder>,
}

/// Creates `topic` with `partitions` partitions unless it exists.
///
/// # Errors
/// The broker refused for another reason than "already exists".
pub fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    client_config: &[(String, String)],
) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in client_config {
        config.set(key, value);
    }
    let admin: AdminClient<DefaultClientContext> = config.create().context("admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .context("create topic")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating {name}: {code}"),
        }
    }
    Ok(())
}

/// Partitions of the topic, from the brokers' metadata (retried for a few seconds, as a
/// just-created topic may take a moment to appear).
fn partition_count(options: &LoadOptions) -> anyhow::Result<i32> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &options.brokers);
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    let client: BaseConsumer = config.create().context("metadata client")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = client
            .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
            .context("metadata")?;
        let partitions = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if partitions > 0 {
            return i32::try_from(partitions).context("partition count");
        }
        if Instant::now() > deadline {
            bail!(
                "topic {} does not exist (or has no partitions)",
                options.topic
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn validate(options: &LoadOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.producer.is_some() || options.consumer.is_some(),
        "a run needs producers or consumers"
    );
    if let Some(p) = &options.producer {
        anyhow::ensure!(p.producers > 0, "--producers must be at least 1");
        anyhow::ensure!(p.partitions > 0, "--partitions must be at least 1");
        if let Some(rate) = p.rate {
            Schedule::new(rate)?;
        }
        if options.consumer.is_some() {
            anyhow::ensure!(
                p.record_size >= STAMP_LEN,
                "e2e needs --record-size of at least {STAMP_LEN} bytes to carry the send time"
            );
        }
    }
    if let Some(c) = &options.consumer {
        anyhow::ensure!(c.consumers > 0, "--consumers must be at least 1");
    }
    if let Limit::Count(0) = options.limit {
        bail!("--count must be at least 1");
    }
    Ok(())
}

/// Creates the consumers: assigned their share of the partitions, or subscribed in the
/// group (and, for e2e, polled until each has partitions).
fn make_consumers(
    options: &LoadOptions,
    spec: &ConsumerSpec,
    e2e: bool,
) -> anyhow::Result<Vec<LoadConsumer>> {
    let start = if e2e { StartAt::End } else { spec.start };
    let mut consumers = Vec::with_capacity(spec.consumers);
    match &spec.group {
        None => {
            let partitions = partition_count(options)?;
            if spec.consumers > usize::try_from(partitions).unwrap_or(0) {
                eprintln!(
                    "warning: {} consumers for {partitions} partitions: some stay idle",
                    spec.consumers
                );
            }
            for id in 0..spec.consumers {
                let mine = partitions_of(partitions, spec.consumers, id);
                consumers.push(LoadConsumer::assign(options, id, &mine, start)?);
            }
        }
        Some(group) => {
            for id in 0..spec.consumers {
                consumers.push(LoadConsumer::subscribe(options, id, group, start)?);
            }
            if e2e {
                // Producing before the group has handed out the partitions would lose the
                // first records to `auto.offset.reset=latest`.
                let deadline = Instant::now() + JOIN_TIMEOUT;
                let mut joined = vec![false; consumers.len()];
                while !joined.iter().all(|j| *j) {
                    if Instant::now() > deadline {
                        bail!(
                            "the consumers were not given partitions in group {group} within {JOIN_TIMEOUT:?}"
                        );
                    }
                    for (consumer, joined) in consumers.iter().zip(joined.iter_mut()) {
                        *joined = consumer.poll_for_assignment();
                    }
                }
            }
        }
    }
    Ok(consumers)
}

/// The sum of the meters and a `ResultLine` of it, timed from the end of the warmup to the
/// last measured record.
fn side_result(name: String, sum: &MeterState, warmup: Duration) -> ResultLine {
    let window = sum
        .last_measured
        .map_or(Duration::ZERO, |last| last.saturating_sub(warmup));
    ResultLine::new(name, sum.measured_bytes, sum.measured_records, window)
}

/// Runs the load described by `options`.
///
/// # Errors
/// Invalid options, client or topic setup failures, a producer that could not send, or a
/// plain consume that did not get `--count` records.
pub fn run(options: &LoadOptions) -> anyhow::Result<LoadReport> {
    validate(options)?;
    let e2e = options.producer.is_some() && options.consumer.is_some();
    if let Some(p) = &options.producer {
        ensure_topic(
            &options.brokers,
            &options.topic,
            p.partitions,
            &options.client_config,
        )?;
    }
    let clock_cell = Arc::new(OnceLock::new());
    let consumers = match &options.consumer {
        Some(spec) => make_consumers(options, spec, e2e)?,
        None => Vec::new(),
    };
    let producers = match &options.producer {
        Some(spec) => (0..spec.producers)
            .map(|_| LoadProducer::connect(options, spec, clock_cell.clone()))
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let producer_meters: Vec<Arc<Meter>> = producers.iter().map(LoadProducer::meter).collect();
    let consumer_meters: Vec<Arc<Meter>> = consumers.iter().map(LoadConsumer::meter).collect();

    let clock = Clock::start();
    let _ = clock_cell.set(clock);
    let cpu_start = process_cpu();
    let stop = AtomicBool::new(false);
    let abort = AtomicBool::new(false);
    let sending = AtomicUsize::new(producers.len());
    let measure = if e2e {
        Measure::Stamp {
            from_epoch_ns: clock.epoch_ns(options.warmup),
        }
    } else {
        Measure::Arrival {
            warmup: options.warmup,
        }
    };

    let (producer_errors, idle_stop) = std::thread::scope(|scope| {
        for consumer in consumers {
            let stop = &stop;
            std::thread::Builder::new()
                .name("bench-consumer".into())
                .spawn_scoped(scope, move || consumer.run(clock, measure, stop))
                .context("spawning a consumer thread")?;
        }
        let mut handles = Vec::new();
        if let Some(spec) = &options.producer {
            let schedule = spec.rate.map(Schedule::new).transpose()?;
            let senders = producers.len() as u64;
            for (id, producer) in producers.into_iter().enumerate() {
                let id = id as u64;
                let stop_rule = match options.limit {
                    Limit::Count(n) => Stop::Count(share(n, senders, id)),
                    Limit::Duration(d) => Stop::Duration(d),
                };
                let plan = SendPlan {
                    pacer: Pacer::new(schedule, id, senders, options.warmup, stop_rule),
                    value: Value::new(spec.record_size, id + 1),
                    keys: KeyGen::new(spec.keys, id + 1),
                };
                let (abort, sending) = (&abort, &sending);
                let handle = std::thread::Builder::new()
                    .name("bench-producer".into())
                    .spawn_scoped(scope, move || {
                        let result =
                            producer.run(&options.topic, plan, clock, abort, options.drain_timeout);
                        if result.is_err() {
                            abort.store(true, Ordering::Relaxed);
                        }
                        sending.fetch_sub(1, Ordering::Relaxed);
                        result
                    })
                    .context("spawning a producer thread")?;
                handles.push(handle);
            }
        }
        let idle_stop = coordinate(
            options,
            clock,
            &producer_meters,
            &consumer_meters,
            &sending,
            &abort,
        );
        stop.store(true, Ordering::Relaxed);
        if idle_stop.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        let errors: Vec<anyhow::Error> = handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(result) => result.err(),
                Err(_) => Some(anyhow::anyhow!("a producer thread panicked")),
            })
            .collect();
        anyhow::Ok((errors, idle_stop))
    })?;
    if let Some(error) = producer_errors.into_iter().next() {
        return Err(error);
    }
    let idle_stop = idle_stop?;
    let wall = clock.now();
    let cpu_cores = (process_cpu().saturating_sub(cpu_start)).as_secs_f64() / wall.as_secs_f64();

    let mut report = LoadReport {
        results: Vec::new(),
        ack: None,
        e2e: None,
    };
    let produced = total(&producer_meters)?;
    let consumed = total(&consumer_meters)?;
    if let Some(p) = &options.producer {
        if produced.failed > 0 {
            eprintln!(
                "warning: {} records failed delivery; first error: {}",
                produced.failed,
                produced.first_error.as_deref().unwrap_or("?")
            );
        }
        let mut line = side_result(options.name("produce"), &produced, options.warmup)
            .with_latency("ack", &produced.latency);
        line = add_common(line, options, cpu_cores)
            .with_extra("producers", p.producers as f64)
            .with_extra("partitions", f64::from(p.partitions))
            .with_extra("batch_size", f64::from(p.batch_size))
            .with_extra("linger_ms", f64::from(p.linger_ms))
            .with_extra("failed_records", produced.failed as f64)
            .with_tag("acks", &p.acks)
            .with_tag("compression", &p.compression)
            .with_tag("keys", p.keys.to_string());
        if let Some(rate) = p.rate {
            line = line.with_extra("target_rate", rate);
        }
        report.results.push(line);
        report.ack = Some(produced.latency.clone());
    }
    if let Some(c) = &options.consumer {
        let mut line = side_result(options.name("consume"), &consumed, options.warmup);
        if e2e {
            line = line.with_latency("e2e", &consumed.latency);
            report.e2e = Some(consumed.latency.clone());
            let missing = produced
                .measured_records
                .saturating_sub(consumed.measured_records);
            if missing > 0 {
                eprintln!(
                    "warning: {missing} acknowledged records were not received within --idle-timeout"
                );
            }
            line = line.with_extra("missing_records", missing as f64);
        } else if let (Limit::Count(n), true) = (options.limit, idle_stop) {
            bail!(
                "only {} of {n} records arrived (none for {:?})",
                consumed.measured_records,
                options.idle_timeout
            );
        }
        line = add_common(line, options, cpu_cores)
            .with_extra("consumers", c.consumers as f64)
            .with_tag(
                "assignment",
                c.group
                    .as_ref()
                    .map_or("assign".to_string(), |g| format!("group:{g}")),
            );
        report.results.push(line);
    }
    Ok(report)
}

fn add_common(line: ResultLine, options: &LoadOptions, cpu_cores: f64) -> ResultLine {
    let mut line = line
        .with_extra("warmup_s", options.warmup.as_secs_f64())
        .with_extra("client_cpu_cores", cpu_cores)
        .with_tag("topic", &options.topic);
    if let Some(p) = &options.producer {
        line = line.with_extra("record_size", p.record_size as f64);
    }
    line
}

/// Watches the run from the calling thread: prints progress each second and returns
/// when it is over. `Ok(true)` if the consumers stopped because nothing arrived for
/// `idle_timeout`; an error if a producer aborted.
fn coordinate(
    options: &LoadOptions,
    clock: Clock,
    producers: &[Arc<Meter>],
    consumers: &[Arc<Meter>],
    sending: &AtomicUsize,
    abort: &AtomicBool,
) -> anyhow::Result<bool> {
    let mut progress = Progress::default();
    let mut next_report = Duration::from_secs(1);
    let mut last_consumed = (0u64, clock.now());
    loop {
        std::thread::sleep(TICK);
        let now = clock.now();
        if abort.load(Ordering::Relaxed) {
            bail!("a producer failed");
        }
        if options.progress && now >= next_report {
            next_report += Duration::from_secs(1);
            let line = progress.line(now, options.warmup, producers, consumers)?;
            eprintln!("{line}");
        }
        let sent_done = sending.load(Ordering::Relaxed) == 0;
        if consumers.is_empty() {
            if sent_done {
                return Ok(false);
            }
            continue;
        }
        let (records, measured) = counts(consumers);
        if records != last_consumed.0 {
            last_consumed = (records, now);
        }
        let idle = now.saturating_sub(last_consumed.1) >= options.idle_timeout;
        if producers.is_empty() {
            let done = match options.limit {
                Limit::Count(n) => measured >= n,
                Limit::Duration(d) => now >= options.warmup + d,
            };
            if done {
                return Ok(false);
            }
            if idle {
                return Ok(true);
            }
        } else if sent_done {
            // e2e: wait for every acknowledged measured record, or for silence.
            let (_, acked) = counts(producers);
            if measured >= acked {
                return Ok(false);
            }
            if idle {
                return Ok(true);
            }
        } else {
            // Producers still sending: silence is only counted once they are done.
            last_consumed.1 = now;
        }
    }
}

/// Records and measured records over `meters`.
fn counts(meters: &[Arc<Meter>]) -> (u64, u64) {
    meters.iter().fold((0, 0), |(r, m), meter| {
        let (records, measured) = meter.counts();
        (r + records, m + measured)
    })
}

/// The per-second progress line: rates over the last second, p99 so far.
#[derive(Debug, Default)]
struct Progress {
    last: Option<(Duration, u64, u64, u64, u64)>,
}

impl Progress {
    fn line(
        &mut self,
        now: Duration,
        warmup: Duration,
        producers: &[Arc<Meter>],
        consumers: &[Arc<Meter>],
    ) -> anyhow::Result<String> {
        let p = total(producers)?;
        let c = total(consumers)?;
        let (t0, pr0, pb0, cr0, cb0) = self.last.unwrap_or((Duration::ZERO, 0, 0, 0, 0));
        self.last = Some((now, p.records, p.bytes, c.records, c.bytes));
        let secs = now.saturating_sub(t0).as_secs_f64();
        let side =
            |name: &str, records: u64, bytes: u64, latency: Option<(&str, &LatencyRecorder)>| {
                format_side(
                    name,
                    records as f64 / secs,
                    bytes as f64 / MB / secs,
                    latency.map(|(label, l)| (label, l.percentiles().p99_us, l.count())),
                )
            };
        let mut parts = Vec::new();
        if !producers.is_empty() {
            parts.push(side(
                "produce",
                p.records - pr0,
                p.bytes - pb0,
                Some(("ack", &p.latency)),
            ));
        }
        if !consumers.is_empty() {
            let latency = (!producers.is_empty()).then_some(("e2e", &c.latency));
            parts.push(side("consume", c.records - cr0, c.bytes - cb0, latency));
        }
        let warming = if now < warmup { "  (warmup)" } else { "" };
        Ok(format!(
            "[{:>6.1}s] {}{warming}",
            now.as_secs_f64(),
            parts.join(" | ")
        ))
    }
}

/// `produce 123,456 rec/s 126.4 MB/s ack p99 2.310 ms`.
fn format_side(
    name: &str,
    records_per_s: f64,
    mb_per_s: f64,
    latency: Option<(&str, f64, u64)>,
) -> String {
    let mut s = format!(
        "{name} {:>11} rec/s {mb_per_s:>8.1} MB/s",
        group_thousands(records_per_s.round() as u64)
    );
    if let Some((label, p99_us, count)) = latency {
        if count > 0 {
            s.push_str(&format!(" {label} p99 {:>8.3} ms", p99_us / 1000.0));
        } else {
            s.push_str(&format!(" {label} p99        - ms"));
        }
    }
    s
}

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_mode_and_label() {
        let mut options = LoadOptions::new("b", "t");
        options.producer = Some(ProducerSpec {
            producers: 1,
            record_size: 100,
            keys: KeyDist::None,
            partitions: 1,
            acks: "1".into(),
            batch_size: 1,
            linger_ms: 0,
            compression: "none".into(),
            rate: None,
        });
        assert_eq!(options.name("produce"), "produce");
        options.consumer = Some(ConsumerSpec {
            consumers: 1,
            group: None,
            start: StartAt::End,
        });
        options.label = Some("acks1".into());
        assert_eq!(options.name("produce"), "e2e.produce.acks1");
        assert_eq!(options.name("consume"), "e2e.consume.acks1");
        assert!(validate(&options).is_ok());
        if let Some(p) = options.producer.as_mut() {
            p.record_size = 8;
        }
        assert!(
            validate(&options).is_err(),
            "e2e values must hold the stamp"
        );
        options.producer = None;
        assert_eq!(options.name("consume"), "consume.acks1");
    }

    #[test]
    fn progress_line_shows_rates_and_p99() {
        let mut latency = LatencyRecorder::new();
        latency.record(Duration::from_micros(2310));
        let line = format_side("produce", 123_456.4, 126.42, Some(("ack", 2310.0, 1)));
        assert_eq!(
            line,
            "produce     123,456 rec/s    126.4 MB/s ack p99    2.310 ms"
        );
        assert!(
            format_side("consume", 0.0, 0.0, Some(("e2e", 0.0, 0))).contains("p99        - ms")
        );
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn results_are_timed_from_the_end_of_the_warmup() {
        let meter = Meter::default();
        meter.record(1000, Duration::from_millis(500), false, None);
        meter.record(1000, Duration::from_millis(1500), true, None);
        meter.record(1000, Duration::from_millis(3000), true, None);
        let line = side_result("x".into(), &meter.snapshot(), Duration::from_secs(1));
        assert_eq!((line.ops, line.bytes), (2, 2000));
        assert_eq!(line.duration_s, 2.0);
        assert_eq!(line.ops_per_s, 1.0);
        let empty = side_result("y".into(), &MeterState::default(), Duration::ZERO);
        assert_eq!((empty.ops, empty.ops_per_s), (0, 0.0));
    }
}
