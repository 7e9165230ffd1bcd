//! Sluice benchmarks as a library, so subcommands can share measurement and reporting.
//!
//! * [`report`]: latency histograms and result lines (human or JSON-lines output).
//! * [`disk`]: the raw-disk baseline every storage result is compared against.
//! * [`engine`]: the storage engine's append path (glommio, O_DIRECT) against that baseline.
//! * [`kafka`]: produce and consume load against a Kafka-protocol broker (librdkafka).
//! * [`limits`]: hardware limits of the machine (disk, loopback TCP).
//! * [`devstat`]: block-device counters (busy time, queue depth, flushes) around a run.
//! * [`exec`]: running a benchmark body on a pinned glommio (io_uring) executor.
//! * [`size`]: parsing `4KiB` / `1GiB`-style size arguments.

pub mod devstat;
pub mod disk;
pub mod engine;
pub mod exec;
pub mod kafka;
pub mod limits;
pub mod report;
pub mod size;
