//! Kafka framing: a 4-byte big-endian length, then that many bytes. Sans-IO: the connection
//! feeds bytes in, whole frames come out, and a length over the limit is an error before any
//! of the frame is buffered.

use bytes::{Buf, Bytes, BytesMut};

use crate::limits::{FRAME_LENGTH_SIZE, FRAME_SIZE_MIN};

/// Why a connection's byte stream is not a sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over `socket.request.max.bytes`.
    #[error("frame of {length} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Declared length.
        length: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The length prefix is negative or too small to hold a request header.
    #[error("invalid frame length {length}")]
    InvalidLength {
        /// Declared length.
        length: i32,
    },
}

/// Splits whole frames off the front of `buffer`.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    limit: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames up to `limit` bytes (not counting the length prefix).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }

    /// How many more bytes are needed before the next frame is whole (0 when it is).
    ///
    /// # Errors
    /// An invalid or oversized length prefix.
    pub fn needed(&self, buffer: &[u8]) -> Result<usize, FrameError> {
        if buffer.len() < FRAME_LENGTH_SIZE {
            return Ok(FRAME_LENGTH_SIZE - buffer.len());
        }
        let length = self.length(buffer)?;
        Ok((FRAME_LENGTH_SIZE + length).saturating_sub(buffer.len()))
    }

    fn length(&self, buffer: &[u8]) -> Result<usize, FrameError> {
        let length = i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
        let Ok(size) = usize::try_from(length) else {
            return Err(FrameError::InvalidLength { length });
        };
        if size < FRAME_SIZE_MIN {
            return Err(FrameError::InvalidLength { length });
        }
        if size > self.limit {
            return Err(FrameError::TooLarge {
                length: size,
                limit: self.limit,
            });
        }
        Ok(size)
    }

    /// Takes the next whole frame (without its length prefix), if one is buffered.
    ///
    /// # Errors
    /// An invalid or oversized length prefix.
    pub fn decode(&self, buffer: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if self.needed(buffer)? > 0 {
            return Ok(None);
        }
        let length = self.length(buffer)?;
        buffer.advance(FRAME_LENGTH_SIZE);
        Ok(Some(buffer.split_to(length).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn splits_frames_fed_byte_by_byte() {
        let decoder = FrameDecoder::new(1024);
        let mut stream = frame(b"0123456789");
        stream.extend(frame(b"abcdefghij"));
        let mut buffer = BytesMut::new();
        let mut frames = Vec::new();
        for byte in stream {
            buffer.extend_from_slice(&[byte]);
            while let Some(frame) = decoder.decode(&mut buffer).expect("valid") {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b"0123456789"),
                Bytes::from_static(b"abcdefghij")
            ]
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn rejects_oversized_and_invalid_lengths_before_buffering() {
        let decoder = FrameDecoder::new(100);
        let mut buffer = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buffer),
            Err(FrameError::TooLarge {
                length: 101,
                limit: 100
            })
        );
        let mut buffer = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buffer),
            Err(FrameError::InvalidLength { length: -1 })
        );
        let mut buffer = BytesMut::from(&3i32.to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buffer),
            Err(FrameError::InvalidLength { length: 3 })
        );
        assert_eq!(decoder.needed(&[0, 0]), Ok(2));
        assert_eq!(decoder.needed(&frame(b"12345678")[..6]), Ok(6));
    }
}
