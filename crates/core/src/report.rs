//! The run report: the `--json` document of docs/architecture.md ("The run report"). Field names are a contract.

use indexmap::IndexMap;
use serde::Serialize;
use std::collections::HashMap;

pub use crate::store::{RunStatus, TaskStatus};

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
    #[schema(value_type = serde_json::Value)]
    pub output: crate::contract::OutputJson,
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

/// What a task's report is made of, wherever it comes from: the executor's records of a run it
/// just ran, or the rows of a stored run. [`TaskReport::new`] is the one place that turns them
/// into the report, so both kinds of report agree field by field.
#[derive(Debug)]
pub struct TaskParts {
    /// Its status.
    pub status: TaskStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Why it did not succeed.
    pub error: Option<ErrorReport>,
    /// Its output, if it succeeded.
    pub output: Option<crate::contract::OutputJson>,
    /// Time spent in its attempts, in microseconds.
    pub duration_us: u64,
    /// Fuel used by its attempts.
    pub fuel_used: u64,
    /// Largest linear memory of any attempt.
    pub peak_memory: u64,
    /// stderr of its last attempt.
    pub log: String,
    /// Every attempt, when known.
    pub history: Vec<AttemptReport>,
}

impl TaskReport {
    /// The report of a task from its parts and, when known, its spec (plugin, optional).
    pub fn new(spec: Option<&crate::workflow::Task>, parts: TaskParts) -> TaskReport {
        TaskReport {
            status: parts.status,
            attempts: parts.attempts,
            error: parts.error,
            output: parts.output.unwrap_or_default(),
            duration_ms: parts.duration_us / 1000,
            duration_us: parts.duration_us,
            fuel_used: parts.fuel_used,
            peak_memory: parts.peak_memory,
            plugin: spec.map(|s| s.plugin.to_string()).unwrap_or_default(),
            optional: spec.is_some_and(|s| s.optional),
            log: parts.log,
            history: parts.history,
        }
    }
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
    /// Only when the API was asked for a page of tasks (`task_limit`) and more follow: the
    /// last task of this page, to pass as `task_after` for the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_task_after: Option<String>,
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
            next_task_after: None,
        }
    }

    /// The report of a stored run (`bulkhead show`), with every attempt.
    pub fn from_stored(run: &crate::store::StoredRun) -> RunReport {
        let wf = crate::workflow::stored::of_run(run)
            .map_err(|e| tracing::warn!(run_id = %run.run_id, error = %e, "the report of this run leaves out the tasks' plugins"))
            .ok();
        let status = run.status;
        let error = ErrorReport::from_stored;
        // One pass over each list (a run may have a million tasks): specs and attempts by task.
        let specs: HashMap<&str, &crate::workflow::Task> = wf
            .as_ref()
            .map(|w| w.tasks.iter().map(|s| (s.id.as_str(), s)).collect())
            .unwrap_or_default();
        let mut attempts: HashMap<&str, Vec<&crate::store::StoredAttempt>> = HashMap::new();
        for a in &run.attempts {
            attempts.entry(a.task.as_str()).or_default().push(a);
        }
        let tasks = run
            .tasks
            .iter()
            .map(|t| {
                let spec = specs.get(t.task.as_str()).copied();
                let history = attempts
                    .remove(t.task.as_str())
                    .unwrap_or_default()
                    .into_iter()
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
                let report = TaskReport::new(
                    spec,
                    TaskParts {
                        status: t.state,
                        attempts: t.attempts,
                        error: error(&t.error),
                        output: t.output.clone(),
                        duration_us: t.duration_us,
                        fuel_used: t.fuel_used,
                        peak_memory: t.peak_memory,
                        log: String::new(),
                        history,
                    },
                );
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
            next_task_after: None,
        }
    }
}

/// A run report written with each task completed as it is written: `fill` gets every task and
/// returns it as it is to be shown (say, with its output and log read from the store), so a
/// report of a million tasks is never whole in memory. Serialises exactly as [`RunReport`] does.
pub struct Filled<'a, F> {
    report: &'a RunReport,
    fill: std::cell::RefCell<F>,
}

impl<'a, F> Filled<'a, F>
where
    F: FnMut(&str, &TaskReport) -> Result<TaskReport, String>,
{
    /// `report`, with every task passed through `fill` when written.
    pub fn new(report: &'a RunReport, fill: F) -> Self {
        Filled {
            report,
            fill: std::cell::RefCell::new(fill),
        }
    }
}

impl<F> Serialize for Filled<'_, F>
where
    F: FnMut(&str, &TaskReport) -> Result<TaskReport, String>,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The fields of RunReport, in its order (a test holds the two together).
        #[derive(Serialize)]
        struct View<'b, T: Serialize> {
            run_id: &'b str,
            workflow: &'b str,
            status: RunStatus,
            tasks: T,
            started_at: &'b Option<String>,
            finished_at: &'b Option<String>,
            due_at: &'b Option<String>,
            duration_ms: u64,
            error: &'b Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            next_task_after: Option<&'b String>,
        }
        struct Tasks<'b, F>(&'b IndexMap<String, TaskReport>, &'b std::cell::RefCell<F>);
        impl<F> Serialize for Tasks<'_, F>
        where
            F: FnMut(&str, &TaskReport) -> Result<TaskReport, String>,
        {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeMap};
                let mut map = s.serialize_map(Some(self.0.len()))?;
                let mut fill = self.1.borrow_mut();
                for (id, task) in self.0 {
                    let shown = fill(id, task).map_err(S::Error::custom)?;
                    map.serialize_entry(id, &shown)?;
                }
                map.end()
            }
        }
        let r = self.report;
        View {
            run_id: &r.run_id,
            workflow: &r.workflow,
            status: r.status,
            tasks: Tasks(&r.tasks, &self.fill),
            started_at: &r.started_at,
            finished_at: &r.finished_at,
            due_at: &r.due_at,
            duration_ms: r.duration_ms,
            error: &r.error,
            next_task_after: r.next_task_after.as_ref(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        let task = TaskReport {
            status: TaskStatus::Succeeded,
            attempts: 2,
            error: None,
            output: crate::contract::OutputJson::of(&serde_json::json!({"n": 1})),
            duration_ms: 1,
            duration_us: 1500,
            fuel_used: 9,
            peak_memory: 65536,
            plugin: "noop".into(),
            optional: false,
            log: "hello".into(),
            history: Vec::new(),
        };
        let mut tasks = IndexMap::new();
        tasks.insert("b".to_string(), task.clone());
        tasks.insert("a".to_string(), task);
        RunReport {
            run_id: "r".into(),
            workflow: "w".into(),
            status: RunStatus::Succeeded,
            tasks,
            started_at: Some("2026-12-01T00:00:00Z".into()),
            finished_at: None,
            due_at: None,
            duration_ms: 3,
            error: Some("e".into()),
            next_task_after: Some("a".into()),
        }
    }

    #[test]
    fn a_filled_report_is_written_exactly_as_the_report() {
        let mut r = report();
        for next in [Some("a".to_string()), None] {
            r.next_task_after = next;
            let filled = Filled::new(&r, |_: &str, t: &TaskReport| Ok(t.clone()));
            assert_eq!(
                serde_json::to_string(&filled).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    #[test]
    fn a_filled_report_shows_what_fill_returns_and_its_errors() {
        let r = report();
        let filled = Filled::new(&r, |id: &str, t: &TaskReport| {
            let mut t = t.clone();
            t.log = format!("log of {id}");
            Ok(t)
        });
        let v: serde_json::Value = serde_json::to_value(&filled).unwrap();
        assert_eq!(v["tasks"]["a"]["log"], "log of a");
        assert_eq!(v["tasks"]["b"]["log"], "log of b");
        let failing = Filled::new(&r, |_: &str, _: &TaskReport| Err("store gone".to_string()));
        let e = serde_json::to_string(&failing).unwrap_err();
        assert!(e.to_string().contains("store gone"), "{e}");
    }
}
