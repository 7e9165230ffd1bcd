//! Block-device counters (`/sys/dev/block/<major>:<minor>/stat`) around a measurement.
//!
//! They show what the device saw, independently of how the benchmark issued it: how busy it
//! was (`io_ticks`), the average queue depth (`time_in_queue / elapsed`), the number and
//! size of the writes after merging, and the cache flushes that fdatasync turned into. An
//! engine that leaves the device idle between write rounds shows a lower busy fraction and
//! queue depth than the raw baseline at the same bandwidth. Linux only; every figure is
//! absent (`None`) when the file cannot be found or parsed (e.g. tmpfs, overlay roots).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::ResultLine;

/// The counters this crate uses, in the kernel's units (sectors of 512 B, milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStat {
    /// Completed write requests.
    pub write_ios: u64,
    /// Sectors written.
    pub write_sectors: u64,
    /// Milliseconds the device had at least one request in flight.
    pub io_ticks_ms: u64,
    /// Sum over requests of their time in flight, in milliseconds.
    pub time_in_queue_ms: u64,
    /// Completed flush (cache flush, from fdatasync) requests; 0 on old kernels.
    pub flush_ios: u64,
    /// Milliseconds spent on flush requests.
    pub flush_ticks_ms: u64,
}

impl DevStat {
    /// Parses the whitespace-separated fields of a block `stat` file.
    pub fn parse(text: &str) -> Option<Self> {
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let field = |i: usize| fields.get(i).copied();
        Some(Self {
            write_ios: field(4)?,
            write_sectors: field(6)?,
            io_ticks_ms: field(9)?,
            time_in_queue_ms: field(10)?,
            flush_ios: field(15).unwrap_or(0),
            flush_ticks_ms: field(16).unwrap_or(0),
        })
    }

    /// Counter increase since `earlier`.
    pub fn since(&self, earlier: &DevStat) -> DevStat {
        DevStat {
            write_ios: self.write_ios.saturating_sub(earlier.write_ios),
            write_sectors: self.write_sectors.saturating_sub(earlier.write_sectors),
            io_ticks_ms: self.io_ticks_ms.saturating_sub(earlier.io_ticks_ms),
            time_in_queue_ms: self
                .time_in_queue_ms
                .saturating_sub(earlier.time_in_queue_ms),
            flush_ios: self.flush_ios.saturating_sub(earlier.flush_ios),
            flush_ticks_ms: self.flush_ticks_ms.saturating_sub(earlier.flush_ticks_ms),
        }
    }

    /// Adds `dev_*` extras for a delta measured over `elapsed`.
    pub fn add_to(&self, line: ResultLine, elapsed: Duration) -> ResultLine {
        let ms = elapsed.as_secs_f64() * 1e3;
        let per_ms = |v: u64| if ms > 0.0 { v as f64 / ms } else { 0.0 };
        line.with_extra("dev_busy_frac", per_ms(self.io_ticks_ms).min(1.0))
            .with_extra("dev_queue_depth", per_ms(self.time_in_queue_ms))
            .with_extra("dev_writes", self.write_ios as f64)
            .with_extra(
                "dev_avg_write_kib",
                self.write_sectors as f64 * 512.0 / 1024.0 / self.write_ios.max(1) as f64,
            )
            .with_extra("dev_flushes", self.flush_ios as f64)
            .with_extra("dev_flush_ms", self.flush_ticks_ms as f64)
    }
}

/// The `stat` file of the block device holding `dir`, if there is one.
pub fn stat_path(dir: &Path) -> Option<PathBuf> {
    let dev = std::fs::metadata(dir).ok()?.dev();
    let path = PathBuf::from(format!(
        "/sys/dev/block/{}:{}/stat",
        libc::major(dev),
        libc::minor(dev)
    ));
    path.exists().then_some(path)
}

/// Reads the counters from a `stat` file found with [`stat_path`].
pub fn read(path: &Path) -> Option<DevStat> {
    DevStat::parse(&std::fs::read_to_string(path).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let before = DevStat::parse("  100 0 800 10 2000 5 409600 300 0 400 700 0 0 0 0 50 60\n");
        let after = DevStat::parse("100 0 800 10 2100 5 614400 350 1 900 1900 0 0 0 0 70 90");
        let (Some(before), Some(after)) = (before, after) else {
            panic!("valid stat lines must parse");
        };
        let delta = after.since(&before);
        assert_eq!(delta.write_ios, 100);
        assert_eq!(delta.write_sectors, 204_800);
        assert_eq!(delta.io_ticks_ms, 500);
        assert_eq!(delta.time_in_queue_ms, 1200);
        assert_eq!((delta.flush_ios, delta.flush_ticks_ms), (20, 30));
        let line = delta.add_to(
            ResultLine::new("x", 0, 0, Duration::from_secs(1)),
            Duration::from_secs(1),
        );
        let json = line.to_json();
        assert_eq!(json["dev_busy_frac"], 0.5);
        assert_eq!(json["dev_queue_depth"], 1.2);
        assert_eq!(json["dev_avg_write_kib"], 1024.0);
        assert!(DevStat::parse("1 2 3").is_none());
        // Kernels before 4.18 have 11 fields: no flush counters.
        let old = DevStat::parse("1 0 8 1 2 0 16 1 0 3 4");
        assert_eq!(old.map(|s| s.flush_ios), Some(0));
    }
}
