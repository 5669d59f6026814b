//! Joins the executor to the sandbox: the [`Runner`] that runs a task's attempt in wasm.

use bulkhead_core::exec::{AttemptFuture, Runner};
use bulkhead_core::workflow::Workflow;
use bulkhead_sandbox::{Grants, Limits, Plugin, Sandbox};
use std::sync::Arc;

struct Prepared {
    plugin: Arc<Plugin>,
    limits: Arc<Limits>,
    grants: Arc<Grants>,
}

/// Runs each task's attempts with its plugin, limits and grants.
pub struct SandboxRunner {
    sandbox: Arc<Sandbox>,
    tasks: Vec<Arc<Prepared>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl SandboxRunner {
    /// `plugins[i]` is the plugin of task `i`. `slots` bounds attempts across every run of the
    /// host (the sandbox's instance pool has that many slots).
    pub fn new(
        sandbox: Arc<Sandbox>,
        workflow: &Workflow,
        plugins: Vec<Arc<Plugin>>,
        slots: Arc<tokio::sync::Semaphore>,
    ) -> Self {
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
        SandboxRunner {
            sandbox,
            tasks,
            slots,
        }
    }
}

impl Runner for SandboxRunner {
    fn run(&self, task: usize, input: Vec<bytes::Bytes>) -> AttemptFuture {
        let sandbox = self.sandbox.clone();
        let t = self.tasks[task].clone();
        let slots = self.slots.clone();
        Box::pin(async move {
            // The semaphore is never closed; if it were, running without a permit is still
            // bounded by the pool (the attempt would fail to instantiate, not crash the host).
            let _permit = slots.acquire_owned().await.ok();
            sandbox.run(&t.plugin, input, &t.limits, &t.grants).await
        })
    }
}
