//! The run store in process memory (`--store :memory:`): the [`Store`] contract kept in plain
//! maps behind one lock, with no database under it. Nothing outlives the process, so it suits
//! one-off runs, tests and trying things out; every transition is still "committed" before the
//! executor acts on it, leases fence hosts, and the conformance suite that every backend runs
//! holds for it too.
//!
//! Why not SQLite in memory: a database still parses, plans and executes statements on B-trees
//! for every transition, which was most of the executor's time on a large run in memory. Here a
//! transition is a hash lookup and a few field writes, and an output is shared with the
//! executor (the same bytes, counted once), never copied.

use async_trait::async_trait;
use bulkhead_core::store::lease::{check_acquirable, lease_is_free};
use bulkhead_core::store::*;
use state::{Run, State, Task};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

mod state;
#[cfg(test)]
mod tests;

/// A state store in this process's memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

/// How errors name this store.
fn path() -> PathBuf {
    PathBuf::from(":memory:")
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The state. A thread that panicked while holding the lock cannot have left a change half
    /// made (every change is checked before anything is written), so the state is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn run(&self, run_id: &str) -> Result<&Run, StoreError> {
        self.runs
            .get(run_id)
            .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))
    }

    fn run_mut(&mut self, run_id: &str) -> Result<&mut Run, StoreError> {
        self.runs
            .get_mut(run_id)
            .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))
    }

    /// Whether a trigger was claimed, has not failed nor been cancelled, and has no run: its
    /// run is being created (or its host died while creating it).
    fn in_flight(&self, t: &Trigger) -> bool {
        t.claimed_at.is_some()
            && t.error.is_none()
            && t.cancelled_at.is_none()
            && !self.runs.contains_key(&t.run_id)
    }

    /// Stamps the triggers `keys` claimed at `now` and returns them.
    fn claim(&mut self, keys: Vec<(i64, String)>, now: i64) -> Vec<Trigger> {
        keys.into_iter()
            .filter_map(|(due, key)| {
                self.unclaimed.remove(&(due, key.clone()));
                let t = self.triggers.get_mut(&key)?;
                t.claimed_at = Some(now);
                Some(t.clone())
            })
            .collect()
    }

    fn remove_trigger(&mut self, key: &str) {
        if let Some(t) = self.triggers.remove(key) {
            self.trigger_of_run.remove(&t.run_id);
            self.unclaimed.remove(&(t.due_at, t.key));
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_run(&self, run: NewRun) -> Result<Lease, StoreError> {
        let mut state = self.lock();
        if state.runs.contains_key(&run.run_id) {
            return Err(StoreError::Conflict(format!(
                "run `{}` already exists; a run id is used once",
                run.run_id
            )));
        }
        let mut position = std::collections::HashMap::with_capacity(run.tasks.len());
        for (i, task) in run.tasks.iter().enumerate() {
            if position.insert(task.clone(), i).is_some() {
                return Err(StoreError::Conflict(format!(
                    "run `{}` names task `{task}` twice",
                    run.run_id
                )));
            }
        }
        let mut plugins = run.plugins;
        plugins.sort_by(|a, b| a.reference.cmp(&b.reference));
        plugins.dedup_by(|a, b| a.reference == b.reference);
        let owner = run.owner;
        state.runs.insert(
            run.run_id,
            Run {
                workflow: run.workflow,
                workflow_hash: run.workflow_hash,
                workflow_file: run.workflow_file,
                workflow_yaml: run.workflow_yaml,
                workflow_spec: run.workflow_spec,
                params: run.params,
                status: RunStatus::Running,
                created_at: run.created_at,
                finished_at: None,
                lease_owner: Some(owner.clone()),
                lease_expires_at: Some(run.lease_expires_at),
                lease_generation: Lease::FIRST,
                cancel_requested: false,
                plugins,
                tasks: run.tasks.into_iter().map(Task::new).collect(),
                position,
                strays: BTreeSet::new(),
            },
        );
        Ok(Lease {
            owner,
            generation: Lease::FIRST,
        })
    }

    async fn commit(
        &self,
        run_id: &str,
        lease: &Lease,
        batch: Vec<Transition>,
    ) -> Result<Commit, StoreError> {
        let mut state = self.lock();
        let run = state.run_mut(run_id)?;
        if run.lease_owner.as_deref() != Some(lease.owner.as_str())
            || run.lease_generation != lease.generation
        {
            return Err(StoreError::LostLease(run_id.to_string()));
        }
        run.check(&batch).map_err(|reason| StoreError::Other {
            path: path(),
            reason: format!("run `{run_id}`: {reason}"),
        })?;
        for t in &batch {
            run.apply(t);
        }
        if !batch
            .iter()
            .any(|t| matches!(t, Transition::RunEnded { .. }))
        {
            run.lease_expires_at = Some(now_ms() + LEASE_TTL_MS);
        }
        Ok(Commit {
            cancel_requested: run.cancel_requested,
        })
    }

    async fn acquire(
        &self,
        run_id: &str,
        owner: &Owner,
        now: i64,
        ttl: i64,
    ) -> Result<Lease, StoreError> {
        let mut state = self.lock();
        let run = state.run_mut(run_id)?;
        check_acquirable(
            run_id,
            run.status.as_str(),
            run.lease_owner.as_deref(),
            run.lease_expires_at,
            owner,
            now,
        )?;
        let running = run.interrupt_running(now);
        for (t, n) in run.tasks.iter_mut().zip(running) {
            t.uncounted += n;
        }
        run.lease_owner = Some(owner.0.clone());
        run.lease_expires_at = Some(now + ttl);
        run.status = RunStatus::Running;
        run.cancel_requested = false;
        run.lease_generation += 1;
        Ok(Lease {
            owner: owner.0.clone(),
            generation: run.lease_generation,
        })
    }

    async fn release(&self, run_id: &str, lease: &Lease) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(run) = state.runs.get_mut(run_id) {
            if run.lease_owner.as_deref() == Some(lease.owner.as_str())
                && run.lease_generation == lease.generation
            {
                run.lease_owner = None;
                run.lease_expires_at = None;
            }
        }
        Ok(())
    }

    async fn load(&self, run_id: &str) -> Result<StoredRun, StoreError> {
        let state = self.lock();
        let run = state.run(run_id)?;
        let mut stored = StoredRun {
            run_id: run_id.to_string(),
            workflow: run.workflow.clone(),
            workflow_hash: run.workflow_hash.clone(),
            workflow_file: run.workflow_file.clone(),
            workflow_yaml: run.workflow_yaml.clone(),
            workflow_spec: Some(run.workflow_spec.clone()),
            params: run.params.clone(),
            status: run.status,
            created_at: run.created_at,
            finished_at: run.finished_at,
            lease_owner: run.lease_owner.clone(),
            lease_expires_at: run.lease_expires_at,
            plugins: run.plugins.clone(),
            tasks: run.tasks.iter().map(Task::stored).collect(),
            attempts: run.tasks.iter().flat_map(Task::stored_attempts).collect(),
        };
        stored.count_started();
        Ok(stored)
    }

    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let state = self.lock();
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let upper = match &filter.before {
            Some(b) => std::ops::Bound::Excluded(b.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let due = |id: &str| {
            state
                .trigger_of_run
                .get(id)
                .and_then(|k| state.triggers.get(k))
                .map(|t| t.due_at)
        };
        // Newest first, walking back from the cursor: a page reads about `limit` runs.
        let mut page: Vec<RunSummary> = state
            .runs
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
            .filter(|(_, r)| filter.workflow.as_ref().is_none_or(|w| &r.workflow == w))
            .filter(|(_, r)| filter.status.is_none_or(|s| r.status == s))
            .take(limit)
            .map(|(id, r)| r.summary(id, due(id)))
            .collect();
        // Runs that triggers will start, or that ended before they started.
        let mut waiting: Vec<&Trigger> = state
            .triggers
            .values()
            .filter(|t| {
                (t.claimed_at.is_none() || t.cancelled_at.is_some() || t.error.is_some())
                    && !state.runs.contains_key(&t.run_id)
                    && filter.workflow.as_ref().is_none_or(|w| &t.workflow == w)
                    && filter.before.as_ref().is_none_or(|b| &t.run_id < b)
                    && filter.status.is_none_or(|s| t.status() == s)
            })
            .collect();
        waiting.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        page.extend(waiting.into_iter().take(limit).map(|t| RunSummary {
            run_id: t.run_id.clone(),
            workflow: t.workflow.clone(),
            status: t.status(),
            started_at: None,
            finished_at: t.ended_at().map(rfc3339),
            due_at: Some(rfc3339(t.due_at)),
            progress: None,
        }));
        page.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        page.truncate(limit);
        Ok(page)
    }

    async fn logs(
        &self,
        run_id: &str,
        task: Option<&str>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>, StoreError> {
        let state = self.lock();
        let run = state.run(run_id)?;
        Ok(run
            .tasks
            .iter()
            .filter(|t| task.is_none_or(|name| t.name == name))
            .flat_map(|t| {
                t.rows
                    .iter()
                    .filter(|a| attempt.is_none_or(|n| a.attempt == n))
                    .map(|a| AttemptLog {
                        task: t.name.clone(),
                        attempt: a.attempt,
                        log: a.log.clone().unwrap_or_default(),
                    })
            })
            .collect())
    }

    async fn task_results(
        &self,
        run_id: &str,
        from: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<TaskResult>, StoreError> {
        let state = self.lock();
        let run = state.run(run_id)?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        for t in run.tasks.iter().skip(from).take(limit) {
            if !out.is_empty() && bytes >= max_bytes {
                break;
            }
            let log = t
                .rows
                .last()
                .map(|a| a.log.clone().unwrap_or_default())
                .unwrap_or_default();
            bytes += t.output.as_ref().map_or(0, |o| o.as_str().len()) + log.len();
            out.push(TaskResult {
                task: t.name.clone(),
                output: t.output.clone(),
                log,
            });
        }
        Ok(out)
    }

    async fn unfinished(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let state = self.lock();
        let me = Owner::new();
        let mut ids: Vec<(i64, &String)> = state
            .runs
            .iter()
            .filter(|(_, r)| !r.status.is_final())
            .filter(|(_, r)| {
                lease_is_free(
                    r.status.as_str(),
                    r.lease_owner.as_deref(),
                    r.lease_expires_at,
                    &me,
                    now,
                )
            })
            .map(|(id, r)| (r.created_at, id))
            .collect();
        ids.sort();
        Ok(ids.into_iter().map(|(_, id)| id.clone()).collect())
    }

    async fn request_cancel(&self, run_id: &str, now: i64) -> Result<CancelOutcome, StoreError> {
        let mut state = self.lock();
        let Some(run) = state.runs.get_mut(run_id) else {
            let key = state
                .trigger_of_run
                .get(run_id)
                .cloned()
                .ok_or_else(|| StoreError::UnknownRun(run_id.to_string()))?;
            let Some(t) = state.triggers.get(&key) else {
                return Err(StoreError::UnknownRun(run_id.to_string()));
            };
            return match t.cancel()? {
                Ok(()) => {
                    let due = t.due_at;
                    state.unclaimed.remove(&(due, key.clone()));
                    if let Some(t) = state.triggers.get_mut(&key) {
                        t.cancelled_at = Some(now);
                        t.claimed_at = Some(now);
                    }
                    Ok(CancelOutcome::Cancelled)
                }
                Err(status) => Ok(CancelOutcome::AlreadyEnded(status)),
            };
        };
        if run.status.is_final() {
            return Ok(CancelOutcome::AlreadyEnded(run.status));
        }
        if !lease_is_free(
            run.status.as_str(),
            run.lease_owner.as_deref(),
            run.lease_expires_at,
            &Owner::new(),
            now,
        ) {
            run.cancel_requested = true;
            return Ok(CancelOutcome::Asked);
        }
        run.interrupt_running(now);
        for t in run
            .tasks
            .iter_mut()
            .filter(|t| t.status == TaskStatus::Pending)
        {
            t.status = TaskStatus::Cancelled;
            t.error_kind = Some("cancelled".into());
            t.error_message = Some("the run was cancelled".into());
        }
        run.status = RunStatus::Cancelled;
        run.finished_at = Some(now);
        run.lease_owner = None;
        run.lease_expires_at = None;
        Ok(CancelOutcome::Cancelled)
    }

    async fn reset_tasks(&self, run_id: &str, tasks: &[String]) -> Result<(), StoreError> {
        let mut state = self.lock();
        let run = state.run_mut(run_id)?;
        for name in tasks {
            let Some(&i) = run.position.get(name) else {
                continue;
            };
            let t = &mut run.tasks[i];
            let count = t.attempts.max(t.latest());
            t.status = TaskStatus::Pending;
            t.output = None;
            t.error_kind = None;
            t.error_message = None;
            t.exit_code = None;
            t.attempts = count;
            t.uncounted = count;
        }
        run.status = RunStatus::Interrupted;
        run.finished_at = None;
        run.cancel_requested = false;
        Ok(())
    }

    async fn gc(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock();
        let mut ids: Vec<String> = state
            .runs
            .iter()
            .filter(|(_, r)| r.created_at < before && r.status.is_final())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            state.runs.remove(id);
            if let Some(key) = state.trigger_of_run.get(id).cloned() {
                state.remove_trigger(&key);
            }
        }
        // Runs that never started: cancelled before they were due, or failed to start.
        let never: Vec<(String, String)> = state
            .triggers
            .values()
            .filter(|t| {
                t.created_at < before
                    && (t.cancelled_at.is_some() || t.error.is_some())
                    && !state.runs.contains_key(&t.run_id)
            })
            .map(|t| (t.key.clone(), t.run_id.clone()))
            .collect();
        for (key, run_id) in never {
            state.remove_trigger(&key);
            ids.push(run_id);
        }
        ids.sort();
        Ok(ids)
    }

    async fn plugin_hashes_in_use(&self) -> Result<Vec<String>, StoreError> {
        let state = self.lock();
        let hashes: BTreeSet<&String> = state
            .runs
            .values()
            .flat_map(|r| r.plugins.iter().map(|p| &p.hash))
            .collect();
        Ok(hashes.into_iter().cloned().collect())
    }

    async fn add_trigger(&self, t: NewTrigger) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let key = t.key();
        if state.triggers.contains_key(&key) {
            return Ok(false);
        }
        if state.trigger_of_run.contains_key(&t.run_id) {
            return Err(StoreError::Other {
                path: path(),
                reason: format!("run `{}` already has a trigger", t.run_id),
            });
        }
        state.trigger_of_run.insert(t.run_id.clone(), key.clone());
        state.unclaimed.insert((t.due_at, key.clone()));
        state.triggers.insert(
            key.clone(),
            Trigger {
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
            },
        );
        Ok(true)
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        caps: &RunCaps,
    ) -> Result<Vec<Trigger>, StoreError> {
        let mut state = self.lock();
        // Orphans: claimed long ago, their run never created; stamped again as they are taken.
        let mut orphans: Vec<(i64, String)> = state
            .triggers
            .values()
            .filter(|t| {
                state.in_flight(t) && t.claimed_at.is_some_and(|c| c < now - ORPHAN_AFTER_MS)
            })
            .map(|t| (t.due_at, t.key.clone()))
            .collect();
        orphans.sort();
        orphans.truncate(limit);
        let mut orphans = state.claim(orphans, now);
        let due = |state: &State, workflow: Option<&str>, n: usize| -> Vec<(i64, String)> {
            state
                .unclaimed
                .iter()
                .take_while(|(d, _)| *d <= now)
                .filter(|(_, k)| {
                    let w = state.triggers.get(k).map(|t| t.workflow.as_str());
                    match workflow {
                        Some(name) => w == Some(name),
                        None => w.is_some_and(|w| !caps.contains_key(w)),
                    }
                })
                .take(n)
                .cloned()
                .collect()
        };
        let mut claimed: Vec<Trigger> = Vec::new();
        for (workflow, cap) in caps {
            let room = limit.saturating_sub(claimed.len());
            if room == 0 {
                break;
            }
            let runs = state
                .runs
                .values()
                .filter(|r| &r.workflow == workflow && !r.status.is_final())
                .count();
            let starting = state
                .triggers
                .values()
                .filter(|t| {
                    &t.workflow == workflow
                        && state.in_flight(t)
                        && t.claimed_at.is_some_and(|c| c >= now - CLAIMS_IN_FLIGHT_MS)
                })
                .count();
            let free = (i64::from(*cap) - (runs + starting) as i64).clamp(0, room as i64);
            if free == 0 {
                continue;
            }
            let keys = due(&state, Some(workflow), free as usize);
            claimed.extend(state.claim(keys, now));
        }
        let room = limit.saturating_sub(claimed.len());
        if room > 0 {
            let keys = due(&state, None, room);
            claimed.extend(state.claim(keys, now));
        }
        claimed.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        orphans.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        claimed.append(&mut orphans);
        Ok(claimed)
    }

    async fn fail_trigger(&self, key: &str, error: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(t) = state.triggers.get_mut(key) {
            t.error = Some(error.to_string());
        }
        Ok(())
    }

    async fn trigger_of_run(&self, run_id: &str) -> Result<Option<Trigger>, StoreError> {
        let state = self.lock();
        Ok(state
            .trigger_of_run
            .get(run_id)
            .and_then(|k| state.triggers.get(k))
            .cloned())
    }

    async fn pending_triggers(&self) -> Result<u64, StoreError> {
        Ok(self.lock().unclaimed.len() as u64)
    }

    async fn last_cron_fire(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        let state = self.lock();
        Ok(state
            .triggers
            .values()
            .filter(|t| t.workflow == workflow && t.kind == TriggerKind::Cron)
            .map(|t| t.due_at)
            .max())
    }

    async fn heartbeat(&self, beat: &HostBeat) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.hosts.insert(beat.owner.clone(), beat.clone());
        let forgotten = beat.last_seen - HOST_FORGOTTEN_MS;
        state.hosts.retain(|_, h| h.last_seen >= forgotten);
        Ok(())
    }

    async fn hosts(&self, now: i64, within: i64) -> Result<Vec<HostBeat>, StoreError> {
        let state = self.lock();
        Ok(state
            .hosts
            .values()
            .filter(|h| h.last_seen >= now - within)
            .cloned()
            .collect())
    }
}
