//! Reports what the sandbox lets it see: environment, arguments, files. Tries to write where
//! `params.write` says and to read where `params.read` says.
use bulkhead_sdk::{Task, TaskError};
use serde_json::{json, Value};
fn attempt<T: std::fmt::Debug>(r: std::io::Result<T>) -> Value {
    match r {
        Ok(v) => json!({ "ok": format!("{v:?}") }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}
fn probe(task: Task) -> Result<Value, TaskError> {
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let args: Vec<String> = std::env::args().collect();
    let p = &task.params;
    let read = p.get("read").and_then(Value::as_str).map(|f| attempt(std::fs::read_to_string(f)));
    let write = p.get("write").and_then(Value::as_str).map(|f| attempt(std::fs::write(f, b"written by probe")));
    let list_root = attempt(std::fs::read_dir("/").map(|d| d.count()));
    Ok(json!({ "env": env, "args": args, "read": read, "write": write, "list_root": list_root }))
}
bulkhead_sdk::plugin!(probe);
