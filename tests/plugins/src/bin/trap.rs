//! Executes `unreachable`: a bare wasm trap without a panic message.
fn main() {
    core::arch::wasm32::unreachable()
}
