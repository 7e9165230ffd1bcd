//! `sluice produce TOPIC`: one record per line of standard input.
//!
//! A thread reads lines and hands them over a bounded channel, so the main thread can serve
//! librdkafka's delivery reports and notice Ctrl-C while standard input blocks. At the end
//! of input (or on Ctrl-C) everything sent is flushed; the command fails if any record was
//! not delivered.

use std::io::BufRead;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, config::RDKafkaLogLevel};

use super::client::{self, Quiet};
use super::{ProduceArgs, format_duration};

/// Lines read ahead of the producer.
const LINES_AHEAD: usize = 1024;
/// How often the main loop looks at the stop flag and serves delivery reports.
const TICK: Duration = Duration::from_millis(100);

/// Counts delivery reports.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        Quiet.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        Quiet.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// Starts the thread that reads standard input, one line (without its `\n`) per message.
fn read_lines() -> Receiver<std::io::Result<Vec<u8>>> {
    let (sender, receiver) = sync_channel(LINES_AHEAD);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if sender.send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let _ = sender.send(Err(error));
                    return;
                }
            }
        }
    });
    receiver
}

/// Splits `line` at the first `separator`: (key, value). Without it the line is the value.
fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(separator) = separator else {
        return (None, line);
    };
    match line
        .windows(separator.len())
        .position(|window| window == separator)
    {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

/// Runs `sluice produce`.
///
/// # Errors
/// The brokers are unreachable, the topic or partition does not exist, or a record was
/// not delivered.
pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    let timeout = args.client.timeout;
    let mut config = client::config(&args.client);
    config
        // Producers create missing topics when the broker allows it, as kcat does.
        .set("allow.auto.create.topics", "true")
        .set("acks", &args.acks)
        .set("compression.type", args.compression.librdkafka_name())
        .set("message.timeout.ms", client::millis(timeout).to_string())
        // The Java client's partitioner: keyed records land where Kafka clients put them.
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5");
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("creating the producer")?;

    let metadata = client::metadata(producer.client(), &args.client, Some(&args.topic))?;
    let topic = client::find_topic(&metadata, &args.topic)?;
    if let Some(partition) = args.partition {
        let count = topic.partitions().len();
        if !topic.partitions().is_empty() && !topic.partitions().iter().any(|p| p.id() == partition)
        {
            bail!(
                "topic '{}' has no partition {partition} ({count} partitions)",
                args.topic
            );
        }
    }

    let mut headers = OwnedHeaders::new_with_capacity(args.headers.len());
    for (key, value) in &args.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let separator = args.key_delimiter.as_deref().map(str::as_bytes);

    // From here on Ctrl-C stops reading and flushes what was read.
    let stop = super::stop_flag()?;
    let lines = read_lines();
    let mut sent: u64 = 0;
    let mut read_error = None;
    while !stop.load(Ordering::Relaxed) {
        let line = match lines.recv_timeout(TICK) {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => {
                read_error = Some(error);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                producer.poll(Duration::ZERO);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let (key, value) = split_key(&line, separator);
        let mut record = BaseRecord::to(&args.topic).payload(value);
        if !args.headers.is_empty() {
            record = record.headers(headers.clone());
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(TICK);
                }
                Err((error, _)) => bail!("cannot produce to '{}': {error}", args.topic),
            }
        }
        sent += 1;
        producer.poll(Duration::ZERO);
    }

    // Every queued record resolves within message.timeout.ms; leave librdkafka a margin.
    let flushed = producer.flush(timeout + Duration::from_secs(5));
    let deliveries = producer.context();
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    let first_error = deliveries
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(error) = read_error {
        return Err(anyhow!(error).context("reading standard input"));
    }
    if delivered < sent {
        let cause = match (first_error, flushed) {
            (Some(error), _) => error,
            (None, Err(error)) => error.to_string(),
            (None, Ok(())) => "no delivery report".to_string(),
        };
        let cause = if cause.contains("timed out") {
            format!(
                "{cause}: no acknowledgement from the brokers at {} within {}",
                args.client.brokers,
                format_duration(timeout)
            )
        } else {
            cause
        };
        bail!(
            "{} of {sent} records not delivered to '{}' ({failed} failed): {cause}",
            sent - delivered,
            args.topic
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn keys_split_at_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(b":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_key(b"kv", Some(b":")), (None, &b"kv"[..]));
        assert_eq!(split_key(b":v", Some(b":")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(
            split_key(b"a::b", Some(b"::")),
            (Some(&b"a"[..]), &b"b"[..])
        );
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
    }
}
