//! Outputs the whole stdin document it was given.
use std::io::Read;
fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).expect("read stdin");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("stdin is JSON");
    println!("{}", serde_json::json!({ "received": doc }));
}
