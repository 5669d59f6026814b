//! Misbehaves on purpose, as `params.mode` says, to show what Bulkhead contains:
//! `transient` (exit 75 until attempt `params.until_attempt`), `panic`, `spin` (endless loop),
//! `hog` (allocates without end), `flood` (writes stdout without end), anything else succeeds.
use bulkhead_sdk::{Task, TaskError};
use serde::Deserialize;
use std::io::Write;

#[derive(Deserialize)]
struct Params {
    mode: String,
    #[serde(default = "three")]
    until_attempt: u32,
}

fn three() -> u32 {
    3
}

fn chaos(task: Task<Params>) -> Result<serde_json::Value, TaskError> {
    let p = task.params;
    bulkhead_sdk::info!("mode {} on attempt {}", p.mode, task.attempt);
    match p.mode.as_str() {
        "transient" if task.attempt < p.until_attempt => {
            Err(TaskError::transient(format!("upstream not ready (attempt {})", task.attempt)))
        }
        "panic" => panic!("chaos: panicking on purpose (attempt {})", task.attempt),
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "hog" => {
            let mut hoard = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        "flood" => {
            let mut out = std::io::stdout().lock();
            loop {
                out.write_all(&[b'x'; 4096])?;
            }
        }
        _ => Ok(serde_json::json!({ "mode": p.mode, "attempt": task.attempt })),
    }
}

bulkhead_sdk::plugin!(chaos);
