//! Fails transiently (exit 75) until attempt `params.succeed_on` (default 3).
use bulkhead_sdk::{Task, TaskError};
fn flaky(task: Task) -> Result<serde_json::Value, TaskError> {
    let succeed_on = task.params.get("succeed_on").and_then(|v| v.as_u64()).unwrap_or(3);
    if u64::from(task.attempt) < succeed_on {
        return Err(TaskError::transient(format!("not yet (attempt {})", task.attempt)));
    }
    Ok(serde_json::json!({ "attempt": task.attempt, "key": task.idempotency_key }))
}
bulkhead_sdk::plugin!(flaky);
