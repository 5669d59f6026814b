//! `cargo fuzz run trigger_body`: see bulkhead::fuzz::trigger_body for what is checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead::fuzz::trigger_body(data));
