//! The run report: the `--json` document of DESIGN.md section 4. Field names are a contract.

use indexmap::IndexMap;
use serde::Serialize;

pub use crate::store::RunStatus;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not finished yet (the run is going on, or was interrupted and can be resumed).
    Pending,
    /// It produced an output.
    Succeeded,
    /// Its last attempt failed and no retry was left.
    Failed,
    /// Something it needs failed for good, so it never ran.
    Skipped,
    /// The run was cancelled before it finished.
    Cancelled,
}

impl TaskStatus {
    /// The contract name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// The error of a failed, skipped or cancelled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorReport {
    /// A failure kind (`trap`, `timeout`, ...), or `skipped` / `cancelled`.
    pub kind: String,
    /// What happened.
    pub message: String,
    /// The plugin's exit code, for kinds `exit` and `transient`.
    pub exit_code: Option<i32>,
}

impl ErrorReport {
    /// The report of an error as the store keeps it: `(kind, message, exit code)`.
    pub fn from_stored(error: &Option<(String, String, Option<i32>)>) -> Option<ErrorReport> {
        error
            .as_ref()
            .map(|(kind, message, exit_code)| ErrorReport {
                kind: kind.clone(),
                message: message.clone(),
                exit_code: *exit_code,
            })
    }
}

/// One task in the report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskReport {
    /// How it ended.
    pub status: TaskStatus,
    /// Attempts made (0 if it never ran).
    pub attempts: u32,
    /// Why it did not succeed.
    pub error: Option<ErrorReport>,
    /// Its output: any JSON value (`null` unless it succeeded).
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
    /// Every attempt, from the state store (`bulkhead show`; omitted when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AttemptReport>,
}

/// One attempt, as `bulkhead show` reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptReport {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub status: String,
    /// Why it failed.
    pub error: Option<ErrorReport>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Wall-clock time in microseconds.
    pub duration_us: u64,
    /// Fuel used.
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: u64,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunReport {
    /// The run's id (a UUIDv7).
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Every task, in file order.
    #[schema(value_type = std::collections::HashMap<String, TaskReport>)]
    pub tasks: IndexMap<String, TaskReport>,
    /// RFC 3339 start time; null while the run is pending.
    pub started_at: Option<String>,
    /// RFC 3339 end time; null while the run is not finished.
    pub finished_at: Option<String>,
    /// When the run's trigger was due (RFC 3339); null for a run started by `bulkhead run`.
    pub due_at: Option<String>,
    /// Wall-clock time of the whole run in milliseconds (until now while it runs).
    pub duration_ms: u64,
    /// Why a triggered run could not start (its workflow was gone); null otherwise.
    pub error: Option<String>,
}

impl RunReport {
    /// Number of tasks with this status.
    pub fn count(&self, status: TaskStatus) -> usize {
        self.tasks.values().filter(|t| t.status == status).count()
    }
}

impl RunReport {
    /// The report of a run whose trigger has not started it: pending, or cancelled or failed
    /// before it started.
    pub fn not_started(t: &crate::store::Trigger) -> RunReport {
        let status = t.status();
        RunReport {
            run_id: t.run_id.clone(),
            workflow: t.workflow.clone(),
            status,
            tasks: IndexMap::new(),
            started_at: None,
            finished_at: t.ended_at().map(crate::store::rfc3339),
            due_at: Some(crate::store::rfc3339(t.due_at)),
            duration_ms: 0,
            error: t.error.clone(),
        }
    }

    /// The report of a stored run (`bulkhead show`), with every attempt.
    pub fn from_stored(run: &crate::store::StoredRun) -> RunReport {
        use crate::store::TaskState;
        let wf = crate::workflow::parse(&run.workflow_yaml, &run.workflow_file).ok();
        let status = run.status;
        let error = ErrorReport::from_stored;
        let tasks = run
            .tasks
            .iter()
            .map(|t| {
                let spec = wf
                    .as_ref()
                    .and_then(|w| w.tasks.iter().find(|s| s.id == t.task));
                let history = run
                    .attempts
                    .iter()
                    .filter(|a| a.task == t.task)
                    .map(|a| AttemptReport {
                        attempt: a.attempt,
                        status: a.status.as_str().to_string(),
                        error: error(&a.error),
                        started_at: crate::store::rfc3339(a.started_at),
                        finished_at: a.finished_at.map(crate::store::rfc3339),
                        duration_us: a.duration_us,
                        fuel_used: a.fuel_used,
                        peak_memory: a.peak_memory,
                    })
                    .collect();
                let report = TaskReport {
                    status: match t.state {
                        TaskState::Pending => TaskStatus::Pending,
                        TaskState::Succeeded => TaskStatus::Succeeded,
                        TaskState::Failed => TaskStatus::Failed,
                        TaskState::Skipped => TaskStatus::Skipped,
                        TaskState::Cancelled => TaskStatus::Cancelled,
                    },
                    attempts: t.attempts,
                    error: error(&t.error),
                    output: t.output.clone().unwrap_or(serde_json::Value::Null),
                    duration_ms: t.duration_us / 1000,
                    duration_us: t.duration_us,
                    fuel_used: t.fuel_used,
                    peak_memory: t.peak_memory,
                    plugin: spec.map(|s| s.plugin.to_string()).unwrap_or_default(),
                    optional: spec.is_some_and(|s| s.optional),
                    log: String::new(),
                    history,
                };
                (t.task.clone(), report)
            })
            .collect();
        let end = run.finished_at.unwrap_or_else(crate::store::now_ms);
        RunReport {
            run_id: run.run_id.clone(),
            workflow: run.workflow.clone(),
            status,
            tasks,
            started_at: Some(crate::store::rfc3339(run.created_at)),
            finished_at: run.finished_at.map(crate::store::rfc3339),
            due_at: None,
            duration_ms: (end - run.created_at).max(0) as u64,
            error: None,
        }
    }
}
