//! What the load threads count, shared with the progress reporter: the run's clock,
//! per-thread meters, and the process's CPU time.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::report::LatencyRecorder;

/// The run's time base: a monotonic start and the wall-clock time it corresponds to, so
/// a record's intended send time can be written into it as nanoseconds since the epoch
/// and compared on receipt without wall-clock jumps in between.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_epoch_ns: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        let start = Instant::now();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            start,
            start_epoch_ns: u64::try_from(epoch.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Time since the start.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// `since_start` as nanoseconds since the UNIX epoch.
    pub fn epoch_ns(&self, since_start: Duration) -> u64 {
        self.start_epoch_ns
            .saturating_add(u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Counters of one load thread (a producer's deliveries or a consumer's receipts).
#[derive(Debug, Clone, Default)]
pub struct MeterState {
    /// Records, warmup included (for the progress line).
    pub records: u64,
    /// Value bytes, warmup included.
    pub bytes: u64,
    /// Records that count in the results.
    pub measured_records: u64,
    /// Value bytes of those.
    pub measured_bytes: u64,
    /// Latency of the measured records (ack or end-to-end; empty for plain consume).
    pub latency: LatencyRecorder,
    /// When the last measured record was acknowledged or received, since the start.
    pub last_measured: Option<Duration>,
    /// Records the client reported as failed (not delivered).
    pub failed: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
}

impl MeterState {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &MeterState) -> anyhow::Result<()> {
        self.records += other.records;
        self.bytes += other.bytes;
        self.measured_records += other.measured_records;
        self.measured_bytes += other.measured_bytes;
        self.latency.merge(&other.latency)?;
        self.last_measured = self.last_measured.max(other.last_measured);
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        Ok(())
    }
}

/// A [`MeterState`] behind a mutex: one per thread, so the lock is only contended once a
/// second by the progress reporter.
#[derive(Debug, Default)]
pub struct Meter(Mutex<MeterState>);

impl Meter {
    fn with<R>(&self, f: impl FnOnce(&mut MeterState) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts one record of `bytes` that arrived `at` (since the start); if `measured`, it
    /// counts in the results, with `latency` if there is one.
    pub fn record(&self, bytes: u64, at: Duration, measured: bool, latency: Option<Duration>) {
        self.with(|s| {
            s.records += 1;
            s.bytes += bytes;
            if measured {
                s.measured_records += 1;
                s.measured_bytes += bytes;
                s.last_measured = Some(at);
                if let Some(latency) = latency {
                    s.latency.record(latency);
                }
            }
        });
    }

    /// Counts one record that failed with `error`.
    pub fn fail(&self, error: impl FnOnce() -> String) {
        self.with(|s| {
            s.failed += 1;
            if s.first_error.is_none() {
                s.first_error = Some(error());
            }
        });
    }

    /// Records and measured records so far (cheaper than a snapshot).
    pub fn counts(&self) -> (u64, u64) {
        self.with(|s| (s.records, s.measured_records))
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> MeterState {
        self.with(|s| s.clone())
    }
}

/// The sum of several meters.
pub fn total(meters: &[std::sync::Arc<Meter>]) -> anyhow::Result<MeterState> {
    let mut sum = MeterState::default();
    for meter in meters {
        sum.merge(&meter.snapshot())?;
    }
    Ok(sum)
}

/// CPU time (user + system) this process has used so far, all threads included.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` into the pointer it is given, which
    // points to writable memory of that size; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded, so it initialized the struct (which was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_count_warmup_apart() -> anyhow::Result<()> {
        let a = std::sync::Arc::new(Meter::default());
        let b = std::sync::Arc::new(Meter::default());
        a.record(
            100,
            Duration::from_millis(1),
            false,
            Some(Duration::from_secs(9)),
        );
        a.record(
            100,
            Duration::from_millis(2),
            true,
            Some(Duration::from_micros(5)),
        );
        b.record(50, Duration::from_millis(7), true, None);
        b.fail(|| "timed out".into());
        let sum = total(&[a, b])?;
        assert_eq!((sum.records, sum.bytes), (3, 250));
        assert_eq!((sum.measured_records, sum.measured_bytes), (2, 150));
        assert_eq!(sum.latency.count(), 1, "warmup latency is not kept");
        assert_eq!(sum.last_measured, Some(Duration::from_millis(7)));
        assert_eq!(
            (sum.failed, sum.first_error.as_deref()),
            (1, Some("timed out"))
        );
        Ok(())
    }

    #[test]
    fn clock_maps_to_the_epoch() {
        let clock = Clock::start();
        let base = clock.epoch_ns(Duration::ZERO);
        assert!(base > 1_600_000_000_000_000_000);
        assert_eq!(clock.epoch_ns(Duration::from_millis(3)), base + 3_000_000);
        assert!(process_cpu() > Duration::ZERO);
    }
}
