//! [`Storage`] on glommio: io_uring direct I/O for segments, buffered glommio files for
//! small files. Must be used from inside a glommio executor.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use glommio::io::{BufferedFile, DmaBuffer, DmaFile, OpenOptions};

use super::{DirectFile, IoBuffer, ReadFile, Storage};
use crate::offset::TimestampMs;

fn to_io(error: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(error)
}

/// Real files under glommio.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlommioStorage;

/// A segment file open with `O_DIRECT`.
#[derive(Debug)]
pub struct GlommioDirectFile {
    file: DmaFile,
}

/// A segment file open for buffered reads.
#[derive(Debug)]
pub struct GlommioReader {
    file: BufferedFile,
}

impl IoBuffer for DmaBuffer {
    fn as_slice(&self) -> &[u8] {
        self.as_bytes()
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
    fn trim_to(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

impl DirectFile for GlommioDirectFile {
    type Buffer = DmaBuffer;

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        self.file.alloc_dma_buffer(len)
    }
    async fn write_at(&self, buffer: DmaBuffer, position: u64) -> io::Result<usize> {
        self.file.write_at(buffer, position).await.map_err(to_io)
    }
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let result = self.file.read_at(position, len).await.map_err(to_io)?;
        Ok(Bytes::copy_from_slice(&result))
    }
    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }
    async fn preallocate(&self, size: u64) -> io::Result<()> {
        self.file.pre_allocate(size, false).await.map_err(to_io)
    }
    async fn truncate(&self, size: u64) -> io::Result<()> {
        self.file.truncate(size).await.map_err(to_io)
    }
    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }
    async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(to_io)
    }
}

impl ReadFile for GlommioReader {
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let result = self.file.read_at(position, len).await.map_err(to_io)?;
        Ok(Bytes::copy_from_slice(&result))
    }
    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
    fn is_cached(&self, position: u64, len: u64) -> bool {
        range_cached(self.file.as_raw_fd(), position, len)
    }
}

/// `cachestat(2)`: the same number on every architecture (new syscalls share numbers).
const SYS_CACHESTAT: libc::c_long = 451;
const PAGE: u64 = 4096;
/// Set once `cachestat` is found missing (Linux before 6.5): use probes from then on.
static NO_CACHESTAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Whether every page of the range is in the page cache: `cachestat(2)` counts them exactly;
/// without it (Linux before 6.5), one-byte `RWF_NOWAIT` reads probe eight pages spread over
/// the range. An error answers "cached": the send that follows reports it.
fn range_cached(fd: RawFd, position: u64, len: u64) -> bool {
    use std::sync::atomic::Ordering;
    if len == 0 {
        return true;
    }
    if !NO_CACHESTAT.load(Ordering::Relaxed) {
        let range = CachestatRange { off: position, len };
        let mut stat = Cachestat::default();
        // SAFETY: cachestat reads `range` and writes `stat`, both live, properly laid out
        // (#[repr(C)] as the kernel's structs) and exclusively borrowed for the call; `fd`
        // is open for the caller's borrow of the reader.
        let result = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                fd,
                &raw const range,
                &raw mut stat,
                0 as libc::c_uint,
            )
        };
        if result == 0 {
            let pages = (position + len).div_ceil(PAGE) - position / PAGE;
            return stat.nr_cache >= pages;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
            return true;
        }
        NO_CACHESTAT.store(true, Ordering::Relaxed);
    }
    (0..8u64).all(|step| {
        let offset = position + (len - 1) * step / 7;
        let mut byte = 0u8;
        let vector = libc::iovec {
            iov_base: (&raw mut byte).cast(),
            iov_len: 1,
        };
        let Ok(offset) = libc::off_t::try_from(offset) else {
            return true;
        };
        // SAFETY: one iovec over a live, exclusively borrowed byte; `fd` is open (see above).
        let read = unsafe { libc::preadv2(fd, &raw const vector, 1, offset, libc::RWF_NOWAIT) };
        read >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
    })
}

/// glommio resolves relative paths against no directory at all (`Directory::open("./x")`
/// fails with EBADF), so every path is made absolute first.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |dir| dir.join(path))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

impl Storage for GlommioStorage {
    type File = GlommioDirectFile;
    type Reader = GlommioReader;

    async fn open_direct(&self, path: &Path, create: bool) -> io::Result<GlommioDirectFile> {
        let path = &absolute(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map_err(to_io)?;
        Ok(GlommioDirectFile { file })
    }

    async fn open_read(&self, path: &Path) -> io::Result<GlommioReader> {
        let path = &absolute(path);
        let file = OpenOptions::new()
            .read(true)
            .buffered_open(path)
            .await
            .map_err(to_io)?;
        Ok(GlommioReader { file })
    }

    async fn read_whole(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let path = &absolute(path);
        match std::fs::read(path) {
            Ok(data) => Ok(Some(data)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn write_hint(&self, path: &Path, position: u64, data: Vec<u8>) -> io::Result<()> {
        let path = &absolute(path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .buffered_open(path)
            .await
            .map_err(to_io)?;
        let expected = data.len();
        let written = file.write_at(data, position).await.map_err(to_io)?;
        file.close().await.map_err(to_io)?;
        if written != expected {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of hint file",
            ));
        }
        Ok(())
    }

    async fn replace_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let path = &absolute(path);
        let temp = temp_path(path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(&temp)
            .await
            .map_err(to_io)?;
        let expected = data.len();
        let written = if expected == 0 {
            0
        } else {
            file.write_at(data, 0).await.map_err(to_io)?
        };
        file.fdatasync().await.map_err(to_io)?;
        file.close().await.map_err(to_io)?;
        if written != expected {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write replacing file",
            ));
        }
        glommio::io::rename(&temp, path).await.map_err(to_io)?;
        match path.parent() {
            Some(parent) => self.sync_dir(parent).await,
            None => Ok(()),
        }
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let path = &absolute(path);
        match glommio::io::remove(path).await.map_err(to_io) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = &absolute(path);
        std::fs::create_dir_all(path)
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = &absolute(path);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let path = &absolute(path);
        let directory = glommio::io::Directory::open(path).await.map_err(to_io)?;
        directory.sync().await.map_err(to_io)?;
        directory.close().await.map_err(to_io)
    }

    fn now(&self) -> TimestampMs {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        TimestampMs(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}
