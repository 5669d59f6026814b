//! The Bulkhead plugin wire contract, ABI v1, in one place for both sides of it: the host writes
//! an [`Input`] document to a plugin's stdin and reads its exit code and stdout; `bulkhead-sdk`
//! reads the same [`Input`] and ends with the same exit codes.
//!
//! A plugin is a WASI preview 1 command: one JSON document on stdin, its output as one JSON value
//! on stdout, logs on stderr, exit code 0 for success, [`EXIT_TRANSIENT`] for a failure that may go
//! away on a later attempt, anything else for a permanent failure. `docs/plugin-contract.md` is
//! the prose of this contract. This crate knows nothing else: no wasm, no workflows, no host.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The plugin ABI version written into every input document.
pub const ABI_VERSION: u32 = 1;

/// Exit code of a transient failure (EX_TEMPFAIL): the host may retry.
pub const EXIT_TRANSIENT: i32 = 75;

/// Exit code the SDK uses for a permanent failure (any non-zero code but 75 is one).
pub const EXIT_PERMANENT: i32 = 1;

/// The document on a plugin's stdin: one attempt of one task.
///
/// Generic so that both sides use this one definition: the host serialises borrowed data
/// (`S = &str`, `V = &Value`, `I` a map it streams), a plugin deserialises owned data
/// (`S = String`, `V = Value`, `P` and `I` its own types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input<S = String, V = Value, P = Value, I = Map<String, Value>> {
    /// The ABI version of the document ([`ABI_VERSION`]).
    pub abi: u32,
    /// The workflow's name.
    pub workflow: S,
    /// The run's id.
    pub run_id: S,
    /// This task's id.
    pub task: S,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The same for every attempt of this task in this run ([`idempotency_key`]).
    pub idempotency_key: S,
    /// The task's `params` from the workflow file.
    pub params: P,
    /// The run's parameters.
    #[serde(default)]
    pub run_params: V,
    /// The outputs of the tasks this one needs, by task id.
    pub inputs: I,
}

/// The idempotency key of every attempt of `task` in run `run_id`.
pub fn idempotency_key(run_id: &str, task: &str) -> String {
    format!("{run_id}:{task}")
}

/// Why an attempt failed. The names are part of the contract: they appear in reports, in
/// `retry.on` of a workflow and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The plugin crashed: a wasm trap, a panic, a stack overflow.
    Trap,
    /// The attempt ran past its wall-clock `timeout`.
    Timeout,
    /// The attempt used up its `fuel`.
    Fuel,
    /// The plugin asked for more memory than its `memory` limit.
    Memory,
    /// The plugin exited with a non-zero code other than 75.
    Exit,
    /// The plugin exited with code 75 (EX_TEMPFAIL).
    Transient,
    /// stdout was not one JSON value.
    InvalidOutput,
    /// stdout went over `max_output`.
    OutputTooLarge,
    /// The module could not be compiled or instantiated, or has no `_start`.
    Load,
    /// The host failed, not the plugin: a granted folder is gone, an I/O error of the host, a bug.
    /// Not retried by default (retrying on the same host rarely helps; say `retry.on: [host]`).
    Host,
}

impl FailureKind {
    /// The contract name, e.g. `output_too_large`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Fuel => "fuel",
            FailureKind::Memory => "memory",
            FailureKind::Exit => "exit",
            FailureKind::Transient => "transient",
            FailureKind::InvalidOutput => "invalid_output",
            FailureKind::OutputTooLarge => "output_too_large",
            FailureKind::Load => "load",
            FailureKind::Host => "host",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the host writes (borrowed, inputs streamed) is what a plugin reads (owned, typed).
    #[test]
    fn an_input_written_by_the_host_reads_back_the_same_in_a_plugin() {
        let params = json!({"rows": 3});
        let run_params = json!({"day": "2026-12-01"});
        let mut inputs = Map::new();
        inputs.insert("extract".into(), json!([1, 2]));
        let key = idempotency_key("run-1", "load");
        let written: Input<&str, &Value, &Value, &Map<String, Value>> = Input {
            abi: ABI_VERSION,
            workflow: "etl",
            run_id: "run-1",
            task: "load",
            attempt: 2,
            idempotency_key: &key,
            params: &params,
            run_params: &run_params,
            inputs: &inputs,
        };
        let bytes = serde_json::to_vec(&written).unwrap();
        let read: Input = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(read.abi, 1);
        assert_eq!(
            (
                read.workflow.as_str(),
                read.run_id.as_str(),
                read.task.as_str()
            ),
            ("etl", "run-1", "load")
        );
        assert_eq!(read.attempt, 2);
        assert_eq!(read.idempotency_key, "run-1:load");
        assert_eq!((read.params, read.run_params), (params, run_params));
        assert_eq!(read.inputs, inputs);
    }

    #[test]
    fn run_params_may_be_absent_in_an_older_document() {
        let doc = r#"{"abi":1,"workflow":"w","run_id":"r","task":"t","attempt":1,"idempotency_key":"r:t","params":null,"inputs":{}}"#;
        let read: Input = serde_json::from_str(doc).unwrap();
        assert_eq!(read.run_params, Value::Null);
    }

    /// The kinds the contract documents (docs/plugin-contract.md, "Failure kinds") are exactly
    /// the kinds this crate knows, each under its documented name.
    #[test]
    fn every_documented_failure_kind_reads_and_writes_as_its_name() {
        let doc = include_str!("../../../docs/plugin-contract.md");
        let table = doc
            .split("## Failure kinds")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        let names: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .collect();
        assert!(names.len() >= 10, "{names:?}");
        for name in &names {
            let kind: FailureKind = serde_json::from_value(Value::String(name.to_string()))
                .unwrap_or_else(|e| panic!("documented kind `{name}`: {e}"));
            assert_eq!(kind.as_str(), *name);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(name.to_string())
            );
        }
        // And nothing undocumented: serde's refusal of an unknown name lists every kind it knows.
        let refused = serde_json::from_value::<FailureKind>(Value::String("oops".into()))
            .unwrap_err()
            .to_string();
        let known: Vec<&str> = refused
            .split("expected one of ")
            .nth(1)
            .unwrap()
            .split(", ")
            .map(|k| k.trim_matches('`'))
            .collect();
        assert_eq!(
            known, names,
            "the kinds and their order are the documented ones"
        );
    }
}
