//! Durable run state: the [`Store`] trait, the types it speaks, the lease rules every backend
//! shares, and (feature `testing`) the conformance suite every backend passes. Every transition
//! of a run is committed to a store before the executor acts on it.
//!
//! The backends live in their own crates (`bulkhead-store-sqlite`); this module knows no database.
//! The executor hands a store batches of [`Transition`]s and the store commits each batch in one
//! transaction.

pub mod lease;
#[cfg(feature = "testing")]
pub mod suite;
mod types;

pub use lease::LEASE_TTL_MS;
pub use types::*;

use async_trait::async_trait;

/// Durable state of runs. Implementations commit each call atomically.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new run (status `running`, leased by `run.owner`, generation
    /// [`Lease::FIRST`]) with its tasks and plugin versions.
    async fn create_run(&self, run: NewRun) -> Result<Lease, StoreError> {
        self.create_run_with(run, Vec::new()).await
    }

    /// Records a new run as [`Store::create_run`] does and, in the same transaction, commits
    /// `first` (the run's first batch of transitions, as [`Store::commit`] would under the new
    /// lease): both happen or neither. A new run's record and its first starts are then one
    /// write, not two.
    async fn create_run_with(
        &self,
        run: NewRun,
        first: Vec<Transition>,
    ) -> Result<Lease, StoreError>;

    /// Commits a batch of transitions of one run in one transaction (group commit), if `lease`
    /// is still the run's (same owner, same generation; else [`StoreError::LostLease`]), and
    /// renews it. Returns whether a cancel was requested for the run.
    async fn commit(
        &self,
        run_id: &str,
        lease: &Lease,
        batch: Vec<Transition>,
    ) -> Result<Commit, StoreError>;

    /// Takes the run's lease for `owner` until `now + ttl`, unless another live owner holds it,
    /// raising its generation: the lease any earlier holder had is dead from then on.
    async fn acquire(
        &self,
        run_id: &str,
        owner: &Owner,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError>;

    /// Gives the lease up, if `lease` is still the run's.
    async fn release(&self, run_id: &str, lease: &Lease) -> Result<(), StoreError>;

    /// Everything stored about a run.
    async fn load(&self, run_id: &str) -> Result<StoredRun, StoreError>;

    /// Runs, newest first, with the runs that triggers will start (or that were cancelled or
    /// failed before they started) listed as [`Trigger::status`] says.
    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError>;

    /// Logs of a run's attempts (of one task, and one attempt, if given), in order.
    async fn logs(
        &self,
        run_id: &str,
        task: Option<&str>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>, StoreError>;

    /// The outputs and last attempts' logs of a run's tasks (what a run report shows of
    /// them), in file order: at most `limit` tasks from the one at `from` (0 is the first),
    /// and no more than `max_bytes` of outputs and logs, counting the task that crosses it:
    /// at least one task when any is left, so paging always moves on.
    async fn task_results(
        &self,
        run_id: &str,
        from: usize,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<TaskResult>, StoreError>;

    /// Ids of runs that did not finish: `interrupted`, or `running`/`pending` with no live lease.
    async fn unfinished(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Asks the host running the run to cancel it; a run nobody holds is marked `cancelled` at
    /// once, and so is a run whose trigger is not due yet (it then never starts). A run that
    /// had ended keeps its status.
    async fn request_cancel(&self, run_id: &str, now_ms: i64) -> Result<CancelOutcome, StoreError>;

    /// Puts finished tasks of a run back to `pending` (manual retry), and the run to `interrupted`
    /// so that resume picks it up.
    async fn reset_tasks(&self, run_id: &str, tasks: &[String]) -> Result<(), StoreError>;

    /// Deletes finished runs created before `before_ms`; returns their ids.
    async fn gc(&self, before_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Content hashes of plugins that some stored run still uses.
    async fn plugin_hashes_in_use(&self) -> Result<Vec<String>, StoreError>;

    /// Records a trigger; `false` if one with the same key exists (a cron time fires once).
    async fn add_trigger(&self, trigger: NewTrigger) -> Result<bool, StoreError>;

    /// Claims up to `limit` triggers due at `now` (oldest first) and returns them, with any
    /// claimed more than [`ORPHAN_AFTER_MS`] ago whose run was never created (the host died in
    /// between).
    ///
    /// A trigger of a workflow named in `caps` is claimed only while the workflow has fewer
    /// active runs than its cap (its `max_active_runs`): runs `pending`, `running` or
    /// `interrupted`, and its triggers claimed whose run does not exist yet. The others stay
    /// due and are claimed, oldest first, as runs end. The count and the claim are one atomic
    /// step across every host sharing the store.
    async fn claim_due(
        &self,
        now_ms: i64,
        limit: usize,
        caps: &RunCaps,
    ) -> Result<Vec<Trigger>, StoreError>;

    /// Marks a claimed trigger as failed to start (e.g. its workflow is gone).
    async fn fail_trigger(&self, key: &str, error: &str) -> Result<(), StoreError>;

    /// The trigger that will start (or started) `run_id`.
    async fn trigger_of_run(&self, run_id: &str) -> Result<Option<Trigger>, StoreError>;

    /// Number of triggers not claimed yet: runs that will start when due.
    async fn pending_triggers(&self) -> Result<u64, StoreError>;

    /// The latest scheduled time of a cron trigger of `workflow`.
    async fn last_cron_fire(&self, workflow: &str) -> Result<Option<i64>, StoreError>;

    /// Records a host's heartbeat (its row replaced), at `beat.last_seen`; rows of hosts silent
    /// for a day are deleted.
    async fn heartbeat(&self, beat: &HostBeat) -> Result<(), StoreError>;

    /// Hosts whose last heartbeat is at most `within_ms` before `now_ms`, by owner id.
    async fn hosts(&self, now_ms: i64, within_ms: i64) -> Result<Vec<HostBeat>, StoreError>;
}

/// How often `serve` sends its heartbeat.
pub const HEARTBEAT_MS: i64 = 5_000;

/// A host is listed as alive while its last heartbeat is this recent (three missed beats).
pub const HOST_ALIVE_MS: i64 = 3 * HEARTBEAT_MS;

/// Heartbeat rows older than this are deleted.
pub const HOST_FORGOTTEN_MS: i64 = 86_400_000;

/// A claimed trigger whose run does not exist after this long is handed out again.
pub const ORPHAN_AFTER_MS: i64 = 30_000;

/// How far back [`Store::claim_due`] looks for a capped workflow's triggers claimed whose run
/// does not exist yet. Such a trigger is an orphan after [`ORPHAN_AFTER_MS`], and every claim
/// stamps the orphans again before it counts, so none of those that count is older.
pub const CLAIMS_IN_FLIGHT_MS: i64 = 4 * ORPHAN_AFTER_MS;

/// `max_active_runs` of workflows, by name: see [`Store::claim_due`].
pub type RunCaps = std::collections::BTreeMap<String, u32>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 text of a time in milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
