//! `cargo fuzz run plugin_output`: see bulkhead::fuzz::plugin_output for what is checked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bulkhead::fuzz::plugin_output(data));
