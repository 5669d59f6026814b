//! Inner-joins the rows of input `params.left` with those of `params.right` where
//! `left[params.left_key] == right[params.right_key]`. Right-hand fields are prefixed with
//! `params.prefix` (default: the right input's name and `_`).
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Deserialize)]
struct Params {
    left: String,
    right: String,
    left_key: String,
    right_key: String,
    prefix: Option<String>,
}

#[derive(Serialize)]
struct Output {
    rows: Vec<Map<String, Value>>,
    unmatched_left: usize,
}

fn rows(inputs: &Map<String, Value>, name: &str) -> Result<Vec<Map<String, Value>>, TaskError> {
    let input = inputs
        .get(name)
        .ok_or_else(|| TaskError::permanent(format!("no input `{name}`: add it to `needs`")))?;
    serde_json::from_value(input.get("rows").cloned().unwrap_or(Value::Null))
        .map_err(|e| TaskError::permanent(format!("input `{name}` has no rows: {e}")))
}

fn key(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn join(task: Task<Params>) -> Result<Output, TaskError> {
    let p = &task.params;
    let left = rows(&task.inputs, &p.left)?;
    let right = rows(&task.inputs, &p.right)?;
    let prefix = p.prefix.clone().unwrap_or_else(|| format!("{}_", p.right));
    let mut index: HashMap<String, Vec<&Map<String, Value>>> = HashMap::new();
    for r in &right {
        if let Some(k) = key(r.get(&p.right_key)) {
            index.entry(k).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    let mut unmatched_left = 0;
    for l in &left {
        let matches = key(l.get(&p.left_key)).and_then(|k| index.get(&k));
        match matches {
            None => unmatched_left += 1,
            Some(ms) => {
                for r in ms {
                    let mut row = l.clone();
                    for (f, v) in r.iter() {
                        row.insert(format!("{prefix}{f}"), v.clone());
                    }
                    out.push(row);
                }
            }
        }
    }
    bulkhead_sdk::info!("joined {} rows ({unmatched_left} left rows without a match)", out.len());
    Ok(Output { rows: out, unmatched_left })
}

bulkhead_sdk::plugin!(join);
