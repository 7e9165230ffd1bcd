//! `sluice cluster info`: brokers, controller, cluster id (Metadata) and the API versions
//! of the first reachable bootstrap broker (ApiVersions), over [`super::wire`] because
//! librdkafka exposes neither the controller nor the API versions.

use kafka_protocol::messages::MetadataRequest;

use super::wire::Connection;
use super::{ClientArgs, print, table};

/// Runs `sluice cluster info`.
///
/// # Errors
/// No bootstrap broker answered within `--timeout`, or the Metadata request failed.
pub fn info(args: &ClientArgs) -> anyhow::Result<()> {
    let mut connection = Connection::connect(&args.brokers, args.timeout)?;
    // Version 1+ reads an empty topic list as "no topics" (v0 would list them all).
    let request = MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .with_allow_auto_topic_creation(false);
    let metadata = connection.send(&request)?;
    let controller = metadata.controller_id.0;

    let mut brokers: Vec<_> = metadata.brokers.iter().collect();
    brokers.sort_by_key(|broker| broker.node_id.0);
    let broker_rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|broker| {
            let id = broker.node_id.0;
            vec![
                if id == controller {
                    format!("{id}*")
                } else {
                    id.to_string()
                },
                format!("{}:{}", broker.host.as_str(), broker.port),
                broker
                    .rack
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |rack| rack.to_string()),
            ]
        })
        .collect();
    let api_rows: Vec<Vec<String>> = connection
        .versions()
        .iter()
        .map(|api| {
            vec![
                api.name(),
                api.key.to_string(),
                format!("{}-{}", api.min, api.max),
            ]
        })
        .collect();

    let mut out = format!(
        "cluster id  {}\ncontroller  {}\n\n",
        metadata.cluster_id.as_deref().unwrap_or("-"),
        if controller >= 0 {
            controller.to_string()
        } else {
            "-".to_string()
        }
    );
    out.push_str(&table(&["BROKER", "HOST:PORT", "RACK"], &broker_rows));
    out.push_str(&format!(
        "\nAPI versions of {} ({} APIs)\n",
        connection.address(),
        api_rows.len()
    ));
    out.push_str(&table(&["API", "KEY", "VERSIONS"], &api_rows));
    print(&out)
}
