//! Does nothing: the output is `null`.
fn main() {}
