//! Writes `tick 1` .. `tick N` to its log (stderr), one every `params.ms` milliseconds
//! (`params.n`, default 10; `params.ms`, default 100), then outputs how many it wrote: a task
//! whose log grows while it runs.
use bulkhead_sdk::{Task, TaskError};
use std::io::Write;
fn ticker(task: Task) -> Result<serde_json::Value, TaskError> {
    let n = task.params.get("n").and_then(|v| v.as_u64()).unwrap_or(10);
    let ms = task.params.get("ms").and_then(|v| v.as_u64()).unwrap_or(100);
    for i in 1..=n {
        eprintln!("tick {i}");
        let _ = std::io::stderr().flush();
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    Ok(serde_json::json!({ "ticks": n }))
}
bulkhead_sdk::plugin!(ticker);
