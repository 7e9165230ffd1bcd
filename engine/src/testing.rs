//! Helpers that build valid record batches, for tests, benches, fuzzing and the load tool.
//!
//! Records use the real Kafka v2 record encoding (zigzag varints), without compression, so
//! that any Kafka client could decode what these helpers produce.

use crate::batch::{self, BatchHeader, MAGIC_V2};
use crate::limits::{BATCH_HEADER_SIZE, BATCH_LOG_OVERHEAD};
use zerocopy::FromBytes;

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn encode_record(out: &mut Vec<u8>, offset_delta: i32, timestamp_delta: i64, value: &[u8]) {
    let mut body = Vec::with_capacity(value.len() + 16);
    body.push(0); // attributes
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, i64::from(offset_delta));
    put_varint(&mut body, -1); // null key
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varint(&mut body, 0); // no headers
    put_varint(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// A valid, uncompressed batch of `records` records, each with a `payload`-byte value and
/// timestamps `timestamp, timestamp + 1, …`. `base` is written as the base offset.
///
/// # Panics
/// If `records` is not positive.
#[must_use]
pub fn batch(base: i64, records: i32, payload: usize, timestamp: i64) -> Vec<u8> {
    assert!(records > 0, "a batch holds at least one record");
    let value: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    let mut out = vec![0u8; BATCH_HEADER_SIZE];
    for delta in 0..records {
        encode_record(&mut out, delta, i64::from(delta), &value);
    }
    let total = out.len();
    let (header, _) = BatchHeader::mut_from_prefix(&mut out).expect("sized above");
    header.base_offset.set(base);
    header.batch_length.set((total - BATCH_LOG_OVERHEAD) as i32);
    header.partition_leader_epoch.set(0);
    header.magic = MAGIC_V2;
    header.attributes.set(0);
    header.last_offset_delta.set(records - 1);
    header.base_timestamp.set(timestamp);
    header.max_timestamp.set(timestamp + i64::from(records - 1));
    header.producer_id.set(-1);
    header.producer_epoch.set(-1);
    header.base_sequence.set(-1);
    header.records_count.set(records);
    let crc = batch::compute_crc(&out);
    let (header, _) = BatchHeader::mut_from_prefix(&mut out).expect("sized above");
    header.crc.set(crc);
    out
}

/// A batch whose total size is exactly `size` bytes (at least header + one small record),
/// holding one record.
///
/// # Panics
/// If `size` is too small for one record.
#[must_use]
pub fn batch_of_size(size: usize, timestamp: i64) -> Vec<u8> {
    // Header 61 + record overhead: length varint (≤3) + attrs 1 + ts 1 + off 1 + key 1 +
    // value length varint (≤3) + headers 1. Search the payload that lands exactly.
    assert!(
        size >= BATCH_HEADER_SIZE + 10,
        "batch size {size} too small"
    );
    let mut payload = size - BATCH_HEADER_SIZE - 7;
    loop {
        let candidate = batch(0, 1, payload, timestamp);
        match candidate.len().cmp(&size) {
            std::cmp::Ordering::Equal => return candidate,
            std::cmp::Ordering::Greater => payload -= 1,
            std::cmp::Ordering::Less => {
                // Varint widths jumped; pad with a second byte of payload is impossible, so
                // accept a slightly smaller batch only when no exact size exists.
                let bigger = batch(0, 1, payload + 1, timestamp);
                if bigger.len() > size {
                    return candidate;
                }
                payload += 1;
            }
        }
    }
}

/// Sets the idempotent-producer fields of the batch at the start of `batch` and recomputes
/// its CRC.
///
/// # Panics
/// If `batch` does not start with a whole batch.
pub fn set_producer(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    let (header, _) = BatchHeader::mut_from_prefix(batch).expect("a batch header");
    header.producer_id.set(producer_id);
    header.producer_epoch.set(epoch);
    header.base_sequence.set(base_sequence);
    let total = header.total_size();
    let crc = batch::compute_crc(&batch[..total]);
    let (header, _) = BatchHeader::mut_from_prefix(batch).expect("a batch header");
    header.crc.set(crc);
}

/// [`batch()`] from an idempotent producer: `producer_id`, `epoch`, and sequences
/// `base_sequence ..= base_sequence + records - 1`.
///
/// # Panics
/// If `records` is not positive.
#[must_use]
pub fn idempotent_batch(
    base: i64,
    records: i32,
    payload: usize,
    timestamp: i64,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    let mut out = batch(base, records, payload, timestamp);
    set_producer(&mut out, producer_id, epoch, base_sequence);
    out
}
