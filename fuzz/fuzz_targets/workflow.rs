//! `cargo fuzz run workflow`: see bulkhead::fuzz::workflow for what is checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead::fuzz::workflow(data));
