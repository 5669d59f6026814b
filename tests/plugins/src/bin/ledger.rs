//! For crash tests: sleeps `params.ms`, appends `task attempt idempotency_key` to
//! /ledger/ledger.txt (a writable mount), and outputs `{"value": 1 + the sum of its inputs' values}`.
use bulkhead_sdk::{Task, TaskError};
use std::io::Write;
fn ledger(task: Task) -> Result<serde_json::Value, TaskError> {
    let ms = task.params.get("ms").and_then(|v| v.as_u64()).unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let sum: u64 = task.inputs.values().filter_map(|v| v.get("value")?.as_u64()).sum();
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open("/ledger/ledger.txt")?;
    // One write per line: concurrent attempts append whole lines.
    let line = format!("{} {} {}\n", task.task, task.attempt, task.idempotency_key);
    f.write_all(line.as_bytes())?;
    Ok(serde_json::json!({ "value": 1 + sum }))
}
bulkhead_sdk::plugin!(ledger);
