//! What an attempt produced. Plain data: the executor reads it without knowing about wasmtime.

use super::FailureKind;
use std::time::Duration;

/// Why an attempt failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The contract kind.
    pub kind: FailureKind,
    /// What happened, e.g. the panic message.
    pub message: String,
    /// The exit code, for kinds `exit` and `transient`.
    pub exit_code: Option<i32>,
}

impl Failure {
    /// A failure without an exit code.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            exit_code: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Everything recorded about one attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The output (stdout, checked to be one JSON value; `null` when empty), or why the
    /// attempt failed.
    pub result: Result<super::OutputJson, Failure>,
    /// Wall-clock time from instantiation to the end.
    pub duration: Duration,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Largest linear memory size reached, in bytes.
    pub peak_memory: u64,
    /// stderr, up to `max_logs`, with a marker if it was cut.
    pub log: Vec<u8>,
}

impl AttemptOutcome {
    /// An outcome for an attempt that never got to run wasm.
    pub fn failed(failure: Failure) -> Self {
        AttemptOutcome {
            result: Err(failure),
            duration: Duration::ZERO,
            fuel_used: 0,
            peak_memory: 0,
            log: Vec::new(),
        }
    }
}
