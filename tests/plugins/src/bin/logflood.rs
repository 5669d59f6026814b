//! Writes 4 MiB to stderr, then succeeds with a small output.
use std::io::Write;
fn main() {
    let line = [b'l'; 1023];
    let mut err = std::io::stderr().lock();
    for _ in 0..4096 {
        let _ = err.write_all(&line);
        let _ = err.write_all(b"\n");
    }
    println!("{{\"ok\":true}}");
}
