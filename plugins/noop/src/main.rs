//! Does nothing: its output is `null`. `bulkhead bench` uses it to measure per-task overhead.
fn main() {}
