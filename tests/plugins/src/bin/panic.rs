//! Panics with a recognisable message.
fn main() {
    eprintln!("about to fail");
    let row = std::hint::black_box(42);
    panic!("boom: bad row {row}");
}
