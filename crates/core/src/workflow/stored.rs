//! The validated workflow as stored with a run: versioned JSON of [`Workflow`], written once when
//! the run starts and read back for resume, retry, `show` and the API without validating again.
//!
//! Reading it back checks nothing on the file system (a mount folder that is gone is the
//! business of the attempt that needs it) and does not depend on today's validator: a stricter
//! validator later cannot lock old runs out. It checks only what the executor relies on (task
//! ids unique, `needs` in range and acyclic), so a damaged row is an error, never a panic.

use super::{PluginRef, RetryPolicy, Task, Workflow, WorkflowError};
use crate::contract::{Grants, Limits};
use crate::store::StoredRun;
use crate::trigger::Schedule;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The version of the stored form this build writes. It also reads format 1 (Bulkhead before
/// the shared tables: every task with its full limits, retry policy and grants).
pub const SPEC_FORMAT: u32 = 2;

/// Format 2: the plugins, retry policies, limits and grants that tasks use are stored once each,
/// in tables, and a task names them by index; fields at their default (index 0 included) are left
/// out. Tasks with the same settings store as about 30 bytes each instead of 470.
#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    workflow: Shared<'a>,
}

#[derive(Serialize)]
struct Shared<'a> {
    name: &'a str,
    description: &'a Option<String>,
    file: &'a Path,
    hash: &'a str,
    concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_active_runs: Option<u32>,
    schedule: &'a Option<Schedule>,
    #[serde(skip_serializing_if = "indexmap::IndexMap::is_empty")]
    params: &'a super::params::Params,
    plugins: Vec<&'a PluginRef>,
    retries: Vec<&'a Arc<RetryPolicy>>,
    limits: Vec<&'a Arc<Limits>>,
    grants: Vec<&'a Arc<Grants>>,
    tasks: Vec<TaskOut<'a>>,
}

#[derive(Serialize)]
struct TaskOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "is_first")]
    plugin: usize,
    #[serde(skip_serializing_if = "Value::is_null")]
    params: &'a Value,
    needs: &'a [usize],
    #[serde(skip_serializing_if = "is_first")]
    retry: usize,
    #[serde(skip_serializing_if = "is_first")]
    limits: usize,
    #[serde(skip_serializing_if = "is_first")]
    grants: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
    #[serde(skip_serializing_if = "is_zero")]
    priority: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn is_first(i: &usize) -> bool {
    *i == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    format: u32,
    workflow: SharedIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedIn {
    name: String,
    description: Option<String>,
    file: PathBuf,
    hash: String,
    concurrency: Option<u32>,
    #[serde(default)]
    max_active_runs: Option<u32>,
    schedule: Option<Schedule>,
    #[serde(default)]
    params: super::params::Params,
    plugins: Vec<PluginRef>,
    retries: Vec<Arc<RetryPolicy>>,
    limits: Vec<Arc<Limits>>,
    grants: Vec<Arc<Grants>>,
    tasks: Vec<TaskIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskIn {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    plugin: usize,
    #[serde(default)]
    params: Value,
    needs: Vec<usize>,
    #[serde(default)]
    retry: usize,
    #[serde(default)]
    limits: usize,
    #[serde(default)]
    grants: usize,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    priority: i32,
}

/// Format 1, read for runs stored before format 2.
#[derive(Deserialize)]
struct InV1 {
    workflow: Workflow,
}

#[derive(Deserialize)]
struct Header {
    format: u32,
}

/// Distinct values in order of first use. Neighbouring tasks mostly share settings, so the last
/// value is compared first; other values are found by their JSON text.
struct Table<'a, T> {
    items: Vec<&'a T>,
    by_text: HashMap<String, usize>,
    last: Option<usize>,
}

impl<'a, T: PartialEq + Serialize> Table<'a, T> {
    fn new() -> Self {
        Table {
            items: Vec::new(),
            by_text: HashMap::new(),
            last: None,
        }
    }

    fn index(&mut self, item: &'a T) -> usize {
        if let Some(i) = self.last.filter(|&i| self.items[i] == item) {
            return i;
        }
        // Serialising plain data cannot fail.
        let text = serde_json::to_string(item).unwrap_or_default();
        let next = self.items.len();
        let i = *self.by_text.entry(text).or_insert(next);
        if i == next {
            self.items.push(item);
        }
        self.last = Some(i);
        i
    }
}

/// The stored form of a validated workflow.
pub fn to_spec(workflow: &Workflow) -> String {
    let (mut plugins, mut retries, mut limits, mut grants) =
        (Table::new(), Table::new(), Table::new(), Table::new());
    let tasks = workflow
        .tasks
        .iter()
        .map(|t| TaskOut {
            id: &t.id,
            description: t.description.as_deref(),
            plugin: plugins.index(&t.plugin),
            params: &t.params,
            needs: &t.needs,
            retry: retries.index(&t.retry),
            limits: limits.index(&t.limits),
            grants: grants.index(&t.grants),
            optional: t.optional,
            priority: t.priority,
        })
        .collect();
    // Serialising plain data of strings, numbers and maps cannot fail.
    serde_json::to_string(&Out {
        format: SPEC_FORMAT,
        workflow: Shared {
            name: &workflow.name,
            description: &workflow.description,
            file: &workflow.file,
            hash: &workflow.hash,
            concurrency: workflow.concurrency,
            max_active_runs: workflow.max_active_runs,
            params: &workflow.params,
            schedule: &workflow.schedule,
            plugins: plugins.items,
            retries: retries.items,
            limits: limits.items,
            grants: grants.items,
            tasks,
        },
    })
    .unwrap_or_default()
}

fn other_format(format: u32) -> String {
    format!("stored format {format} (this Bulkhead reads formats 1 and {SPEC_FORMAT})")
}

/// Reads a stored workflow back; `Err` says what is wrong with it.
pub fn from_spec(text: &str) -> Result<Workflow, String> {
    // One parse in the common case; the header is read on its own only for format 1 or to
    // explain a failure.
    let wf = match serde_json::from_str::<In>(text) {
        Ok(stored) if stored.format == SPEC_FORMAT => expand(stored.workflow)?,
        Ok(stored) => return Err(other_format(stored.format)),
        Err(e) => match serde_json::from_str::<Header>(text) {
            Ok(h) if h.format == 1 => {
                serde_json::from_str::<InV1>(text)
                    .map_err(|e| e.to_string())?
                    .workflow
            }
            Ok(h) if h.format != SPEC_FORMAT => return Err(other_format(h.format)),
            Ok(_) => return Err(e.to_string()),
            Err(e) => return Err(format!("not a stored workflow: {e}")),
        },
    };
    check(&wf)?;
    Ok(wf)
}

/// Format 2's tables back into tasks.
fn expand(w: SharedIn) -> Result<Workflow, String> {
    fn pick<T: Clone>(table: &[T], i: usize, what: &str, task: &str) -> Result<T, String> {
        table.get(i).cloned().ok_or_else(|| {
            format!(
                "task `{task}` names {what} number {i} of {} stored",
                table.len()
            )
        })
    }
    let tasks = w
        .tasks
        .into_iter()
        .map(|t| {
            Ok(Task {
                plugin: pick(&w.plugins, t.plugin, "plugin", &t.id)?,
                retry: pick(&w.retries, t.retry, "retry policy", &t.id)?,
                limits: pick(&w.limits, t.limits, "limits", &t.id)?,
                grants: pick(&w.grants, t.grants, "grants", &t.id)?,
                id: t.id,
                description: t.description,
                params: t.params,
                needs: t.needs,
                optional: t.optional,
                priority: t.priority,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Workflow {
        name: w.name,
        description: w.description,
        file: w.file,
        hash: w.hash,
        concurrency: w.concurrency,
        max_active_runs: w.max_active_runs,
        schedule: w.schedule,
        params: w.params,
        tasks,
    })
}

/// What the executor relies on: task ids unique, `needs` in range and acyclic.
fn check(wf: &Workflow) -> Result<(), String> {
    let n = wf.tasks.len();
    let mut ids = std::collections::HashSet::with_capacity(n);
    for (i, t) in wf.tasks.iter().enumerate() {
        if !ids.insert(t.id.as_str()) {
            return Err(format!("task `{}` appears twice", t.id));
        }
        if let Some(&bad) = t.needs.iter().find(|&&need| need >= n) {
            return Err(format!("task `{}` needs task number {bad} of {n}", t.id));
        }
        if t.needs.contains(&i) {
            return Err(format!("task `{}` needs itself", t.id));
        }
    }
    if let Some(cycle) =
        crate::plan::find_cycles(wf.tasks.iter().map(|t| t.needs.as_slice())).first()
    {
        return Err(format!(
            "a dependency cycle through `{}`",
            wf.tasks[cycle[0]].id
        ));
    }
    Ok(())
}

/// The workflow of a stored run: the stored validated form, or, for a run stored before that
/// form existed (schema 4 and older), its YAML validated again.
pub fn of_run(run: &StoredRun) -> Result<Workflow, WorkflowError> {
    match &run.workflow_spec {
        Some(spec) => from_spec(spec).map_err(|reason| WorkflowError::Stored {
            run_id: run.run_id.clone(),
            reason,
        }),
        None => super::parse(&run.workflow_yaml, &run.workflow_file),
    }
}
