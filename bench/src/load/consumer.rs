//! One consumer: its own librdkafka client and thread, either assigned a share of the
//! topic's partitions (no consumer group needed) or subscribed in a consumer group.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::LoadOptions;
use super::keys::read_stamp;
use super::meter::{Clock, Meter};

/// How long one poll waits for a record before the thread checks whether to stop.
const POLL: Duration = Duration::from_millis(50);
/// Poll errors printed per consumer (the rest are only counted).
const ERRORS_SHOWN: u64 = 5;

/// Where assigned consumers start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first record of each partition.
    Beginning,
    /// The end of each partition when the consumer starts (only records produced after).
    End,
}

/// Which records count in a consumer's results.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Those received after the warmup (plain consume); no latency.
    Arrival {
        /// Receipts before this (since the start) are warmup.
        warmup: Duration,
    },
    /// Those whose stamped send time is at or after `from_epoch_ns`, with their
    /// publish-to-receive latency (e2e).
    Stamp {
        /// Start of the measured phase, nanoseconds since the UNIX epoch.
        from_epoch_ns: u64,
    },
}

/// A consumer client with its partitions assigned or its subscription made.
pub struct LoadConsumer {
    consumer: BaseConsumer,
    meter: Arc<Meter>,
    id: usize,
}

impl std::fmt::Debug for LoadConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadConsumer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The librdkafka configuration of every consumer (`group`: `None` for assign mode, which
/// still needs a `group.id` for librdkafka to accept an assignment; nothing is committed).
pub fn consumer_config(options: &LoadOptions, group: Option<&str>, reset: StartAt) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .set(
            "auto.offset.reset",
            match reset {
                StartAt::Beginning => "earliest",
                StartAt::End => "latest",
            },
        );
    config.set("group.id", group.unwrap_or("sluice-bench"));
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    config
}

impl LoadConsumer {
    /// Consumer `id`, assigned `partitions` of the topic starting at `start`. With
    /// [`StartAt::End`] the current end offsets are looked up now, so every record produced
    /// after this returns is read.
    ///
    /// # Errors
    /// Creating the client, or looking up the end offsets.
    pub fn assign(
        options: &LoadOptions,
        id: usize,
        partitions: &[i32],
        start: StartAt,
    ) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = consumer_config(options, None, start)
            .create()
            .context("creating a consumer")?;
        let mut assignment = TopicPartitionList::new();
        for &partition in partitions {
            let offset = match start {
                StartAt::Beginning => Offset::Beginning,
                StartAt::End => {
                    let (_, high) = consumer
                        .fetch_watermarks(&options.topic, partition, Duration::from_secs(10))
                        .with_context(|| format!("end offset of partition {partition}"))?;
                    Offset::Offset(high)
                }
            };
            assignment
                .add_partition_offset(&options.topic, partition, offset)
                .context("assignment")?;
        }
        consumer.assign(&assignment).context("assign")?;
        Ok(Self {
            consumer,
            meter: Arc::new(Meter::default()),
            id,
        })
    }

    /// Consumer `id`, subscribed to the topic in consumer group `group`, starting at
    /// `reset` where the group has no committed offset.
    ///
    /// # Errors
    /// Creating the client or subscribing.
    pub fn subscribe(
        options: &LoadOptions,
        id: usize,
        group: &str,
        reset: StartAt,
    ) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = consumer_config(options, Some(group), reset)
            .create()
            .context("creating a consumer")?;
        consumer
            .subscribe(&[&options.topic])
            .context("subscribing")?;
        Ok(Self {
            consumer,
            meter: Arc::new(Meter::default()),
            id,
        })
    }

    /// Polls once (discarding anything received) and says whether the group has given
    /// this consumer partitions yet.
    pub fn poll_for_assignment(&self) -> bool {
        let _ = self.consumer.poll(POLL);
        self.consumer
            .assignment()
            .is_ok_and(|assignment| assignment.count() > 0)
    }

    /// The meter its receipts are counted in.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }

    /// Reads until `stop` is set, counting each record by `measure`.
    pub fn run(self, clock: Clock, measure: Measure, stop: &AtomicBool) {
        let mut errors = 0u64;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let message = match self.consumer.poll(POLL) {
                None => continue,
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    errors += 1;
                    if errors <= ERRORS_SHOWN {
                        eprintln!("consumer {}: {error}", self.id);
                    }
                    continue;
                }
            };
            let now = clock.now();
            let payload = message.payload().unwrap_or_default();
            let (measured, latency) = match measure {
                Measure::Arrival { warmup } => (now >= warmup, None),
                Measure::Stamp { from_epoch_ns } => match read_stamp(payload) {
                    Some(stamp) => (
                        stamp >= from_epoch_ns,
                        Some(Duration::from_nanos(
                            clock.epoch_ns(now).saturating_sub(stamp),
                        )),
                    ),
                    None => (false, None),
                },
            };
            self.meter
                .record(payload.len() as u64, now, measured, latency);
        }
        if errors > ERRORS_SHOWN {
            eprintln!(
                "consumer {}: {errors} poll errors in {:.1} s",
                self.id,
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Partitions of consumer `id` of `consumers`: every `consumers`-th one, starting at `id`.
pub fn partitions_of(partitions: i32, consumers: usize, id: usize) -> Vec<i32> {
    (0..partitions)
        .filter(|p| usize::try_from(*p).is_ok_and(|p| p % consumers.max(1) == id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_out() {
        assert_eq!(partitions_of(8, 3, 0), [0, 3, 6]);
        assert_eq!(partitions_of(8, 3, 2), [2, 5]);
        assert_eq!(partitions_of(2, 4, 3), Vec::<i32>::new());
        let all: usize = (0..4).map(|c| partitions_of(10, 4, c).len()).sum();
        assert_eq!(all, 10);
    }
}
