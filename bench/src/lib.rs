//! Sluice benchmarks as a library, so subcommands can share measurement and reporting.
//!
//! * [`report`]: latency histograms and result lines (human or JSON-lines output).
//! * [`disk`]: the raw-disk baseline every storage result is compared against.
//! * [`exec`]: running a benchmark body on a pinned glommio (io_uring) executor.
//! * [`size`]: parsing `4KiB` / `1GiB`-style size arguments.

pub mod disk;
pub mod exec;
pub mod report;
pub mod size;
