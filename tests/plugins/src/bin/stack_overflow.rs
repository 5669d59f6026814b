//! Recurses without end. Small frames live on the wasm stack (not Rust's shadow stack in linear
//! memory), so this overflows the engine's `max_wasm_stack`.
#![allow(unconditional_recursion)]
fn deeper(n: u64) -> u64 {
    deeper(std::hint::black_box(n + 1)).wrapping_add(1)
}
fn main() {
    println!("{}", deeper(0));
}
