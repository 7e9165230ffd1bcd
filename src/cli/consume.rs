//! `sluice consume TOPIC`: reads partitions directly (assign; no group, no commits) from
//! `-o`, or joins a consumer group with `-g` (subscribe; committed offsets), and prints each
//! record as its value and a newline, a `-f` format (kcat's tokens), or a JSON object.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};

use super::client::{self, Quiet};
use super::{ConsumeArgs, StartOffset};

/// How long one poll waits before looking at the stop flag again.
const TICK: Duration = Duration::from_millis(100);
/// The group.id of a consumer that only assigns partitions (librdkafka needs one to
/// assign; nothing is committed with it).
const ASSIGN_GROUP: &str = "sluice-cli";

/// One piece of a `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    KeySize,
    Value,
    ValueSize,
    Timestamp,
    Headers,
}

/// A parsed `-f` format: kcat's tokens `%t %p %o %k %K %s %S %T %h %%` and the escapes
/// `\n \t \r \\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Piece>);

impl Format {
    /// Parses a format string.
    ///
    /// # Errors
    /// An unknown `%` token or `\` escape, or one cut off at the end.
    pub fn parse(text: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let piece = match chars.next() {
                        Some('t') => Piece::Topic,
                        Some('p') => Piece::Partition,
                        Some('o') => Piece::Offset,
                        Some('k') => Piece::Key,
                        Some('K') => Piece::KeySize,
                        Some('s') => Piece::Value,
                        Some('S') => Piece::ValueSize,
                        Some('T') => Piece::Timestamp,
                        Some('h') => Piece::Headers,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some(other) => return Err(format!("unknown format token %{other}")),
                        None => return Err("format ends with a lone %".to_string()),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                '\\' => {
                    let byte = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        Some(other) => return Err(format!("unknown escape \\{other}")),
                        None => return Err("format ends with a lone \\".to_string()),
                    };
                    literal.push(byte);
                }
                _ => {
                    let mut buffer = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Format(pieces))
    }

    /// Appends `record` formatted to `out`.
    fn write(&self, record: &Record<'_>, out: &mut Vec<u8>) {
        let size = |bytes: Option<&[u8]>| bytes.map_or(-1, |bytes| bytes.len() as i64);
        for piece in &self.0 {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Topic => out.extend_from_slice(record.topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(record.partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
                Piece::Key => out.extend_from_slice(record.key.unwrap_or_default()),
                Piece::KeySize => out.extend_from_slice(size(record.key).to_string().as_bytes()),
                Piece::Value => out.extend_from_slice(record.value.unwrap_or_default()),
                Piece::ValueSize => {
                    out.extend_from_slice(size(record.value).to_string().as_bytes());
                }
                Piece::Timestamp => {
                    let ms = record.timestamp.map_or(-1, |(ms, _)| ms);
                    out.extend_from_slice(ms.to_string().as_bytes());
                }
                Piece::Headers => {
                    for (index, (key, value)) in record.headers.iter().enumerate() {
                        if index > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(key.as_bytes());
                        if let Some(value) = value {
                            out.push(b'=');
                            out.extend_from_slice(value);
                        }
                    }
                }
            }
        }
    }
}

/// The fields of one consumed record.
#[derive(Debug)]
struct Record<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    /// Milliseconds and whether it is LogAppendTime (else CreateTime).
    timestamp: Option<(i64, bool)>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl<'a> Record<'a> {
    fn of(message: &'a BorrowedMessage<'a>) -> Record<'a> {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key, header.value))
                    .collect()
            })
            .unwrap_or_default();
        let timestamp = match message.timestamp() {
            Timestamp::NotAvailable => None,
            Timestamp::CreateTime(ms) => Some((ms, false)),
            Timestamp::LogAppendTime(ms) => Some((ms, true)),
        };
        Record {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            value: message.payload(),
            timestamp,
            headers,
        }
    }

    /// One JSON object (no newline), its fields in a fixed order: topic, partition, offset,
    /// timestamp, timestamp_type, key, value, headers.
    fn json(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(key, value)| {
                format!(
                    "{{\"key\":{},\"value\":{}}}",
                    serde_json::Value::from(*key),
                    bytes_json(*value)
                )
            })
            .collect();
        let timestamp_type = self.timestamp.map(|(_, log_append)| {
            if log_append {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
        });
        format!(
            "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{},\
             \"timestamp_type\":{},\"key\":{},\"value\":{},\"headers\":[{}]}}",
            serde_json::Value::from(self.topic),
            self.partition,
            self.offset,
            serde_json::Value::from(self.timestamp.map(|(ms, _)| ms)),
            serde_json::Value::from(timestamp_type),
            bytes_json(self.key),
            bytes_json(self.value),
            headers.join(",")
        )
    }
}

/// Bytes as JSON: null, a string when they are UTF-8, else `{"base64": "…"}`.
fn bytes_json(bytes: Option<&[u8]>) -> serde_json::Value {
    match bytes {
        None => serde_json::Value::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::Value::String(text.to_string()),
            Err(_) => serde_json::json!({
                "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
            }),
        },
    }
}

/// How records are printed.
#[derive(Debug)]
enum Output {
    Value,
    Format(Format),
    Json,
}

impl Output {
    fn write(&self, record: &Record<'_>, out: &mut Vec<u8>) {
        match self {
            Output::Value => {
                out.extend_from_slice(record.value.unwrap_or_default());
                out.push(b'\n');
            }
            Output::Format(format) => format.write(record, out),
            Output::Json => {
                out.extend_from_slice(record.json().as_bytes());
                out.push(b'\n');
            }
        }
    }
}

/// Whether a consumer error ends the command (else it is reported and consuming goes on:
/// librdkafka retries transient failures such as a broker restart).
fn is_fatal(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::OffsetOutOfRange
                | RDKafkaErrorCode::AutoOffsetReset
                | RDKafkaErrorCode::UnsupportedFeature
                | RDKafkaErrorCode::Fatal
        )
    )
}

/// Builds the assignment: every chosen partition at the offset `-o` names.
fn assignment(
    consumer: &BaseConsumer<Quiet>,
    args: &ConsumeArgs,
    partitions: &[i32],
) -> anyhow::Result<TopicPartitionList> {
    let topic = args.topic.as_str();
    let mut list = TopicPartitionList::with_capacity(partitions.len());
    let offset = match args.offset {
        StartOffset::Beginning => Offset::Beginning,
        StartOffset::End => Offset::End,
        StartOffset::At(offset) => {
            // Checked here: past the end librdkafka only says "no offset to reset to".
            for &partition in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(topic, partition, args.client.timeout)
                    .map_err(|error| {
                        client::describe(
                            &args.client,
                            &format!("reading the offsets of partition {partition}"),
                            &error,
                        )
                    })?;
                if offset < low || offset > high {
                    bail!(
                        "offset {offset} is out of range for partition {partition} of '{topic}' \
                         (offsets {low} to {high})"
                    );
                }
            }
            Offset::Offset(offset)
        }
        StartOffset::Tail(count) => Offset::OffsetTail(count),
        StartOffset::Timestamp(ms) => {
            let mut query = TopicPartitionList::with_capacity(partitions.len());
            for &partition in partitions {
                query.add_partition_offset(topic, partition, Offset::Offset(ms))?;
            }
            let found = consumer
                .offsets_for_times(query, args.client.timeout)
                .map_err(|error| {
                    client::describe(
                        &args.client,
                        &format!("looking up offsets for time {ms}"),
                        &error,
                    )
                })?;
            for element in found.elements() {
                element.error().map_err(|error| {
                    anyhow!(
                        "looking up offsets for time {ms} in partition {}: {error}",
                        element.partition()
                    )
                })?;
                // No record at or after the time: start at the end.
                let offset = match element.offset() {
                    Offset::Offset(offset) if offset >= 0 => Offset::Offset(offset),
                    _ => Offset::End,
                };
                list.add_partition_offset(topic, element.partition(), offset)?;
            }
            return Ok(list);
        }
    };
    for &partition in partitions {
        list.add_partition_offset(topic, partition, offset)?;
    }
    Ok(list)
}

/// Runs `sluice consume`.
///
/// # Errors
/// The brokers are unreachable, the topic or a partition does not exist, an offset is out
/// of range, or the output cannot be written.
pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    let output = match (&args.format, args.json) {
        (Some(format), _) => Output::Format(format.clone()),
        (None, true) => Output::Json,
        (None, false) => Output::Value,
    };
    let mut config = client::config(&args.client);
    config
        .set(
            "enable.partition.eof",
            if args.exit_at_end { "true" } else { "false" },
        )
        .set("enable.auto.offset.store", "true");
    match &args.group {
        Some(group) => {
            let reset = match args.offset {
                StartOffset::Beginning => "earliest",
                StartOffset::End => "latest",
                _ => bail!(
                    "with -g, -o is where the group starts without a committed offset: beginning or end"
                ),
            };
            config
                .set("group.id", group)
                .set("enable.auto.commit", "true")
                .set("auto.offset.reset", reset);
        }
        None => {
            config
                .set("group.id", ASSIGN_GROUP)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                // An offset past the end is an error, not a silent jump.
                .set("auto.offset.reset", "error");
        }
    }
    let consumer: BaseConsumer<Quiet> = config
        .create_with_context(Quiet)
        .context("creating the consumer")?;

    let metadata = client::metadata(consumer.client(), &args.client, Some(&args.topic))?;
    let topic = client::find_topic(&metadata, &args.topic)?;
    let existing: BTreeSet<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    let partitions: Vec<i32> = if args.partitions.is_empty() {
        existing.iter().copied().collect()
    } else {
        for partition in &args.partitions {
            if !existing.contains(partition) {
                bail!(
                    "topic '{}' has no partition {partition} ({} partitions)",
                    args.topic,
                    existing.len()
                );
            }
        }
        let chosen: BTreeSet<i32> = args.partitions.iter().copied().collect();
        chosen.into_iter().collect()
    };

    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let list = assignment(&consumer, args, &partitions)?;
        consumer.assign(&list)?;
    }

    // From here on Ctrl-C ends the command cleanly. Dropping the consumer closes it: a group
    // member commits its offsets and leaves the group.
    let stop = super::stop_flag()?;
    consume(&consumer, args, &output, &stop)
}

/// Polls and prints until `-n`, `-e`, Ctrl-C or a fatal error.
fn consume(
    consumer: &BaseConsumer<Quiet>,
    args: &ConsumeArgs,
    output: &Output,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut count: u64 = 0;
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let mut last_warning = String::new();
    let result = loop {
        if stop.load(Ordering::Relaxed) || args.count.is_some_and(|limit| count >= limit) {
            break Ok(());
        }
        let polled = consumer.poll(TICK);
        match polled {
            None => {
                if let Err(error) = flush(&mut stdout, &mut buffer) {
                    break error;
                }
            }
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                output.write(&Record::of(&message), &mut buffer);
                count += 1;
                if buffer.len() >= 32 * 1024
                    && let Err(error) = flush(&mut stdout, &mut buffer)
                {
                    break error;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if args.exit_at_end && reached_end(consumer, args, &at_end) {
                    break Ok(());
                }
            }
            Some(Err(error)) if is_fatal(&error) => {
                break Err(client::describe(
                    &args.client,
                    &format!("consuming '{}'", args.topic),
                    &error,
                ));
            }
            Some(Err(error)) => {
                let warning = match client::error_code(&error) {
                    Some(code) => client::code_text(code),
                    None => error.to_string(),
                };
                if warning != last_warning {
                    eprintln!("warning: consuming '{}': {warning}", args.topic);
                    last_warning = warning;
                }
            }
        }
    };
    match (result, flush(&mut stdout, &mut buffer)) {
        (Err(error), _) => Err(error),
        (Ok(()), Err(Err(error))) => Err(error),
        (Ok(()), _) => Ok(()),
    }
}

/// Whether every partition being read has reported its end (EOF) since its last record.
fn reached_end(consumer: &BaseConsumer<Quiet>, args: &ConsumeArgs, at_end: &BTreeSet<i32>) -> bool {
    let Ok(assignment) = consumer.assignment() else {
        return false;
    };
    let assigned: Vec<i32> = assignment
        .elements_for_topic(&args.topic)
        .iter()
        .map(|element| element.partition())
        .collect();
    !assigned.is_empty() && assigned.iter().all(|partition| at_end.contains(partition))
}

/// Writes out the buffered records. `Err(Ok(()))` means the reader went away (a closed
/// pipe): stop quietly. `Err(Err(_))` is a real write error.
fn flush(
    stdout: &mut std::io::StdoutLock<'_>,
    buffer: &mut Vec<u8>,
) -> Result<(), anyhow::Result<()>> {
    if buffer.is_empty() {
        return Ok(());
    }
    let written = stdout.write_all(buffer).and_then(|()| stdout.flush());
    buffer.clear();
    match written {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Err(Ok(())),
        Err(error) => Err(Err(
            anyhow::Error::new(error).context("writing to standard output")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record<'static> {
        Record {
            topic: "t",
            partition: 2,
            offset: 41,
            key: Some(b"k1"),
            value: Some(b"hello"),
            timestamp: Some((1_700_000_000_000, false)),
            headers: vec![("a", Some(b"1")), ("n", None)],
        }
    }

    fn render(format: &str, record: &Record<'_>) -> String {
        let mut out = Vec::new();
        Format::parse(format)
            .expect("format")
            .write(record, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn format_tokens() {
        let record = record();
        assert_eq!(
            render("%t/%p/%o %k=%s (%K,%S) %T [%h] 100%%\\n", &record),
            "t/2/41 k1=hello (2,5) 1700000000000 [a=1,n] 100%\n"
        );
        assert_eq!(render("\\t%s\\\\", &record), "\thello\\");
        let null = Record {
            key: None,
            value: None,
            timestamp: None,
            headers: Vec::new(),
            ..record
        };
        assert_eq!(render("%k|%s|%K|%S|%T|%h", &null), "||-1|-1|-1|");
        assert!(Format::parse("%x").is_err());
        assert!(Format::parse("50%").is_err());
        assert!(Format::parse("\\q").is_err());
    }

    #[test]
    fn json_records() {
        let mut record = record();
        record.value = Some(&[0xff, 0x00]);
        let text = record.json();
        assert!(
            text.starts_with(r#"{"topic":"t","partition":2,"offset":41,"#),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(json["key"], "k1");
        assert_eq!(json["value"]["base64"], "/wA=");
        assert_eq!(json["timestamp_type"], "CreateTime");
        assert_eq!(json["headers"][1]["value"], serde_json::Value::Null);
        assert_eq!(json["partition"], 2);
    }
}
