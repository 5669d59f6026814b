//! Outputs a JSON array of rows (`{"id": 7, "name": "row-7", "score": 3.5}`) of about
//! `params.bytes` bytes of JSON. `bulkhead bench` uses it to measure passing a large output to
//! many dependents.
use bulkhead_sdk::{Task, TaskError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    bytes: usize,
}

#[derive(Serialize)]
struct Row {
    id: usize,
    name: String,
    score: f64,
}

fn rows(task: Task<Params>) -> Result<Vec<Row>, TaskError> {
    let mut out = Vec::new();
    let mut size = 2;
    while size < task.params.bytes {
        let id = out.len();
        let row = Row {
            id,
            name: format!("row-{id}"),
            score: id as f64 / 2.0,
        };
        // `{"id":…,"name":"…","score":…},` with the digits of each number.
        size += 31 + 2 * id.to_string().len() + format!("{}", row.score).len();
        out.push(row);
    }
    bulkhead_sdk::info!("{} rows, about {size} bytes", out.len());
    Ok(out)
}

bulkhead_sdk::plugin!(rows);
