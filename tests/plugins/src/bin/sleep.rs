//! Sleeps `params.ms` milliseconds (WASI poll_oneoff), then outputs how long it slept and the
//! run's parameters. With `params.fail_until: N`, attempts before N fail for good at once
//! (a task that fails, then succeeds when retried by hand).
use bulkhead_sdk::{Task, TaskError};
fn sleep(task: Task) -> Result<serde_json::Value, TaskError> {
    let fail_until = task.params.get("fail_until").and_then(|v| v.as_u64()).unwrap_or(0);
    if u64::from(task.attempt) < fail_until {
        return Err(TaskError::permanent(format!("failing on purpose until attempt {fail_until}")));
    }
    let ms = task.params.get("ms").and_then(|v| v.as_u64()).unwrap_or(1000);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(serde_json::json!({ "slept_ms": ms, "run_params": task.run_params }))
}
bulkhead_sdk::plugin!(sleep);
