//! Result reporting shared by every `sluice-bench` subcommand.
//!
//! A benchmark produces one or more [`ResultLine`]s: throughput (MB/s, where MB = 10^6
//! bytes, and ops/s), the raw totals they were computed from, optional latency summaries
//! taken from [`LatencyRecorder`]s, an optional ratio to the raw disk baseline, and any
//! extra numeric fields. Lines are printed either as a readable block
//! ([`ResultLine::print_human`]) or as one JSON object per line ([`ResultLine::to_json`])
//! so that runs can be diffed and plotted by scripts. In JSON mode nothing else goes to
//! stdout; progress messages belong on stderr.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

/// Bytes in the "MB" used by every throughput figure (decimal, like disk vendors use).
pub const MB: f64 = 1_000_000.0;

/// Records latencies in nanoseconds into an auto-resizing HDR histogram
/// (3 significant digits, i.e. every reported value is within 0.1%).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// Creates an empty recorder.
    pub fn new() -> Self {
        // `Histogram::new` only fails for sigfig > 5; 3 is a constant, so this cannot fail.
        let hist = Histogram::new(3).expect("3 significant digits is a valid HDR histogram");
        Self { hist }
    }

    /// Records one latency sample.
    pub fn record(&mut self, latency: Duration) {
        self.record_ns(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one latency sample given in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        // `record` grows the auto-resizing histogram; `saturating_record` would clamp to
        // the current (initially tiny) range instead of resizing, so it is only the
        // fallback for values too large to ever track.
        if self.hist.record(ns).is_err() {
            self.hist.saturating_record(ns);
        }
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Adds all samples of `other` (e.g. to combine per-shard recorders).
    pub fn merge(&mut self, other: &LatencyRecorder) -> anyhow::Result<()> {
        self.hist
            .add(&other.hist)
            .map_err(|e| anyhow::anyhow!("merging latency histograms: {e:?}"))
    }

    /// The underlying histogram, for custom quantiles.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// p50/p90/p99/p99.9/p99.99/max in microseconds; all zero when empty.
    pub fn percentiles(&self) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1_000.0;
        let q = |quantile: f64| us(self.hist.value_at_quantile(quantile));
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.hist.len(),
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
            max_us: us(self.hist.max()),
        }
    }
}

/// A latency summary in microseconds (see [`LatencyRecorder::percentiles`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Number of samples the summary was computed from.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// 99.99th percentile.
    pub p9999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Percentiles {
    /// `{count, p50_us, p90_us, p99_us, p999_us, p9999_us, max_us}`.
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "p9999_us": self.p9999_us,
            "max_us": self.max_us,
        })
    }
}

/// Top-level JSON keys owned by [`ResultLine`]. A latency label with one of these names is
/// emitted as `latency_<label>`, and an extra field that collides with these or with a
/// latency label as `extra_<key>`, so nothing is silently clobbered.
const RESERVED_KEYS: [&str; 7] = [
    "name",
    "mb_per_s",
    "ops_per_s",
    "bytes",
    "ops",
    "duration_s",
    "ratio_to_disk",
];

/// One benchmark result: what was measured, how fast, and how long operations took.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultLine {
    /// Dotted result name, e.g. `disk.write`.
    pub name: String,
    /// Throughput in MB/s (MB = 10^6 bytes).
    pub mb_per_s: f64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Total payload bytes moved.
    pub bytes: u64,
    /// Total operations completed.
    pub ops: u64,
    /// Wall-clock duration of the measured phase, in seconds.
    pub duration_s: f64,
    /// Latency summaries keyed by label (`append`, `durable`, `fdatasync`, ...), in order.
    pub latencies: Vec<(String, Percentiles)>,
    /// This result's MB/s divided by the raw disk write MB/s measured in the same run.
    pub ratio_to_disk: Option<f64>,
    /// Free-form numeric fields, emitted as top-level JSON keys, in order.
    pub extra: Vec<(String, f64)>,
    /// Free-form text fields (e.g. `acks`, `compression`), emitted like `extra`.
    pub tags: Vec<(String, String)>,
}

impl ResultLine {
    /// Builds a result from totals; rates are zero if `duration` is zero.
    pub fn new(name: impl Into<String>, bytes: u64, ops: u64, duration: Duration) -> Self {
        let secs = duration.as_secs_f64();
        let rate = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        Self {
            name: name.into(),
            mb_per_s: rate(bytes as f64 / MB),
            ops_per_s: rate(ops as f64),
            bytes,
            ops,
            duration_s: secs,
            latencies: Vec::new(),
            ratio_to_disk: None,
            extra: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Adds (or replaces) the latency summary for `label`.
    pub fn with_latency(mut self, label: impl Into<String>, recorder: &LatencyRecorder) -> Self {
        let label = label.into();
        let p = recorder.percentiles();
        match self.latencies.iter_mut().find(|(l, _)| *l == label) {
            Some(slot) => slot.1 = p,
            None => self.latencies.push((label, p)),
        }
        self
    }

    /// Sets `ratio_to_disk = self.mb_per_s / disk_mb_per_s` (left `None` if the disk
    /// figure is not positive).
    pub fn with_ratio_to_disk(mut self, disk_mb_per_s: f64) -> Self {
        self.ratio_to_disk = (disk_mb_per_s > 0.0)
            .then(|| self.mb_per_s / disk_mb_per_s)
            .filter(|r| r.is_finite());
        self
    }

    /// Adds a free-form numeric field.
    pub fn with_extra(mut self, key: impl Into<String>, value: f64) -> Self {
        self.extra.push((key.into(), value));
        self
    }

    /// Adds a free-form text field.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// One JSON object: `name`, `mb_per_s`, `ops_per_s`, `bytes`, `ops`, `duration_s`,
    /// `ratio_to_disk` (only when known), one key per latency label holding
    /// `{count, p50_us, p90_us, p99_us, p999_us, p9999_us, max_us}`, one key per extra
    /// field and one (a string) per tag. Non-finite numbers become `null`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(self.name));
        obj.insert("mb_per_s".into(), json!(self.mb_per_s));
        obj.insert("ops_per_s".into(), json!(self.ops_per_s));
        obj.insert("bytes".into(), json!(self.bytes));
        obj.insert("ops".into(), json!(self.ops));
        obj.insert("duration_s".into(), json!(self.duration_s));
        if let Some(r) = self.ratio_to_disk {
            obj.insert("ratio_to_disk".into(), json!(r));
        }
        for (label, p) in &self.latencies {
            let key = if RESERVED_KEYS.contains(&label.as_str()) {
                format!("latency_{label}")
            } else {
                label.clone()
            };
            obj.insert(key, p.to_json());
        }
        for (key, value) in &self.extra {
            let key = if RESERVED_KEYS.contains(&key.as_str()) || obj.contains_key(key) {
                format!("extra_{key}")
            } else {
                key.clone()
            };
            obj.insert(key, json!(value));
        }
        for (key, value) in &self.tags {
            let key = if RESERVED_KEYS.contains(&key.as_str()) || obj.contains_key(key) {
                format!("tag_{key}")
            } else {
                key.clone()
            };
            obj.insert(key, json!(value));
        }
        Value::Object(obj)
    }

    /// The readable multi-line block printed by [`ResultLine::print_human`].
    pub fn format_human(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail; ignore the fmt::Result.
        let _ = writeln!(s, "{}", self.name);
        let _ = writeln!(
            s,
            "  throughput  {:>10.1} MB/s  {:>12.1} ops/s   (MB = 10^6 bytes)",
            self.mb_per_s, self.ops_per_s
        );
        let _ = writeln!(
            s,
            "  totals      {} bytes ({:.2} GiB), {} ops in {:.3} s",
            self.bytes,
            self.bytes as f64 / f64::from(1u32 << 30),
            self.ops,
            self.duration_s
        );
        if let Some(r) = self.ratio_to_disk {
            let _ = writeln!(s, "  vs disk     {r:>10.3}x raw disk write bandwidth");
        }
        if !self.latencies.is_empty() {
            let _ = writeln!(
                s,
                "  {:<18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
                "latency (us)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "count"
            );
            for (label, p) in &self.latencies {
                let _ = writeln!(
                    s,
                    "    {:<16} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9}",
                    label, p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.p9999_us, p.max_us, p.count
                );
            }
        }
        for (key, value) in &self.extra {
            if value.fract() == 0.0 && value.abs() < 1e15 {
                let _ = writeln!(s, "  {key:<18} {value:.0}");
            } else {
                let _ = writeln!(s, "  {key:<18} {value:.3}");
            }
        }
        for (key, value) in &self.tags {
            let _ = writeln!(s, "  {key:<18} {value}");
        }
        s
    }

    /// Prints [`ResultLine::format_human`] to stdout.
    pub fn print_human(&self) {
        print!("{}", self.format_human());
    }
}

/// Writes results: one compact JSON object per line if `json`, otherwise
/// human-readable blocks separated by blank lines.
///
/// # Errors
/// Writing failed.
pub fn write_results(
    out: &mut dyn std::io::Write,
    results: &[ResultLine],
    json: bool,
) -> std::io::Result<()> {
    for r in results {
        if json {
            writeln!(out, "{}", r.to_json())?;
        } else {
            writeln!(out, "{}", r.format_human())?;
        }
    }
    Ok(())
}

/// Prints results to stdout (see [`write_results`]).
pub fn emit(results: &[ResultLine], json: bool) {
    let _ = write_results(&mut std::io::stdout().lock(), results, json);
}

/// The load tool's final table: one row per result and latency (or one row without
/// latency), with records/s, MB/s and the latency percentiles in milliseconds.
pub fn format_table(results: &[ResultLine]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>12} {:>9}  {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "result",
        "records/s",
        "MB/s",
        "latency",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "p99.99 ms",
        "max ms"
    );
    for r in results {
        let head = format!("{:<24} {:>12.0} {:>9.1}", r.name, r.ops_per_s, r.mb_per_s);
        if r.latencies.is_empty() {
            let _ = writeln!(s, "{head}  -");
        }
        for (label, p) in &r.latencies {
            let ms = |us: f64| us / 1000.0;
            let _ = writeln!(
                s,
                "{head}  {label:<8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                ms(p.p50_us),
                ms(p.p90_us),
                ms(p.p99_us),
                ms(p.p999_us),
                ms(p.p9999_us),
                ms(p.max_us)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `actual` is within HDR's 3-significant-digit error of `expected`.
    fn close(actual: f64, expected: f64) {
        let tol = expected.abs() * 0.001 + 1e-9;
        assert!(
            (actual - expected).abs() <= tol,
            "{actual} is not within 0.1% of {expected}"
        );
    }

    #[test]
    fn percentiles_of_uniform_samples() {
        let mut rec = LatencyRecorder::new();
        // 1 us .. 10_000 us, one sample each.
        for us in 1..=10_000u64 {
            rec.record(Duration::from_micros(us));
        }
        let p = rec.percentiles();
        assert_eq!(p.count, 10_000);
        close(p.p50_us, 5_000.0);
        close(p.p90_us, 9_000.0);
        close(p.p99_us, 9_900.0);
        close(p.p999_us, 9_990.0);
        close(p.p9999_us, 9_999.0);
        close(p.max_us, 10_000.0);
    }

    #[test]
    fn percentiles_are_microseconds_and_see_the_tail() {
        let mut rec = LatencyRecorder::new();
        for _ in 0..999 {
            rec.record_ns(2_000); // 2 us
        }
        rec.record(Duration::from_millis(50)); // one 50 ms outlier; auto-resize must keep it
        let p = rec.percentiles();
        close(p.p50_us, 2.0);
        close(p.p99_us, 2.0);
        close(p.p9999_us, 50_000.0);
        close(p.max_us, 50_000.0);
    }

    #[test]
    fn empty_recorder_is_all_zero() {
        assert_eq!(LatencyRecorder::new().percentiles(), Percentiles::default());
    }

    #[test]
    fn merge_combines_samples() -> anyhow::Result<()> {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record_ns(1_000);
        b.record_ns(9_000_000);
        a.merge(&b)?;
        assert_eq!(a.count(), 2);
        close(a.percentiles().max_us, 9_000.0);
        Ok(())
    }

    #[test]
    fn rates_use_decimal_megabytes() {
        let r = ResultLine::new("x", 2_000_000_000, 400, Duration::from_secs(2));
        assert_eq!(r.mb_per_s, 1_000.0);
        assert_eq!(r.ops_per_s, 200.0);
        assert_eq!(r.duration_s, 2.0);
        let zero = ResultLine::new("z", 10, 1, Duration::ZERO);
        assert_eq!((zero.mb_per_s, zero.ops_per_s), (0.0, 0.0));
    }

    #[test]
    fn json_has_required_keys() {
        let mut rec = LatencyRecorder::new();
        rec.record_ns(1_500_000);
        let r = ResultLine::new("engine.append", 500_000_000, 1000, Duration::from_secs(1))
            .with_latency("append", &rec)
            .with_latency("durable", &LatencyRecorder::new())
            .with_ratio_to_disk(1_000.0)
            .with_extra("batches", 7.0)
            .with_extra("name", 1.0)
            .with_extra("append", 2.0)
            .with_latency("ops", &rec);
        let v = r.to_json();
        assert_eq!(v["name"], "engine.append");
        assert_eq!(v["mb_per_s"], 500.0);
        assert_eq!(v["ops_per_s"], 1000.0);
        assert_eq!(v["bytes"], 500_000_000u64);
        assert_eq!(v["ratio_to_disk"], 0.5);
        assert_eq!(v["batches"], 7.0);
        assert_eq!(v["extra_name"], 1.0, "reserved extra keys must not clobber");
        assert_eq!(
            v["extra_append"], 2.0,
            "extras must not clobber latency labels"
        );
        let append = &v["append"];
        for key in [
            "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us",
        ] {
            let us = append[key].as_f64().unwrap_or(f64::NAN);
            close(us, 1_500.0);
        }
        assert_eq!(append["count"], 1);
        assert_eq!(v["durable"]["p99_us"], 0.0);
        // One line, parseable back.
        let line = v.to_string();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(&line).ok(), Some(v));
    }

    #[test]
    fn json_has_tags_and_load_shape() -> anyhow::Result<()> {
        let mut ack = LatencyRecorder::new();
        ack.record(Duration::from_millis(2));
        let r = ResultLine::new("e2e.produce", 1_024_000, 1000, Duration::from_millis(500))
            .with_latency("ack", &ack)
            .with_extra("record_size", 1024.0)
            .with_tag("acks", "all")
            .with_tag("name", "clash");
        let line = r.to_json().to_string();
        let v: Value = serde_json::from_str(&line)?;
        assert_eq!(v["name"], "e2e.produce");
        assert_eq!(v["ops_per_s"], 2000.0);
        assert_eq!(v["mb_per_s"], 2.048);
        assert_eq!(v["acks"], "all");
        assert_eq!(v["tag_name"], "clash");
        assert_eq!(v["record_size"], 1024.0);
        assert_eq!(v["ack"]["count"], 1);
        let keys: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        for key in [
            "name",
            "mb_per_s",
            "ops_per_s",
            "bytes",
            "ops",
            "duration_s",
            "ack",
        ] {
            assert!(keys.iter().any(|k| *k == key), "{key} missing from {line}");
        }
        Ok(())
    }

    #[test]
    fn table_has_a_row_per_latency() {
        let mut rec = LatencyRecorder::new();
        rec.record_ns(1_500); // exact below 2048 ns
        let produce = ResultLine::new("e2e.produce", 2_000_000, 2000, Duration::from_secs(1))
            .with_latency("ack", &rec);
        let consume = ResultLine::new("consume", 1_000_000, 1000, Duration::from_secs(1));
        let table = format_table(&[produce, consume]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        for column in ["records/s", "MB/s", "p50 ms", "p99.99 ms", "max ms"] {
            assert!(lines[0].contains(column), "{table}");
        }
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(&row[..4], ["e2e.produce", "2000", "2.0", "ack"], "{table}");
        assert_eq!(row[4], "0.002", "{table}");
        assert_eq!(row.len(), 10, "{table}");
        let row: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(row, ["consume", "1000", "1.0", "-"], "{table}");
    }

    #[test]
    fn json_omits_unknown_ratio() {
        let r = ResultLine::new("disk.write", 1, 1, Duration::from_secs(1));
        assert!(r.to_json().get("ratio_to_disk").is_none());
        assert!(
            r.clone()
                .with_ratio_to_disk(0.0)
                .to_json()
                .get("ratio_to_disk")
                .is_none()
        );
    }

    #[test]
    fn human_block_shows_numbers() {
        let mut rec = LatencyRecorder::new();
        rec.record_ns(1_500); // below 2048 ns HDR buckets are exact
        let text = ResultLine::new("disk.write", 3_000_000, 3, Duration::from_secs(1))
            .with_latency("write", &rec)
            .with_ratio_to_disk(6.0)
            .format_human();
        assert!(text.starts_with("disk.write\n"));
        assert!(text.contains("3.0 MB/s"), "{text}");
        assert!(text.contains("0.500x"), "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("write "))
            .unwrap_or("");
        assert!(row.contains(" 1.5 "), "{text}");
    }
}
