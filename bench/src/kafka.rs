//! Load against any Kafka-protocol broker with librdkafka (the `rdkafka` crate) as the
//! client: `produce` (records/s, MB/s, delivery-ack latency percentiles) and `consume`
//! (records/s, MB/s reading a topic from the beginning). The full load tool (open-loop
//! rates, end-to-end latency, several producers) is its own issue; these two measure the
//! broker's produce and fetch paths with the client Kafka users run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::report::{LatencyRecorder, ResultLine};

/// What `produce` sends.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic (created with `partitions` if missing).
    pub topic: String,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Value size of each record.
    pub record_size: usize,
    /// Records to send.
    pub count: u64,
    /// `acks`: 0, 1 or all.
    pub acks: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.size`.
    pub batch_size: u32,
}

struct LatencyContext {
    latencies: Arc<Mutex<LatencyRecorder>>,
    failures: Arc<Mutex<u64>>,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: Self::DeliveryOpaque) {
        if result.is_ok() {
            if let Ok(mut latencies) = self.latencies.lock() {
                latencies.record(sent_at.elapsed());
            }
        } else if let Ok(mut failures) = self.failures.lock() {
            *failures += 1;
        }
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
///
/// # Errors
/// The broker refused for another reason than "already exists".
pub fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results =
        futures::executor::block_on(admin.create_topics([&new_topic], &AdminOptions::new()))
            .context("create topic")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating {name}: {code}"),
        }
    }
    Ok(())
}

/// Sends `count` records as fast as the client allows; latency is send → delivery report.
///
/// # Errors
/// Client creation, topic creation, or records that failed delivery.
pub fn produce(options: &ProduceOptions) -> anyhow::Result<ResultLine> {
    ensure_topic(&options.brokers, &options.topic, options.partitions)?;
    let latencies = Arc::new(Mutex::new(LatencyRecorder::new()));
    let failures = Arc::new(Mutex::new(0u64));
    let context = LatencyContext {
        latencies: latencies.clone(),
        failures: failures.clone(),
    };
    let producer: ThreadedProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("acks", &options.acks)
        .set("linger.ms", options.linger_ms.to_string())
        .set("batch.size", options.batch_size.to_string())
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(context)
        .context("producer")?;
    let value = vec![b'x'; options.record_size];
    let started = Instant::now();
    for _ in 0..options.count {
        let mut record = BaseRecord::<(), [u8], Box<Instant>>::with_opaque_to(
            &options.topic,
            Box::new(Instant::now()),
        )
        .payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("send: {error}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).context("flush")?;
    let elapsed = started.elapsed();
    let failed = *failures.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if failed > 0 {
        bail!("{failed} records failed delivery");
    }
    let bytes = options.count * options.record_size as u64;
    let latencies = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let name = format!("produce.{}B.acks{}", options.record_size, options.acks);
    Ok(ResultLine::new(name, bytes, options.count, elapsed).with_latency("ack", &latencies))
}

/// What `consume` reads.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Records to read (from the beginning of every partition).
    pub count: u64,
    /// Result name suffix (e.g. "cold", "hot").
    pub label: String,
}

/// Reads `count` records from the beginning of every partition of the topic.
///
/// # Errors
/// Client errors, or the records do not arrive within two minutes.
pub fn consume(options: &ConsumeOptions) -> anyhow::Result<ResultLine> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .create()
        .context("consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
        .context("metadata")?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len());
    if partitions == 0 {
        bail!("topic {} has no partitions", options.topic);
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(&options.topic, partition, Offset::Beginning)
            .context("assign")?;
    }
    consumer.assign(&assignment).context("assign")?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < options.count {
        if Instant::now() > deadline {
            bail!(
                "only {records} of {} records arrived in time",
                options.count
            );
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.context("consume")?;
            records += 1;
            bytes += message.payload_len() as u64;
        }
    }
    Ok(ResultLine::new(
        format!("consume.{}", options.label),
        bytes,
        records,
        started.elapsed(),
    ))
}
