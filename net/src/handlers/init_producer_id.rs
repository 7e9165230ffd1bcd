//! InitProducerId v0–5: a new producer id for an idempotent producer (epoch 0), allocated
//! by shard 0 so ids are unique across shards and restarts. A producer that asks again
//! (v3+, after a fatal sequence error) also gets a new id, as Kafka does for producers
//! without a transactional id. Transactional ids are not supported yet.

use std::rc::Rc;

use futures::channel::oneshot;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::shard::{Shard, ShardMessage};

pub(crate) async fn handle(
    shard: &Rc<Shard>,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |error: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let allocated = if shard.id == 0 {
        shard.producer_ids.allocate(shard).await
    } else {
        let (reply, answer) = oneshot::channel();
        shard
            .send(0, ShardMessage::AllocateProducerId { reply })
            .await;
        answer
            .await
            .unwrap_or_else(|_| Err("shard 0 stopped".to_string()))
    };
    match allocated {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "allocating a producer id");
            refused(ResponseError::CoordinatorNotAvailable)
        }
    }
}
