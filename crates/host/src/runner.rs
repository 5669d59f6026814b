//! Joins the executor to the sandbox: the [`Runner`] that runs a task's attempt in wasm.

use bulkhead_core::exec::{AttemptFuture, Runner};
use bulkhead_core::workflow::Workflow;
use bulkhead_sandbox::{Grants, Limits, LogTap, Plugin, Sandbox};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The logs of the attempts running now, by run and task, readable while they run (for
/// `bulkhead serve`'s API). Only a host that asks for it keeps one: it costs a lock and a map
/// entry per attempt.
#[derive(Debug, Default)]
pub struct LiveLogs(Mutex<HashMap<(String, String), LogTap>>);

impl LiveLogs {
    /// The log so far of the attempt of `task` of `run_id` running now, if one is.
    pub fn read(&self, run_id: &str, task: &str) -> Option<Vec<u8>> {
        let tap = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(run_id.to_string(), task.to_string()))
            .cloned()?;
        tap.read()
    }

    fn insert(&self, key: (String, String), tap: LogTap) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, tap);
    }

    /// Removes `tap`, unless a later attempt of the same task has taken its place.
    fn remove(&self, key: &(String, String), tap: &LogTap) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|t| t.is(tap)) {
            map.remove(key);
        }
    }
}

/// Where a runner's attempts show their logs while they run.
pub struct Tapped {
    /// The host's live logs.
    pub logs: Arc<LiveLogs>,
    /// The run.
    pub run_id: String,
}

/// Removes an attempt's entry from [`LiveLogs`] when the attempt ends (or is dropped).
struct Untap {
    logs: Arc<LiveLogs>,
    key: (String, String),
    tap: LogTap,
}

impl Drop for Untap {
    fn drop(&mut self) {
        self.logs.remove(&self.key, &self.tap);
    }
}

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
    tapped: Option<Arc<Tapped>>,
    ids: Vec<String>,
}

impl SandboxRunner {
    /// `plugins[i]` is the plugin of task `i`. `slots` bounds attempts across every run of the
    /// host (the sandbox's instance pool has that many slots).
    pub fn new(
        sandbox: Arc<Sandbox>,
        workflow: &Workflow,
        plugins: Vec<Arc<Plugin>>,
        slots: Arc<tokio::sync::Semaphore>,
        tapped: Option<Tapped>,
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
        let ids = match tapped {
            Some(_) => workflow.tasks.iter().map(|t| t.id.clone()).collect(),
            None => Vec::new(),
        };
        SandboxRunner {
            sandbox,
            tasks,
            slots,
            tapped: tapped.map(Arc::new),
            ids,
        }
    }
}

impl Runner for SandboxRunner {
    fn run(&self, task: usize, input: Vec<bytes::Bytes>) -> AttemptFuture {
        let sandbox = self.sandbox.clone();
        let t = self.tasks[task].clone();
        let slots = self.slots.clone();
        let tap = self.tapped.as_ref().map(|tapped| {
            let tap = LogTap::new();
            let key = (tapped.run_id.clone(), self.ids[task].clone());
            tapped.logs.insert(key.clone(), tap.clone());
            let untap = Untap {
                logs: tapped.logs.clone(),
                key,
                tap: tap.clone(),
            };
            (tap, untap)
        });
        Box::pin(async move {
            // The semaphore is never closed; if it were, running without a permit is still
            // bounded by the pool (the attempt would fail to instantiate, not crash the host).
            let _permit = slots.acquire_owned().await.ok();
            match tap {
                None => sandbox.run(&t.plugin, input, &t.limits, &t.grants).await,
                Some((tap, _untap)) => {
                    sandbox
                        .run_tapped(&t.plugin, input, &t.limits, &t.grants, Some(&tap))
                        .await
                }
            }
        })
    }
}
