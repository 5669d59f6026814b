//! An example component plugin (ABI v2): greets `params.name` (or the run's `name` parameter),
//! logging through the host's `log` import.
//!
//! It also does on request what a plugin may do wrong, for the host's tests:
//! `params.fail` = "transient" or "permanent" returns that error, `params.spin` loops forever,
//! `params.alloc_mib` allocates that many MiB, `params.output_bytes` returns a string that long,
//! `params.panic` panics.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use bulkhead::plugin::log::log;
use bulkhead::plugin::types::{ErrorKind, Level};
use serde_json::{json, Value};

struct Greet;

impl Guest for Greet {
    fn run(task: Task) -> Result<String, TaskError> {
        let params: Value = serde_json::from_str(&task.params).map_err(|e| TaskError {
            kind: ErrorKind::Permanent,
            message: format!("params are not JSON: {e}"),
        })?;
        let run_params: Value = serde_json::from_str(&task.run_params).unwrap_or(Value::Null);
        let inputs: Value = serde_json::from_str(&task.inputs).unwrap_or(Value::Null);
        log(
            Level::Info,
            "starting",
            &[
                ("task".to_string(), task.task.clone()),
                ("attempt".to_string(), task.attempt.to_string()),
            ],
        );
        match params.get("fail").and_then(Value::as_str) {
            // Transient only on the attempts before `fail_until` (default: always).
            Some("transient")
                if task.attempt
                    < params
                        .get("fail_until")
                        .and_then(Value::as_u64)
                        .map_or(u32::MAX, |n| n as u32) =>
            {
                return Err(TaskError {
                    kind: ErrorKind::Transient,
                    message: format!("not yet (attempt {})", task.attempt),
                })
            }
            Some("permanent") => {
                return Err(TaskError {
                    kind: ErrorKind::Permanent,
                    message: "asked to fail".into(),
                })
            }
            _ => {}
        }
        if params.get("panic").is_some() {
            panic!("asked to panic");
        }
        if params.get("spin").is_some() {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if let Some(mib) = params.get("alloc_mib").and_then(Value::as_u64) {
            let block = vec![1u8; (mib as usize) << 20];
            log(
                Level::Debug,
                "allocated",
                &[("bytes".into(), block.len().to_string())],
            );
        }
        if let Some(n) = params.get("output_bytes").and_then(Value::as_u64) {
            return Ok(Value::String("x".repeat(n as usize)).to_string());
        }
        let name = params
            .get("name")
            .or_else(|| run_params.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("world");
        let upstream = inputs.as_object().map_or(0, |m| m.len());
        Ok(json!({
            "greeting": format!("Hello, {name}!"),
            "task": task.task,
            "idempotency_key": task.idempotency_key,
            "inputs_seen": upstream,
        })
        .to_string())
    }
}

export!(Greet);
