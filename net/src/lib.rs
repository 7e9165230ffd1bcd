//! # sluice-net: the Kafka protocol server
//!
//! Owns everything between a client's TCP connection and the partition logs: framing,
//! decoding with `kafka-protocol`, the table of supported API versions, one handler per API,
//! and (as it lands) routing of partition work to the shard that owns the partition.
//!
//! Threads: every type here lives on one shard (glommio executor); connections are accepted
//! on every shard with `SO_REUSEPORT` and served where they were accepted.

pub mod admin;
pub mod codec;
pub mod config;
pub mod connection;
pub mod controller;
pub mod fetch_encode;
pub mod frame;
pub mod group;
pub mod handlers;
pub mod limits;
pub mod metrics;
pub mod producer_ids;
pub mod server;
pub mod shard;
pub mod topics;
pub mod versions;
