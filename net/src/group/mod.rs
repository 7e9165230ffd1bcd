//! Consumer groups: the classic membership protocol ([`state`]), the coordinator that runs
//! groups on the shard owning their partition of the internal offsets topic
//! ([`coordinator`]), and the records that store them there ([`records`]).

pub mod coordinator;
pub mod records;
pub mod state;
