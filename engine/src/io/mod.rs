//! The I/O seam: everything the engine asks of files, as two small traits.
//!
//! The log never names glommio. [`glommio_storage::GlommioStorage`] implements the traits
//! with io_uring direct I/O; [`memory::MemoryStorage`] implements them in memory with
//! injectable faults (failed writes and fdatasyncs, a full disk) and simulated crashes that
//! drop what was never made durable. Tests and fuzzers run the same log code on either.
//!
//! All futures are `!Send` on purpose: a log lives on one shard and its I/O completes there.

pub mod glommio_storage;
pub mod memory;

use std::io;
use std::os::fd::RawFd;
use std::path::Path;

use bytes::Bytes;

use crate::offset::TimestampMs;

/// A buffer whose address and length suit direct I/O on the file it was allocated for.
pub trait IoBuffer {
    /// The buffer's bytes.
    fn as_slice(&self) -> &[u8];
    /// The buffer's bytes, writable.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Shortens the buffer to `len` bytes (a multiple of the alignment) before a write.
    fn trim_to(&mut self, len: usize);
}

/// A segment file opened for direct I/O.
#[allow(async_fn_in_trait)] // single-threaded by design: futures stay on their shard
pub trait DirectFile: 'static {
    /// The buffer type writes take ownership of.
    type Buffer: IoBuffer;

    /// An aligned buffer of `len` bytes (a multiple of the alignment); contents unspecified.
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;
    /// Writes all of `buffer` at `position` (both aligned). Returns the bytes written.
    async fn write_at(&self, buffer: Self::Buffer, position: u64) -> io::Result<usize>;
    /// Reads up to `len` bytes at `position` (any alignment).
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes>;
    /// Makes every completed write durable.
    async fn fdatasync(&self) -> io::Result<()>;
    /// Reserves space up to `size` bytes; the file size becomes `size` if it was smaller.
    async fn preallocate(&self, size: u64) -> io::Result<()>;
    /// Sets the file size.
    async fn truncate(&self, size: u64) -> io::Result<()>;
    /// Current file size.
    async fn size(&self) -> io::Result<u64>;
    /// Closes the file.
    async fn close(self) -> io::Result<()>;
}

/// A segment file opened for reading through the page cache (header scans, and the file
/// descriptor that the network layer hands to sendfile/splice).
#[allow(async_fn_in_trait)]
pub trait ReadFile: 'static {
    /// Reads up to `len` bytes at `position`; fewer at the end of the file.
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes>;
    /// Current file size.
    async fn size(&self) -> io::Result<u64>;
    /// The descriptor for zero-copy sends, when the storage has one.
    fn raw_fd(&self) -> Option<RawFd>;
    /// Whether `len` bytes at `position` are in memory (the page cache), so that sending
    /// them with sendfile on the shard's thread does not wait for the disk.
    fn is_cached(&self, _position: u64, _len: u64) -> bool {
        true
    }
}

/// Files and directories as the log uses them.
#[allow(async_fn_in_trait)]
pub trait Storage: Clone + 'static {
    /// Segment files written with direct I/O.
    type File: DirectFile;
    /// Segment files read through the page cache.
    type Reader: ReadFile;

    /// Opens (and with `create`, creates) a segment file for direct I/O, read + write.
    async fn open_direct(&self, path: &Path, create: bool) -> io::Result<Self::File>;
    /// Opens a file for buffered reads.
    async fn open_read(&self, path: &Path) -> io::Result<Self::Reader>;
    /// The whole content of a small file, or `None` if it does not exist.
    async fn read_whole(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Writes `data` at `position` of a small file, creating it; not made durable (hints).
    async fn write_hint(&self, path: &Path, position: u64, data: Vec<u8>) -> io::Result<()>;
    /// Atomically replaces a small file: temp file, fdatasync, rename, directory sync.
    async fn replace_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()>;
    /// Removes a file; a missing file is not an error.
    async fn remove(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    async fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Wall-clock time, for `LogAppendTime`, `segment.ms` and `retention.ms`.
    fn now(&self) -> TimestampMs;
}
