//! Arbitrary bytes through the RecordBatch v2 parser: see `sluice_fuzz::batch_parser`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::batch_parser(data));
