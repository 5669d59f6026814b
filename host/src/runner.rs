//! Joins the executor to the sandbox: the [`Runner`] that runs a task's attempt in wasm.

use crate::exec::{AttemptFuture, Runner};
use crate::sandbox::{Grants, Limits, Plugin, Sandbox};
use crate::workflow::Workflow;
use std::sync::Arc;

struct Prepared {
    plugin: Arc<Plugin>,
    limits: Limits,
    grants: Grants,
}

/// Runs each task's attempts with its plugin, limits and grants.
pub struct SandboxRunner {
    sandbox: Arc<Sandbox>,
    tasks: Vec<Arc<Prepared>>,
}

impl SandboxRunner {
    /// `plugins[i]` is the plugin of task `i`.
    pub fn new(sandbox: Arc<Sandbox>, workflow: &Workflow, plugins: Vec<Arc<Plugin>>) -> Self {
        let tasks = workflow
            .tasks
            .iter()
            .zip(plugins)
            .map(|(t, plugin)| {
                Arc::new(Prepared {
                    plugin,
                    limits: t.limits.clone(),
                    grants: t.grants.clone(),
                })
            })
            .collect();
        SandboxRunner { sandbox, tasks }
    }
}

impl Runner for SandboxRunner {
    fn run(&self, task: usize, input: Vec<u8>) -> AttemptFuture {
        let sandbox = self.sandbox.clone();
        let t = self.tasks[task].clone();
        Box::pin(async move { sandbox.run(&t.plugin, input, &t.limits, &t.grants).await })
    }
}
