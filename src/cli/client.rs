//! What every librdkafka client of the CLI shares: its settings, a context that keeps
//! librdkafka's own logging out of the user's terminal (it goes to `SLUICE_LOG=debug`), and
//! the turning of librdkafka errors into one-line messages.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::Client;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::{ClientConfig, ClientContext};

use super::{ClientArgs, format_duration};

/// A client context that sends librdkafka's log lines and global errors to `tracing` at
/// debug level instead of printing them: failures reach the user as the operation's error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "{facility} {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

/// Settings shared by every client: the bootstrap brokers, socket timeouts bounded by
/// `--timeout`, and no topic auto-creation from metadata requests (only `produce` turns it
/// on, as producers do).
#[must_use]
pub fn config(args: &ClientArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("client.id", "sluice-cli")
        .set(
            "socket.timeout.ms",
            millis(args.timeout).max(10).to_string(),
        )
        .set(
            "socket.connection.setup.timeout.ms",
            millis(args.timeout).max(1000).to_string(),
        )
        .set("allow.auto.create.topics", "false")
        .set("log.connection.close", "false");
    config
}

/// Milliseconds of `duration`, saturated to `i32` (what librdkafka's settings take).
#[must_use]
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX))
}

/// An admin client.
///
/// # Errors
/// librdkafka refused the settings.
pub fn admin(args: &ClientArgs) -> anyhow::Result<AdminClient<Quiet>> {
    config(args)
        .create_with_context(Quiet)
        .context("creating the admin client")
}

/// Admin request options bounded by `--timeout`.
#[must_use]
pub fn admin_options(args: &ClientArgs) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(args.timeout))
        .operation_timeout(Some(args.timeout))
}

/// Whether librdkafka's error means no broker could be reached (or answered) in time.
#[must_use]
pub fn is_unreachable(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::BrokerNotAvailable
    )
}

/// The librdkafka error code inside `error` (admin errors included, which
/// [`KafkaError::rdkafka_error_code`] leaves out).
#[must_use]
pub fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// librdkafka's description of `code` ("Broker: Configuration is invalid"), without the
/// variant name that `RDKafkaErrorCode`'s `Display` puts first.
#[must_use]
pub fn code_text(code: RDKafkaErrorCode) -> String {
    let text = code.to_string();
    match (text.find(" ("), text.strip_suffix(')')) {
        (Some(open), Some(inner)) => inner[open + 2..].to_string(),
        _ => text,
    }
}

/// The one-line error for `error`: "cannot reach …" when no broker answered in time, else
/// `what` and librdkafka's text.
#[must_use]
pub fn describe(args: &ClientArgs, what: &str, error: &KafkaError) -> anyhow::Error {
    match error_code(error) {
        Some(code) if is_unreachable(code) => unreachable(args, code_text(code)),
        Some(code) => anyhow!("{what}: {}", code_text(code)),
        None => anyhow!("{what}: {error}"),
    }
}

/// The error for brokers that did not answer within `--timeout`.
#[must_use]
pub fn unreachable(args: &ClientArgs, cause: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "cannot reach the brokers at {} within {} ({cause})",
        args.brokers,
        format_duration(args.timeout)
    )
}

/// Fetches metadata (of one topic, or of all), turning a timeout into a "cannot reach"
/// error.
///
/// # Errors
/// The brokers did not answer within `--timeout`, or answered with an error.
pub fn metadata<C: ClientContext>(
    client: &Client<C>,
    args: &ClientArgs,
    topic: Option<&str>,
) -> anyhow::Result<Metadata> {
    client
        .fetch_metadata(topic, args.timeout)
        .map_err(|error| describe(args, "fetching metadata", &error))
}

/// The topic `name` in `metadata`, or an "unknown topic" error.
///
/// # Errors
/// The topic does not exist, or the broker reported another error for it.
pub fn find_topic<'a>(metadata: &'a Metadata, name: &str) -> anyhow::Result<&'a MetadataTopic> {
    let Some(topic) = metadata.topics().iter().find(|topic| topic.name() == name) else {
        bail!("unknown topic '{name}'");
    };
    match topic.error().map(RDKafkaErrorCode::from) {
        None => Ok(topic),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            bail!("unknown topic '{name}'")
        }
        // Being created or electing a leader: the partitions will come.
        Some(RDKafkaErrorCode::LeaderNotAvailable) => Ok(topic),
        Some(code) => bail!("topic '{name}': {code}"),
    }
}

/// Waits for an admin future. librdkafka resolves it within the admin options' request
/// timeout, so this does not hang.
///
/// # Errors
/// The request failed as a whole (each item's result is inside the value).
pub fn wait_admin<T>(
    args: &ClientArgs,
    what: &str,
    future: impl std::future::Future<Output = rdkafka::error::KafkaResult<T>>,
) -> anyhow::Result<T> {
    futures::executor::block_on(future).map_err(|error| describe(args, what, &error))
}
