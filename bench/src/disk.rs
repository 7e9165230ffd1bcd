//! Raw disk baseline: what the device under `--dir` can do with no broker or engine on top.
//!
//! Two measurements, both through glommio's O_DIRECT `DmaFile` on one executor thread,
//! exactly the I/O path the engine uses, so an engine result can be quoted as a fraction
//! of the hardware ([`ResultLine::ratio_to_disk`]):
//!
//! * `disk.write`: sequential write bandwidth. The temp file is pre-allocated to the full
//!   size (as the engine pre-allocates segments), then written in `block_size` chunks
//!   with `queue_depth` writes in flight, plus one final `fdatasync`, all inside the
//!   timing. Reports MB/s (MB = 10^6 bytes) and per-write latency.
//! * `disk.fdatasync`: the cost of durability. One 4 KiB page is written at successive
//!   offsets of a freshly pre-allocated file and `fdatasync`ed each time, mirroring a log
//!   append that must be acknowledged durable. Reports write+fdatasync and fdatasync-only
//!   latency; this is the floor for `acks=all`-style produce latency.
//!
//! Temp files live in the target directory and are removed when done, also on error or
//! panic (not on SIGKILL). On tmpfs glommio silently falls back to buffered I/O; that is
//! flagged with a warning and `o_direct = 0` because the numbers then measure memory.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, ensure};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use crate::devstat;
use crate::exec::{ExecutorOptions, run_on_executor};
use crate::report::{LatencyRecorder, ResultLine};
use crate::size::format_size;

/// Parameters of the disk baseline.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// Size of each sequential write; a multiple of 4 KiB.
    pub block_size: u64,
    /// Total bytes written by `disk.write` (rounded up to a whole number of blocks).
    pub size: u64,
    /// Sequential writes kept in flight.
    pub queue_depth: usize,
    /// Number of write+fdatasync rounds in `disk.fdatasync`.
    pub fsync_samples: usize,
    /// CPU to pin the executor to (`None`: unpinned).
    pub cpu: Option<usize>,
}

impl Default for DiskOptions {
    fn default() -> Self {
        Self {
            block_size: 1 << 20,
            size: 1 << 30,
            queue_depth: 4,
            fsync_samples: 200,
            cpu: Some(0),
        }
    }
}

/// Outcome of [`measure_disk`]: headline numbers plus the full result lines.
#[derive(Debug, Clone)]
pub struct DiskReport {
    /// Sequential O_DIRECT write bandwidth in MB/s (10^6 bytes), final fdatasync included.
    pub write_mb_per_s: f64,
    /// Median fdatasync latency after a 4 KiB write, microseconds.
    pub fdatasync_p50_us: f64,
    /// 99th percentile fdatasync latency, microseconds.
    pub fdatasync_p99_us: f64,
    /// Worst fdatasync latency, microseconds.
    pub fdatasync_max_us: f64,
    /// False if the directory is on tmpfs, where O_DIRECT is unavailable.
    pub direct_io: bool,
    /// The `disk.write` result line.
    pub write: ResultLine,
    /// The `disk.fdatasync` result line.
    pub fdatasync: ResultLine,
}

impl DiskReport {
    /// Both result lines, in the order they were measured.
    pub fn results(&self) -> Vec<ResultLine> {
        vec![self.write.clone(), self.fdatasync.clone()]
    }
}

/// Size of the page written before each fdatasync (raised to the device alignment if larger).
pub const FSYNC_PAGE: u64 = 4096;

/// Measures the disk under `dir` on a new pinned glommio executor thread and joins it.
///
/// Blocks for the duration of the benchmark; progress is printed to stderr.
pub fn measure_disk(dir: &Path, opts: &DiskOptions) -> anyhow::Result<DiskReport> {
    validate(opts)?;
    let meta =
        std::fs::metadata(dir).with_context(|| format!("benchmark dir {}", dir.display()))?;
    ensure!(meta.is_dir(), "{} is not a directory", dir.display());
    let direct_io = !is_tmpfs(dir);
    if !direct_io {
        eprintln!(
            "warning: {} is on tmpfs: O_DIRECT is unavailable, results measure page cache",
            dir.display()
        );
    }

    // Removed on drop, i.e. after the executor thread is joined, whatever happened there.
    let temp = |what: &str| {
        tempfile::Builder::new()
            .prefix(&format!(".sluice-bench-{what}-"))
            .tempfile_in(dir)
            .map(tempfile::NamedTempFile::into_temp_path)
            .with_context(|| format!("creating a temp file in {}", dir.display()))
    };
    let write_path = temp("write")?;
    let fsync_path = temp("fsync")?;

    let exec = ExecutorOptions {
        cpu: opts.cpu,
        io_memory: usize::try_from(opts.block_size)?
            .saturating_mul(opts.queue_depth)
            .saturating_add(1 << 20),
    };
    let (o, wp, fp) = (
        opts.clone(),
        write_path.to_path_buf(),
        fsync_path.to_path_buf(),
    );
    let (write, fdatasync) = run_on_executor("sluice-bench-disk", &exec, move || async move {
        let write = write_bandwidth(&wp, &o).await?;
        let fdatasync = fdatasync_latency(&fp, &o).await?;
        Ok((write, fdatasync))
    })?;
    write_path.close().context("removing the write temp file")?;
    fsync_path
        .close()
        .context("removing the fdatasync temp file")?;

    let flag = f64::from(u8::from(direct_io));
    let write = write.with_extra("o_direct", flag);
    let fdatasync = fdatasync.with_extra("o_direct", flag);
    let sync = fdatasync
        .latencies
        .iter()
        .find(|(l, _)| l == "fdatasync")
        .map(|(_, p)| *p);
    let sync = sync.unwrap_or_default();
    Ok(DiskReport {
        write_mb_per_s: write.mb_per_s,
        fdatasync_p50_us: sync.p50_us,
        fdatasync_p99_us: sync.p99_us,
        fdatasync_max_us: sync.max_us,
        direct_io,
        write,
        fdatasync,
    })
}

fn validate(opts: &DiskOptions) -> anyhow::Result<()> {
    ensure!(
        opts.block_size >= FSYNC_PAGE && opts.block_size.is_multiple_of(FSYNC_PAGE),
        "--block-size must be a non-zero multiple of 4KiB (O_DIRECT alignment), got {}",
        format_size(opts.block_size)
    );
    ensure!(opts.size > 0, "--size must be positive");
    ensure!(opts.queue_depth > 0, "--queue-depth must be at least 1");
    ensure!(opts.fsync_samples > 0, "--fsync-samples must be at least 1");
    Ok(())
}

/// `disk.write`: pre-allocated sequential O_DIRECT writes, `queue_depth` in flight.
async fn write_bandwidth(path: &Path, opts: &DiskOptions) -> anyhow::Result<ResultLine> {
    let block = opts.block_size;
    let blocks = opts.size.div_ceil(block);
    let total = blocks * block;
    eprintln!(
        "disk.write: {} in {} blocks, queue depth {}, into {}",
        format_size(total),
        format_size(block),
        opts.queue_depth,
        path.display()
    );
    let file = open_dma(path).await?;
    ensure!(
        block.is_multiple_of(file.alignment()),
        "--block-size {block} is not a multiple of the device's O_DIRECT alignment {}",
        file.alignment()
    );
    glommio_ctx(file.pre_allocate(total, false).await, || {
        format!("pre-allocating {total} bytes")
    })?;

    // Distinct, non-zero buffers (some virtual disks special-case zero pages); they are
    // read-only during the run, so each one can back any number of in-flight writes.
    let bufs: Vec<Rc<DmaBuffer>> = (0..opts.queue_depth)
        .map(|i| Rc::new(filled_buffer(&file, block, i as u64)))
        .collect();

    let mut latency = LatencyRecorder::new();
    let mut in_flight = FuturesUnordered::new();
    let mut next_block = 0u64;
    let dev_path = devstat::stat_path(path.parent().unwrap_or(path));
    let dev0 = dev_path.as_deref().and_then(devstat::read);
    let start = Instant::now();
    loop {
        while in_flight.len() < opts.queue_depth && next_block < blocks {
            let buf = Rc::clone(&bufs[(next_block % bufs.len() as u64) as usize]);
            let pos = next_block * block;
            let file = &file;
            in_flight.push(async move {
                let t0 = Instant::now();
                let res = file.write_rc_at(buf, pos).await;
                (pos, t0.elapsed(), res)
            });
            next_block += 1;
        }
        let Some((pos, elapsed, res)) = in_flight.next().await else {
            break;
        };
        let written = glommio_ctx(res, || format!("writing {block} bytes at offset {pos}"))?;
        ensure!(
            written as u64 == block,
            "short O_DIRECT write at {pos}: {written} of {block} bytes"
        );
        latency.record(elapsed);
    }
    drop(in_flight); // empty now; releases its borrow of `file`
    let sync_start = Instant::now();
    glommio_ctx(file.fdatasync().await, || "final fdatasync".to_owned())?;
    let final_sync = sync_start.elapsed();
    let elapsed = start.elapsed();
    let dev = dev_path
        .as_deref()
        .and_then(devstat::read)
        .zip(dev0)
        .map(|(after, before)| after.since(&before));
    glommio_ctx(file.close().await, || "closing the write file".to_owned())?;

    let line = ResultLine::new("disk.write", total, blocks, elapsed)
        .with_latency("write", &latency)
        .with_extra("block_bytes", block as f64)
        .with_extra("queue_depth", opts.queue_depth as f64)
        .with_extra("final_fdatasync_us", final_sync.as_secs_f64() * 1e6);
    Ok(match dev {
        Some(dev) => dev.add_to(line, elapsed),
        None => line,
    })
}

/// `disk.fdatasync`: write one page at successive offsets, fdatasync after each.
async fn fdatasync_latency(path: &Path, opts: &DiskOptions) -> anyhow::Result<ResultLine> {
    let file = open_dma(path).await?;
    let page = FSYNC_PAGE.max(file.alignment());
    let samples = opts.fsync_samples as u64;
    eprintln!(
        "disk.fdatasync: {samples} x ({} write + fdatasync)",
        format_size(page)
    );
    let span = samples * page;
    glommio_ctx(file.pre_allocate(span, false).await, || {
        format!("pre-allocating {span} bytes")
    })?;
    let buf = Rc::new(filled_buffer(&file, page, 0xf5));

    let mut durable = LatencyRecorder::new();
    let mut sync_only = LatencyRecorder::new();
    let start = Instant::now();
    for i in 0..samples {
        let pos = i * page;
        let t0 = Instant::now();
        let written = file.write_rc_at(Rc::clone(&buf), pos).await;
        let written = glommio_ctx(written, || format!("writing {page} bytes at offset {pos}"))?;
        ensure!(
            written as u64 == page,
            "short O_DIRECT write at {pos}: {written} of {page} bytes"
        );
        let t1 = Instant::now();
        glommio_ctx(file.fdatasync().await, || format!("fdatasync #{i}"))?;
        let t2 = Instant::now();
        durable.record(t2 - t0);
        sync_only.record(t2 - t1);
    }
    let elapsed = start.elapsed();
    glommio_ctx(file.close().await, || {
        "closing the fdatasync file".to_owned()
    })?;

    Ok(ResultLine::new("disk.fdatasync", span, samples, elapsed)
        .with_latency("write_fdatasync", &durable)
        .with_latency("fdatasync", &sync_only)
        .with_extra("page_bytes", page as f64))
}

async fn open_dma(path: &Path) -> anyhow::Result<DmaFile> {
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .dma_open(path)
        .await;
    glommio_ctx(file, || format!("opening {} with O_DIRECT", path.display()))
}

/// A DMA buffer of `len` bytes filled with a cheap pseudo-random pattern.
fn filled_buffer(file: &DmaFile, len: u64, seed: u64) -> DmaBuffer {
    let mut buf = file.alloc_dma_buffer(len as usize);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.as_bytes_mut().chunks_mut(8) {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    buf
}

/// Converts a glommio result into an anyhow one with context.
fn glommio_ctx<T>(res: glommio::Result<T, ()>, what: impl FnOnce() -> String) -> anyhow::Result<T> {
    res.map_err(std::io::Error::from).with_context(what)
}

fn is_tmpfs(dir: &Path) -> bool {
    let Ok(c_path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero `statfs` is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `st` a writable statfs, both live
    // for the duration of the call.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut st) };
    rc == 0 && st.f_type as u64 == libc::TMPFS_MAGIC as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unaligned_block_size() {
        let opts = DiskOptions {
            block_size: 1000,
            ..DiskOptions::default()
        };
        assert!(validate(&opts).is_err());
        assert!(
            validate(&DiskOptions {
                queue_depth: 0,
                ..DiskOptions::default()
            })
            .is_err()
        );
        assert!(validate(&DiskOptions::default()).is_ok());
    }

    #[test]
    fn tiny_run_cleans_up() -> anyhow::Result<()> {
        let dir = tempfile::tempdir_in(std::env::temp_dir())?;
        let opts = DiskOptions {
            block_size: 64 << 10,
            size: 1 << 20,
            queue_depth: 2,
            fsync_samples: 3,
            cpu: None,
        };
        let report = measure_disk(dir.path(), &opts)?;
        assert_eq!(report.write.bytes, 1 << 20);
        assert_eq!(report.write.ops, 16);
        assert_eq!(report.fdatasync.ops, 3);
        assert!(report.write_mb_per_s > 0.0);
        assert!(report.fdatasync_max_us >= report.fdatasync_p50_us);
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            0,
            "temp files must be removed"
        );
        Ok(())
    }
}
