//! The in-memory backend: the same behaviour as SQLite, kept in maps. For tests and for runs that
//! need no durability (`--store :memory:`).

use super::lease::LEASE_TTL_MS;
use super::lease::{check_acquirable, lease_is_free};
use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Row {
    run: StoredRun,
    logs: HashMap<(String, u32), String>,
    cancel_requested: bool,
    /// Position of each task in `run.tasks`, and of each attempt in `run.attempts`: a
    /// transition costs the same at a million tasks as at ten.
    task_at: HashMap<String, usize>,
    attempt_at: HashMap<(String, u32), usize>,
}

/// A store that forgets everything when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    runs: Mutex<HashMap<String, Row>>,
    triggers: Mutex<Vec<Trigger>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Row>) -> T) -> T {
        let mut guard = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

fn row<'a>(runs: &'a mut HashMap<String, Row>, run_id: &str) -> Result<&'a mut Row, StoreError> {
    runs.get_mut(run_id)
        .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))
}

fn apply(row: &mut Row, t: Transition) {
    let Row {
        run,
        logs,
        task_at,
        attempt_at,
        ..
    } = row;
    let task_mut = |_: &mut StoredRun, task: &str| task_at.get(task).copied();
    match t {
        Transition::AttemptStarted { task, attempt, at } => {
            if let Some(i) = task_mut(run, &task) {
                run.tasks[i].attempts = attempt;
            }
            attempt_at.insert((task.clone(), attempt), run.attempts.len());
            run.attempts.push(StoredAttempt {
                task,
                attempt,
                status: AttemptStatus::Running,
                started_at: at,
                finished_at: None,
                error: None,
                duration_us: 0,
                fuel_used: 0,
                peak_memory: 0,
            });
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
            let (status, error, output) = match end {
                AttemptEnd::Succeeded(v) => (AttemptStatus::Succeeded, None, Some(v)),
                AttemptEnd::Failed {
                    kind,
                    message,
                    exit_code,
                } => (
                    AttemptStatus::Failed,
                    Some((kind, message, exit_code)),
                    None,
                ),
                AttemptEnd::Interrupted => (AttemptStatus::Interrupted, None, None),
            };
            let at_index = attempt_at.get(&(task.clone(), attempt)).copied();
            if let Some(a) = at_index.and_then(|i| run.attempts.get_mut(i)) {
                a.status = status;
                a.finished_at = Some(at);
                a.error = error.clone();
                (a.duration_us, a.fuel_used, a.peak_memory) = (duration_us, fuel_used, peak_memory);
            }
            if let Some(i) = task_mut(run, &task) {
                let t = &mut run.tasks[i];
                t.duration_us += duration_us;
                t.fuel_used += fuel_used;
                t.peak_memory = t.peak_memory.max(peak_memory);
                if status == AttemptStatus::Interrupted {
                    t.uncounted += 1;
                } else {
                    t.error = error;
                }
                if let Some(s) = task_state {
                    t.state = s;
                }
                if output.is_some() {
                    t.output = output;
                }
            }
            logs.insert((task, attempt), log);
        }
        Transition::TaskDecided {
            task,
            state,
            message,
        } => {
            if let Some(i) = task_mut(run, &task) {
                run.tasks[i].state = state;
                run.tasks[i].error = Some((state.as_str().to_string(), message, None));
            }
        }
        Transition::RunEnded { status, at } => {
            run.status = status;
            run.finished_at = status.is_final().then_some(at);
            run.lease_owner = None;
            run.lease_expires_at = None;
        }
    }
}

fn interrupt_running(row: &mut Row, now: i64) {
    let run = &mut row.run;
    for a in run
        .attempts
        .iter_mut()
        .filter(|a| a.status == AttemptStatus::Running)
    {
        a.status = AttemptStatus::Interrupted;
        a.finished_at = Some(now);
        if let Some(t) = row.task_at.get(&a.task).and_then(|&i| run.tasks.get_mut(i)) {
            t.uncounted += 1;
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_run(&self, new: NewRun) -> Result<(), StoreError> {
        self.with(|runs| {
            if runs.contains_key(&new.run_id) {
                return Err(StoreError::Conflict(format!(
                    "run `{}` exists already",
                    new.run_id
                )));
            }
            let tasks = new
                .tasks
                .iter()
                .map(|t| StoredTask {
                    task: t.clone(),
                    state: TaskStatus::Pending,
                    attempts: 0,
                    uncounted: 0,
                    output: None,
                    error: None,
                    duration_us: 0,
                    fuel_used: 0,
                    peak_memory: 0,
                })
                .collect();
            let run = StoredRun {
                run_id: new.run_id.clone(),
                workflow: new.workflow,
                workflow_hash: new.workflow_hash,
                workflow_file: new.workflow_file,
                workflow_yaml: new.workflow_yaml,
                params: new.params,
                status: RunStatus::Running,
                created_at: new.created_at,
                finished_at: None,
                lease_owner: Some(new.owner),
                lease_expires_at: Some(new.lease_expires_at),
                plugins: new.plugins,
                tasks,
                attempts: Vec::new(),
            };
            runs.insert(
                new.run_id,
                Row {
                    task_at: run
                        .tasks
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (t.task.clone(), i))
                        .collect(),
                    attempt_at: HashMap::new(),
                    run,
                    logs: HashMap::new(),
                    cancel_requested: false,
                },
            );
            Ok(())
        })
    }

    async fn commit(
        &self,
        run_id: &str,
        owner: &str,
        batch: Vec<Transition>,
    ) -> Result<Commit, StoreError> {
        self.with(|runs| {
            let row = row(runs, run_id)?;
            if row.run.lease_owner.as_deref() != Some(owner) {
                return Err(StoreError::LostLease(run_id.to_string()));
            }
            let ends = batch
                .iter()
                .any(|t| matches!(t, Transition::RunEnded { .. }));
            for t in batch {
                apply(row, t);
            }
            if !ends {
                row.run.lease_expires_at = Some(now_ms() + LEASE_TTL_MS);
            }
            Ok(Commit {
                cancel_requested: row.cancel_requested,
            })
        })
    }

    async fn acquire(
        &self,
        run_id: &str,
        owner: &Owner,
        now: i64,
        ttl: i64,
    ) -> Result<(), StoreError> {
        self.with(|runs| {
            let row = row(runs, run_id)?;
            let r = &mut row.run;
            check_acquirable(
                run_id,
                r.status.as_str(),
                r.lease_owner.as_deref(),
                r.lease_expires_at,
                owner,
                now,
            )?;
            interrupt_running(row, now);
            let r = &mut row.run;
            r.lease_owner = Some(owner.0.clone());
            r.lease_expires_at = Some(now + ttl);
            r.status = RunStatus::Running;
            row.cancel_requested = false;
            Ok(())
        })
    }

    async fn release(&self, run_id: &str, owner: &str) -> Result<(), StoreError> {
        self.with(|runs| {
            if let Some(row) = runs.get_mut(run_id) {
                if row.run.lease_owner.as_deref() == Some(owner) {
                    row.run.lease_owner = None;
                    row.run.lease_expires_at = None;
                }
            }
            Ok(())
        })
    }

    async fn load(&self, run_id: &str) -> Result<StoredRun, StoreError> {
        self.with(|runs| row(runs, run_id).map(|r| r.run.clone()))
    }

    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let due: std::collections::HashMap<String, i64> = self
            .triggers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|t| (t.run_id.clone(), t.due_at))
            .collect();
        let waiting: Vec<Trigger> = self.with(|runs| {
            self.triggers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|t| t.claimed_at.is_none() || t.status() != RunStatus::Pending)
                .filter(|t| !runs.contains_key(&t.run_id))
                .cloned()
                .collect()
        });
        self.with(|runs| {
            let started = runs.values().map(|r| &r.run).map(|r| RunSummary {
                run_id: r.run_id.clone(),
                workflow: r.workflow.clone(),
                status: r.status,
                started_at: Some(rfc3339(r.created_at)),
                finished_at: r.finished_at.map(rfc3339),
                due_at: due.get(&r.run_id).copied().map(rfc3339),
            });
            let not_started = waiting.into_iter().map(|t| RunSummary {
                status: t.status(),
                started_at: None,
                finished_at: t.ended_at().map(rfc3339),
                due_at: Some(rfc3339(t.due_at)),
                run_id: t.run_id,
                workflow: t.workflow,
            });
            let mut all: Vec<RunSummary> = started
                .chain(not_started)
                .filter(|r| filter.workflow.as_ref().is_none_or(|w| &r.workflow == w))
                .filter(|r| filter.status.is_none_or(|s| r.status == s))
                .filter(|r| filter.before.as_ref().is_none_or(|b| &r.run_id < b))
                .collect();
            all.sort_by(|a, b| b.run_id.cmp(&a.run_id));
            let limit = if filter.limit == 0 {
                usize::MAX
            } else {
                filter.limit
            };
            all.truncate(limit);
            Ok(all)
        })
    }

    async fn logs(
        &self,
        run_id: &str,
        task: Option<&str>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>, StoreError> {
        self.with(|runs| {
            let row = row(runs, run_id)?;
            let order = |t: &str| row.task_at.get(t).copied().unwrap_or(usize::MAX);
            let mut out: Vec<AttemptLog> = row
                .run
                .attempts
                .iter()
                .filter(|a| {
                    task.is_none_or(|t| a.task == t) && attempt.is_none_or(|n| a.attempt == n)
                })
                .map(|a| AttemptLog {
                    task: a.task.clone(),
                    attempt: a.attempt,
                    log: row
                        .logs
                        .get(&(a.task.clone(), a.attempt))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect();
            out.sort_by_key(|l| (order(&l.task), l.attempt));
            Ok(out)
        })
    }

    async fn task_results(
        &self,
        run_id: &str,
        from: usize,
        limit: usize,
    ) -> Result<Vec<TaskResult>, StoreError> {
        self.with(|runs| {
            let row = row(runs, run_id)?;
            Ok(row
                .run
                .tasks
                .iter()
                .skip(from)
                .take(limit)
                .map(|t| TaskResult {
                    task: t.task.clone(),
                    output: t.output.clone(),
                    log: row
                        .logs
                        .get(&(t.task.clone(), t.attempts))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect())
        })
    }

    async fn unfinished(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let me = Owner::new();
        self.with(|runs| {
            let mut out: Vec<&StoredRun> = runs
                .values()
                .map(|r| &r.run)
                .filter(|r| !r.status.is_final())
                .filter(|r| {
                    lease_is_free(
                        r.status.as_str(),
                        r.lease_owner.as_deref(),
                        r.lease_expires_at,
                        &me,
                        now,
                    )
                })
                .collect();
            out.sort_by_key(|r| (r.created_at, r.run_id.clone()));
            Ok(out.into_iter().map(|r| r.run_id.clone()).collect())
        })
    }

    async fn request_cancel(&self, run_id: &str, now: i64) -> Result<CancelOutcome, StoreError> {
        let me = Owner::new();
        let exists = self.with(|runs| runs.contains_key(run_id));
        if !exists {
            let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
            let t = triggers
                .iter_mut()
                .find(|t| t.run_id == run_id)
                .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))?;
            return match t.cancel()? {
                Ok(()) => {
                    t.cancelled_at = Some(now);
                    t.claimed_at = Some(now);
                    Ok(CancelOutcome::Cancelled)
                }
                Err(status) => Ok(CancelOutcome::AlreadyEnded(status)),
            };
        }
        self.with(|runs| {
            let row = row(runs, run_id)?;
            let r = &mut row.run;
            if r.status.is_final() {
                return Ok(CancelOutcome::AlreadyEnded(r.status));
            }
            if !lease_is_free(
                r.status.as_str(),
                r.lease_owner.as_deref(),
                r.lease_expires_at,
                &me,
                now,
            ) {
                row.cancel_requested = true;
                return Ok(CancelOutcome::Asked);
            }
            interrupt_running(row, now);
            let r = &mut row.run;
            for t in r
                .tasks
                .iter_mut()
                .filter(|t| t.state == TaskStatus::Pending)
            {
                t.state = TaskStatus::Cancelled;
                t.error = Some(("cancelled".into(), "the run was cancelled".into(), None));
            }
            r.status = RunStatus::Cancelled;
            r.finished_at = Some(now);
            r.lease_owner = None;
            r.lease_expires_at = None;
            Ok(CancelOutcome::Cancelled)
        })
    }

    async fn reset_tasks(&self, run_id: &str, tasks: &[String]) -> Result<(), StoreError> {
        self.with(|runs| {
            let row = row(runs, run_id)?;
            for t in row.run.tasks.iter_mut().filter(|t| tasks.contains(&t.task)) {
                t.state = TaskStatus::Pending;
                t.output = None;
                t.error = None;
                t.uncounted = t.attempts;
            }
            row.run.status = RunStatus::Interrupted;
            row.run.finished_at = None;
            row.cancel_requested = false;
            Ok(())
        })
    }

    async fn gc(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let mut ids = self.with(|runs| {
            let mut ids: Vec<String> = runs
                .values()
                .filter(|r| r.run.created_at < before && r.run.status.is_final())
                .map(|r| r.run.run_id.clone())
                .collect();
            ids.sort();
            for id in &ids {
                runs.remove(id);
            }
            ids
        });
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        let started = self.with(|runs| {
            runs.keys()
                .cloned()
                .collect::<std::collections::HashSet<_>>()
        });
        let mut never = Vec::new();
        triggers.retain(|t| {
            if ids.contains(&t.run_id) {
                return false;
            }
            let ended_unstarted = t.created_at < before
                && (t.cancelled_at.is_some() || t.error.is_some())
                && !started.contains(&t.run_id);
            if ended_unstarted {
                never.push(t.run_id.clone());
            }
            !ended_unstarted
        });
        ids.extend(never);
        ids.sort();
        Ok(ids)
    }

    async fn plugin_hashes_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.with(|runs| {
            let mut hashes: Vec<String> = runs
                .values()
                .flat_map(|r| r.run.plugins.iter().map(|p| p.hash.clone()))
                .collect();
            hashes.sort();
            hashes.dedup();
            Ok(hashes)
        })
    }

    async fn add_trigger(&self, t: NewTrigger) -> Result<bool, StoreError> {
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        let key = t.key();
        if triggers.iter().any(|x| x.key == key) {
            return Ok(false);
        }
        triggers.push(Trigger {
            key,
            kind: t.kind,
            workflow: t.workflow,
            params: t.params,
            due_at: t.due_at,
            created_at: t.created_at,
            run_id: t.run_id,
            claimed_at: None,
            error: None,
            cancelled_at: None,
        });
        Ok(true)
    }

    async fn claim_due(&self, now: i64, limit: usize) -> Result<Vec<Trigger>, StoreError> {
        let runs = self.with(|runs| {
            runs.keys()
                .cloned()
                .collect::<std::collections::HashSet<String>>()
        });
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        triggers.sort_by_key(|t| t.due_at);
        let mut out = Vec::new();
        for t in triggers
            .iter_mut()
            .filter(|t| t.claimed_at.is_none() && t.due_at <= now)
            .take(limit)
        {
            t.claimed_at = Some(now);
            out.push(t.clone());
        }
        let orphans = triggers
            .iter()
            .filter(|t| {
                t.claimed_at.is_some_and(|c| c < now - ORPHAN_AFTER_MS)
                    && t.error.is_none()
                    && t.cancelled_at.is_none()
                    && !runs.contains(&t.run_id)
            })
            .take(limit)
            .cloned();
        out.extend(orphans);
        Ok(out)
    }

    async fn fail_trigger(&self, key: &str, error: &str) -> Result<(), StoreError> {
        let mut triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        for t in triggers.iter_mut().filter(|t| t.key == key) {
            t.error = Some(error.to_string());
        }
        Ok(())
    }

    async fn trigger_of_run(&self, run_id: &str) -> Result<Option<Trigger>, StoreError> {
        let triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(triggers.iter().find(|t| t.run_id == run_id).cloned())
    }

    async fn pending_triggers(&self) -> Result<u64, StoreError> {
        let triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(triggers.iter().filter(|t| t.claimed_at.is_none()).count() as u64)
    }

    async fn last_cron_fire(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        let triggers = self.triggers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(triggers
            .iter()
            .filter(|t| t.kind == TriggerKind::Cron && t.workflow == workflow)
            .map(|t| t.due_at)
            .max())
    }
}
