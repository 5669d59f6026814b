//! Cleans the rows of its one input: trims every value, lowercases `params.lowercase` fields,
//! parses `params.numbers` fields as numbers, and drops rows that lack a `params.required` field
//! or have a bad number (counted in `dropped`, with the reasons in the log).
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    lowercase: Vec<String>,
    #[serde(default)]
    numbers: Vec<String>,
}

#[derive(Deserialize)]
struct Rows {
    rows: Vec<Map<String, Value>>,
}

#[derive(Serialize)]
struct Output {
    rows: Vec<Map<String, Value>>,
    dropped: usize,
}

fn clean_row(p: &Params, mut row: Map<String, Value>) -> Result<Map<String, Value>, String> {
    for value in row.values_mut() {
        if let Value::String(s) = value {
            *s = s.trim().to_string();
        }
    }
    for field in &p.required {
        match row.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::Null) | None => return Err(format!("missing `{field}`")),
            Some(Value::String(_)) => return Err(format!("empty `{field}`")),
            Some(_) => {}
        }
    }
    for field in &p.lowercase {
        if let Some(Value::String(s)) = row.get_mut(field) {
            *s = s.to_lowercase();
        }
    }
    for field in &p.numbers {
        if let Some(Value::String(s)) = row.get(field) {
            let n: f64 = s.parse().map_err(|_| format!("`{field}` is not a number: {s:?}"))?;
            row.insert(field.clone(), serde_json::json!(n));
        }
    }
    Ok(row)
}

fn clean(task: Task<Params, Map<String, Value>>) -> Result<Output, TaskError> {
    let (name, input) = task
        .inputs
        .into_iter()
        .next()
        .ok_or_else(|| TaskError::permanent("clean needs exactly one input task"))?;
    let input: Rows = serde_json::from_value(input)
        .map_err(|e| TaskError::permanent(format!("input `{name}` has no rows: {e}")))?;
    let mut rows = Vec::new();
    let mut dropped = 0;
    for (i, row) in input.rows.into_iter().enumerate() {
        match clean_row(&task.params, row) {
            Ok(r) => rows.push(r),
            Err(why) => {
                dropped += 1;
                bulkhead_sdk::warn!("dropping row {i} of `{name}`: {why}");
            }
        }
    }
    bulkhead_sdk::info!("kept {} rows, dropped {dropped}", rows.len());
    Ok(Output { rows, dropped })
}

bulkhead_sdk::plugin!(clean);
