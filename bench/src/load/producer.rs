//! One producer: its own librdkafka client (and so its own connections), its own sender
//! thread, paced by a [`Pacer`]; delivery reports are timed on the client's polling thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::keys::{KeyGen, Value};
use super::meter::{Clock, Meter};
use super::schedule::{Next, Pacer};
use super::{LoadOptions, ProducerSpec};

/// Longest a sender sleeps at once, so it notices an abort quickly.
const MAX_SLEEP: Duration = Duration::from_millis(10);
/// How long a sender waits for its client's queue to drain when it is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_micros(200);

/// Times each delivery report against the record's intended send time.
pub struct DeliveryContext {
    meter: Arc<Meter>,
    clock: Arc<OnceLock<Clock>>,
    warmup: Duration,
    value_bytes: u64,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    /// The record's intended send time, nanoseconds since the start.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, intended_ns: usize) {
        let Some(now) = self.clock.get().map(Clock::now) else {
            return; // nothing is sent before the clock starts
        };
        let intended = Duration::from_nanos(intended_ns as u64);
        match result {
            Ok(_) => self.meter.record(
                self.value_bytes,
                now,
                intended >= self.warmup,
                Some(now.saturating_sub(intended)),
            ),
            Err((error, _)) => self.meter.fail(|| error.to_string()),
        }
    }
}

impl std::fmt::Debug for DeliveryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryContext")
            .field("warmup", &self.warmup)
            .finish_non_exhaustive()
    }
}

/// What one sender sends: its share of the schedule, its value and its keys.
#[derive(Debug)]
pub struct SendPlan {
    /// When to send, and when to stop.
    pub pacer: Pacer,
    /// The value (stamped per record).
    pub value: Value,
    /// The keys.
    pub keys: KeyGen,
}

/// A producer client, connected, waiting for its sender thread.
pub struct LoadProducer {
    producer: ThreadedProducer<DeliveryContext>,
    meter: Arc<Meter>,
}

impl std::fmt::Debug for LoadProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadProducer").finish_non_exhaustive()
    }
}

/// The librdkafka configuration of every producer.
pub fn producer_config(options: &LoadOptions, spec: &ProducerSpec) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("acks", &spec.acks)
        .set("linger.ms", spec.linger_ms.to_string())
        .set("batch.size", spec.batch_size.to_string())
        .set("compression.type", &spec.compression)
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000");
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    config
}

impl LoadProducer {
    /// Creates the client and waits until it has the topic's metadata (so the connection
    /// exists before the clock starts). `clock` is the run's clock, set once the load
    /// starts: delivery reports are timed with it.
    pub fn connect(
        options: &LoadOptions,
        spec: &ProducerSpec,
        clock: Arc<OnceLock<Clock>>,
    ) -> anyhow::Result<Self> {
        let meter = Arc::new(Meter::default());
        let context = DeliveryContext {
            meter: meter.clone(),
            clock,
            warmup: options.warmup,
            value_bytes: spec.record_size as u64,
        };
        let producer: ThreadedProducer<DeliveryContext> = producer_config(options, spec)
            .create_with_context(context)
            .context("creating a producer")?;
        producer
            .client()
            .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
            .context("producer metadata")?;
        Ok(Self { producer, meter })
    }

    /// The meter its deliveries are counted in.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }

    /// Sends until the pacer is done (or `abort` is set), then waits up to `drain` for
    /// the outstanding delivery reports.
    ///
    /// # Errors
    /// The client refused a record for another reason than a full queue, or the
    /// outstanding records were not delivered within `drain`.
    pub fn run(
        self,
        topic: &str,
        plan: SendPlan,
        clock: Clock,
        abort: &AtomicBool,
        drain: Duration,
    ) -> anyhow::Result<()> {
        let SendPlan {
            mut pacer,
            mut value,
            mut keys,
        } = plan;
        while !abort.load(Ordering::Relaxed) {
            let (index, intended) = match pacer.next(clock.now()) {
                Next::Done => break,
                Next::Wait(d) => {
                    std::thread::sleep(d.min(MAX_SLEEP));
                    continue;
                }
                Next::Send { index, intended } => (index, intended),
            };
            let payload = value.stamp(clock.epoch_ns(intended));
            let opaque = usize::try_from(intended.as_nanos()).unwrap_or(usize::MAX);
            let mut record = BaseRecord::with_opaque_to(topic, opaque).payload(payload);
            if let Some(key) = keys.key(index) {
                record = record.key(key);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        if abort.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        record = back;
                        std::thread::sleep(QUEUE_FULL_WAIT);
                    }
                    Err((error, _)) => bail!("producing to {topic}: {error}"),
                }
            }
        }
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.producer
            .flush(drain)
            .with_context(|| format!("waiting {drain:?} for the last delivery reports"))
    }
}
