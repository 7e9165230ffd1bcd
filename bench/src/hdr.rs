//! Writing a latency histogram to a file (`--hdr-out`), in one of two standard forms:
//!
//! * [`HdrFormat::Percentiles`]: HdrHistogram's percentile-distribution text (the `.hgrm`
//!   format of Java's `outputPercentileDistribution`: value, percentile, total count,
//!   1/(1-percentile), then mean, standard deviation, max and count), values in
//!   milliseconds. The HdrHistogram plotter and most latency tooling read it.
//! * [`HdrFormat::V2`]: the histogram itself, HdrHistogram's V2 binary serialization
//!   (values in nanoseconds), readable by every HdrHistogram implementation.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};

/// Nanoseconds per millisecond: the unit of the percentile text.
const NS_PER_MS: f64 = 1e6;
/// Percentile ticks per half distance, as in Java's default output.
const TICKS_PER_HALF: u32 = 5;

/// The file format of `--hdr-out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HdrFormat {
    /// Percentile-distribution text (`.hgrm`), milliseconds.
    Percentiles,
    /// HdrHistogram V2 binary serialization, nanoseconds.
    V2,
}

/// Writes `hist` (nanoseconds) to `out` as the percentile-distribution text.
///
/// # Errors
/// Writing failed.
pub fn write_percentiles(hist: &Histogram<u64>, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    for v in hist.iter_quantiles(TICKS_PER_HALF) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / NS_PER_MS;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            )?;
        } else {
            writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
        }
    }
    let ms = |ns: f64| ns / NS_PER_MS;
    writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        ms(hist.mean()),
        ms(hist.stdev())
    )?;
    writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        ms(hist.max() as f64),
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        (2 * 10u64.pow(u32::from(hist.sigfig()))).next_power_of_two()
    )
}

/// Writes `hist` to `out` in HdrHistogram's V2 binary serialization.
///
/// # Errors
/// Serialization or writing failed.
pub fn write_v2(hist: &Histogram<u64>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(hist, &mut bytes)
        .map_err(|e| anyhow::anyhow!("serializing the histogram: {e:?}"))?;
    out.write_all(&bytes)?;
    Ok(())
}

/// Writes `hist` to the file `path` in `format`.
///
/// # Errors
/// Creating or writing the file failed.
pub fn write_file(hist: &Histogram<u64>, path: &Path, format: HdrFormat) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    match format {
        HdrFormat::Percentiles => write_percentiles(hist, &mut file)?,
        HdrFormat::V2 => write_v2(hist, &mut file)?,
    }
    file.flush()
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    fn sample() -> anyhow::Result<Histogram<u64>> {
        let mut hist = Histogram::<u64>::new(3)?;
        for us in 1..=1000u64 {
            hist.record(us * 1000)?; // 1 µs .. 1 ms
        }
        Ok(hist)
    }

    #[test]
    fn v2_round_trips() -> anyhow::Result<()> {
        let hist = sample()?;
        let mut bytes = Vec::new();
        write_v2(&hist, &mut bytes)?;
        // V2 cookie: 0x1c849303 with the 0x10 of 8-byte counts.
        assert_eq!(bytes.get(..4), Some(&[0x1c, 0x84, 0x93, 0x13][..]));
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(back, hist);
        Ok(())
    }

    #[test]
    fn percentile_text_has_the_hgrm_shape() -> anyhow::Result<()> {
        let hist = sample()?;
        let mut out = Vec::new();
        write_percentiles(&hist, &mut out)?;
        let text = String::from_utf8(out)?;
        let mut lines = text.lines();
        let header: Vec<_> = lines.next().unwrap_or("").split_whitespace().collect();
        assert_eq!(
            header,
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|f| f.parse().ok())
                    .collect()
            })
            .collect();
        assert!(rows.len() > 20, "{text}");
        // Value in ms, percentile ascending to 1, count ascending to the total.
        let first = &rows[0];
        assert_eq!(first.len(), 4);
        assert!((first[0] - 0.001).abs() < 1e-9, "{text}");
        let last = &rows[rows.len() - 1];
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p)");
        assert!((last[0] - 1.0).abs() < 0.001, "{text}");
        assert_eq!((last[1], last[2]), (1.0, 1000.0));
        assert!(
            rows.windows(2)
                .all(|w| w[0][1] <= w[1][1] && w[0][2] <= w[1][2])
        );
        let median = rows.iter().find(|r| r[1] >= 0.5).map_or(0.0, |r| r[0]);
        assert!((median - 0.5).abs() < 0.001, "{text}");
        assert!(
            text.contains("#[Max     =        1.000, Total count    =         1000]"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn file_output_in_both_formats() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let hist = sample()?;
        let text = dir.path().join("lat.hgrm");
        write_file(&hist, &text, HdrFormat::Percentiles)?;
        assert!(std::fs::read_to_string(&text)?.starts_with("       Value"));
        let bin = dir.path().join("lat.hdr");
        write_file(&hist, &bin, HdrFormat::V2)?;
        assert!(std::fs::metadata(&bin)?.len() > 8);
        assert!(write_file(&hist, &dir.path().join("no/such/dir"), HdrFormat::V2).is_err());
        Ok(())
    }
}
