//! Write a Bulkhead plugin as one plain function.
//!
//! A Bulkhead plugin is a WASI preview 1 command (ABI v1): it reads one JSON document on stdin,
//! writes its output as JSON on stdout, logs on stderr and signals failure with its exit code
//! (75 = transient, anything else non-zero = permanent). This crate does all of that for you:
//!
//! ```no_run
//! use bulkhead_sdk::{Task, TaskError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Params { name: String }
//!
//! #[derive(Serialize)]
//! struct Greeting { greeting: String }
//!
//! fn greet(task: Task<Params>) -> Result<Greeting, TaskError> {
//!     bulkhead_sdk::info!("greeting {} on attempt {}", task.params.name, task.attempt);
//!     if task.params.name.is_empty() {
//!         return Err(TaskError::permanent("`name` is empty"));
//!     }
//!     Ok(Greeting { greeting: format!("hello, {}", task.params.name) })
//! }
//!
//! bulkhead_sdk::plugin!(greet);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1` and copy
//! `target/wasm32-wasip1/release/<name>.wasm` into the plugin folder.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};

pub use serde_json::{Map, Value};

pub use bulkhead_abi::{ABI_VERSION, EXIT_PERMANENT, EXIT_TRANSIENT};

/// One attempt of a task, as the host describes it on stdin (the ABI's input document, owned).
/// `P` is the type of the task's `params`, `I` the type of its `inputs` (the outputs of the
/// tasks it needs, by task id). Fields: `abi`, `workflow`, `run_id`, `task`, `attempt`,
/// `idempotency_key` (the same for every attempt of this task in this run: use it to make side
/// effects idempotent), `params`, `run_params` and `inputs`.
pub type Task<P = Value, I = Map<String, Value>> = bulkhead_abi::Input<String, Value, P, I>;

/// Why a task failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// Whether trying again may help (exit code 75) or not (exit code 1).
    pub transient: bool,
    /// What went wrong; written to the log.
    pub message: String,
}

impl TaskError {
    /// A failure that may go away on a later attempt (e.g. a service is down): exit code 75.
    pub fn transient(message: impl Into<String>) -> Self {
        TaskError {
            transient: true,
            message: message.into(),
        }
    }

    /// A failure that will not go away by trying again (e.g. bad data): exit code 1.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            transient: false,
            message: message.into(),
        }
    }

    /// The exit code the plugin ends with.
    pub fn exit_code(&self) -> i32 {
        if self.transient {
            EXIT_TRANSIENT
        } else {
            EXIT_PERMANENT
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<std::io::Error> for TaskError {
    fn from(e: std::io::Error) -> Self {
        TaskError::permanent(e.to_string())
    }
}

impl From<serde_json::Error> for TaskError {
    fn from(e: serde_json::Error) -> Self {
        TaskError::permanent(e.to_string())
    }
}

/// Structured logging to stderr: one JSON object per line with `level` and `msg`.
pub mod log {
    /// Writes one log record.
    pub fn write(level: &str, msg: &str) {
        let record = serde_json::json!({ "level": level, "msg": msg });
        // Logging must never fail a task: a full log is cut by the host, not by us.
        let _ = writeln!(std::io::stderr().lock(), "{record}");
    }
    use std::io::Write;
}

/// Logs at level `info`, with `format!` arguments.
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log::write("info", &format!($($arg)*)) }; }
/// Logs at level `warn`, with `format!` arguments.
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log::write("warn", &format!($($arg)*)) }; }
/// Logs at level `error`, with `format!` arguments.
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log::write("error", &format!($($arg)*)) }; }
/// Logs at level `debug`, with `format!` arguments.
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log::write("debug", &format!($($arg)*)) }; }

/// Defines `main` for a plugin whose work is `handler`: `bulkhead_sdk::plugin!(my_fn);`.
#[macro_export]
macro_rules! plugin {
    ($handler:path) => {
        fn main() {
            $crate::run($handler)
        }
    };
}

/// Reads the task from stdin, calls `handler`, writes its output and exits with the right code.
pub fn run<P, I, O, F>(handler: F) -> !
where
    P: DeserializeOwned,
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Task<P, I>) -> Result<O, TaskError>,
{
    let code = match call(handler) {
        Ok(()) => 0,
        Err(e) => {
            log::write("error", &e.message);
            e.exit_code()
        }
    };
    std::process::exit(code)
}

fn call<P, I, O, F>(handler: F) -> Result<(), TaskError>
where
    P: DeserializeOwned,
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Task<P, I>) -> Result<O, TaskError>,
{
    let task = read_task(std::io::stdin().lock())?;
    let output = handler(task)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &output)
        .map_err(|e| TaskError::permanent(format!("cannot write the output: {e}")))?;
    out.flush()?;
    Ok(())
}

/// Parses the task document; a mismatch with `P` or `I` names the field.
pub fn read_task<P: DeserializeOwned, I: DeserializeOwned>(
    mut input: impl Read,
) -> Result<Task<P, I>, TaskError> {
    let mut text = Vec::new();
    input.read_to_end(&mut text)?;
    serde_json::from_slice(&text).map_err(|e| {
        TaskError::permanent(format!(
            "the task input does not match this plugin's params/inputs types: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Params {
        n: u32,
    }

    const DOC: &str = r#"{"abi":1,"workflow":"w","run_id":"r","task":"t","attempt":2,
        "idempotency_key":"r:t","params":{"n":7},"run_params":{},"inputs":{"a":[1,2]}}"#;

    #[test]
    fn reads_typed_params_and_inputs() {
        let task: Task<Params> = read_task(DOC.as_bytes()).unwrap();
        assert_eq!(task.params, Params { n: 7 });
        assert_eq!(task.attempt, 2);
        assert_eq!(task.inputs["a"], serde_json::json!([1, 2]));
    }

    #[test]
    fn a_type_mismatch_is_a_permanent_error_naming_the_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wrong {
            missing: String,
        }
        let err = read_task::<Wrong, Value>(DOC.as_bytes()).unwrap_err();
        assert!(!err.transient);
        assert!(err.message.contains("missing"), "{}", err.message);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(TaskError::transient("x").exit_code(), 75);
        assert_eq!(TaskError::permanent("x").exit_code(), 1);
    }
}
