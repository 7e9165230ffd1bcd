//! Sluice benchmarks as a library, so subcommands can share measurement and reporting.
//!
//! * [`report`]: latency histograms and result lines (human or JSON-lines output).
//! * [`disk`]: the raw-disk baseline every storage result is compared against.
//! * [`engine`]: the storage engine's append path (glommio, O_DIRECT) against that baseline.
//! * [`load`]: the load tool: produce, consume and e2e against a Kafka-protocol broker
//!   (librdkafka), open-loop rates, ack and end-to-end latency.
//! * [`hdr`]: writing latency histograms (`--hdr-out`).
//! * [`limits`]: hardware limits of the machine (disk, loopback TCP, cores).
//! * [`sink`]: a Kafka endpoint that discards produced records (the load tool's ceiling).
//! * [`cli`]: the command line.
//! * [`devstat`]: block-device counters (busy time, queue depth, flushes) around a run.
//! * [`exec`]: running a benchmark body on a pinned glommio (io_uring) executor.
//! * [`size`]: parsing `4KiB` / `1GiB`-style size arguments.

pub mod cli;
pub mod devstat;
pub mod disk;
pub mod engine;
pub mod exec;
pub mod hdr;
pub mod limits;
pub mod load;
pub mod report;
pub mod sink;
pub mod size;
