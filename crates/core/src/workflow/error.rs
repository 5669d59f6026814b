//! Errors about workflow files. Each [`Problem`] names the task and field it is about and, where
//! one exists, the fix.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The task it is about, if any.
    pub task: Option<String>,
    /// The field (a dotted path such as `retry.max_attempts`), if any.
    pub field: Option<String>,
    /// What is wrong, with the offending value.
    pub message: String,
    /// How to fix it, if we can tell.
    pub hint: Option<String>,
    /// Line and column (from 1) in the file, when known.
    pub location: Option<(usize, usize)>,
}

impl Problem {
    /// A problem with `task` (if any) and its `field` (if any).
    pub fn new(task: Option<&str>, field: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            task: task.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
            hint: None,
            location: None,
        }
    }

    /// Adds how to fix it (an empty hint adds nothing).
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        self.hint = (!hint.is_empty()).then_some(hint);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(task) = &self.task {
            write!(f, "task `{task}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    help: {hint}")?;
        }
        Ok(())
    }
}

/// Why a workflow could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The file could not be read.
    #[error("cannot read workflow file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid workflow.
    #[error("{}", render(file, problems))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Everything wrong with it, in file order where known.
        problems: Vec<Problem>,
    },
    /// The validated workflow stored with a run cannot be read back.
    #[error("the workflow stored with run `{run_id}` cannot be read ({reason}); it was written by a newer Bulkhead, or the state store is damaged")]
    Stored {
        /// The run.
        run_id: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn render(file: &std::path::Path, problems: &[Problem]) -> String {
    let mut out = format!(
        "invalid workflow {} ({} problem{}):",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&file.display().to_string());
        if let Some((line, col)) = p.location {
            out.push_str(&format!(":{line}:{col}"));
        }
        out.push_str(": ");
        out.push_str(&p.to_string());
    }
    out
}
