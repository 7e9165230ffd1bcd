//! # sluice-engine: the partition log
//!
//! The storage engine of Sluice: the append-only log of one Kafka partition, owned by one
//! shard (one glommio executor pinned to one core), written with direct I/O.
//!
//! ## What it owns
//! * **Format** ([`batch`]): Kafka RecordBatch v2 stored verbatim. Appends rewrite only the
//!   base offset and leader epoch (outside the CRC), or for `LogAppendTime` the timestamp
//!   and CRC. Layout drawn in `docs/format/segment.md`.
//! * **Segments** ([`segment`], [`index`]): `<base>.log` + sparse `.index` + `.timeindex`,
//!   rolled on `segment.bytes` / `segment.ms`, preallocated in steps.
//! * **Write path** ([`Log::append`], [`Log::flushed`], [`Log::run_flusher`]): batches are
//!   validated (CRC32C), stamped and copied once into DMA buffers; the flusher writes them
//!   with O_DIRECT, rewriting the partial last page, and group-commits fdatasyncs.
//! * **Read path** ([`Log::read`]): whole batches as memory slices from the per-shard
//!   [`BatchCache`] or as file ranges for sendfile; time lookups for ListOffsets.
//! * **Idempotence** ([`producers`]): per producer id, the epoch and last five batches'
//!   sequence ranges; appends refuse gaps and fenced epochs and answer retries with the
//!   original offsets. Kept across restarts by a snapshot file plus a header replay.
//! * **Recovery** ([`recovery`]): a checkpoint bounds what is re-validated; torn or corrupt
//!   tails are cut at the first bad batch; indexes are rebuilt when missing or stale.
//! * **Maintenance**: truncation (replication), prefix deletion (retention, DeleteRecords),
//!   a periodic [`Log::tick`], clean [`Log::close`].
//!
//! ## Invariants
//! * Offsets are dense: each batch's base offset is the previous batch's last offset + 1,
//!   across segments. Recovery enforces this too.
//! * `log_start ≤ durable_end ≤ written_end ≤ log_end`; a failed write or fdatasync poisons
//!   the log (appends refused, reads served) instead of pretending.
//! * Every buffer is bounded: unwritten bytes per log ([`LogConfig::unwritten_bytes_max`]),
//!   the cache per shard; appends wait (backpressure) rather than grow memory.
//!
//! ## Threads
//! Everything here is `!Send` and runs on the shard that owns the partition. File I/O goes
//! through the [`io::Storage`] seam: glommio in production, an in-memory fault-injecting
//! model in tests. Cross-shard work is the network layer's business (message passing).

pub mod appender;
pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod index;
pub mod io;
pub mod limits;
pub mod log;
pub mod maintenance;
pub mod offset;
pub mod producers;
pub mod read;
pub mod recovery;
pub mod segment;
pub mod stats;
mod sync;
pub mod testing;

pub use cache::BatchCache;
pub use config::{FlushPolicy, LogConfig, TimestampType};
pub use error::{
    AppendError, BatchError, FlushError, IoFailure, MaintenanceError, OpenError, ReadError,
};
pub use log::{AppendInfo, Log, LogOffsets};
pub use maintenance::TickReport;
pub use offset::{Offset, TimestampMs};
pub use producers::{BatchMetadata, ProducerEntry};
pub use read::{Chunk, ReadLimits, ReadResult};
pub use recovery::RecoveryReport;
