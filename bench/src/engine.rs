//! Storage-engine write path against the raw disk: `sluice-bench engine`.
//!
//! First the raw disk baseline ([`measure_disk`]) runs on the same directory, so every
//! engine figure can be quoted as a fraction of what the device did in the same run. Then,
//! for each batch size × fsync mode, one *throughput case*:
//!
//! * a fresh [`Log`] on [`GlommioStorage`] (O_DIRECT through io_uring) in a temp directory
//!   under `--dir` (removed afterwards), 1 GiB segments, `FlushPolicy::GroupCommit` with
//!   fsync on or `FlushPolicy::Never` with it off, its flusher spawned on the same pinned
//!   executor, exactly as a broker shard runs it;
//! * pre-built batches ([`testing::batch_of_size`]) are appended as fast as the engine
//!   accepts them while a bounded window of appends waits for durability (at most
//!   `--window-appends` appends and `--window-bytes` bytes unacknowledged), the way many
//!   producers with `acks=all` keep a partition busy;
//! * `append` latency is the `append` call until it resolves (order fixed, bytes copied);
//!   `durable` latency is the same start until `flushed()` covers the batch (with fsync off
//!   `flushed()` means written to the device, and the label is `written`);
//! * MB/s and batches/s cover the whole case, including waiting for the last batch to be
//!   durable; `ratio_to_disk` = case MB/s / `disk.write` MB/s.
//!
//! With fsync on, a *latency case* (`engine.durable.<size>.fsync`) follows per size: one
//! append at a time, each waiting for durability, so the durable-ack latency is comparable
//! with the raw `disk.fdatasync` (write + fdatasync of one page) rather than dominated by
//! queueing behind a saturated disk.
//!
//! Batches are copied from one template into a contiguous pool before the timed part and
//! split off one by one (a per-append clone is a memcpy the broker would not do; its cost is
//! reported as `clone_ns_per_batch`, the pool's build time as `pool_build_s`);
//! `--batch-source clone` clones inside the timed loop instead. Durability acks are tracked
//! by one task that waits on the oldest outstanding append and then retires every append the
//! same flush covered, so the measurement itself adds one wake per flush, not one per append.
//! Every `--yield-bytes` of appends the producer yields to the reactor (as a network-driven
//! shard does between requests) so the flusher's writes are submitted while appends go on.
//!
//! Each case line also says *what limited it*: `task_busy_frac` (share of the case the
//! executor spent running tasks — near 1 means CPU-bound; the thread's OS CPU time is no
//! guide because glommio busy-polls in-flight direct I/O), `dev_busy_frac` and
//! `dev_queue_depth` from the block device's counters (below the raw baseline's: the engine
//! left the device idle), `flush_groups` (distinct durability advances, i.e. flusher rounds
//! that acknowledged something) and `dev_flushes` (cache flushes the device saw).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use bytes::BytesMut;
use glommio::sync::Semaphore;
use sluice_engine::io::glommio_storage::GlommioStorage;
use sluice_engine::{BatchCache, FlushPolicy, Log, LogConfig, Offset, testing};

use crate::devstat::{self, DevStat};
use crate::disk::{DiskOptions, DiskReport, measure_disk};
use crate::exec::{ExecutorOptions, run_on_executor};
use crate::report::{LatencyRecorder, ResultLine};
use crate::size::format_size;

/// Where the appended batches come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSource {
    /// Copied into one contiguous pool before the timed part (default; needs
    /// `bytes_per_case` of memory).
    Pool,
    /// Cloned from the template inside the timed loop (measures the clone too).
    Clone,
}

/// The engine settings the benchmark varies ([`LogConfig`] fields).
#[derive(Debug, Clone)]
pub struct EngineTuning {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `max.message.bytes`; must hold the largest batch size.
    pub max_batch_bytes: usize,
    /// Size of each direct-I/O write buffer.
    pub write_buffer_bytes: usize,
    /// Appended-but-unwritten bytes before `append` waits.
    pub unwritten_bytes_max: usize,
    /// Segment preallocation step.
    pub preallocate_bytes: u64,
    /// Budget of the shard's batch cache.
    pub cache_bytes: usize,
    /// glommio I/O memory for the executor; `None`: enough for every write buffer in flight.
    pub io_memory: Option<usize>,
}

impl Default for EngineTuning {
    fn default() -> Self {
        let config = LogConfig::default();
        Self {
            segment_bytes: 1 << 30,
            max_batch_bytes: 2 << 20,
            write_buffer_bytes: config.write_buffer_bytes,
            unwritten_bytes_max: config.unwritten_bytes_max,
            preallocate_bytes: config.preallocate_bytes,
            cache_bytes: 64 << 20,
            io_memory: None,
        }
    }
}

impl EngineTuning {
    /// The executor I/O memory used: the explicit value, or every unwritten byte plus two
    /// spare buffers and 4 MiB of slack.
    pub fn io_memory(&self) -> usize {
        self.io_memory.unwrap_or(
            self.unwritten_bytes_max
                .saturating_add(self.write_buffer_bytes.saturating_mul(2))
                .saturating_add(4 << 20),
        )
    }

    fn log_config(&self, fsync: bool) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            max_batch_bytes: self.max_batch_bytes,
            flush_policy: if fsync {
                FlushPolicy::GroupCommit
            } else {
                FlushPolicy::Never
            },
            write_buffer_bytes: self.write_buffer_bytes,
            unwritten_bytes_max: self.unwritten_bytes_max,
            preallocate_bytes: self.preallocate_bytes,
            ..LogConfig::default()
        }
    }
}

/// Parameters of `sluice-bench engine`.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Batch sizes, one throughput case each (per fsync mode).
    pub sizes: Vec<u64>,
    /// Bytes appended per throughput case.
    pub bytes_per_case: u64,
    /// Fsync modes to run (`true`: group commit, `false`: never fsync).
    pub fsync_modes: Vec<bool>,
    /// Most appends waiting for durability at once.
    pub window_appends: usize,
    /// Most bytes waiting for durability at once (at least one batch is always allowed).
    pub window_bytes: u64,
    /// Yield to the reactor after this many appended bytes (0: only when blocked).
    pub yield_bytes: u64,
    /// Appends in each one-at-a-time latency case (0: skip those cases).
    pub latency_samples: u64,
    /// Where the batches come from.
    pub batch_source: BatchSource,
    /// Log configuration knobs.
    pub tuning: EngineTuning,
    /// The raw disk baseline run first (its `cpu` is used for every case too). Give it a
    /// queue depth comparable to the engine's writes in flight (`sluice-bench engine` uses
    /// 16): a shallow baseline understates the device and flatters the ratios.
    pub disk: DiskOptions,
    /// Also measure `disk.write` right before and right after each throughput case and
    /// report the ratio to their mean (`ratio_to_adjacent_disk`), which is less exposed to a
    /// device whose bandwidth drifts during the run.
    pub disk_per_case: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            sizes: vec![1 << 10, 16 << 10, 1 << 20],
            bytes_per_case: 1 << 30,
            fsync_modes: vec![true, false],
            window_appends: 1024,
            window_bytes: 64 << 20,
            yield_bytes: 1 << 20,
            latency_samples: 1000,
            batch_source: BatchSource::Pool,
            tuning: EngineTuning::default(),
            disk: DiskOptions {
                queue_depth: 16,
                ..DiskOptions::default()
            },
            disk_per_case: false,
        }
    }
}

/// Outcome of [`measure_engine`].
#[derive(Debug, Clone)]
pub struct EngineReport {
    /// The raw disk baseline of the same run.
    pub disk: DiskReport,
    /// One result per case, in the order run.
    pub cases: Vec<CaseReport>,
}

/// One engine case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// Batch size in bytes.
    pub batch_bytes: usize,
    /// Whether fsync (group commit) was on.
    pub fsync: bool,
    /// Whether this is a one-at-a-time latency case.
    pub latency_case: bool,
    /// The result line.
    pub line: ResultLine,
}

impl CaseReport {
    fn p99(&self, label: &str) -> f64 {
        self.line
            .latencies
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0.0, |(_, p)| p.p99_us)
    }
}

impl EngineReport {
    /// The disk lines, then every case line.
    pub fn results(&self) -> Vec<ResultLine> {
        let mut lines = self.disk.results();
        lines.extend(self.cases.iter().map(|case| case.line.clone()));
        lines
    }

    /// A readable table of every case against the disk and the targets.
    ///
    /// `ratio` is against the run's `disk.write` (`adj` against the disk measured around the
    /// case, with `--disk-per-case`); `task` is the fraction of the case the executor spent
    /// running tasks (near 1: CPU-bound); `dev` the fraction the device had I/O in flight
    /// (below the raw baseline's: the engine left it idle).
    pub fn summary(&self) -> String {
        let disk = &self.disk;
        let extra = |line: &ResultLine, key: &str| {
            line.extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "engine vs raw disk: disk.write {:.1} MB/s (device busy {}), disk.fdatasync p99 \
             {:.1} us (4KiB write + fdatasync p99 {:.1} us)",
            disk.write_mb_per_s,
            extra(&disk.write, "dev_busy_frac").map_or("n/a".to_owned(), |v| format!("{v:.2}")),
            disk.fdatasync_p99_us,
            write_fdatasync_p99(disk)
        );
        let _ = writeln!(
            s,
            "  {:<28} {:>8} {:>6} {:>5} {:>5} {:>5} {:>11} {:>11} {:>9} {:>8}  target",
            "case",
            "MB/s",
            "ratio",
            "adj",
            "task",
            "dev",
            "append p99",
            "ack p99",
            "fdatasync",
            "ack/sync"
        );
        for case in &self.cases {
            let line = &case.line;
            let ack_label = if case.fsync { "durable" } else { "written" };
            let ack = case.p99(ack_label);
            let (sync, over) = if case.fsync {
                (
                    format!("{:.1}", disk.fdatasync_p99_us),
                    format!("{:.2}x", ack / disk.fdatasync_p99_us.max(f64::MIN_POSITIVE)),
                )
            } else {
                ("-".to_owned(), "-".to_owned())
            };
            let ratio = line.ratio_to_disk.unwrap_or_default();
            let fraction =
                |key: &str| extra(line, key).map_or("-".to_owned(), |v| format!("{v:.2}"));
            let adjacent = extra(line, "ratio_to_adjacent_disk");
            let target =
                target_verdict(case, adjacent.unwrap_or(ratio), ack, disk.fdatasync_p99_us);
            let _ = writeln!(
                s,
                "  {:<28} {:>8.1} {:>6.3} {:>5} {:>5} {:>5} {:>11.1} {:>11.1} {:>9} {:>8}  {target}",
                line.name,
                line.mb_per_s,
                ratio,
                adjacent.map_or("-".to_owned(), |v| format!("{v:.2}")),
                fraction("task_busy_frac"),
                fraction("dev_busy_frac"),
                case.p99("append"),
                ack,
                sync,
                over,
            );
        }
        s
    }
}

fn write_fdatasync_p99(disk: &DiskReport) -> f64 {
    disk.fdatasync
        .latencies
        .iter()
        .find(|(l, _)| l == "write_fdatasync")
        .map_or(0.0, |(_, p)| p.p99_us)
}

/// The targets: with fsync on, ≥ 90% of the disk at 1 MiB batches, ≥ 70% at 16 KiB;
/// durable-ack p99 within 2× the raw fdatasync p99 (judged on the one-at-a-time cases).
fn target_verdict(case: &CaseReport, ratio: f64, ack_p99: f64, fdatasync_p99: f64) -> String {
    if !case.fsync {
        return String::new();
    }
    if case.latency_case {
        let ok = ack_p99 <= 2.0 * fdatasync_p99;
        return format!(
            "ack p99 <= 2x fdatasync p99: {}",
            if ok { "met" } else { "MISSED" }
        );
    }
    let goal = match case.batch_bytes {
        b if b >= 1 << 20 => 0.9,
        b if b >= 16 << 10 => 0.7,
        _ => return String::new(),
    };
    format!(
        ">= {goal:.2} of disk: {}",
        if ratio >= goal { "met" } else { "MISSED" }
    )
}

/// Runs the disk baseline and every engine case under `dir`. Blocks; progress goes to stderr.
pub fn measure_engine(dir: &Path, opts: &EngineOptions) -> anyhow::Result<EngineReport> {
    validate(opts)?;
    let disk = measure_disk(dir, &opts.disk)?;
    if !disk.direct_io {
        eprintln!("warning: engine results on tmpfs measure memory, not a disk");
    }
    let mut cases = Vec::new();
    for &size in &opts.sizes {
        for &fsync in &opts.fsync_modes {
            let size = usize::try_from(size)?;
            let spec = CaseSpec {
                size,
                fsync,
                count: opts.bytes_per_case.div_ceil(size as u64).max(1),
                window: window_appends(opts, size),
                latency_case: false,
            };
            let line = run_case(dir, opts, &spec)?;
            cases.push(CaseReport {
                batch_bytes: size,
                fsync,
                latency_case: false,
                line: finish_line(line, &disk, fsync),
            });
        }
    }
    if opts.latency_samples > 0 && opts.fsync_modes.contains(&true) {
        for &size in &opts.sizes {
            let size = usize::try_from(size)?;
            let spec = CaseSpec {
                size,
                fsync: true,
                count: opts.latency_samples,
                window: 1,
                latency_case: true,
            };
            let line = run_case(dir, opts, &spec)?;
            cases.push(CaseReport {
                batch_bytes: size,
                fsync: true,
                latency_case: true,
                line: finish_line(line, &disk, true),
            });
        }
    }
    Ok(EngineReport { disk, cases })
}

fn finish_line(line: ResultLine, disk: &DiskReport, fsync: bool) -> ResultLine {
    let line = line.with_ratio_to_disk(disk.write_mb_per_s);
    if !fsync {
        return line;
    }
    let durable_p99 = line
        .latencies
        .iter()
        .find(|(l, _)| l == "durable")
        .map_or(0.0, |(_, p)| p.p99_us);
    line.with_extra("disk_fdatasync_p99_us", disk.fdatasync_p99_us)
        .with_extra(
            "durable_p99_over_fdatasync_p99",
            if disk.fdatasync_p99_us > 0.0 {
                durable_p99 / disk.fdatasync_p99_us
            } else {
                0.0
            },
        )
}

fn validate(opts: &EngineOptions) -> anyhow::Result<()> {
    ensure!(!opts.sizes.is_empty(), "--sizes needs at least one size");
    ensure!(!opts.fsync_modes.is_empty(), "no fsync mode selected");
    ensure!(opts.bytes_per_case > 0, "--bytes-per-case must be positive");
    ensure!(
        opts.window_appends > 0,
        "--window-appends must be at least 1"
    );
    for &size in &opts.sizes {
        ensure!(
            size >= 128,
            "batch size {} is too small (at least 128B)",
            format_size(size)
        );
        ensure!(
            size <= opts.tuning.max_batch_bytes as u64,
            "batch size {} exceeds --max-batch-bytes {}",
            format_size(size),
            format_size(opts.tuning.max_batch_bytes as u64)
        );
    }
    opts.tuning
        .log_config(true)
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid log settings: {e}"))?;
    Ok(())
}

/// Appends allowed to wait for durability at once for `size`-byte batches.
fn window_appends(opts: &EngineOptions, size: usize) -> usize {
    let by_bytes = usize::try_from(opts.window_bytes / size as u64).unwrap_or(usize::MAX);
    opts.window_appends.min(by_bytes).max(1)
}

/// Label of a size in result names: `1KiB`, `16KiB`, `1MiB`, `1500B`.
fn size_label(size: usize) -> String {
    format_size(size as u64)
}

/// What one case runs.
struct CaseSpec {
    /// Batch size.
    size: usize,
    /// Group commit (`true`) or never fsync.
    fsync: bool,
    /// Appends.
    count: u64,
    /// Most appends waiting for their ack.
    window: usize,
    /// One-at-a-time latency case (no yields, no adjacent disk measurement).
    latency_case: bool,
}

/// Runs one case on its own pinned executor in a fresh temp directory under `dir`.
fn run_case(dir: &Path, opts: &EngineOptions, spec: &CaseSpec) -> anyhow::Result<ResultLine> {
    let &CaseSpec {
        size,
        fsync,
        count,
        window,
        latency_case,
    } = spec;
    let name = format!(
        "engine.{}.{}.{}",
        if latency_case { "durable" } else { "append" },
        size_label(size),
        if fsync { "fsync" } else { "nofsync" }
    );
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let template = testing::batch_of_size(size, now_ms);
    let batch_bytes = template.len();
    eprintln!(
        "{name}: {count} x {} batches, fsync {}, window {window} appends",
        format_size(batch_bytes as u64),
        if fsync { "on (group commit)" } else { "off" },
    );

    // What a per-append clone would cost (malloc + memcpy + free of warm memory); the
    // default pool avoids it inside the timed part.
    let clone_ns = clone_cost_ns(&template);
    let build_start = Instant::now();
    let batches = match opts.batch_source {
        BatchSource::Pool => {
            let total = usize::try_from(count)?
                .checked_mul(batch_bytes)
                .context("--bytes-per-case does not fit in memory")?;
            if let Some(memory) = physical_memory() {
                ensure!(
                    (total as u64) <= memory / 2,
                    "a pool of {} would take more than half of the memory; lower \
                     --bytes-per-case or use --batch-source clone",
                    format_size(total as u64)
                );
            }
            let mut arena = BytesMut::with_capacity(total);
            for _ in 0..count {
                arena.extend_from_slice(&template);
            }
            Batches::Pool { arena, batch_bytes }
        }
        BatchSource::Clone => Batches::Clone {
            template: template.clone(),
            left: count,
        },
    };
    let pool_build = build_start.elapsed();

    let workdir = tempfile::Builder::new()
        .prefix(".sluice-bench-engine-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temp directory in {}", dir.display()))?;
    let yield_bytes = if latency_case { 0 } else { opts.yield_bytes };
    let params = CaseParams {
        dir: workdir.path().to_path_buf(),
        config: opts.tuning.log_config(fsync),
        cache_bytes: opts.tuning.cache_bytes,
        fsync,
        window,
        yield_bytes,
    };
    let exec = ExecutorOptions {
        cpu: opts.disk.cpu,
        io_memory: opts.tuning.io_memory(),
    };
    // The device's bandwidth can drift during a run: optionally measure it right before and
    // right after the case (the pool is built already) and compare with the mean.
    let adjacent = opts.disk_per_case && !latency_case;
    let before = if adjacent {
        Some(measure_disk(dir, &opts.disk)?.write_mb_per_s)
    } else {
        None
    };
    let measured = run_on_executor("sluice-bench-engine", &exec, move || {
        append_case(params, batches)
    })
    .with_context(|| format!("case {name}"))?;
    workdir
        .close()
        .context("removing the engine temp directory")?;
    let adjacent_disk = match before {
        Some(before) => Some((before + measure_disk(dir, &opts.disk)?.write_mb_per_s) / 2.0),
        None => None,
    };

    let t = &opts.tuning;
    let dev = measured.dev;
    let cpu_s = measured.cpu_user.as_secs_f64() + measured.cpu_sys.as_secs_f64();
    let elapsed_s = measured.elapsed.as_secs_f64();
    let ack_label = if fsync { "durable" } else { "written" };
    let line = ResultLine::new(&name, measured.bytes, measured.appends, measured.elapsed)
        .with_latency("append", &measured.append)
        .with_latency(ack_label, &measured.ack)
        .with_extra("batch_bytes", batch_bytes as f64)
        .with_extra("fsync", f64::from(u8::from(fsync)))
        .with_extra("window_appends", window as f64)
        .with_extra("write_buffer_bytes", t.write_buffer_bytes as f64)
        .with_extra("unwritten_bytes_max", t.unwritten_bytes_max as f64)
        .with_extra("preallocate_bytes", t.preallocate_bytes as f64)
        .with_extra("io_memory", t.io_memory() as f64)
        .with_extra("yield_bytes", yield_bytes as f64)
        .with_extra("flush_groups", measured.groups as f64)
        .with_extra(
            "bytes_per_flush_group",
            measured.bytes as f64 / measured.groups.max(1) as f64,
        )
        .with_extra("task_busy_s", measured.task_busy.as_secs_f64())
        .with_extra(
            "task_busy_frac",
            if elapsed_s > 0.0 {
                measured.task_busy.as_secs_f64() / elapsed_s
            } else {
                0.0
            },
        )
        .with_extra("disk_writes", measured.writes as f64)
        .with_extra(
            "avg_write_bytes",
            measured.write_bytes as f64 / measured.writes.max(1) as f64,
        )
        .with_extra("cpu_user_s", measured.cpu_user.as_secs_f64())
        .with_extra("cpu_sys_s", measured.cpu_sys.as_secs_f64())
        .with_extra(
            "thread_cpu_frac",
            if elapsed_s > 0.0 {
                cpu_s / elapsed_s
            } else {
                0.0
            },
        )
        .with_extra("clone_ns_per_batch", clone_ns)
        .with_extra("pool_build_s", pool_build.as_secs_f64())
        .with_extra(
            "clone_in_loop",
            f64::from(u8::from(opts.batch_source == BatchSource::Clone)),
        )
        .with_extra("close_ms", measured.close.as_secs_f64() * 1e3);
    let line = match dev {
        Some(dev) => dev.add_to(line, measured.elapsed),
        None => line,
    };
    Ok(match adjacent_disk {
        Some(adjacent) => {
            let ratio = line.mb_per_s / adjacent;
            line.with_extra("adjacent_disk_mb_per_s", adjacent)
                .with_extra("ratio_to_adjacent_disk", ratio)
        }
        None => line,
    })
}

/// Physical memory in bytes, if the system says.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages = u64::try_from(pages).ok()?;
    let page_size = u64::try_from(page_size).ok()?;
    pages.checked_mul(page_size)
}

/// Mean time to clone `template` into a `BytesMut` and drop it, with warm allocator memory.
fn clone_cost_ns(template: &[u8]) -> f64 {
    const ROUNDS: u32 = 200;
    std::hint::black_box(BytesMut::from(template));
    let start = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(BytesMut::from(template));
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

/// The batches of one case, handed out in order.
enum Batches {
    /// Back-to-back copies of the template in one allocation, split off one by one (so
    /// neither allocation nor freeing — page faults, munmap — happens in the timed part).
    Pool { arena: BytesMut, batch_bytes: usize },
    /// Cloned from the template on demand.
    Clone { template: Vec<u8>, left: u64 },
}

impl Batches {
    fn next_batch(&mut self) -> Option<BytesMut> {
        match self {
            Batches::Pool { arena, batch_bytes } => {
                (arena.len() >= *batch_bytes).then(|| arena.split_to(*batch_bytes))
            }
            Batches::Clone { template, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(BytesMut::from(&template[..]))
            }
        }
    }
}

struct CaseParams {
    dir: std::path::PathBuf,
    config: LogConfig,
    cache_bytes: usize,
    fsync: bool,
    window: usize,
    yield_bytes: u64,
}

/// What one case measured, on the executor thread.
struct Measured {
    bytes: u64,
    appends: u64,
    elapsed: Duration,
    append: LatencyRecorder,
    ack: LatencyRecorder,
    groups: u64,
    /// CPU time of the executor thread. It includes glommio's busy-polling of in-flight
    /// direct I/O (its poll ring), so it is near 100% whenever I/O is outstanding; the
    /// CPU-bound indicator is `task_busy`.
    cpu_user: Duration,
    cpu_sys: Duration,
    /// Time the executor spent running tasks (producer, flusher, tracker), excluding its
    /// own I/O polling and parking.
    task_busy: Duration,
    /// Direct writes issued (glommio's count), and their bytes.
    writes: u64,
    write_bytes: u64,
    /// Block-device counters over the timed part, when available.
    dev: Option<DevStat>,
    close: Duration,
}

/// Appends that wait for their ack: `(offset after the batch, append start)`, oldest first.
type AckQueue = Rc<RefCell<VecDeque<(Offset, Instant)>>>;

async fn append_case(params: CaseParams, mut batches: Batches) -> anyhow::Result<Measured> {
    let log = Log::open(
        GlommioStorage,
        &params.dir,
        params.config,
        BatchCache::new(params.cache_bytes),
    )
    .await
    .with_context(|| format!("opening a log in {}", params.dir.display()))?;
    glommio::spawn_local(log.clone().run_flusher()).detach();

    let queue: AckQueue = Rc::default();
    let queued = Rc::new(Semaphore::new(0));
    let window = Rc::new(Semaphore::new(params.window as u64));
    let mut append = LatencyRecorder::new();
    let mut bytes = 0u64;
    let mut appends = 0u64;
    let mut since_yield = 0u64;
    // Both reset on read: start the counters here.
    let _ = glommio::executor().executor_stats();
    let _ = glommio::executor().io_stats();
    let dev_path = devstat::stat_path(&params.dir);
    let dev0 = dev_path.as_deref().and_then(devstat::read);
    let (cpu_user0, cpu_sys0) = thread_cpu_times();
    let start = Instant::now();
    let tracker = glommio::spawn_local(track_acks(
        log.clone(),
        queue.clone(),
        queued.clone(),
        window.clone(),
        params.fsync,
    ));
    while let Some(batch) = batches.next_batch() {
        window.acquire(1).await.map_err(glommio_error)?;
        let len = batch.len() as u64;
        let t0 = Instant::now();
        let info = log.append(batch).await.context("append")?;
        append.record(t0.elapsed());
        queue.borrow_mut().push_back((info.next_offset(), t0));
        queued.signal(1);
        bytes += len;
        appends += 1;
        since_yield += len;
        if params.yield_bytes > 0 && since_yield >= params.yield_bytes {
            since_yield = 0;
            yield_to_reactor().await;
        }
    }
    // Mark the end for the tracker, then wait until it has retired every append.
    queue.borrow_mut().push_back((END_OF_CASE, start));
    queued.signal(1);
    let (ack, groups) = tracker.await.context("ack tracker")?;
    let elapsed = start.elapsed();
    let (cpu_user1, cpu_sys1) = thread_cpu_times();
    let dev = dev_path
        .as_deref()
        .and_then(devstat::read)
        .zip(dev0)
        .map(|(after, before)| after.since(&before));
    let task_busy = glommio::executor().executor_stats().executor_runtime();
    let (writes, write_bytes) = glommio::executor().io_stats().all_rings().file_writes();

    let offsets = log.offsets();
    ensure!(
        offsets.durable_end == offsets.log_end || !params.fsync,
        "log not durable at the end: {offsets:?}"
    );
    ensure!(
        ack.count() == appends,
        "{} acks for {appends} appends",
        ack.count()
    );
    let close_start = Instant::now();
    log.close().await.context("closing the log")?;
    let close = close_start.elapsed();
    if let Some(failure) = log.poisoned() {
        anyhow::bail!("log poisoned: {failure}");
    }
    Ok(Measured {
        bytes,
        appends,
        elapsed,
        append,
        ack,
        groups,
        cpu_user: cpu_user1.saturating_sub(cpu_user0),
        cpu_sys: cpu_sys1.saturating_sub(cpu_sys0),
        task_busy,
        writes,
        write_bytes,
        dev,
        close,
    })
}

/// Marker queued after the last append: the tracker stops when it reaches it.
const END_OF_CASE: Offset = Offset(i64::MIN);

/// Retires acks: waits until the oldest outstanding append is durable (or written), then
/// records the latency of every append that the same flush covered, all at the same instant,
/// and returns their window slots. Returns the ack latencies and the number of flushes seen.
async fn track_acks(
    log: Log<GlommioStorage>,
    queue: AckQueue,
    queued: Rc<Semaphore>,
    window: Rc<Semaphore>,
    fsync: bool,
) -> anyhow::Result<(LatencyRecorder, u64)> {
    let mut latency = LatencyRecorder::new();
    let mut groups = 0u64;
    loop {
        queued.acquire(1).await.map_err(glommio_error)?;
        let oldest = queue
            .borrow()
            .front()
            .map(|&(end, _)| end)
            .context("ack queue empty after a signal")?;
        if oldest == END_OF_CASE {
            return Ok((latency, groups));
        }
        log.flushed(oldest)
            .await
            .context("waiting for durability")?;
        let now = Instant::now();
        let offsets = log.offsets();
        let reached = if fsync {
            offsets.durable_end
        } else {
            offsets.written_end
        };
        groups += 1;
        // The permit for `oldest` was taken above; every further entry has one too, since
        // the producer signals right after pushing, with no await in between.
        let mut permit = true;
        loop {
            let mut queue = queue.borrow_mut();
            let Some(&(end, t0)) = queue.front() else {
                break;
            };
            if end == END_OF_CASE || end > reached {
                break;
            }
            if !permit && !queued.try_acquire(1).map_err(glommio_error)? {
                break;
            }
            permit = false;
            queue.pop_front();
            latency.record(now - t0);
            window.signal(1);
        }
        ensure!(!permit, "flushed() resolved but {oldest:?} is not covered");
    }
}

/// Lets every other ready task run and the reactor submit and reap I/O (a plain yield would
/// not: glommio only submits queued I/O when its run queue is empty or preemption is due).
async fn yield_to_reactor() {
    glommio::timer::sleep(Duration::from_micros(1)).await;
}

fn glommio_error(e: glommio::GlommioError<()>) -> anyhow::Error {
    anyhow::Error::new(std::io::Error::from(e))
}

/// User and system CPU time of the calling thread.
fn thread_cpu_times() -> (Duration, Duration) {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage struct that outlives the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let time = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    (time(usage.ru_utime), time(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_bounded_by_bytes_and_count() {
        let opts = EngineOptions::default();
        assert_eq!(window_appends(&opts, 1 << 10), 1024);
        assert_eq!(window_appends(&opts, 1 << 20), 64);
        assert_eq!(window_appends(&opts, 128 << 20), 1);
        assert_eq!(size_label(16 << 10), "16KiB");
    }

    #[test]
    fn rejects_bad_options() {
        let mut opts = EngineOptions {
            sizes: vec![4 << 20],
            ..EngineOptions::default()
        };
        assert!(validate(&opts).is_err(), "batch above max_batch_bytes");
        opts.sizes = vec![16 << 10];
        opts.tuning.write_buffer_bytes = 1000;
        assert!(validate(&opts).is_err(), "unaligned write buffer");
        opts.tuning.write_buffer_bytes = 1 << 20;
        assert!(validate(&opts).is_ok());
    }

    #[test]
    fn tiny_run_measures_and_cleans_up() -> anyhow::Result<()> {
        let dir = tempfile::tempdir_in(std::env::temp_dir())?;
        let opts = EngineOptions {
            sizes: vec![4 << 10, 100 << 10],
            bytes_per_case: 2 << 20,
            latency_samples: 5,
            window_appends: 16,
            yield_bytes: 64 << 10,
            disk: DiskOptions {
                block_size: 64 << 10,
                size: 1 << 20,
                queue_depth: 2,
                fsync_samples: 3,
                cpu: None,
            },
            ..EngineOptions::default()
        };
        let report = measure_engine(dir.path(), &opts)?;
        let names: Vec<&str> = report.cases.iter().map(|c| c.line.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "engine.append.4KiB.fsync",
                "engine.append.4KiB.nofsync",
                "engine.append.100KiB.fsync",
                "engine.append.100KiB.nofsync",
                "engine.durable.4KiB.fsync",
                "engine.durable.100KiB.fsync",
            ]
        );
        let first = &report.cases[0].line;
        assert_eq!(first.ops, 512);
        assert_eq!(first.bytes, 2 << 20);
        assert!(first.mb_per_s > 0.0 && first.ratio_to_disk.is_some());
        let json = first.to_json();
        assert_eq!(json["durable"]["count"], 512);
        assert_eq!(json["append"]["count"], 512);
        assert!(json["disk_fdatasync_p99_us"].as_f64().is_some());
        assert_eq!(report.cases[1].line.to_json()["written"]["count"], 512);
        assert_eq!(report.cases[4].line.ops, 5);
        assert_eq!(report.results().len(), 2 + 6);
        assert!(report.summary().contains("engine.append.100KiB.fsync"));
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            0,
            "temp files and directories must be removed"
        );
        Ok(())
    }
}
