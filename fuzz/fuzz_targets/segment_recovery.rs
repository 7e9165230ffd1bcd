//! A damaged active segment reopened: see `sluice_fuzz::segment_recovery` and
//! `sluice_fuzz::Damage` for how the input is read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sluice_fuzz::segment_recovery(data));
