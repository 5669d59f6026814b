//! Groups the rows of its one input by `params.group_by` and sums each `params.sum` field:
//! `{"groups": [{"<group_by>": "x", "count": n, "<field>": total, ...}, ...]}`, sorted by key.
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Params {
    group_by: String,
    #[serde(default)]
    sum: Vec<String>,
}

#[derive(Serialize)]
struct Output {
    groups: Vec<Map<String, Value>>,
}

fn aggregate(task: Task<Params>) -> Result<Output, TaskError> {
    let p = &task.params;
    let (name, input) = task
        .inputs
        .iter()
        .next()
        .ok_or_else(|| TaskError::permanent("aggregate needs one input task"))?;
    let rows: Vec<Map<String, Value>> = serde_json::from_value(input.get("rows").cloned().unwrap_or(Value::Null))
        .map_err(|e| TaskError::permanent(format!("input `{name}` has no rows: {e}")))?;
    let mut groups: BTreeMap<String, (u64, Vec<f64>)> = BTreeMap::new();
    for row in &rows {
        let key = match row.get(&p.group_by) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "(none)".to_string(),
            Some(v) => v.to_string(),
        };
        let entry = groups.entry(key).or_insert_with(|| (0, vec![0.0; p.sum.len()]));
        entry.0 += 1;
        for (i, field) in p.sum.iter().enumerate() {
            entry.1[i] += row.get(field).and_then(Value::as_f64).unwrap_or(0.0);
        }
    }
    let groups = groups
        .into_iter()
        .map(|(key, (count, sums))| {
            let mut g = Map::new();
            g.insert(p.group_by.clone(), Value::String(key));
            g.insert("count".into(), count.into());
            for (field, total) in p.sum.iter().zip(sums) {
                g.insert(field.clone(), serde_json::json!((total * 100.0).round() / 100.0));
            }
            g
        })
        .collect();
    Ok(Output { groups })
}

bulkhead_sdk::plugin!(aggregate);
