//! Running a benchmark body on a dedicated glommio (io_uring) executor thread.
//!
//! Every storage benchmark runs the same way the broker will: one thread-per-core glommio
//! executor, optionally pinned to a CPU. [`run_on_executor`] starts that thread, runs an
//! async body to completion, joins it, and turns executor-creation failures into an error
//! that says what to check (locked-memory limit, kernel io_uring support) instead of a
//! bare errno.

use std::future::Future;

use anyhow::{Context, anyhow};
use glommio::{LocalExecutorBuilder, Placement};

/// How to build the benchmark executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// CPU to pin the executor thread to; `None` lets the scheduler place it.
    pub cpu: Option<usize>,
    /// Bytes of DMA memory glommio pre-registers with io_uring (at least its 10 MiB default
    /// is used); size it to cover every buffer that is in flight at once.
    pub io_memory: usize,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            cpu: Some(0),
            io_memory: DEFAULT_IO_MEMORY,
        }
    }
}

/// glommio's own default I/O memory (10 MiB).
pub const DEFAULT_IO_MEMORY: usize = 10 << 20;

/// Runs `body` on a fresh glommio executor in a new thread named `name` and returns its
/// result. If pinning to `opts.cpu` is rejected (CPU absent or outside this process's
/// cpuset), it warns on stderr and retries unpinned.
pub fn run_on_executor<T, F, Fut>(name: &str, opts: &ExecutorOptions, body: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + 'static,
{
    let thread_name = name.to_owned();
    let opts = opts.clone();
    let handle = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || -> anyhow::Result<T> {
            let build = |placement| {
                LocalExecutorBuilder::new(placement)
                    .name(&thread_name)
                    .io_memory(opts.io_memory.max(DEFAULT_IO_MEMORY))
                    .make()
            };
            let executor = match opts.cpu {
                None => build(Placement::Unbound),
                Some(cpu) => build(Placement::Fixed(cpu)).or_else(|e| {
                    if !is_placement_error(&e) {
                        return Err(e);
                    }
                    eprintln!("warning: cannot pin {thread_name} to CPU {cpu} ({e}); unpinned");
                    build(Placement::Unbound)
                }),
            }
            .map_err(|e| executor_error(&e))?;
            executor.run(body())
        })
        .context("spawning the benchmark executor thread")?;
    match handle.join() {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic payload)");
            Err(anyhow!(
                "benchmark executor thread {name:?} panicked: {msg}"
            ))
        }
    }
}

fn is_placement_error(e: &glommio::GlommioError<()>) -> bool {
    match e {
        glommio::GlommioError::BuilderError(_) => true,
        // sched_setaffinity fails with EINVAL when the CPU is outside our cpuset.
        glommio::GlommioError::IoError(io) => io.raw_os_error() == Some(libc::EINVAL),
        _ => false,
    }
}

/// Wraps an executor-creation failure with the usual causes and how to check them.
fn executor_error(e: &glommio::GlommioError<()>) -> anyhow::Error {
    let memlock = memlock_limit()
        .map(|(soft, hard)| format!("soft {}, hard {}", fmt_limit(soft), fmt_limit(hard)))
        .unwrap_or_else(|| "unknown".to_owned());
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "n/a".to_owned());
    anyhow!(
        "failed to create the glommio io_uring executor: {e}\n\
         glommio needs:\n  \
         - locked memory for its io_uring rings and DMA buffers: check `ulimit -l` \
         (memlock {memlock}; at least 512 KiB, ideally unlimited, e.g. `ulimit -l unlimited` \
         or LimitMEMLOCK=infinity / --ulimit memlock=-1 in containers)\n  \
         - a kernel with io_uring enabled (Linux >= 5.8; /proc/sys/kernel/io_uring_disabled = \
         {disabled}, must be 0; seccomp profiles such as Docker's default may block io_uring)"
    )
}

fn fmt_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} KiB", v / 1024)
    }
}

/// RLIMIT_MEMLOCK (soft, hard) in bytes.
fn memlock_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct that outlives the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    (rc == 0).then_some((lim.rlim_cur, lim.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_points_at_memlock_and_io_uring() {
        let e =
            glommio::GlommioError::<()>::IoError(std::io::Error::from_raw_os_error(libc::ENOMEM));
        let msg = executor_error(&e).to_string();
        assert!(msg.contains("ulimit -l"), "{msg}");
        assert!(msg.contains("io_uring"), "{msg}");
    }
}
