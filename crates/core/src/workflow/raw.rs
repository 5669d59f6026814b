//! Raw serde types that mirror the workflow YAML (docs/workflow.md) one to one. Nothing here
//! is validated beyond its shape: `validate` turns a [`RawWorkflow`] into a `Workflow`.

use super::units::SizeSpec;
use crate::contract::FailureKind;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// What the JSON Schema says a duration looks like (humantime's units; `bulkhead validate`
/// also refuses zero timeouts, which a pattern does not).
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+\s*(nsec|ns|usec|us|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

/// A workflow name or task id: letters, digits, `_`, `-`, `.`, at most 128, not `.` or `..`.
pub const ID_PATTERN: &str = r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$";

/// The top level of a workflow file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Bulkhead workflow (version 1)")]
pub struct RawWorkflow {
    /// Format version; 1 is the only one.
    #[schemars(with = "Option<u32>", range(min = 1, max = 1))]
    pub version: Option<serde_yaml::Value>,
    /// Workflow name: letters, digits, `_`, `-`, `.` (at most 128).
    #[schemars(regex(pattern = ID_PATTERN))]
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Tasks of one run at once (default: bounded only by the host's `--max-parallel`).
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// Runs of this workflow unfinished at once, across every host sharing the store: a due
    /// run beyond it waits, oldest first (default: no bound).
    #[schemars(range(min = 1))]
    pub max_active_runs: Option<u32>,
    /// Cron expression(s) of five fields (minute hour day-of-month month day-of-week) or a
    /// shortcut (`@hourly`, `@daily`, ...), used by `bulkhead serve`.
    pub schedule: Option<OneOrMany>,
    /// IANA time zone of the schedule, such as `Europe/Berlin` (default UTC).
    #[schemars(length(min = 1))]
    pub timezone: Option<String>,
    /// Fires missed while no host ran: `none`, `latest` (default) or `all`.
    pub catchup: Option<crate::trigger::Catchup>,
    /// Run parameters, by name: their type, default, description and whether every run must
    /// give them; checked when a run is triggered. Without `params:`, a run takes any
    /// parameters as given.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": ID_PATTERN}))]
    pub params: IndexMap<String, super::params::RawParam>,
    /// Limits and retry policy for every task that does not set its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The tasks, by id (letters, digits, `_`, `-`, `.`), in the order they are written.
    #[schemars(extend("minProperties" = 1, "propertyNames" = {"pattern": ID_PATTERN}))]
    pub tasks: IndexMap<String, RawTask>,
}

/// A single string or a list of them (`schedule:`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One expression.
    One(String),
    /// Several expressions.
    Many(Vec<String>),
}

/// `defaults:` applies to every task unless the task overrides a key.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub retry: RawRetry,
}

/// `limits:`, every key optional; missing keys fall back to the defaults.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// CPU budget in fuel units (default 10000000000).
    #[schemars(range(min = 1, max = crate::contract::MAX_FUEL))]
    pub fuel: Option<u64>,
    /// Linear memory cap (default 64MiB, at most 4GiB).
    pub memory: Option<SizeSpec>,
    /// Wall-clock limit of one attempt, e.g. `30s` (default 30s).
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// stdout cap (default 1MiB).
    pub max_output: Option<SizeSpec>,
    /// stderr cap; the rest is dropped (default 1MiB).
    pub max_logs: Option<SizeSpec>,
}

/// `retry:`, every key optional.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included (default 1).
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    /// `fixed` or `exponential` (default).
    pub backoff: Option<Backoff>,
    /// Delay before the first retry (default 1s).
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub initial_delay: Option<String>,
    /// Growth of exponential backoff, at least 1 (default 2).
    #[schemars(range(min = 1.0))]
    pub multiplier: Option<f64>,
    /// Cap on any delay (default 1m).
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_delay: Option<String>,
    /// `full` (default) or `none`.
    pub jitter: Option<Jitter>,
    /// Failure kinds that are retried (default transient, trap, timeout).
    pub on: Option<Vec<FailureKind>>,
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Every retry waits `initial_delay`.
    Fixed,
    /// Retry `n` waits `initial_delay * multiplier^(n-1)`, capped at `max_delay`.
    Exponential,
}

/// Randomisation of the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// A uniformly random delay between zero and the computed delay.
    Full,
    /// Exactly the computed delay.
    None,
}

/// One entry of `tasks:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    /// A plugin name from the plugin folder, or a path ending in `.wasm`.
    pub plugin: String,
    /// What it does.
    pub description: Option<String>,
    /// Handed to the plugin as `params`.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Tasks that must succeed first; their outputs become this task's `inputs`.
    #[serde(default)]
    #[schemars(inner(regex(pattern = ID_PATTERN)))]
    pub needs: Vec<String>,
    /// Overrides `defaults.retry` key by key.
    #[serde(default)]
    pub retry: RawRetry,
    /// Overrides `defaults.limits` key by key.
    #[serde(default)]
    pub limits: RawLimits,
    /// The only environment variables the plugin sees.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Host folders the plugin sees.
    #[serde(default)]
    pub mounts: Vec<RawMount>,
    /// Outgoing HTTP the plugin may make (components only); none unless granted.
    pub http: Option<RawHttp>,
    /// If true, its failure does not fail the run.
    #[serde(default)]
    pub optional: bool,
    /// Higher runs first among ready tasks.
    #[serde(default)]
    #[schemars(range(min = i32::MIN, max = i32::MAX))]
    pub priority: i32,
}

/// `http:`, the outgoing HTTP granted to a task.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Origins requests may go to, `scheme://host[:port]`: exactly these, nothing else.
    #[schemars(length(min = 1), inner(regex(pattern = ORIGIN_PATTERN)))]
    pub allow: Vec<String>,
    /// Requests one attempt may make (default 100).
    #[schemars(range(min = 1))]
    pub max_requests: Option<u32>,
    /// Cap on one response's body (default 10MiB).
    pub max_response: Option<SizeSpec>,
    /// Wall-clock limit of one request, e.g. `10s` (default 10s).
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// What the JSON schema says of an allowlist entry; the validator's parser is the authority.
const ORIGIN_PATTERN: &str = r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?/?$";

/// One entry of `mounts:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMount {
    /// Host folder, relative to the workflow file.
    pub host: String,
    /// Absolute path inside the sandbox.
    #[schemars(regex(pattern = "^/"))]
    pub guest: String,
    /// Whether the plugin may write (default false).
    #[serde(default)]
    pub writable: bool,
}
