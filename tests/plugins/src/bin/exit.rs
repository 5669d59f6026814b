//! Exits with `params.code`, after writing `params.say` (if any) to stderr.
use bulkhead_sdk::{Task, TaskError};
fn exit(task: Task) -> Result<(), TaskError> {
    let code = task.params.get("code").and_then(|v| v.as_i64()).unwrap_or(1) as i32;
    if let Some(say) = task.params.get("say").and_then(|v| v.as_str()) {
        eprintln!("{say}");
    }
    eprintln!("exiting with {code}");
    std::process::exit(code)
}
bulkhead_sdk::plugin!(exit);
