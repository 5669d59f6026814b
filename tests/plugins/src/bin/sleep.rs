//! Sleeps `params.ms` milliseconds (WASI poll_oneoff), then outputs how long it slept.
use bulkhead_sdk::{Task, TaskError};
fn sleep(task: Task) -> Result<serde_json::Value, TaskError> {
    let ms = task.params.get("ms").and_then(|v| v.as_u64()).unwrap_or(1000);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(serde_json::json!({ "slept_ms": ms }))
}
bulkhead_sdk::plugin!(sleep);
