//! Every fixed limit of the network layer, in one place. Configurable limits (request size,
//! in-flight bytes) have their defaults here and their values in [`crate::config`].

/// Bytes of the length prefix of every Kafka frame.
pub const FRAME_LENGTH_SIZE: usize = 4;

/// Default `socket.request.max.bytes` (Kafka's default: 100 MiB).
pub const REQUEST_SIZE_MAX_DEFAULT: usize = 100 * 1024 * 1024;

/// The smallest frame that can hold a request header (api key, version, correlation id).
pub const FRAME_SIZE_MIN: usize = 8;

/// Requests read ahead on one connection while earlier ones are still being answered.
pub const PIPELINE_DEPTH_MAX: usize = 64;

const _: () = assert!(FRAME_SIZE_MIN >= 8);
