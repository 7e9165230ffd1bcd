//! Counters a log keeps about itself, for the broker's metrics: traffic in and out, and the
//! group-committed fdatasyncs (how long each took, how many batches each made durable).
//!
//! Plain data (`Send`, `Clone`), so a shard can copy them into a metrics snapshot and send it
//! to whoever renders it. Histograms have fixed bucket bounds, so histograms from different
//! logs and shards merge by adding counts.

/// Upper bounds (seconds) of latency buckets: 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of count buckets (batches per fdatasync): powers of two to 4096.
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A histogram with fixed upper bounds, as Prometheus exposes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot counts those above every
    /// bound (`+Inf`).
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    #[must_use]
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// An empty latency histogram ([`LATENCY_BUCKETS`]).
    #[must_use]
    pub fn latency() -> Self {
        Self::new(LATENCY_BUCKETS)
    }

    /// Records one observation.
    pub fn observe(&mut self, value: f64) {
        let slot = self.bounds.partition_point(|&bound| bound < value);
        self.counts[slot] += 1;
        self.sum += value;
    }

    /// Adds `other`'s observations (same bounds; different bounds are ignored).
    pub fn merge(&mut self, other: &Histogram) {
        if self.bounds != other.bounds {
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
    }

    /// The bucket bounds.
    #[must_use]
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Cumulative counts per bound, then the total (`+Inf`), as Prometheus buckets are.
    #[must_use]
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts
            .iter()
            .scan(0u64, |total, count| {
                *total += count;
                Some(*total)
            })
            .collect()
    }

    /// Number of observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations.
    #[must_use]
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// What one log counted since it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStats {
    /// Batches appended (retries answered as duplicates are not).
    pub batches_in: u64,
    /// Records appended.
    pub records_in: u64,
    /// Bytes appended (whole batches).
    pub bytes_in: u64,
    /// Bytes handed out by reads.
    pub bytes_out: u64,
    /// Records handed out by reads (offsets read past).
    pub records_out: u64,
    /// Completed fdatasyncs of segment data.
    pub fsyncs: u64,
    /// Seconds each of them took.
    pub fsync_seconds: Histogram,
    /// Batches each fdatasync made durable (the group-commit batch size).
    pub fsync_batches: Histogram,
    /// Bytes made durable by them.
    pub fsync_bytes: u64,
}

impl Default for LogStats {
    fn default() -> Self {
        Self {
            batches_in: 0,
            records_in: 0,
            bytes_in: 0,
            bytes_out: 0,
            records_out: 0,
            fsyncs: 0,
            fsync_seconds: Histogram::latency(),
            fsync_batches: Histogram::new(COUNT_BUCKETS),
            fsync_bytes: 0,
        }
    }
}

impl LogStats {
    /// Adds `other`'s counts (e.g. every log of a shard into one).
    pub fn merge(&mut self, other: &LogStats) {
        self.batches_in += other.batches_in;
        self.records_in += other.records_in;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.records_out += other.records_out;
        self.fsyncs += other.fsyncs;
        self.fsync_seconds.merge(&other.fsync_seconds);
        self.fsync_batches.merge(&other.fsync_batches);
        self.fsync_bytes += other.fsync_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut histogram = Histogram::new(&[1.0, 2.0, 4.0]);
        for value in [0.5, 1.0, 1.5, 3.0, 9.0] {
            histogram.observe(value);
        }
        // le=1: 0.5 and 1.0; le=2: +1.5; le=4: +3.0; +Inf: +9.0.
        assert_eq!(histogram.cumulative(), vec![2, 3, 4, 5]);
        assert_eq!(histogram.count(), 5);
        assert!((histogram.sum() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn merging_adds_counts_and_sums() {
        let mut left = Histogram::latency();
        let mut right = Histogram::latency();
        left.observe(0.001);
        right.observe(0.2);
        right.observe(20.0);
        left.merge(&right);
        assert_eq!(left.count(), 3);
        assert_eq!(*left.cumulative().last().expect("+Inf"), 3);
        let mut stats = LogStats::default();
        let other = LogStats {
            records_in: 7,
            fsyncs: 2,
            ..LogStats::default()
        };
        stats.merge(&other);
        stats.merge(&other);
        assert_eq!((stats.records_in, stats.fsyncs), (14, 4));
    }
}
