//! Raw serde types that mirror the workflow YAML (DESIGN.md section 3) one to one. Nothing here
//! is validated beyond its shape: `validate` turns a [`RawWorkflow`] into a `Workflow`.

use super::units::SizeSpec;
use crate::sandbox::FailureKind;
use indexmap::IndexMap;
use serde::Deserialize;

/// The top level of a workflow file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    pub version: Option<serde_yaml::Value>,
    pub name: String,
    pub description: Option<String>,
    pub concurrency: Option<u32>,
    pub schedule: Option<OneOrMany>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub tasks: IndexMap<String, RawTask>,
}

/// A single string or a list of them (`schedule:`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `defaults:` applies to every task unless the task overrides a key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub retry: RawRetry,
}

/// `limits:`, every key optional; missing keys fall back to the defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub fuel: Option<u64>,
    pub memory: Option<SizeSpec>,
    pub timeout: Option<String>,
    pub max_output: Option<SizeSpec>,
    pub max_logs: Option<SizeSpec>,
}

/// `retry:`, every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub backoff: Option<Backoff>,
    pub initial_delay: Option<String>,
    pub multiplier: Option<f64>,
    pub max_delay: Option<String>,
    pub jitter: Option<Jitter>,
    pub on: Option<Vec<FailureKind>>,
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Every retry waits `initial_delay`.
    Fixed,
    /// Retry `n` waits `initial_delay * multiplier^(n-1)`, capped at `max_delay`.
    Exponential,
}

/// Randomisation of the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// A uniformly random delay between zero and the computed delay.
    Full,
    /// Exactly the computed delay.
    None,
}

/// One entry of `tasks:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub plugin: String,
    pub description: Option<String>,
    #[serde(default)]
    pub params: serde_json::Value,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub retry: RawRetry,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    #[serde(default)]
    pub mounts: Vec<RawMount>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub priority: i32,
}

/// One entry of `mounts:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMount {
    pub host: String,
    pub guest: String,
    #[serde(default)]
    pub writable: bool,
}
