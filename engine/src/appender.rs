//! Write-behind for the active segment file with direct I/O.
//!
//! Contract:
//! * [`Appender::append`] copies bytes into DMA-aligned buffers (the one copy on the write
//!   path) and never blocks; full buffers queue up for writing.
//! * [`Appender::take_writes`] hands the flusher the queued buffers and, when asked, the
//!   partially filled last buffer padded with zeros to the alignment. The partial last page
//!   is copied into the next buffer and written again with the bytes that follow it, so
//!   every write is aligned and no byte below the logical end is ever lost.
//! * Positions: `end` (appended) ≥ `written` (in the file, all writes completed) ≥ `synced`
//!   (fdatasynced). The log maps them to offsets.
//!
//! Lives on the shard that owns the partition; no two writes to the same page are ever in
//! flight together, because each flusher round's writes are disjoint and rounds do not
//! overlap.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::io::{DirectFile, IoBuffer};
use crate::limits::DIRECT_IO_ALIGNMENT;

const ALIGN: u64 = DIRECT_IO_ALIGNMENT as u64;

/// Rounds down to the direct-I/O alignment.
#[must_use]
pub fn align_down(value: u64) -> u64 {
    value & !(ALIGN - 1)
}

/// Rounds up to the direct-I/O alignment.
#[must_use]
pub fn align_up(value: u64) -> u64 {
    align_down(value + ALIGN - 1)
}

/// Buffers for one flusher round.
#[derive(Debug)]
pub(crate) struct WriteRound<B> {
    /// `(file position, buffer)`, disjoint and in file order.
    pub writes: Vec<(u64, B)>,
    /// The logical end position these writes complete.
    pub covers_end: u64,
}

/// The write-behind state of one segment file.
#[derive(Debug)]
pub(crate) struct Appender<F: DirectFile> {
    file: Rc<F>,
    path: PathBuf,
    buffer_size: usize,
    current: Option<F::Buffer>,
    current_position: u64,
    current_len: usize,
    ready: VecDeque<(u64, F::Buffer)>,
    end: u64,
    written: u64,
    synced: u64,
    allocated: u64,
}

impl<F: DirectFile> Appender<F> {
    /// An appender continuing a file whose logical end is `end`. `tail_page` holds the
    /// bytes of the last partial page (`align_down(end)..end`), which will be rewritten.
    pub(crate) fn new(
        file: Rc<F>,
        path: &Path,
        buffer_size: usize,
        end: u64,
        allocated: u64,
        tail_page: &[u8],
    ) -> Self {
        assert_eq!(buffer_size % DIRECT_IO_ALIGNMENT, 0);
        let current_position = align_down(end);
        assert_eq!(
            tail_page.len() as u64,
            end - current_position,
            "tail page must end at the log end"
        );
        let mut appender = Self {
            file,
            path: path.to_path_buf(),
            buffer_size,
            current: None,
            current_position,
            current_len: 0,
            ready: VecDeque::new(),
            end: current_position,
            written: end,
            synced: end,
            allocated,
        };
        if !tail_page.is_empty() {
            appender.copy_in(tail_page);
        }
        appender.end = end;
        appender
    }

    pub(crate) fn file(&self) -> &Rc<F> {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Logical end of appended bytes.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Bytes appended but not yet written.
    pub(crate) fn unwritten(&self) -> u64 {
        self.end - self.written
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn synced(&self) -> u64 {
        self.synced
    }

    pub(crate) fn allocated(&self) -> u64 {
        self.allocated
    }

    pub(crate) fn set_allocated(&mut self, allocated: u64) {
        self.allocated = allocated;
    }

    /// Whether full buffers wait to be written.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Copies `bytes` to the end of the log.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        self.copy_in(bytes);
        self.end += bytes.len() as u64;
        debug_assert_eq!(self.end, self.current_position + self.current_len as u64);
    }

    fn copy_in(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let buffer_size = self.buffer_size;
            let current = self
                .current
                .get_or_insert_with(|| self.file.alloc_buffer(buffer_size));
            let count = (buffer_size - self.current_len).min(bytes.len());
            current.as_mut_slice()[self.current_len..self.current_len + count]
                .copy_from_slice(&bytes[..count]);
            self.current_len += count;
            bytes = &bytes[count..];
            if self.current_len == buffer_size {
                let full = self.current.take().expect("current buffer present");
                self.ready.push_back((self.current_position, full));
                self.current_position += buffer_size as u64;
                self.current_len = 0;
            }
        }
    }

    /// Takes the full buffers and, with `include_tail`, the partial last buffer.
    pub(crate) fn take_writes(&mut self, include_tail: bool) -> WriteRound<F::Buffer> {
        let mut writes: Vec<(u64, F::Buffer)> = self.ready.drain(..).collect();
        let mut covers_end = writes.last().map_or(self.written, |(position, buffer)| {
            position + buffer.as_slice().len() as u64
        });
        let tail_unwritten = self.end > covers_end.max(self.written);
        if include_tail && tail_unwritten && self.current_len > 0 {
            let mut buffer = self.current.take().expect("partial buffer present");
            let padded = align_up(self.current_len as u64) as usize;
            buffer.as_mut_slice()[self.current_len..padded].fill(0);
            let full_pages = align_down(self.current_len as u64) as usize;
            let partial = self.current_len - full_pages;
            if partial > 0 {
                let mut next = self.file.alloc_buffer(self.buffer_size);
                next.as_mut_slice()[..partial]
                    .copy_from_slice(&buffer.as_slice()[full_pages..self.current_len]);
                self.current = Some(next);
            }
            buffer.trim_to(padded);
            writes.push((self.current_position, buffer));
            self.current_position += full_pages as u64;
            self.current_len = partial;
            covers_end = self.end;
        }
        WriteRound {
            writes,
            covers_end: covers_end.max(self.written),
        }
    }

    /// Records that a round's writes all completed.
    pub(crate) fn mark_written(&mut self, end: u64) {
        assert!(end <= self.end, "written past the end");
        self.written = self.written.max(end);
    }

    /// Records that an fdatasync covering `end` completed.
    pub(crate) fn mark_synced(&mut self, end: u64) {
        assert!(end <= self.written, "synced past what was written");
        self.synced = self.synced.max(end);
    }

    /// Consumes the appender, returning the file.
    pub(crate) fn into_file(self) -> Rc<F> {
        self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Storage;
    use crate::io::memory::MemoryStorage;
    use futures::executor::block_on;

    #[test]
    fn partial_pages_are_rewritten_and_bytes_survive() {
        let storage = MemoryStorage::new();
        let path = Path::new("/log/0.log");
        let file = Rc::new(block_on(storage.open_direct(path, true)).expect("open"));
        let mut appender = Appender::new(file.clone(), path, 8192, 0, 0, &[]);
        let mut expected = Vec::new();
        for round in 0..20u8 {
            let bytes = vec![round; 1000 + usize::from(round) * 300];
            appender.append(&bytes);
            expected.extend_from_slice(&bytes);
            let include_tail = round % 3 != 0;
            let batch = appender.take_writes(include_tail);
            for (position, buffer) in batch.writes {
                assert_eq!(position % ALIGN, 0);
                block_on(file.write_at(buffer, position)).expect("write");
            }
            appender.mark_written(batch.covers_end);
        }
        let batch = appender.take_writes(true);
        for (position, buffer) in batch.writes {
            block_on(file.write_at(buffer, position)).expect("write");
        }
        appender.mark_written(batch.covers_end);
        assert_eq!(appender.written(), expected.len() as u64);
        let stored = storage.file_bytes(path).expect("file");
        assert_eq!(&stored[..expected.len()], &expected[..]);
        assert!(
            stored[expected.len()..].iter().all(|&b| b == 0),
            "padding must be zeros"
        );
    }

    #[test]
    fn resumes_with_the_existing_tail_page() {
        let storage = MemoryStorage::new();
        let path = Path::new("/log/1.log");
        storage.set_file_bytes(path, vec![7u8; 5000]);
        let file = Rc::new(block_on(storage.open_direct(path, false)).expect("open"));
        let mut appender = Appender::new(file.clone(), path, 4096, 5000, 8192, &[7u8; 904]);
        appender.append(&[9u8; 100]);
        let batch = appender.take_writes(true);
        assert_eq!(batch.writes.len(), 1);
        assert_eq!(batch.writes[0].0, 4096);
        for (position, buffer) in batch.writes {
            block_on(file.write_at(buffer, position)).expect("write");
        }
        let stored = storage.file_bytes(path).expect("file");
        assert!(stored[..5000].iter().all(|&b| b == 7));
        assert!(stored[5000..5100].iter().all(|&b| b == 9));
    }
}
