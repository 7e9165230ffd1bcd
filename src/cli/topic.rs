//! `sluice topic create|list|describe|alter-config|add-partitions|delete`.

use anyhow::{anyhow, bail};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{CreateTopicsRequest, IncrementalAlterConfigsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use super::client::{self, Quiet};
use super::wire::{self, Connection};
use super::{ClientArgs, TopicCommand, print, table};

/// `ConfigResource.Type` of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// `AlterConfigOp.OpType` codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Runs a topic command.
///
/// # Errors
/// The operation failed; the message is one line.
pub fn run(args: &ClientArgs, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replicas,
            configs,
            validate_only,
        } => create(args, &name, partitions, replicas, &configs, validate_only),
        TopicCommand::List { internal } => list(args, internal),
        TopicCommand::Describe { name } => describe(args, &name),
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            validate_only,
        } => alter_config(args, &name, &set, &delete, validate_only),
        TopicCommand::AddPartitions { name, partitions } => add_partitions(args, &name, partitions),
        TopicCommand::Delete { names } => delete(args, &names),
    }
}

/// The one-line error for a topic operation the broker refused, with the broker's own
/// explanation when there is one.
fn refused(
    action: &str,
    name: &str,
    code: RDKafkaErrorCode,
    reason: Option<&str>,
) -> anyhow::Error {
    let text = client::code_text(code);
    match (code, reason) {
        (RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic, _) => {
            anyhow!("unknown topic '{name}'")
        }
        (RDKafkaErrorCode::TopicAlreadyExists, _) => anyhow!("topic '{name}' already exists"),
        (_, Some(reason)) => anyhow!("cannot {action} topic '{name}': {reason} ({text})"),
        (RDKafkaErrorCode::InvalidConfig, None) => {
            anyhow!("cannot {action} topic '{name}': invalid config ({text})")
        }
        (_, None) => anyhow!("cannot {action} topic '{name}': {text}"),
    }
}

/// The broker's own message for why a topic cannot be created: librdkafka keeps only the
/// error code, so the request is made again, validate-only, with our own client. Best
/// effort: `None` if that fails or the broker gives no message.
fn creation_refusal_reason(
    args: &ClientArgs,
    name: &str,
    partitions: i32,
    replicas: i32,
    configs: &[(String, String)],
) -> Option<String> {
    let mut connection = Connection::connect(&args.brokers, args.timeout).ok()?;
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(i16::try_from(replicas).ok()?)
        .with_configs(
            configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(key.clone()))
                        .with_value(Some(StrBytes::from_string(value.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(i32::try_from(client::millis(args.timeout)).ok()?)
        .with_validate_only(true);
    let response = connection.send(&request).ok()?;
    let result = response.topics.first()?;
    if result.error_code == 0 {
        return None;
    }
    result
        .error_message
        .as_deref()
        .filter(|message| !message.is_empty())
        .map(str::to_string)
}

fn create(
    args: &ClientArgs,
    name: &str,
    partitions: Option<i32>,
    replicas: Option<i32>,
    configs: &[(String, String)],
    validate_only: bool,
) -> anyhow::Result<()> {
    let admin = client::admin(args)?;
    // -1: the broker's default (KIP-464).
    let (partitions, replicas) = (partitions.unwrap_or(-1), replicas.unwrap_or(-1));
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replicas));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let options = client::admin_options(args).validate_only(validate_only);
    let results = client::wait_admin(
        args,
        "creating the topic",
        admin.create_topics([&topic], &options),
    )?;
    for result in results {
        match result {
            Ok(created) if validate_only => {
                print(&format!(
                    "topic '{created}' can be created (validated only)\n"
                ))?;
            }
            Ok(created) => print(&format!("created topic '{created}'\n"))?,
            Err((topic, code)) => {
                let reason = match code {
                    RDKafkaErrorCode::TopicAlreadyExists => None,
                    _ => creation_refusal_reason(args, &topic, partitions, replicas, configs),
                };
                return Err(refused("create", &topic, code, reason.as_deref()));
            }
        }
    }
    Ok(())
}

fn list(args: &ClientArgs, internal: bool) -> anyhow::Result<()> {
    let admin = client::admin(args)?;
    let metadata = client::metadata(admin.inner(), args, None)?;
    let mut topics: Vec<_> = metadata
        .topics()
        .iter()
        .filter(|topic| internal || !topic.name().starts_with("__"))
        .collect();
    topics.sort_by_key(|topic| topic.name());
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|topic| {
            let replicas = topic
                .partitions()
                .iter()
                .map(|partition| partition.replicas().len())
                .max()
                .unwrap_or(0);
            vec![
                topic.name().to_string(),
                topic.partitions().len().to_string(),
                replicas.to_string(),
            ]
        })
        .collect();
    print(&table(&["NAME", "PARTITIONS", "REPLICAS"], &rows))
}

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Kafka's name of a config source (what `kafka-configs.sh` and rpk print).
fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Unknown => "UNKNOWN",
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

fn describe(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let consumer: BaseConsumer<Quiet> = client::config(args).create_with_context(Quiet)?;
    let metadata = client::metadata(consumer.client(), args, Some(name))?;
    let topic = client::find_topic(&metadata, name)?;
    let mut partitions: Vec<_> = topic.partitions().iter().collect();
    partitions.sort_by_key(|partition| partition.id());
    let replication = partitions
        .iter()
        .map(|partition| partition.replicas().len())
        .max()
        .unwrap_or(0);
    let mut rows = Vec::with_capacity(partitions.len());
    for partition in &partitions {
        let (start, end) = match consumer.fetch_watermarks(name, partition.id(), args.timeout) {
            Ok((low, high)) => (low.to_string(), high.to_string()),
            Err(error) => {
                eprintln!(
                    "warning: offsets of partition {} of '{name}': {error}",
                    partition.id()
                );
                ("?".to_string(), "?".to_string())
            }
        };
        rows.push(vec![
            partition.id().to_string(),
            partition.leader().to_string(),
            ids(partition.replicas()),
            ids(partition.isr()),
            start,
            end,
        ]);
    }

    let admin = client::admin(args)?;
    let results = client::wait_admin(
        args,
        "describing configs",
        admin.describe_configs(
            [&ResourceSpecifier::Topic(name)],
            &client::admin_options(args),
        ),
    )?;
    let mut entries = match results.into_iter().next() {
        Some(Ok(resource)) => resource.entries,
        Some(Err(code)) => return Err(refused("describe", name, code, None)),
        None => bail!("no configs returned for topic '{name}'"),
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let configs: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| {
            let value = if entry.is_sensitive {
                "(sensitive)".to_string()
            } else {
                entry.value.clone().unwrap_or_else(|| "-".to_string())
            };
            vec![
                entry.name.clone(),
                value,
                source_name(&entry.source).to_string(),
            ]
        })
        .collect();

    let mut out = format!(
        "topic        {name}\npartitions   {}\nreplication  {replication}\n\n",
        partitions.len()
    );
    out.push_str(&table(
        &[
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LOG-START",
            "LOG-END",
        ],
        &rows,
    ));
    out.push('\n');
    out.push_str(&table(&["CONFIG", "VALUE", "SOURCE"], &configs));
    print(&out)
}

fn alter_config(
    args: &ClientArgs,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    validate_only: bool,
) -> anyhow::Result<()> {
    let mut connection = Connection::connect(&args.brokers, args.timeout)?;
    let operations: Vec<AlterableConfig> = set
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .chain(delete.iter().map(|key| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(OP_DELETE)
                .with_value(None)
        }))
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(operations),
        ])
        .with_validate_only(validate_only);
    let response = connection.send(&request)?;
    let Some(result) = response.responses.first() else {
        bail!("no result for topic '{name}' from {}", connection.address());
    };
    match result.error_code {
        0 => {}
        code if code == ResponseError::UnknownTopicOrPartition.code() => {
            bail!("unknown topic '{name}'")
        }
        code => bail!(
            "cannot alter configs of topic '{name}': {}",
            wire::describe_error(code, result.error_message.as_deref())
        ),
    }
    let mut changes: Vec<String> = set
        .iter()
        .map(|(key, value)| format!("set {key}={value}"))
        .collect();
    changes.extend(delete.iter().map(|key| format!("deleted {key}")));
    let suffix = if validate_only {
        " (validated only)"
    } else {
        ""
    };
    print(&format!(
        "altered configs of topic '{name}': {}{suffix}\n",
        changes.join(", ")
    ))
}

fn add_partitions(args: &ClientArgs, name: &str, total: u32) -> anyhow::Result<()> {
    let admin = client::admin(args)?;
    let total_partitions = usize::try_from(total)?;
    let request = NewPartitions::new(name, total_partitions);
    let results = client::wait_admin(
        args,
        "adding partitions",
        admin.create_partitions([&request], &client::admin_options(args)),
    )?;
    for result in results {
        match result {
            Ok(topic) => print(&format!("topic '{topic}' now has {total} partitions\n"))?,
            Err((topic, code)) => return Err(refused("add partitions to", &topic, code, None)),
        }
    }
    Ok(())
}

fn delete(args: &ClientArgs, names: &[String]) -> anyhow::Result<()> {
    let admin = client::admin(args)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = client::wait_admin(
        args,
        "deleting topics",
        admin.delete_topics(&names, &client::admin_options(args)),
    )?;
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(topic) => print(&format!("deleted topic '{topic}'\n"))?,
            Err((topic, code)) => errors.push(refused("delete", &topic, code, None).to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errors.join("; ")))
    }
}
