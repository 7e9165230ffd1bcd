//! Producer ids for idempotent producers, handed out by shard 0.
//!
//! Ids must never repeat, across restarts too: shard 0 reserves them in blocks, writing the
//! end of the reserved block to `__sluice/producer_ids` (atomically, durably) before it hands
//! out any id of the block. After a restart allocation continues at the stored end, so at
//! most one block of ids is skipped per restart.

use std::cell::Cell;

use sluice_engine::io::Storage;

use crate::shard::Shard;

/// The file that holds the end of the reserved block.
pub const PRODUCER_IDS_FILE: &str = "__sluice/producer_ids";
/// Ids reserved per write.
pub const BLOCK: i64 = 1000;
const MAGIC: &[u8; 4] = b"SPID";

/// Shard 0's allocator state.
#[derive(Debug, Default)]
pub struct ProducerIds {
    /// Next id to hand out, and the end of the reserved block (exclusive); `None` until the
    /// file was read.
    state: Cell<Option<(i64, i64)>>,
    changes: futures::lock::Mutex<()>,
}

fn encode(end: i64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&end.to_be_bytes());
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<i64> {
    if bytes.len() != 16 || &bytes[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[12..16].try_into().ok()?);
    if crc32c::crc32c(&bytes[..12]) != crc {
        return None;
    }
    Some(i64::from_be_bytes(bytes[4..12].try_into().ok()?))
}

impl ProducerIds {
    /// A new producer id (shard 0 only).
    ///
    /// # Errors
    /// The reservation could not be stored (then no id is handed out).
    pub async fn allocate(&self, shard: &Shard) -> Result<i64, String> {
        let _serialized = self.changes.lock().await;
        let path = shard.config.data_dir.join(PRODUCER_IDS_FILE);
        let (next, end) = match self.state.get() {
            Some(state) => state,
            None => {
                let stored = shard
                    .storage
                    .read_whole(&path)
                    .await
                    .map_err(|error| format!("reading {}: {error}", path.display()))?;
                let end = match stored {
                    None => 0,
                    Some(bytes) => {
                        decode(&bytes).ok_or_else(|| format!("{} is corrupt", path.display()))?
                    }
                };
                (end, end)
            }
        };
        let (next, end) = if next >= end {
            let new_end = end
                .checked_add(BLOCK)
                .ok_or_else(|| "producer ids exhausted".to_string())?;
            if let Some(parent) = path.parent() {
                shard
                    .storage
                    .create_dir_all(parent)
                    .await
                    .map_err(|error| format!("creating {}: {error}", parent.display()))?;
            }
            shard
                .storage
                .replace_file(&path, encode(new_end))
                .await
                .map_err(|error| format!("writing {}: {error}", path.display()))?;
            (next, new_end)
        } else {
            (next, end)
        };
        self.state.set(Some((next + 1, end)));
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        assert_eq!(decode(&encode(12_000)), Some(12_000));
        let mut bytes = encode(5);
        bytes[6] ^= 1;
        assert_eq!(decode(&bytes), None);
        assert_eq!(decode(&bytes[..10]), None);
    }
}
