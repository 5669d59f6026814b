//! Plain data of the store: what is written, what is read back, and the errors.

use std::path::PathBuf;

/// Status of a run (docs/architecture.md, "The run report"). The names are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not started.
    Pending,
    /// A host is running it.
    Running,
    /// Stopped before its end (host died or was stopped); `bulkhead resume` continues it.
    Interrupted,
    /// Every non-optional task succeeded.
    Succeeded,
    /// A non-optional task failed for good.
    Failed,
    /// Cancelled on request; not resumed.
    Cancelled,
}

/// Status of a task: in the store, in the run report and in the API (one type, one set of names,
/// which are part of the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not finished yet (the run is going on, or was interrupted and can be resumed); may have
    /// attempts in flight.
    Pending,
    /// It produced an output.
    Succeeded,
    /// Its last attempt failed and no retry was left.
    Failed,
    /// Something it needs failed for good, so it never ran.
    Skipped,
    /// The run was cancelled before it finished.
    Cancelled,
}

/// Status of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Started, not ended (or the host died).
    Running,
    /// Ended with an output.
    Succeeded,
    /// Ended with a failure.
    Failed,
    /// Stopped by the host (shutdown or crash); does not count against the retry budget.
    Interrupted,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}
names!(RunStatus { Pending = "pending", Running = "running", Interrupted = "interrupted", Succeeded = "succeeded", Failed = "failed", Cancelled = "cancelled" });
names!(TaskStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed", Skipped = "skipped", Cancelled = "cancelled" });
names!(AttemptStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Interrupted = "interrupted" });

impl RunStatus {
    /// Whether the run has ended for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// A run's lease as one holder took it: the fencing token. Every take of a lease raises the
/// run's generation, and a commit is refused unless both the owner and the generation are the
/// run's current ones: a holder that lost its lease (paused, partitioned) can never commit
/// again, even if the lease came back to the same owner in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder.
    pub owner: String,
    /// The generation the holder took (a new run's is [`Lease::FIRST`]).
    pub generation: i64,
}

impl Lease {
    /// The generation of a run's lease when it is created.
    pub const FIRST: i64 = 1;

    /// The lease of a run `owner` has just created.
    pub fn created(owner: &Owner) -> Lease {
        Lease {
            owner: owner.0.clone(),
            generation: Lease::FIRST,
        }
    }
}

/// Who holds a lease: `host:pid:nonce`. On one machine a dead holder's lease is taken over at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

impl Owner {
    /// A new owner id for this process.
    pub fn new() -> Owner {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let nonce = uuid::Uuid::now_v7().simple().to_string();
        Owner(format!(
            "{host}:{}:{}",
            std::process::id(),
            &nonce[nonce.len() - 8..]
        ))
    }

    /// Whether `other` names a process on this machine that no longer exists.
    pub fn is_dead_local(&self, other: &str) -> bool {
        let mine = self.0.split(':').next().unwrap_or("");
        let mut parts = other.split(':');
        let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
            return false;
        };
        if host != mine {
            return false;
        }
        match pid.parse::<u32>() {
            Ok(pid) if pid == std::process::id() => false,
            Ok(pid) => {
                cfg!(target_os = "linux") && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            Err(_) => false,
        }
    }
}

impl Default for Owner {
    fn default() -> Self {
        Owner::new()
    }
}

/// A plugin version used by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion {
    /// How the workflow names it (`clean`, or a path).
    pub reference: String,
    /// SHA-256 of its bytes.
    pub hash: String,
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run's id (a UUIDv7).
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// SHA-256 of the workflow file's bytes, hex.
    pub workflow_hash: String,
    /// The workflow file the run was started from.
    pub workflow_file: PathBuf,
    /// The workflow file's text as it was when the run started.
    pub workflow_yaml: String,
    /// The validated workflow, stored (`workflow::stored::to_spec`).
    pub workflow_spec: String,
    /// The run's parameters.
    pub params: serde_json::Value,
    /// The plugin versions the run uses.
    pub plugins: Vec<PluginVersion>,
    /// Task ids, in workflow order.
    pub tasks: Vec<String>,
    /// The host that holds the run's lease.
    pub owner: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When the lease ends unless renewed (ms since the epoch).
    pub lease_expires_at: i64,
}

pub use crate::contract::OutputJson;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// With an output.
    Succeeded(OutputJson),
    /// With a failure.
    Failed {
        /// The failure kind's contract name.
        kind: String,
        /// What went wrong.
        message: String,
        /// The plugin's exit code, when it exited.
        exit_code: Option<i32>,
    },
    /// Stopped by the host.
    Interrupted,
}

/// What an attempt's end writes to its row: `(status, failure kind, message, exit code,
/// output)`, the columns every backend stores.
pub type EndColumns<'a> = (
    AttemptStatus,
    Option<&'a str>,
    Option<&'a str>,
    Option<i32>,
    Option<&'a str>,
);

impl AttemptEnd {
    /// The columns this end writes.
    pub fn columns(&self) -> EndColumns<'_> {
        match self {
            AttemptEnd::Succeeded(v) => {
                (AttemptStatus::Succeeded, None, None, None, Some(v.as_str()))
            }
            AttemptEnd::Failed {
                kind,
                message,
                exit_code,
            } => (
                AttemptStatus::Failed,
                Some(kind.as_str()),
                Some(message.as_str()),
                *exit_code,
                None,
            ),
            AttemptEnd::Interrupted => (AttemptStatus::Interrupted, None, None, None, None),
        }
    }
}

/// One state change of a run. A batch of them is committed atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// An attempt is about to start.
    AttemptStarted {
        /// The task's id.
        task: String,
        /// The task's place in the run's task list (`NewRun::tasks`), from 0: how a store that
        /// files tasks by place finds the row without looking the id up.
        position: u32,
        /// The attempt number, from 1.
        attempt: u32,
        /// When (ms since the epoch).
        at: i64,
    },
    /// An attempt ended; `task_state` is set when this decides the task (no retry follows).
    AttemptEnded {
        /// The task's id.
        task: String,
        /// The task's place in the run's task list (`NewRun::tasks`), from 0: how a store that
        /// files tasks by place finds the row without looking the id up.
        position: u32,
        /// The attempt number, from 1.
        attempt: u32,
        /// When (ms since the epoch).
        at: i64,
        /// How the attempt ended.
        end: AttemptEnd,
        /// Wall-clock time in microseconds.
        duration_us: u64,
        /// Fuel consumed.
        fuel_used: u64,
        /// Peak linear memory in bytes.
        peak_memory: u64,
        /// The captured log (stderr), capped.
        log: String,
        /// The task's status, when this decides it.
        task_state: Option<TaskStatus>,
    },
    /// A task is decided without running (skipped, or cancelled).
    TaskDecided {
        /// The task's id.
        task: String,
        /// The task's place in the run's task list (`NewRun::tasks`), from 0: how a store that
        /// files tasks by place finds the row without looking the id up.
        position: u32,
        /// The task's status.
        state: TaskStatus,
        /// What went wrong.
        message: String,
    },
    /// The run ended (or was interrupted).
    RunEnded {
        /// How it ended.
        status: RunStatus,
        /// When (ms since the epoch).
        at: i64,
    },
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// A live host runs the run; it was asked to cancel it and will within about a second.
    Asked,
    /// The run (or its trigger, before it was due) was cancelled now.
    Cancelled,
    /// The run had already ended with this status; nothing changed.
    AlreadyEnded(RunStatus),
}

/// What a commit learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Commit {
    /// `bulkhead cancel` asked for this run to stop.
    pub cancel_requested: bool,
}

/// A run as listed by `bulkhead runs`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// The run's id (a UUIDv7: ids sort by creation time).
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// `pending`, `running`, `interrupted`, `succeeded`, `failed` or `cancelled`.
    pub status: RunStatus,
    /// When the run started (RFC 3339); null while it is pending.
    pub started_at: Option<String>,
    /// When it ended (RFC 3339); null while it is not finished.
    pub finished_at: Option<String>,
    /// When its trigger was due (RFC 3339); null for a run started by `bulkhead run`.
    pub due_at: Option<String>,
    /// How far its tasks are; null for a run that has not started.
    pub progress: Option<RunProgress>,
}

/// Counts of a run's tasks by where they are, read with the run's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RunProgress {
    /// Tasks in all.
    pub tasks: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed for good.
    pub failed: u64,
    /// Tasks skipped (something they need failed).
    pub skipped: u64,
    /// Tasks cancelled with the run.
    pub cancelled: u64,
    /// Attempts running now.
    pub running: u64,
}

impl RunProgress {
    /// From the counts a store read (`None` when the run has no tasks recorded).
    pub fn of_counts(
        tasks: i64,
        succeeded: i64,
        failed: i64,
        skipped: i64,
        cancelled: i64,
        running: i64,
    ) -> Option<RunProgress> {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        (tasks > 0).then(|| RunProgress {
            tasks: n(tasks),
            succeeded: n(succeeded),
            failed: n(failed),
            skipped: n(skipped),
            cancelled: n(cancelled),
            running: n(running),
        })
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The task's id.
    pub task: String,
    /// The task's status.
    pub state: TaskStatus,
    /// Attempts started, interrupted ones included.
    pub attempts: u32,
    /// Attempts that do not count against `max_attempts`: interrupted by the host, or made
    /// before a manual `bulkhead retry`.
    pub uncounted: u32,
    /// Its output, if it succeeded.
    pub output: Option<OutputJson>,
    /// The error as stored: kind, message and exit code.
    pub error: Option<(String, String, Option<i32>)>,
    /// Wall-clock time in microseconds.
    pub duration_us: u64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: u64,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttempt {
    /// The task's id.
    pub task: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The status.
    pub status: AttemptStatus,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// When it ended (ms since the epoch), if it did.
    pub finished_at: Option<i64>,
    /// The error as stored: kind, message and exit code.
    pub error: Option<(String, String, Option<i32>)>,
    /// Wall-clock time in microseconds.
    pub duration_us: u64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub peak_memory: u64,
}

/// Everything stored about a run.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// The run's id (a UUIDv7).
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// SHA-256 of the workflow file's bytes, hex.
    pub workflow_hash: String,
    /// The workflow file the run was started from.
    pub workflow_file: PathBuf,
    /// The workflow file's text as it was when the run started.
    pub workflow_yaml: String,
    /// The validated workflow stored with the run; `None` for runs stored before schema 5.
    pub workflow_spec: Option<String>,
    /// The run's parameters.
    pub params: serde_json::Value,
    /// The status.
    pub status: RunStatus,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it ended (ms since the epoch), if it did.
    pub finished_at: Option<i64>,
    /// The host holding the lease, if any.
    pub lease_owner: Option<String>,
    /// When the lease ends unless renewed (ms since the epoch).
    pub lease_expires_at: Option<i64>,
    /// The plugin versions the run uses.
    pub plugins: Vec<PluginVersion>,
    /// In workflow order.
    pub tasks: Vec<StoredTask>,
    /// By task, then attempt.
    pub attempts: Vec<StoredAttempt>,
}

impl StoredRun {
    /// Sets each task's `attempts` to at least the number of its latest attempt row. A store
    /// writes a task's count when an attempt *ends* (one statement per attempt fewer than
    /// writing it at the start as well), so an attempt still running, or one a dead host left
    /// running, is counted here, from the attempt rows `load` reads anyway. Linear when the
    /// attempts are in the tasks' order, as `load` returns them.
    pub fn count_started(&mut self) {
        let mut i = 0;
        for a in &self.attempts {
            let found = (i..self.tasks.len())
                .chain(0..i)
                .find(|&j| self.tasks[j].task == a.task);
            if let Some(j) = found {
                i = j;
                let t = &mut self.tasks[j];
                t.attempts = t.attempts.max(a.attempt);
            }
        }
    }
}

/// One attempt's log.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptLog {
    /// The task's id.
    pub task: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The captured log (stderr), capped.
    pub log: String,
}

/// What a run report shows of a task that the executor does not keep in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    /// The task.
    pub task: String,
    /// Its output, if it succeeded.
    pub output: Option<OutputJson>,
    /// The log of its last attempt (empty if it never ran).
    pub log: String,
}

/// A host's heartbeat (`bulkhead hosts`, `GET /api/hosts`): who it is, since when, how busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBeat {
    /// The host's owner id (`host:pid:nonce`), as the leases of its runs name it.
    pub owner: String,
    /// When the host started (ms since the epoch).
    pub started_at: i64,
    /// Its last heartbeat (ms since the epoch; on the database's clock where a backend has one).
    pub last_seen: i64,
    /// Attempts it may run at once.
    pub slots: u32,
    /// Attempts running now.
    pub slots_in_use: u32,
    /// Runs it is executing now.
    pub runs: u32,
}

/// Filters of `bulkhead runs`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// The workflow's name.
    pub workflow: Option<String>,
    /// The status.
    pub status: Option<RunStatus>,
    /// At most this many (0: all).
    pub limit: usize,
    /// Only runs older than this run id (paging: ids sort by creation time).
    pub before: Option<String>,
}

/// Kind of trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// A scheduled time of a cron schedule.
    Cron,
    /// A one-off run (API, `bulkhead trigger`), now or later.
    Once,
}

names!(TriggerKind { Cron = "cron", Once = "once" });

/// A trigger to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrigger {
    /// The failure kind's contract name.
    pub kind: TriggerKind,
    /// The workflow's name.
    pub workflow: String,
    /// The run's parameters.
    pub params: serde_json::Value,
    /// When it is due (ms since the epoch).
    pub due_at: i64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// The id of the run it will start.
    pub run_id: String,
}

impl NewTrigger {
    /// The unique key: a cron time fires once per workflow; a one-off once per run id.
    pub fn key(&self) -> String {
        match self.kind {
            TriggerKind::Cron => format!("cron:{}:{}", self.workflow, self.due_at),
            TriggerKind::Once => format!("once:{}", self.run_id),
        }
    }
}

/// A stored trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The unique key (see `NewTrigger::key`).
    pub key: String,
    /// The failure kind's contract name.
    pub kind: TriggerKind,
    /// The workflow's name.
    pub workflow: String,
    /// The run's parameters.
    pub params: serde_json::Value,
    /// When it is due (ms since the epoch).
    pub due_at: i64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// The run's id (a UUIDv7).
    pub run_id: String,
    /// When a host claimed it (ms since the epoch).
    pub claimed_at: Option<i64>,
    /// The error as stored: kind, message and exit code.
    pub error: Option<String>,
    /// Cancelled before it started its run.
    pub cancelled_at: Option<i64>,
}

impl Trigger {
    /// The status of its run while no run exists: `cancelled` if it was cancelled before it was
    /// due, `failed` if it could not start (its workflow is gone), `pending` otherwise.
    pub fn status(&self) -> RunStatus {
        if self.cancelled_at.is_some() {
            RunStatus::Cancelled
        } else if self.error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Pending
        }
    }

    /// When its run ended without starting (cancelled, or failed to start), if it did.
    pub fn ended_at(&self) -> Option<i64> {
        self.cancelled_at
            .or(self.error.as_ref().and(self.claimed_at))
    }

    /// Whether it stands for a run while no run exists: unclaimed, ended without starting, or
    /// claimed less than [`super::ORPHAN_AFTER_MS`] ago (its run is being created). A trigger
    /// claimed longer ago has no run because `gc` deleted it, or its host died (another will
    /// start it).
    pub fn stands_for_a_run(&self, now_ms: i64) -> bool {
        self.status() != RunStatus::Pending
            || self
                .claimed_at
                .is_none_or(|c| now_ms - c < super::ORPHAN_AFTER_MS)
    }

    /// What a cancel request does to it (the rule both backends apply): `Ok(Ok(()))` when it
    /// is to be cancelled now (not claimed yet, so it never starts), `Ok(Err(status))` with the
    /// final status it already has, or a conflict while its run is being created.
    pub fn cancel(&self) -> Result<Result<(), RunStatus>, StoreError> {
        match (self.status(), self.claimed_at) {
            (RunStatus::Pending, None) => Ok(Ok(())),
            (RunStatus::Pending, Some(_)) => Err(StoreError::Conflict(format!(
                "run `{}` is starting right now; cancel it again in a moment",
                self.run_id
            ))),
            (status, _) => Ok(Err(status)),
        }
    }
}

/// Why the store could not do something. Every variant names the file (or run) involved.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory or database file cannot be opened or created.
    #[error("cannot open the state store {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the database or the file system said.
        reason: String,
    },
    /// The database is damaged or is not a Bulkhead database.
    #[error("the state store {} is damaged or not a Bulkhead database ({reason}); move it aside and start again, or restore a backup", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the database or the file system said.
        reason: String,
    },
    /// A newer Bulkhead wrote the database.
    #[error("the state store {} has schema version {found}, newer than this Bulkhead understands ({supported}); upgrade Bulkhead (the database was not changed)", path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// Another process holds the database lock for too long.
    #[error("the state store {} is locked by another process; try again, or stop the other host", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file system refused a write.
    #[error("cannot write the state store {}: {reason}", path.display())]
    Write {
        /// The database file.
        path: PathBuf,
        /// What the database or the file system said.
        reason: String,
    },
    /// No such run.
    #[error("no run `{0}` in the state store (list runs with `bulkhead runs`)")]
    UnknownRun(String),
    /// Another live host holds the run.
    #[error("run `{run_id}` is held by {owner} until {until}; it cannot run on two hosts at once")]
    Held {
        /// The run's id (a UUIDv7).
        run_id: String,
        /// The host that holds the run's lease.
        owner: String,
        /// When the lease ends (RFC 3339).
        until: String,
    },
    /// Another host took the run over (our lease expired).
    #[error("run `{0}` was taken over by another host; this host stopped working on it")]
    LostLease(String),
    /// The request does not fit the run's state.
    #[error("{0}")]
    Conflict(String),
    /// Anything else from the database.
    #[error("state store {}: {reason}", path.display())]
    Other {
        /// The database file.
        path: PathBuf,
        /// What the database or the file system said.
        reason: String,
    },
}
