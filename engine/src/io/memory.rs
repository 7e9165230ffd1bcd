//! [`Storage`] in memory, with faults and crashes on demand.
//!
//! Each file keeps two images: `current` (what reads see) and `durable` (what survives a
//! crash). `fdatasync` copies current to durable; [`MemoryStorage::crash`] throws away what
//! was never synced, entirely or torn at a chosen byte. Directory operations (create,
//! rename, remove) are durable at once — the engine syncs directories anyway, and this keeps
//! the model small. Faults: the next N fdatasyncs or writes fail, or the "disk" holds only so
//! many bytes (writes and preallocation past it fail with `ENOSPC`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::{DirectFile, IoBuffer, ReadFile, Storage};
use crate::offset::TimestampMs;

#[derive(Debug, Default)]
struct FileImage {
    current: Vec<u8>,
    durable: Vec<u8>,
}

type FileRef = Rc<RefCell<FileImage>>;

#[derive(Debug, Default)]
struct Faults {
    fail_fdatasync: u32,
    fail_write: u32,
    capacity: Option<u64>,
    /// Mutating operations performed so far.
    operations: u64,
    /// Operations from this count on fail, as if the machine lost power.
    power_off_at: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, FileRef>,
    dirs: BTreeSet<PathBuf>,
    faults: Faults,
}

/// What a simulated crash keeps of the bytes written since the last fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// None of them: every file reverts to its durable image.
    LoseUnsynced,
    /// All of them, as if the device wrote everything before power was lost.
    KeepUnsynced,
    /// The first `n` bytes that differ from the durable image, per file; the rest is lost.
    Torn(usize),
}

/// An in-memory file system shared by clones (one per test).
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    state: Rc<RefCell<State>>,
    clock: Rc<Cell<i64>>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl MemoryStorage {
    /// An empty file system whose clock reads 1_700_000_000_000 ms.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Rc::new(RefCell::new(State::default())),
            clock: Rc::new(Cell::new(1_700_000_000_000)),
        }
    }

    /// Sets the clock.
    pub fn set_now(&self, now: TimestampMs) {
        self.clock.set(now.0);
    }

    /// The clock, in milliseconds.
    #[must_use]
    pub fn now_for_tests(&self) -> i64 {
        self.clock.get()
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: i64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// The next `count` fdatasyncs fail with an I/O error.
    pub fn fail_next_fdatasyncs(&self, count: u32) {
        self.state.borrow_mut().faults.fail_fdatasync = count;
    }

    /// The next `count` direct writes fail with an I/O error.
    pub fn fail_next_writes(&self, count: u32) {
        self.state.borrow_mut().faults.fail_write = count;
    }

    /// Limits the total size of all files; growth past it fails with `ENOSPC`.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.borrow_mut().faults.capacity = bytes;
    }

    /// Every mutating operation after the next `count` fails (the machine "loses power"
    /// mid-sequence); combine with [`MemoryStorage::crash`] and [`MemoryStorage::restore_power`]
    /// to crash a log at every step of a write.
    pub fn power_off_after(&self, count: u64) {
        let mut state = self.state.borrow_mut();
        state.faults.power_off_at = Some(state.faults.operations + count);
    }

    /// Undoes [`MemoryStorage::power_off_after`].
    pub fn restore_power(&self) {
        self.state.borrow_mut().faults.power_off_at = None;
    }

    /// Mutating operations performed so far.
    #[must_use]
    pub fn operations(&self) -> u64 {
        self.state.borrow().faults.operations
    }

    fn operation(&self) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        let faults = &mut state.faults;
        if faults
            .power_off_at
            .is_some_and(|limit| faults.operations >= limit)
        {
            return Err(io::Error::other("power lost (simulated)"));
        }
        faults.operations += 1;
        Ok(())
    }

    /// Simulates power loss: unsynced bytes of every file are dropped per `mode`.
    pub fn crash(&self, mode: CrashMode) {
        let state = self.state.borrow();
        for file in state.files.values() {
            let mut file = file.borrow_mut();
            let image = &mut *file;
            let kept = match mode {
                CrashMode::LoseUnsynced => image.durable.clone(),
                CrashMode::KeepUnsynced => image.current.clone(),
                CrashMode::Torn(keep) => torn_image(&image.durable, &image.current, keep),
            };
            image.current = kept.clone();
            image.durable = kept;
        }
    }

    /// A copy of a file's current bytes (tests inspect and damage files through these).
    #[must_use]
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        state
            .files
            .get(path)
            .map(|file| file.borrow().current.clone())
    }

    /// Replaces a file's bytes, current and durable (tests use it to plant damage).
    pub fn set_file_bytes(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = self.state.borrow_mut();
        let file = state.files.entry(path.to_path_buf()).or_default();
        let mut image = file.borrow_mut();
        image.current = bytes.clone();
        image.durable = bytes;
    }

    /// Removes a file outright (tests simulate a lost index).
    pub fn delete_file(&self, path: &Path) {
        self.state.borrow_mut().files.remove(path);
    }

    /// Paths of all files, sorted.
    #[must_use]
    pub fn paths(&self) -> Vec<PathBuf> {
        self.state.borrow().files.keys().cloned().collect()
    }

    fn total_size(&self) -> u64 {
        let state = self.state.borrow();
        state
            .files
            .values()
            .map(|file| file.borrow().current.len() as u64)
            .sum()
    }

    fn check_growth(&self, current_len: u64, new_len: u64) -> io::Result<()> {
        let capacity = self.state.borrow().faults.capacity;
        if let Some(capacity) = capacity
            && new_len > current_len
            && self.total_size() + (new_len - current_len) > capacity
        {
            return Err(enospc());
        }
        Ok(())
    }

    fn take_fault(&self, pick: impl FnOnce(&mut Faults) -> &mut u32) -> bool {
        let mut state = self.state.borrow_mut();
        let counter = pick(&mut state.faults);
        if *counter > 0 {
            *counter -= 1;
            true
        } else {
            false
        }
    }

    fn file(&self, path: &Path) -> io::Result<FileRef> {
        let state = self.state.borrow();
        state.files.get(path).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )
        })
    }
}

fn torn_image(durable: &[u8], current: &[u8], keep: usize) -> Vec<u8> {
    let first_difference = durable
        .iter()
        .zip(current)
        .position(|(a, b)| a != b)
        .unwrap_or(durable.len().min(current.len()));
    let keep_until = (first_difference + keep).min(current.len());
    let mut image = current[..keep_until].to_vec();
    if durable.len() > keep_until {
        image.extend_from_slice(&durable[keep_until..]);
    }
    image
}

/// An aligned-enough buffer (the model does not care about alignment, but checks lengths).
#[derive(Debug)]
pub struct MemoryBuffer {
    bytes: Vec<u8>,
}

impl IoBuffer for MemoryBuffer {
    fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
    fn trim_to(&mut self, len: usize) {
        self.bytes.truncate(len);
    }
}

/// A file of a [`MemoryStorage`], for direct I/O or for reads.
#[derive(Debug)]
pub struct MemoryFile {
    storage: MemoryStorage,
    image: FileRef,
}

fn read_image(image: &FileRef, position: u64, len: usize) -> Bytes {
    let image = image.borrow();
    let start = (position as usize).min(image.current.len());
    let end = start.saturating_add(len).min(image.current.len());
    Bytes::copy_from_slice(&image.current[start..end])
}

impl DirectFile for MemoryFile {
    type Buffer = MemoryBuffer;

    fn alloc_buffer(&self, len: usize) -> MemoryBuffer {
        MemoryBuffer {
            bytes: vec![0; len],
        }
    }

    async fn write_at(&self, buffer: MemoryBuffer, position: u64) -> io::Result<usize> {
        assert_eq!(position % 4096, 0, "direct write position must be aligned");
        assert_eq!(
            buffer.bytes.len() % 4096,
            0,
            "direct write length must be aligned"
        );
        self.storage.operation()?;
        if self.storage.take_fault(|faults| &mut faults.fail_write) {
            return Err(injected("write"));
        }
        let end = position as usize + buffer.bytes.len();
        let current_len = self.image.borrow().current.len();
        self.storage.check_growth(current_len as u64, end as u64)?;
        let mut image = self.image.borrow_mut();
        if image.current.len() < end {
            image.current.resize(end, 0);
        }
        image.current[position as usize..end].copy_from_slice(&buffer.bytes);
        Ok(buffer.bytes.len())
    }

    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        Ok(read_image(&self.image, position, len))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.storage.operation()?;
        if self.storage.take_fault(|faults| &mut faults.fail_fdatasync) {
            return Err(injected("fdatasync"));
        }
        let mut image = self.image.borrow_mut();
        image.durable = image.current.clone();
        Ok(())
    }

    async fn preallocate(&self, size: u64) -> io::Result<()> {
        self.storage.operation()?;
        let current_len = self.image.borrow().current.len() as u64;
        self.storage.check_growth(current_len, size)?;
        let mut image = self.image.borrow_mut();
        if (image.current.len() as u64) < size {
            image.current.resize(size as usize, 0);
        }
        Ok(())
    }

    async fn truncate(&self, size: u64) -> io::Result<()> {
        self.storage.operation()?;
        let current_len = self.image.borrow().current.len() as u64;
        self.storage.check_growth(current_len, size)?;
        self.image.borrow_mut().current.resize(size as usize, 0);
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.image.borrow().current.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}

impl ReadFile for MemoryFile {
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        Ok(read_image(&self.image, position, len))
    }
    async fn size(&self) -> io::Result<u64> {
        Ok(self.image.borrow().current.len() as u64)
    }
    fn raw_fd(&self) -> Option<RawFd> {
        None
    }
}

impl Storage for MemoryStorage {
    type File = MemoryFile;
    type Reader = MemoryFile;

    async fn open_direct(&self, path: &Path, create: bool) -> io::Result<MemoryFile> {
        let image = if create {
            self.operation()?;
            let mut state = self.state.borrow_mut();
            state.files.entry(path.to_path_buf()).or_default().clone()
        } else {
            self.file(path)?
        };
        Ok(MemoryFile {
            storage: self.clone(),
            image,
        })
    }

    async fn open_read(&self, path: &Path) -> io::Result<MemoryFile> {
        Ok(MemoryFile {
            storage: self.clone(),
            image: self.file(path)?,
        })
    }

    async fn read_whole(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.file_bytes(path))
    }

    async fn write_hint(&self, path: &Path, position: u64, data: Vec<u8>) -> io::Result<()> {
        self.operation()?;
        let image = {
            let mut state = self.state.borrow_mut();
            state.files.entry(path.to_path_buf()).or_default().clone()
        };
        let end = position as usize + data.len();
        let current_len = image.borrow().current.len();
        self.check_growth(current_len as u64, end as u64)?;
        let mut image = image.borrow_mut();
        if image.current.len() < end {
            image.current.resize(end, 0);
        }
        image.current[position as usize..end].copy_from_slice(&data);
        Ok(())
    }

    async fn replace_file(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        self.operation()?;
        let old_len = self.file_bytes(path).map_or(0, |bytes| bytes.len() as u64);
        self.check_growth(old_len, data.len() as u64)?;
        if self.take_fault(|faults| &mut faults.fail_fdatasync) {
            return Err(injected("fdatasync"));
        }
        let mut state = self.state.borrow_mut();
        let image = FileImage {
            current: data.clone(),
            durable: data,
        };
        state
            .files
            .insert(path.to_path_buf(), Rc::new(RefCell::new(image)));
        Ok(())
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.operation()?;
        self.state.borrow_mut().files.remove(path);
        Ok(())
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.state.borrow_mut().dirs.insert(path.to_path_buf());
        Ok(())
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.state.borrow();
        Ok(state
            .files
            .keys()
            .filter(|file| file.parent() == Some(path))
            .filter_map(|file| {
                file.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect())
    }

    async fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn now(&self) -> TimestampMs {
        TimestampMs(self.clock.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_keeps_a_prefix_of_the_unsynced_bytes() {
        let durable = vec![1, 2, 3, 0, 0, 0];
        let current = vec![1, 2, 3, 4, 5, 6, 7];
        assert_eq!(torn_image(&durable, &current, 2), vec![1, 2, 3, 4, 5, 0]);
        assert_eq!(torn_image(&durable, &current, 0), durable);
        assert_eq!(torn_image(&durable, &current, 100), current);
    }
}
