//! The data a memory store holds, and how one transition changes it.

use bulkhead_core::store::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Everything the store holds, behind its one lock.
#[derive(Default)]
pub(crate) struct State {
    /// By run id: ids are UUIDv7, so this order is creation order (what `list` pages by).
    pub runs: BTreeMap<String, Run>,
    /// By trigger key.
    pub triggers: HashMap<String, Trigger>,
    /// Trigger key by run id (a run id has at most one trigger).
    pub trigger_of_run: HashMap<String, String>,
    /// Triggers not claimed yet, by `(due_at, key)`: what `claim_due` takes, oldest first.
    pub unclaimed: BTreeSet<(i64, String)>,
    /// Hosts by owner id.
    pub hosts: BTreeMap<String, HostBeat>,
}

/// A run and its tasks.
pub(crate) struct Run {
    pub workflow: String,
    pub workflow_hash: String,
    pub workflow_file: PathBuf,
    pub workflow_yaml: String,
    pub workflow_spec: String,
    pub params: serde_json::Value,
    pub status: RunStatus,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub lease_generation: i64,
    pub cancel_requested: bool,
    /// By reference.
    pub plugins: Vec<PluginVersion>,
    /// In workflow order.
    pub tasks: Vec<Task>,
    /// Position of each task in `tasks`.
    pub position: HashMap<String, usize>,
    /// Attempts started for tasks the run does not have: kept (a commit writes what it is
    /// given, as a database would) but never read.
    pub strays: BTreeSet<(String, u32)>,
}

/// A task and its attempts.
pub(crate) struct Task {
    pub name: String,
    pub status: TaskStatus,
    pub attempts: u32,
    pub uncounted: u32,
    pub output: Option<OutputJson>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
    /// By attempt number.
    pub rows: Vec<Attempt>,
}

/// One attempt.
pub(crate) struct Attempt {
    pub attempt: u32,
    pub status: AttemptStatus,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub log: Option<String>,
}

fn err3(
    kind: &Option<String>,
    message: &Option<String>,
    code: Option<i32>,
) -> Option<(String, String, Option<i32>)> {
    kind.clone()
        .map(|k| (k, message.clone().unwrap_or_default(), code))
}

impl Task {
    /// A new task of a run: pending, never attempted.
    pub fn new(name: String) -> Task {
        Task {
            name,
            status: TaskStatus::Pending,
            attempts: 0,
            uncounted: 0,
            output: None,
            error_kind: None,
            error_message: None,
            exit_code: None,
            duration_us: 0,
            fuel_used: 0,
            peak_memory: 0,
            rows: Vec::new(),
        }
    }

    fn row(&mut self, attempt: u32) -> Option<&mut Attempt> {
        self.rows
            .binary_search_by_key(&attempt, |a| a.attempt)
            .ok()
            .map(|i| &mut self.rows[i])
    }

    /// The task as `load` returns it.
    pub fn stored(&self) -> StoredTask {
        StoredTask {
            task: self.name.clone(),
            state: self.status,
            attempts: self.attempts,
            uncounted: self.uncounted,
            output: self.output.clone(),
            error: err3(&self.error_kind, &self.error_message, self.exit_code),
            duration_us: self.duration_us,
            fuel_used: self.fuel_used,
            peak_memory: self.peak_memory,
        }
    }

    /// Its attempts as `load` returns them.
    pub fn stored_attempts(&self) -> impl Iterator<Item = StoredAttempt> + '_ {
        self.rows.iter().map(|a| StoredAttempt {
            task: self.name.clone(),
            attempt: a.attempt,
            status: a.status,
            started_at: a.started_at,
            finished_at: a.finished_at,
            error: err3(&a.error_kind, &a.error_message, a.exit_code),
            duration_us: a.duration_us,
            fuel_used: a.fuel_used,
            peak_memory: a.peak_memory,
        })
    }

    /// The number of its latest attempt, 0 if none started.
    pub fn latest(&self) -> u32 {
        self.rows.last().map_or(0, |a| a.attempt)
    }
}

impl Run {
    /// Whether an attempt row `(task, attempt)` exists.
    fn has_attempt(&self, task: &str, attempt: u32) -> bool {
        match self.position.get(task) {
            Some(&i) => self.tasks[i]
                .rows
                .binary_search_by_key(&attempt, |a| a.attempt)
                .is_ok(),
            None => self.strays.contains(&(task.to_string(), attempt)),
        }
    }

    /// Why `batch` cannot be applied as a whole, if it cannot: an attempt started twice is
    /// refused, as a database's primary key refuses it, and then nothing of the batch is kept.
    pub fn check(&self, batch: &[Transition]) -> Result<(), String> {
        let mut new = BTreeSet::new();
        for t in batch {
            if let Transition::AttemptStarted { task, attempt, .. } = t {
                if self.has_attempt(task, *attempt) || !new.insert((task.as_str(), *attempt)) {
                    return Err(format!(
                        "attempt {attempt} of task `{task}` was already recorded"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies one transition; [`Run::check`] has passed for its batch.
    pub fn apply(&mut self, t: &Transition) {
        match t {
            Transition::AttemptStarted { task, attempt, at } => {
                let Some(&i) = self.position.get(task) else {
                    self.strays.insert((task.clone(), *attempt));
                    return;
                };
                let rows = &mut self.tasks[i].rows;
                let at_index = rows.partition_point(|a| a.attempt < *attempt);
                rows.insert(
                    at_index,
                    Attempt {
                        attempt: *attempt,
                        status: AttemptStatus::Running,
                        started_at: *at,
                        finished_at: None,
                        error_kind: None,
                        error_message: None,
                        exit_code: None,
                        duration_us: 0,
                        fuel_used: 0,
                        peak_memory: 0,
                        log: None,
                    },
                );
            }
            Transition::AttemptEnded {
                task,
                attempt,
                at,
                end,
                duration_us,
                fuel_used,
                peak_memory,
                log,
                task_state,
            } => {
                let Some(&i) = self.position.get(task) else {
                    return;
                };
                let (status, kind, message, code, _) = end.columns();
                let t = &mut self.tasks[i];
                if let Some(row) = t.row(*attempt) {
                    row.status = status;
                    row.finished_at = Some(*at);
                    row.error_kind = kind.map(str::to_string);
                    row.error_message = message.map(str::to_string);
                    row.exit_code = code;
                    row.duration_us = *duration_us;
                    row.fuel_used = *fuel_used;
                    row.peak_memory = *peak_memory;
                    row.log = Some(log.clone());
                }
                t.duration_us = t.duration_us.saturating_add(*duration_us);
                t.fuel_used = t.fuel_used.saturating_add(*fuel_used);
                t.peak_memory = t.peak_memory.max(*peak_memory);
                if let Some(state) = task_state {
                    t.status = *state;
                }
                if let AttemptEnd::Succeeded(output) = end {
                    t.output = Some(output.clone());
                }
                if status == AttemptStatus::Interrupted {
                    t.uncounted += 1;
                } else {
                    t.error_kind = kind.map(str::to_string);
                    t.error_message = message.map(str::to_string);
                    t.exit_code = code;
                }
                t.attempts = t.attempts.max(*attempt);
            }
            Transition::TaskDecided {
                task,
                state,
                message,
            } => {
                let Some(&i) = self.position.get(task) else {
                    return;
                };
                let t = &mut self.tasks[i];
                t.status = *state;
                t.error_kind = Some(state.as_str().to_string());
                t.error_message = Some(message.clone());
                t.exit_code = None;
            }
            Transition::RunEnded { status, at } => {
                self.status = *status;
                self.finished_at = status.is_final().then_some(*at);
                self.lease_owner = None;
                self.lease_expires_at = None;
            }
        }
    }

    /// Marks its running attempts interrupted at `now`; returns how many each task had.
    pub fn interrupt_running(&mut self, now: i64) -> Vec<u32> {
        self.tasks
            .iter_mut()
            .map(|t| {
                let mut n = 0;
                for a in t
                    .rows
                    .iter_mut()
                    .filter(|a| a.status == AttemptStatus::Running)
                {
                    a.status = AttemptStatus::Interrupted;
                    a.finished_at = Some(now);
                    n += 1;
                }
                n
            })
            .collect()
    }

    /// Its summary as `list` gives it.
    pub fn summary(&self, run_id: &str, due_at: Option<i64>) -> RunSummary {
        let mut counts = [0i64; 6];
        for t in &self.tasks {
            counts[0] += 1;
            match t.status {
                TaskStatus::Succeeded => counts[1] += 1,
                TaskStatus::Failed => counts[2] += 1,
                TaskStatus::Skipped => counts[3] += 1,
                TaskStatus::Cancelled => counts[4] += 1,
                TaskStatus::Pending => {}
            }
            counts[5] += t
                .rows
                .iter()
                .filter(|a| a.status == AttemptStatus::Running)
                .count() as i64;
        }
        let [n, ok, bad, skip, gone, busy] = counts;
        RunSummary {
            run_id: run_id.to_string(),
            workflow: self.workflow.clone(),
            status: self.status,
            started_at: Some(rfc3339(self.created_at)),
            finished_at: self.finished_at.map(rfc3339),
            due_at: due_at.map(rfc3339),
            progress: RunProgress::of_counts(n, ok, bad, skip, gone, busy),
        }
    }
}
