//! Reads `params.path` (a CSV file with a header row, inside a mounted folder) into rows:
//! `{"rows": [{"column": "value", ...}, ...]}`.
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    path: String,
}

#[derive(Serialize)]
struct Output {
    source: String,
    rows: Vec<Map<String, Value>>,
}

fn extract(task: Task<Params>) -> Result<Output, TaskError> {
    let path = &task.params.path;
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        TaskError::permanent(format!("cannot read {path}: {e} (is its folder mounted?)"))
    })?;
    let headers = reader
        .headers()
        .map_err(|e| TaskError::permanent(format!("{path}: bad header row: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| TaskError::permanent(format!("{path}: row {}: {e}", i + 2)))?;
        let row = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
            .collect();
        rows.push(row);
    }
    bulkhead_sdk::info!("read {} rows from {path}", rows.len());
    Ok(Output { source: path.clone(), rows })
}

bulkhead_sdk::plugin!(extract);
