//! Writes a Markdown table of the `groups` of its inputs to `params.path` (in a writable mount)
//! and outputs where it wrote and how many lines.
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Deserialize)]
struct Params {
    path: String,
    #[serde(default = "default_title")]
    title: String,
}

fn default_title() -> String {
    "Report".to_string()
}

#[derive(Serialize)]
struct Output {
    path: String,
    lines: usize,
    idempotency_key: String,
}

fn table(out: &mut String, name: &str, groups: &[Map<String, Value>]) {
    let _ = writeln!(out, "\n## {name}\n");
    let Some(first) = groups.first() else {
        let _ = writeln!(out, "(no rows)");
        return;
    };
    let columns: Vec<&String> = first.keys().collect();
    let header: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; columns.len()].join("|"));
    for g in groups {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match g.get(*c) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

fn report(task: Task<Params>) -> Result<Output, TaskError> {
    let mut text = format!("# {}\n\nworkflow `{}`, run `{}`\n", task.params.title, task.workflow, task.run_id);
    for (name, input) in &task.inputs {
        let groups: Vec<Map<String, Value>> =
            serde_json::from_value(input.get("groups").cloned().unwrap_or(Value::Array(vec![])))
                .map_err(|e| TaskError::permanent(format!("input `{name}` has no groups: {e}")))?;
        table(&mut text, name, &groups);
    }
    // Write to a temporary name, then rename: a retried attempt never leaves half a report. The
    // name is unique to this run and attempt, so concurrent runs writing one report never race
    // on the temporary file; the last rename wins, whole.
    let tmp = format!("{}.{}.{}.tmp", task.params.path, task.run_id, task.attempt);
    std::fs::write(&tmp, &text)
        .map_err(|e| TaskError::permanent(format!("cannot write {tmp}: {e} (is the folder mounted writable?)")))?;
    std::fs::rename(&tmp, &task.params.path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TaskError::permanent(format!("cannot rename {tmp} to {}: {e}", task.params.path))
    })?;
    bulkhead_sdk::info!("wrote {}", task.params.path);
    Ok(Output { path: task.params.path, lines: text.lines().count(), idempotency_key: task.idempotency_key })
}

bulkhead_sdk::plugin!(report);
