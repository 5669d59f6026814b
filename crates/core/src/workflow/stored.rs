//! The validated workflow as stored with a run: versioned JSON of [`Workflow`], written once when
//! the run starts and read back for resume, retry, `show` and the API without validating again.
//!
//! Reading it back checks nothing on the file system (a mount folder that is gone is the
//! business of the attempt that needs it) and does not depend on today's validator: a stricter
//! validator later cannot lock old runs out. It checks only what the executor relies on (task
//! ids unique, `needs` in range and acyclic), so a damaged row is an error, never a panic.

use super::{Workflow, WorkflowError};
use crate::store::StoredRun;
use serde::{Deserialize, Serialize};

/// The version of the stored form this build writes and reads.
pub const SPEC_FORMAT: u32 = 1;

#[derive(Serialize)]
struct Out<'a> {
    format: u32,
    workflow: &'a Workflow,
}

#[derive(Deserialize)]
struct In {
    format: u32,
    workflow: Workflow,
}

#[derive(Deserialize)]
struct Header {
    format: u32,
}

/// The stored form of a validated workflow.
pub fn to_spec(workflow: &Workflow) -> String {
    // Serialising plain data of strings, numbers and maps cannot fail.
    serde_json::to_string(&Out {
        format: SPEC_FORMAT,
        workflow,
    })
    .unwrap_or_default()
}

fn other_format(format: u32) -> String {
    format!("stored format {format} (this Bulkhead reads format {SPEC_FORMAT})")
}

/// Reads a stored workflow back; `Err` says what is wrong with it.
pub fn from_spec(text: &str) -> Result<Workflow, String> {
    // One parse in the common case; the header is read on its own only to explain a failure.
    let stored: In = match serde_json::from_str(text) {
        Ok(stored) => stored,
        Err(e) => {
            return Err(match serde_json::from_str::<Header>(text) {
                Ok(h) if h.format != SPEC_FORMAT => other_format(h.format),
                Ok(_) => e.to_string(),
                Err(e) => format!("not a stored workflow: {e}"),
            })
        }
    };
    if stored.format != SPEC_FORMAT {
        return Err(other_format(stored.format));
    }
    let wf = stored.workflow;
    let n = wf.tasks.len();
    let mut ids = std::collections::HashSet::new();
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
    Ok(wf)
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
