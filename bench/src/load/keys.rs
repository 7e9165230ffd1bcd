//! Record keys (`--keys`) and record values (the payload with its send-time stamp).
//!
//! Keys decide partitions: with `none` librdkafka's default partitioner spreads keyless
//! records (sticky per batch); with `round-robin:N` or `random:N` each record carries one
//! of `N` keys (`k0` ... `k{N-1}`) and lands on the partition its key hashes to.
//!
//! Values are `--record-size` bytes: an 8-byte magic, the record's intended send time as
//! nanoseconds since the UNIX epoch (little-endian u64), then filler of pseudo-random
//! letters (about as compressible as text, like kafka-producer-perf-test's payload). A
//! consumer reads the stamp back to measure publish-to-receive latency. Values shorter
//! than [`STAMP_LEN`] carry no stamp.

use std::fmt;
use std::str::FromStr;

/// First bytes of every stamped value.
pub const MAGIC: [u8; 8] = *b"SLCBENCH";
/// Bytes taken by the magic and the timestamp.
pub const STAMP_LEN: usize = 16;
/// Most distinct keys accepted (all are built up front).
pub const MAX_KEYS: u64 = 10_000_000;

/// How records are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDist {
    /// No key.
    None,
    /// Record `i` (counted over all producers) gets key `i mod N`.
    RoundRobin(u64),
    /// Each record gets a uniformly random key out of `N`.
    Random(u64),
}

impl FromStr for KeyDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let count = |n: &str| -> Result<u64, String> {
            match n.trim().parse::<u64>() {
                Ok(n) if (1..=MAX_KEYS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "expected a key count from 1 to {MAX_KEYS}, got {n:?}"
                )),
            }
        };
        match s.trim().split_once(':') {
            None if s.trim() == "none" => Ok(KeyDist::None),
            Some(("round-robin", n)) => count(n).map(KeyDist::RoundRobin),
            Some(("random", n)) => count(n).map(KeyDist::Random),
            _ => Err(format!(
                "expected none, round-robin:N or random:N, got {s:?}"
            )),
        }
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::None => write!(f, "none"),
            KeyDist::RoundRobin(n) => write!(f, "round-robin:{n}"),
            KeyDist::Random(n) => write!(f, "random:{n}"),
        }
    }
}

/// Picks the key of each record for one producer.
#[derive(Debug, Clone)]
pub struct KeyGen {
    dist: KeyDist,
    keys: Vec<Vec<u8>>,
    rng: XorShift,
}

impl KeyGen {
    /// A generator for `dist`, seeded with `seed` (one seed per producer).
    pub fn new(dist: KeyDist, seed: u64) -> Self {
        let n = match dist {
            KeyDist::None => 0,
            KeyDist::RoundRobin(n) | KeyDist::Random(n) => n,
        };
        Self {
            dist,
            keys: (0..n).map(|k| format!("k{k}").into_bytes()).collect(),
            rng: XorShift::new(seed),
        }
    }

    /// The key of record `index` (its index over all producers).
    pub fn key(&mut self, index: u64) -> Option<&[u8]> {
        let n = self.keys.len() as u64;
        let k = match self.dist {
            KeyDist::None => return None,
            KeyDist::RoundRobin(_) => index % n,
            KeyDist::Random(_) => self.rng.below(n),
        };
        self.keys.get(k as usize).map(Vec::as_slice)
    }
}

/// A small, fast, seedable PRNG (xorshift64*); the load tool needs no cryptography.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeds the generator (any seed, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0; the modulo bias is negligible for key counts).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A reusable record value: filler built once, the stamp rewritten per record.
#[derive(Debug, Clone)]
pub struct Value {
    bytes: Vec<u8>,
}

impl Value {
    /// A `size`-byte value whose filler comes from `seed`.
    pub fn new(size: usize, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let mut bytes: Vec<u8> = (0..size).map(|_| b'A' + rng.below(26) as u8).collect();
        if let Some(magic) = bytes.get_mut(..MAGIC.len())
            && size >= STAMP_LEN
        {
            magic.copy_from_slice(&MAGIC);
        }
        Self { bytes }
    }

    /// Whether the value is long enough to carry a stamp.
    pub fn stamped(&self) -> bool {
        self.bytes.len() >= STAMP_LEN
    }

    /// Writes `epoch_ns` (intended send time, ns since the UNIX epoch) and returns the value.
    pub fn stamp(&mut self, epoch_ns: u64) -> &[u8] {
        if let Some(slot) = self.bytes.get_mut(MAGIC.len()..STAMP_LEN) {
            slot.copy_from_slice(&epoch_ns.to_le_bytes());
        }
        &self.bytes
    }
}

/// The send-time stamp of a value written by [`Value::stamp`], if it has one.
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    if value.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let ts: [u8; 8] = value.get(MAGIC.len()..STAMP_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_distributions_parse_and_print() {
        for (text, dist) in [
            ("none", KeyDist::None),
            ("round-robin:4", KeyDist::RoundRobin(4)),
            ("random:1000", KeyDist::Random(1000)),
        ] {
            assert_eq!(text.parse::<KeyDist>(), Ok(dist));
            assert_eq!(dist.to_string(), text);
        }
        for bad in [
            "",
            "round-robin",
            "random:0",
            "random:x",
            "hash:3",
            "none:1",
        ] {
            assert!(bad.parse::<KeyDist>().is_err(), "{bad}");
        }
        assert!(
            format!("random:{}", MAX_KEYS + 1)
                .parse::<KeyDist>()
                .is_err()
        );
    }

    #[test]
    fn round_robin_cycles_and_random_stays_in_range() {
        let mut rr = KeyGen::new(KeyDist::RoundRobin(3), 0);
        let keys: Vec<_> = (0..6).map(|i| rr.key(i).map(<[u8]>::to_vec)).collect();
        let expect = |k: &str| Some(k.as_bytes().to_vec());
        assert_eq!(
            keys,
            [
                expect("k0"),
                expect("k1"),
                expect("k2"),
                expect("k0"),
                expect("k1"),
                expect("k2")
            ]
        );
        let mut random = KeyGen::new(KeyDist::Random(4), 7);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1000 {
            seen.insert(random.key(i).map(<[u8]>::to_vec));
        }
        assert_eq!(seen.len(), 4, "all four keys, nothing else: {seen:?}");
        assert_eq!(KeyGen::new(KeyDist::None, 0).key(5), None);
    }

    #[test]
    fn values_carry_their_stamp() {
        let mut value = Value::new(100, 1);
        assert!(value.stamped());
        let bytes = value.stamp(1_700_000_000_123_456_789).to_vec();
        assert_eq!(bytes.len(), 100);
        assert_eq!(read_stamp(&bytes), Some(1_700_000_000_123_456_789));
        assert!(bytes[STAMP_LEN..].iter().all(u8::is_ascii_uppercase));
        let mut short = Value::new(10, 1);
        assert!(!short.stamped());
        assert_eq!(read_stamp(short.stamp(5)), None);
        assert_eq!(read_stamp(b"not a bench record"), None);
    }
}
