//! DeleteTopics v1–6, by name (and by id from v6).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::controller::ControllerRequest;
use crate::shard::Shard;

pub(super) async fn handle(
    shard: &Rc<Shard>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let snapshot = shard.topics();
    // (name if known, id as given) per requested topic.
    let requested: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|topic| match &topic.name {
                Some(name) => (Some(name.0.to_string()), topic.topic_id),
                None => (
                    snapshot.get_by_id(&topic.topic_id).map(|t| t.name.clone()),
                    topic.topic_id,
                ),
            })
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|name| (Some(name.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let names: Vec<String> = requested
        .iter()
        .filter_map(|(name, _)| name.clone())
        .collect();
    let mut results = shard
        .ask_controller(|reply| ControllerRequest::DeleteTopics { names, reply })
        .await
        .into_iter();
    let responses = requested
        .into_iter()
        .map(|(name, id)| {
            let outcome = match &name {
                Some(_) => results.next().unwrap_or(Err((
                    ResponseError::UnknownServerError.code(),
                    "controller unavailable".into(),
                ))),
                None => Err((
                    ResponseError::UnknownTopicId.code(),
                    format!("no topic with id {id}"),
                )),
            };
            let mut result = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))));
            if version >= 6 {
                result = result.with_topic_id(outcome.as_ref().map_or(id, |meta| meta.id));
            }
            match outcome {
                Ok(_) => result.with_error_code(0),
                Err((code, message)) => {
                    let result = result.with_error_code(code);
                    if version >= 5 {
                        result.with_error_message(Some(StrBytes::from_string(message)))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
