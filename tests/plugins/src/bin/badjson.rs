//! Writes something that is not JSON to stdout.
fn main() {
    println!("this is not json");
}
