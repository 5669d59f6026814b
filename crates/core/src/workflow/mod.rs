//! Workflow files: YAML text -> raw serde types (`raw`) -> a validated, immutable [`Workflow`].
//!
//! This module owns the workflow format (docs/workflow.md) and every message about a bad file.
//! It does not touch plugins or run anything: plugin names are resolved by `registry`, and the
//! dependency graph is planned by `plan`.
//!
//! ```
//! let yaml = "name: demo\ntasks:\n  a: {plugin: noop}\n  b: {plugin: noop, needs: [a]}\n";
//! let wf = bulkhead_core::workflow::parse(yaml, std::path::Path::new("demo.yaml")).unwrap();
//! assert_eq!(wf.tasks[1].needs, vec![0]);
//! ```

mod duplicates;
mod error;
pub mod params;
mod raw;
mod retry;
pub mod stored;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{Problem, WorkflowError};
pub use raw::{Backoff, Jitter};
pub use retry::RetryPolicy;
pub use units::{parse_duration, parse_size, SizeSpec};

use crate::contract::{Grants, Limits};
use std::path::{Path, PathBuf};

/// A validated workflow. Immutable once built; tasks keep the order of the file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Workflow {
    /// `name:`, unique among loaded workflows.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// The file it was read from.
    pub file: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
    /// `concurrency:`; `None` means only the host's `--max-parallel` bounds the run.
    pub concurrency: Option<u32>,
    /// `max_active_runs:`: runs of this workflow unfinished at once across every host sharing
    /// the store; triggers beyond it wait. `None` is no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_runs: Option<u32>,
    /// `schedule:`, `timezone:` and `catchup:` (used by `bulkhead serve`).
    pub schedule: Option<crate::trigger::Schedule>,
    /// `params:`: the declared run parameters (empty: a run takes any parameters).
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub params: params::Params,
    /// The tasks in file order; `Task::needs` holds indices into this list.
    pub tasks: Vec<Task>,
}

impl Workflow {
    /// The plan of this workflow: its `needs` graph and priorities, for the planner.
    pub fn plan(&self) -> crate::plan::Plan {
        crate::plan::Plan::new(
            self.tasks.iter().map(|t| t.needs.clone()).collect(),
            self.tasks.iter().map(|t| t.priority).collect(),
        )
    }
}

/// One validated task.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Task {
    /// The task id (its key under `tasks:`).
    pub id: String,
    /// `description:`.
    pub description: Option<String>,
    /// Which plugin runs it.
    pub plugin: PluginRef,
    /// `params:` handed to the plugin.
    pub params: serde_json::Value,
    /// Indices of the tasks it needs, in the order written.
    pub needs: Vec<usize>,
    /// Effective retry policy (task over defaults over built-in defaults).
    pub retry: std::sync::Arc<RetryPolicy>,
    /// Effective limits (task over defaults over built-in defaults).
    pub limits: std::sync::Arc<Limits>,
    /// `env` and `mounts` granted to it.
    pub grants: std::sync::Arc<Grants>,
    /// Its failure does not fail the run.
    pub optional: bool,
    /// Higher runs first among ready tasks.
    pub priority: i32,
}

/// How a task names its plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PluginRef {
    /// A name looked up in the plugin folder (`<name>.wasm`).
    Name(String),
    /// A `.wasm` file, resolved against the workflow file's folder.
    Path(PathBuf),
}

impl std::fmt::Display for PluginRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginRef::Name(n) => f.write_str(n),
            PluginRef::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Workflow {
    /// The index of the task with this id.
    pub fn task_index(&self, id: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.id == id)
    }
}

/// The JSON Schema of the workflow format, generated from the raw types (checked in as
/// `docs/workflow.schema.json`; editors use it to complete and check workflow files).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawWorkflow);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads and validates a workflow file.
pub fn load(path: &Path) -> Result<Workflow, WorkflowError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkflowError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Validates workflow text; `file` names it in messages and anchors relative paths.
pub fn parse(text: &str, file: &Path) -> Result<Workflow, WorkflowError> {
    validate::parse(text, file)
}
