#![allow(unconditional_recursion)]
//! Recurses without end.
fn deeper(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 16]);
    deeper(n + 1) + pad[3]
}
fn main() {
    println!("{}", deeper(0));
}
