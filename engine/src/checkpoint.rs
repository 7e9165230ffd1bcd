//! The per-partition checkpoint: where recovery may start and where the log starts.
//!
//! Fixed 40 bytes, big-endian, replaced atomically (temp file, fdatasync, rename, directory
//! sync):
//!
//! ```text
//! 0  magic "SLCK"        4  version u16 (1)   6  flags u16 (bit 0: clean shutdown)
//! 8  recovery point i64  16 log start offset i64   24 log end offset i64
//! 32 reserved u32        36 CRC32C of bytes 0..36
//! ```
//!
//! Everything below the recovery point was fdatasynced and need not be validated again; with
//! the clean flag, the log end is known and nothing is scanned at all.

use crate::limits::CHECKPOINT_SIZE;
use crate::offset::Offset;

const MAGIC: &[u8; 4] = b"SLCK";
const VERSION: u16 = 1;
const FLAG_CLEAN: u16 = 1;

/// File name of the checkpoint inside a log directory.
pub const FILE_NAME: &str = "checkpoint";

/// The decoded checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every batch below this offset is durable and valid.
    pub recovery_point: Offset,
    /// The first offset of the log (retention, DeleteRecords).
    pub log_start: Offset,
    /// The log end at a clean shutdown (meaningful when `clean`).
    pub log_end: Offset,
    /// Written by a clean shutdown: the files are exactly as the log left them.
    pub clean: bool,
}

impl Checkpoint {
    /// Encodes to the fixed layout.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(CHECKPOINT_SIZE);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        bytes.extend_from_slice(&(if self.clean { FLAG_CLEAN } else { 0 }).to_be_bytes());
        bytes.extend_from_slice(&self.recovery_point.0.to_be_bytes());
        bytes.extend_from_slice(&self.log_start.0.to_be_bytes());
        bytes.extend_from_slice(&self.log_end.0.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(bytes.len(), CHECKPOINT_SIZE);
        bytes
    }

    /// Decodes, or `None` if the bytes are not a valid checkpoint (then recovery scans all).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CHECKPOINT_SIZE || &bytes[..4] != MAGIC {
            return None;
        }
        let read_u16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let read_i64 = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(raw)
        };
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[36..40]);
        if read_u16(4) != VERSION || crc32c::crc32c(&bytes[..36]) != u32::from_be_bytes(crc) {
            return None;
        }
        let checkpoint = Self {
            clean: read_u16(6) & FLAG_CLEAN != 0,
            recovery_point: Offset(read_i64(8)),
            log_start: Offset(read_i64(16)),
            log_end: Offset(read_i64(24)),
        };
        let sane = checkpoint.log_start.0 >= 0
            && checkpoint.recovery_point.0 >= 0
            && checkpoint.log_end >= checkpoint.recovery_point;
        sane.then_some(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_damage() {
        let checkpoint = Checkpoint {
            recovery_point: Offset(10),
            log_start: Offset(3),
            log_end: Offset(12),
            clean: true,
        };
        let bytes = checkpoint.encode();
        assert_eq!(Checkpoint::decode(&bytes), Some(checkpoint));
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 1;
            assert_eq!(
                Checkpoint::decode(&damaged),
                None,
                "damage at {position} accepted"
            );
        }
        assert_eq!(Checkpoint::decode(&bytes[..39]), None);
    }
}
