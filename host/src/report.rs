//! The run report: the `--json` document of DESIGN.md section 4. Field names are a contract.

use indexmap::IndexMap;
use serde::Serialize;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every non-optional task succeeded.
    Succeeded,
    /// A non-optional task failed for good.
    Failed,
    /// The run was stopped (Ctrl-C) before it finished.
    Cancelled,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// It produced an output.
    Succeeded,
    /// Its last attempt failed and no retry was left.
    Failed,
    /// Something it needs failed for good, so it never ran.
    Skipped,
    /// The run was cancelled before it finished.
    Cancelled,
}

impl RunStatus {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl TaskStatus {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// The error of a failed, skipped or cancelled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// A failure kind (`trap`, `timeout`, ...), or `skipped` / `cancelled`.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// The plugin's exit code, for kinds `exit` and `transient`.
    pub exit_code: Option<i32>,
}

/// One task in the report.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// How it ended.
    pub status: TaskStatus,
    /// Attempts made (0 if it never ran).
    pub attempts: u32,
    /// Why it did not succeed.
    pub error: Option<ErrorReport>,
    /// Its output (`null` unless it succeeded).
    pub output: serde_json::Value,
    /// Time spent in its attempts, all of them, in milliseconds.
    pub duration_ms: u64,
    /// The same in microseconds.
    pub duration_us: u64,
    /// Fuel used by its attempts, all of them.
    pub fuel_used: u64,
    /// Largest linear memory of any of its attempts, in bytes.
    pub peak_memory: u64,
    /// The plugin that ran it.
    pub plugin: String,
    /// Whether its failure is allowed to leave the run successful.
    pub optional: bool,
    /// stderr of its last attempt (omitted when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log: String,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's id (a UUIDv7).
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Every task, in file order.
    pub tasks: IndexMap<String, TaskReport>,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time.
    pub finished_at: String,
    /// Wall-clock time of the whole run in milliseconds.
    pub duration_ms: u64,
}

impl RunReport {
    /// Number of tasks with this status.
    pub fn count(&self, status: TaskStatus) -> usize {
        self.tasks.values().filter(|t| t.status == status).count()
    }
}
