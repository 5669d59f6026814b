//! Greets `params.name`, and counts the inputs it was given.
use bulkhead_sdk::{Map, Task, TaskError, Value};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
    inputs: usize,
}

fn hello(task: Task<Params, Map<String, Value>>) -> Result<Output, TaskError> {
    bulkhead_sdk::info!("greeting {}", task.params.name);
    Ok(Output {
        greeting: format!("hello, {}!", task.params.name),
        inputs: task.inputs.len(),
    })
}

bulkhead_sdk::plugin!(hello);
