//! The per-shard cache of recently appended batches, so tail reads never touch the disk.
//!
//! Every log on a shard shares one `BatchCache` with a byte budget. For each log the cache
//! holds a contiguous suffix of the log (eviction takes from the front, truncation from the
//! back), so a read at or after the first cached offset is served entirely from memory. The
//! eviction order is global FIFO by append time across the shard's logs. A batch is evicted
//! only once its log reports it written to the file, so the cache is also where reads find
//! data that is still on its way to disk; the appender's own limit bounds that part.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use bytes::Bytes;

use crate::offset::{Offset, TimestampMs};

/// One batch in memory, as stored on disk.
#[derive(Debug, Clone)]
pub struct CachedBatch {
    /// First offset.
    pub base: Offset,
    /// Offset after the last record.
    pub next: Offset,
    /// Base offset of the segment holding it.
    pub segment_base: Offset,
    /// Byte position in that segment.
    pub position: u64,
    /// Largest timestamp.
    pub max_timestamp: TimestampMs,
    /// The whole batch.
    pub bytes: Bytes,
}

#[derive(Debug, Default)]
struct LogEntries {
    batches: VecDeque<CachedBatch>,
    /// Batches below this offset are in the segment file and may be evicted.
    written_end: Offset,
}

#[derive(Debug)]
struct Inner {
    budget_bytes: usize,
    bytes: usize,
    logs: HashMap<u64, LogEntries>,
    order: VecDeque<(u64, Offset)>,
    next_log_id: u64,
}

/// A shard's batch cache. Cheap to clone (shared handle).
#[derive(Debug, Clone)]
pub struct BatchCache {
    inner: Rc<RefCell<Inner>>,
}

impl BatchCache {
    /// A cache holding about `budget_bytes` of written batches.
    #[must_use]
    pub fn new(budget_bytes: usize) -> Self {
        let inner = Inner {
            budget_bytes,
            bytes: 0,
            logs: HashMap::new(),
            order: VecDeque::new(),
            next_log_id: 0,
        };
        Self {
            inner: Rc::new(RefCell::new(inner)),
        }
    }

    /// Bytes held now (may exceed the budget by batches not yet written).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }

    pub(crate) fn register(&self) -> u64 {
        let mut inner = self.inner.borrow_mut();
        let id = inner.next_log_id;
        inner.next_log_id += 1;
        inner.logs.insert(id, LogEntries::default());
        id
    }

    pub(crate) fn unregister(&self, log: u64) {
        let mut inner = self.inner.borrow_mut();
        if let Some(entries) = inner.logs.remove(&log) {
            let freed: usize = entries.batches.iter().map(|batch| batch.bytes.len()).sum();
            inner.bytes -= freed;
        }
    }

    /// Adds a batch at the end of a log's suffix.
    pub(crate) fn push(&self, log: u64, batch: CachedBatch) {
        let mut inner = self.inner.borrow_mut();
        let size = batch.bytes.len();
        let base = batch.base;
        let entries = inner.logs.entry(log).or_default();
        if let Some(last) = entries.batches.back() {
            assert_eq!(last.next, batch.base, "cache suffix must stay contiguous");
        }
        entries.batches.push_back(batch);
        inner.bytes += size;
        inner.order.push_back((log, base));
        evict(&mut inner);
    }

    /// Records that a log's batches below `written_end` are in the file.
    pub(crate) fn set_written(&self, log: u64, written_end: Offset) {
        let mut inner = self.inner.borrow_mut();
        if let Some(entries) = inner.logs.get_mut(&log) {
            entries.written_end = written_end;
        }
        evict(&mut inner);
    }

    /// Drops a log's batches at or after `offset` (the log was truncated).
    pub(crate) fn truncate(&self, log: u64, offset: Offset) {
        let mut inner = self.inner.borrow_mut();
        let mut freed = 0;
        if let Some(entries) = inner.logs.get_mut(&log) {
            while entries
                .batches
                .back()
                .is_some_and(|batch| batch.next > offset)
            {
                if let Some(batch) = entries.batches.pop_back() {
                    freed += batch.bytes.len();
                }
            }
            entries.written_end = entries.written_end.min(offset);
        }
        inner.bytes -= freed;
    }

    /// First offset cached for a log.
    pub(crate) fn first_offset(&self, log: u64) -> Option<Offset> {
        let inner = self.inner.borrow();
        inner
            .logs
            .get(&log)?
            .batches
            .front()
            .map(|batch| batch.base)
    }

    /// Whole batches starting with the one holding `from`, while `accept` agrees. The first
    /// batch is always offered to `accept` with `first = true`.
    pub(crate) fn collect(
        &self,
        log: u64,
        from: Offset,
        mut accept: impl FnMut(&CachedBatch, bool) -> bool,
    ) -> Vec<CachedBatch> {
        let inner = self.inner.borrow();
        let Some(entries) = inner.logs.get(&log) else {
            return Vec::new();
        };
        let start = entries.batches.partition_point(|batch| batch.next <= from);
        let mut out = Vec::new();
        for batch in entries.batches.range(start..) {
            if !accept(batch, out.is_empty()) {
                break;
            }
            out.push(batch.clone());
        }
        out
    }
}

fn evict(inner: &mut Inner) {
    while inner.bytes > inner.budget_bytes {
        let Some(&(log, base)) = inner.order.front() else {
            break;
        };
        let Some(entries) = inner.logs.get_mut(&log) else {
            inner.order.pop_front();
            continue;
        };
        match entries.batches.front() {
            // Stale order entry: that batch was truncated away or the log cleared.
            Some(front) if front.base != base => {
                inner.order.pop_front();
            }
            None => {
                inner.order.pop_front();
            }
            Some(front) if front.next <= entries.written_end => {
                let size = front.bytes.len();
                entries.batches.pop_front();
                inner.order.pop_front();
                inner.bytes -= size;
            }
            // Oldest batch not yet on disk: stop, the appender's limit bounds this.
            Some(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, next: i64, size: usize) -> CachedBatch {
        CachedBatch {
            base: Offset(base),
            next: Offset(next),
            segment_base: Offset(0),
            position: base as u64 * 100,
            max_timestamp: TimestampMs(0),
            bytes: Bytes::from(vec![0u8; size]),
        }
    }

    #[test]
    fn evicts_only_written_batches_in_fifo_order() {
        let cache = BatchCache::new(250);
        let a = cache.register();
        let b = cache.register();
        cache.push(a, batch(0, 1, 100));
        cache.push(b, batch(0, 1, 100));
        cache.push(a, batch(1, 2, 100));
        assert_eq!(cache.bytes(), 300, "nothing written yet, nothing evicted");
        cache.set_written(a, Offset(2));
        assert_eq!(cache.bytes(), 200);
        assert_eq!(cache.first_offset(a), Some(Offset(1)));
        cache.truncate(a, Offset(1));
        assert_eq!(cache.first_offset(a), None);
        assert_eq!(cache.bytes(), 100);
        cache.unregister(b);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn collect_starts_at_the_batch_holding_the_offset() {
        let cache = BatchCache::new(1 << 20);
        let log = cache.register();
        cache.push(log, batch(0, 5, 10));
        cache.push(log, batch(5, 9, 10));
        cache.push(log, batch(9, 10, 10));
        let got = cache.collect(log, Offset(6), |_, _| true);
        assert_eq!(got.iter().map(|b| b.base.0).collect::<Vec<_>>(), vec![5, 9]);
        let got = cache.collect(log, Offset(0), |_, first| first);
        assert_eq!(got.len(), 1);
    }
}
