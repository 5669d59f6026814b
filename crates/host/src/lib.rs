//! The host: a sandbox, a plugin folder and (optionally) a state store. Loads workflows, starts
//! durable runs, resumes and retries them. It joins the engine (`bulkhead-core`) to the sandbox
//! (`bulkhead-sandbox`); the command line and the server both drive a [`Host`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bulkhead_host::{Host, HostConfig};
//! let host = Host::new(HostConfig::default())?;
//! let loaded = host.load(std::path::Path::new("workflows/hello.yaml"))?;
//! let report = host
//!     .run(&loaded, bulkhead_core::new_run_id(), serde_json::json!({}), &bulkhead_core::exec::LogObserver, Default::default())
//!     .await?;
//! println!("{}", report.status.as_str());
//! # Ok(()) }
//! ```

pub mod registry;
pub mod runner;
pub mod vault;
pub mod workflow_cache;

pub use vault::{FolderVault, PluginVault};

use crate::registry::{PluginFile, Registry};
use crate::runner::SandboxRunner;
use bulkhead_core::exec::{
    self, Created, Journal, NoJournal, Observer, RunRequest, Stop, StoreJournal,
};
use bulkhead_core::report::RunReport;
use bulkhead_core::store::{
    self, Lease, NewRun, Owner, PluginVersion, Store, StoreError, LEASE_TTL_MS,
};
use bulkhead_core::workflow::{self, PluginRef, Workflow, WorkflowError};
use bulkhead_sandbox::compile::{CompileBounds, Compiler};
use bulkhead_sandbox::{Plugin, Sandbox, SandboxError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::Instrument;

/// Host-wide settings.
#[derive(Clone)]
pub struct HostConfig {
    /// The plugin folder.
    pub plugins_dir: PathBuf,
    /// Where compiled plugins are cached (`None`: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Attempts at once across the host.
    pub max_parallel: usize,
    /// Where runs are recorded (`None`: nowhere; runs cannot be resumed).
    pub store: Option<Arc<dyn Store>>,
    /// Where the exact plugin versions of recorded runs are kept, by content hash.
    pub plugin_vault: Option<Arc<dyn PluginVault>>,
    /// The host's own files, which no mount may reach (see [`Guarded`]).
    pub guarded: Vec<Guarded>,
    /// Bounds on compiling a plugin.
    pub compile: CompileBounds,
    /// Where plugins are compiled.
    pub compiler: Compiler,
}

/// A path of the host's own (state, cache, plugins, workflows) that no mount may reach: a
/// plugin that could write it could change what later runs execute.
#[derive(Debug, Clone)]
pub struct Guarded {
    /// The path (made absolute and canonical when the host starts).
    pub path: PathBuf,
    /// What it is, for the error message (`the state store`, ...).
    pub what: &'static str,
    /// Whether mounts inside it are refused too (a folder whose every file matters), not only
    /// mounts that contain it.
    pub tree: bool,
}

impl Guarded {
    /// A folder no mount may contain or lie inside.
    pub fn tree(path: impl Into<PathBuf>, what: &'static str) -> Guarded {
        Guarded {
            path: path.into(),
            what,
            tree: true,
        }
    }

    /// A file or folder no mount may contain.
    pub fn path(path: impl Into<PathBuf>, what: &'static str) -> Guarded {
        Guarded {
            path: path.into(),
            what,
            tree: false,
        }
    }

    /// The canonical absolute form of a path that may not exist yet (its nearest existing
    /// ancestor is canonicalised).
    fn resolved(mut self) -> Guarded {
        let abs = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut tail = Vec::new();
        let mut at = abs.as_path();
        self.path = loop {
            if let Ok(c) = std::fs::canonicalize(at) {
                break tail.iter().rev().fold(c, |p: PathBuf, n| p.join(n));
            }
            match (at.parent(), at.file_name()) {
                (Some(parent), Some(name)) => {
                    tail.push(name.to_os_string());
                    at = parent;
                }
                _ => break abs.clone(),
            }
        };
        self
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            plugins_dir: PathBuf::from("plugins"),
            cache_dir: Some(PathBuf::from(".bulkhead/cache")),
            max_parallel: 256,
            store: None,
            plugin_vault: None,
            guarded: Vec::new(),
            compile: CompileBounds::default(),
            compiler: Compiler::InProcess,
        }
    }
}

/// Why the host could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The workflow or one of its plugins is invalid (exit code 2).
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run could not be recorded, so it did not start.
    #[error("{0}; the run was not recorded and nothing ran")]
    NotRecorded(StoreError),
    /// Something about the files of the state directory.
    #[error("{0}")]
    State(String),
    /// The request does not fit the run (e.g. retrying a task that succeeded).
    #[error("{0}")]
    Conflict(String),
    /// The run has no such task.
    #[error("{0}")]
    NoSuchTask(String),
}

/// What kind of failure a [`HostError`] is, for the one mapping to exit codes (the CLI) and the
/// one mapping to HTTP statuses (the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input is wrong (workflow, plugin, arguments): nothing ran. Exit 2, HTTP 400.
    Invalid,
    /// No such run or task. Exit 2, HTTP 404.
    NotFound,
    /// The request does not fit the run's state. Exit 2, HTTP 409.
    Conflict,
    /// Another host holds the run, or it could not be recorded: try again. Exit 1, HTTP 409.
    Busy,
    /// The host or its store failed. Exit 1, HTTP 500.
    Internal,
}

impl HostError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            HostError::Workflow(WorkflowError::Stored { .. }) => ErrorClass::Internal,
            HostError::Workflow(_) => ErrorClass::Invalid,
            HostError::NoSuchTask(_) | HostError::Store(StoreError::UnknownRun(_)) => {
                ErrorClass::NotFound
            }
            HostError::Conflict(_) | HostError::Store(StoreError::Conflict(_)) => {
                ErrorClass::Conflict
            }
            HostError::Store(StoreError::Held { .. }) | HostError::NotRecorded(_) => {
                ErrorClass::Busy
            }
            HostError::Store(_) | HostError::State(_) => ErrorClass::Internal,
        }
    }
}

/// Runs of at most this many tasks are recorded by their first commit, together with their
/// first starts (see [`Host::run`]).
const RECORD_WITH_FIRST_STARTS: usize = 1_000;

/// A sandbox, a plugin folder and a store: loads workflows and runs them.
pub struct Host {
    sandbox: Arc<Sandbox>,
    registry: Registry,
    max_parallel: usize,
    store: Option<Arc<dyn Store>>,
    vault: Option<Arc<dyn PluginVault>>,
    owner: Owner,
    slots: Arc<tokio::sync::Semaphore>,
    guarded: Vec<Guarded>,
    /// Runs this host is executing now (from before its lease is taken to after it is given
    /// up), so that a retry never overlaps the end of the execution it follows.
    active: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The logs of running attempts, when asked for ([`Host::keep_live_logs`]).
    live_logs: Option<Arc<runner::LiveLogs>>,
}

/// Marks a run active on its host until dropped.
struct Active<'a> {
    host: &'a Host,
    run_id: String,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.host
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.run_id);
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("registry", &self.registry)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A workflow with its plugins loaded, ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated workflow.
    pub workflow: Arc<Workflow>,
    /// The plugin of each task, by task index.
    pub plugins: Vec<Arc<Plugin>>,
    /// The file each task's plugin was loaded from.
    pub files: Vec<PathBuf>,
    /// The workflow's text, as it was validated.
    pub text: String,
    /// The stored form of `workflow` when loading built or read it (the workflow cache), kept
    /// with the workflow it describes: it is used only while `workflow` is still that one.
    spec: Option<(Arc<Workflow>, String)>,
}

impl Loaded {
    /// The stored form of the workflow, as a run records it.
    fn spec(&self) -> String {
        match &self.spec {
            Some((wf, spec)) if Arc::ptr_eq(wf, &self.workflow) => spec.clone(),
            _ => workflow::stored::to_spec(&self.workflow),
        }
    }
}

impl Host {
    /// Creates the engine (a pool of `max_parallel` instance slots) and opens the plugin folder.
    pub fn new(config: HostConfig) -> Result<Host, SandboxError> {
        let slots = u32::try_from(config.max_parallel.max(1)).unwrap_or(u32::MAX);
        let mut builder = Sandbox::builder()
            .slots(slots)
            .compile_bounds(config.compile)
            .compiler(config.compiler);
        if let Some(dir) = config.cache_dir {
            builder = builder.cache_dir(dir);
        }
        Ok(Host {
            sandbox: Arc::new(builder.build()?),
            registry: Registry::new(config.plugins_dir),
            max_parallel: config.max_parallel.max(1),
            store: config.store,
            vault: config.plugin_vault,
            owner: Owner::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_parallel.max(1))),
            active: std::sync::Mutex::new(std::collections::HashSet::new()),
            live_logs: None,
            guarded: config.guarded.into_iter().map(Guarded::resolved).collect(),
        })
    }

    /// Adds a path no mount may reach (e.g. the workflow folder of `serve`).
    pub fn guard(&mut self, guarded: Guarded) {
        self.guarded.push(guarded.resolved());
    }

    /// Refuses every mount that would reach one of the host's own paths.
    fn check_mounts(&self, wf: &Workflow) -> Result<(), WorkflowError> {
        let mut problems = Vec::new();
        for t in &wf.tasks {
            for (i, m) in t.grants.mounts.iter().enumerate() {
                for g in &self.guarded {
                    let contains = g.path.starts_with(&m.host);
                    let inside = g.tree && m.host.starts_with(&g.path);
                    if !(contains || inside) {
                        continue;
                    }
                    let how = if contains { "contains" } else { "lies inside" };
                    problems.push(
                        workflow::Problem::new(
                            Some(&t.id),
                            Some(&format!("mounts[{i}].host")),
                            format!(
                                "{} {how} {} ({}); a plugin must never reach Bulkhead's own files",
                                m.host.display(),
                                g.what,
                                g.path.display()
                            ),
                        )
                        .hint("mount a folder that holds only the task's data"),
                    );
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(WorkflowError::Invalid {
                file: wf.file.clone(),
                problems,
            })
        }
    }

    /// This host's heartbeat as of `now_ms`: its owner id, its slots and how many are in use,
    /// the runs it executes.
    pub fn beat(&self, started_at: i64, now_ms: i64) -> store::HostBeat {
        let slots = u32::try_from(self.max_parallel).unwrap_or(u32::MAX);
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        let runs = self.active.lock().unwrap_or_else(|e| e.into_inner()).len();
        store::HostBeat {
            owner: self.owner.0.clone(),
            started_at,
            last_seen: now_ms,
            slots,
            slots_in_use: slots.saturating_sub(free),
            runs: u32::try_from(runs).unwrap_or(u32::MAX),
        }
    }

    /// How many more runs this host takes on now: none while all its slots are in use, and
    /// never more than its slots in all (a run it holds that waits for a slot, or for a
    /// retry's backoff, counts as using one). `held` is how many runs the caller has set
    /// going here and not seen end (those not started yet count too). `serve` claims at most
    /// this many triggers.
    pub fn room(&self, held: usize) -> usize {
        let in_use = self
            .max_parallel
            .saturating_sub(self.slots.available_permits());
        let runs = self.active.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.max_parallel.saturating_sub(in_use.max(runs).max(held))
    }

    /// Whether this host is executing `run_id` now (running, resuming or retrying it).
    pub fn is_active(&self, run_id: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(run_id)
    }

    fn mark_active(&self, run_id: &str) -> Result<Active<'_>, HostError> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if !active.insert(run_id.to_string()) {
            return Err(HostError::Conflict(format!(
                "run `{run_id}` is still going on this host; wait until it ends"
            )));
        }
        Ok(Active {
            host: self,
            run_id: run_id.to_string(),
        })
    }

    /// Keeps the log of every running attempt readable while it runs ([`Host::live_log`]), for
    /// a server that shows logs as they are written. Off by default: it costs a lock and a map
    /// entry per attempt.
    pub fn keep_live_logs(&mut self) {
        self.live_logs
            .get_or_insert_with(|| Arc::new(runner::LiveLogs::default()));
    }

    /// The log so far of the running attempt of `task` of the run `run_id` on this host, if one
    /// runs here and [`Host::keep_live_logs`] was asked for.
    pub fn live_log(&self, run_id: &str, task: &str) -> Option<Vec<u8>> {
        self.live_logs.as_ref()?.read(run_id, task)
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The plugin folder.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store, if runs are recorded.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// Reads, validates and loads the plugins of a workflow file. Nothing runs. A large file
    /// this build validated before is read from the disk cache instead ([`workflow_cache`]).
    pub fn load(&self, path: &Path) -> Result<Loaded, WorkflowError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkflowError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = workflow_cache::parse(&self.sandbox, path, &text)?;
        self.prepare_with(parsed.workflow, text, parsed.spec)
    }

    /// Loads the plugins of an already validated workflow (`text` is its source).
    pub fn prepare(&self, workflow: Workflow, text: String) -> Result<Loaded, WorkflowError> {
        self.prepare_with(workflow, text, None)
    }

    fn prepare_with(
        &self,
        workflow: Workflow,
        text: String,
        spec: Option<String>,
    ) -> Result<Loaded, WorkflowError> {
        self.check_mounts(&workflow)?;
        let loaded = self.registry.load_for(&self.sandbox, &workflow)?;
        Ok(assemble(workflow, text, spec, loaded))
    }

    /// Runs a loaded workflow once, recording it in the store if there is one.
    ///
    /// A recorded run does not keep its finished tasks' logs, nor outputs no dependent still
    /// needs, in memory: in the returned report they are empty (`log: ""`, `output: null`), and
    /// [`Store::task_results`] has them (`bulkhead run --json` reads them back as it writes).
    /// Host memory then stays flat however many tasks a run has and however much they log.
    pub async fn run(
        &self,
        loaded: &Loaded,
        run_id: String,
        params: serde_json::Value,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let Some(store) = &self.store else {
            return self
                .execute(loaded, run_id, params, None, &NoJournal, observer, stop)
                .await;
        };
        let _active = self.mark_active(&run_id)?;
        let plugins = self.keep_plugin_copies(loaded)?;
        let now = store::now_ms();
        let run = NewRun {
            run_id: run_id.clone(),
            workflow: loaded.workflow.name.clone(),
            workflow_hash: loaded.workflow.hash.clone(),
            workflow_file: absolute(&loaded.workflow.file),
            workflow_yaml: loaded.text.clone(),
            workflow_spec: loaded.spec(),
            params: params.clone(),
            plugins,
            tasks: loaded.workflow.tasks.iter().map(|t| t.id.clone()).collect(),
            owner: self.owner.0.clone(),
            created_at: now,
            lease_expires_at: now + LEASE_TTL_MS,
        };
        // A run's record goes in its first commit, with its first starts: one fsync fewer
        // before its first attempt, which a short run under `serve` waits for. A large run is
        // recorded first instead: its record (the workflow's text, its validated form, a row a
        // task) would be held beside the executor's own tables until then, 17-31 MiB more at
        // the peak of a 100,000-task run, to save one write among thousands.
        let journal = match run.tasks.len() <= RECORD_WITH_FIRST_STARTS {
            true => StoreJournal::creating(store.clone(), run),
            false => {
                let lease = store
                    .create_run(run)
                    .await
                    .map_err(HostError::NotRecorded)?;
                StoreJournal::new(store.clone(), &run_id, lease)
            }
        };
        let report = self
            .execute(
                loaded,
                run_id.clone(),
                params,
                None,
                &journal,
                observer,
                stop,
            )
            .await;
        match (journal.created().await, report) {
            // Nothing of the run was stored, so nothing of it ran.
            (Created::Failed, Err(HostError::Store(e))) => Err(HostError::NotRecorded(e)),
            // A run that ended gave its lease up in its last commit (the one that records the
            // end); only a run whose commits failed still holds it. Not writing again saves
            // one write transaction per run.
            (Created::Yes(lease), Err(e)) => {
                let _ = store.release(&run_id, &lease).await;
                Err(e)
            }
            // Every execution commits at least the run's end, so a run is never left
            // unrecorded; were one to be, the trigger that claimed it is taken again later.
            (_, report) => report,
        }
    }

    /// Continues an unfinished run with exactly the workflow and plugin versions it started with:
    /// tasks that succeeded are not run again; attempts that were in flight run again.
    pub async fn resume(
        &self,
        run_id: &str,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let store = self.require_store()?;
        let _active = self.mark_active(run_id)?;
        self.continue_run(store, run_id, observer, stop).await
    }

    /// Takes the run's lease, executes what is left of it, and gives the lease up.
    async fn continue_run(
        &self,
        store: &Arc<dyn Store>,
        run_id: &str,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let lease = store
            .acquire(run_id, &self.owner, store::now_ms(), LEASE_TTL_MS)
            .await?;
        let result = self
            .resume_held(store, run_id, lease.clone(), observer, stop)
            .await;
        let _ = store.release(run_id, &lease).await;
        result
    }

    async fn resume_held(
        &self,
        store: &Arc<dyn Store>,
        run_id: &str,
        lease: Lease,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let stored = store.load(run_id).await?;
        let loaded = self.stored_workflow(&stored)?;
        let journal = StoreJournal::new(store.clone(), run_id, lease);
        let resumed = Some(stored.tasks.clone());
        self.execute(
            &loaded,
            run_id.to_string(),
            stored.params.clone(),
            resumed,
            &journal,
            observer,
            stop,
        )
        .await
    }

    /// Runs a failed (or cancelled) task of a finished run again, with the dependents it skipped.
    pub async fn retry(
        &self,
        run_id: &str,
        task: &str,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let store = self.require_store()?;
        let stored = store.load(run_id).await?;
        let index = self.retry_target(&stored, task)?;
        let _active = self.mark_active(run_id)?;
        let wf = workflow::stored::of_run(&stored)?;
        if wf.tasks.len() != stored.tasks.len() {
            return Err(HostError::State(format!(
                "run `{run_id}` stored {} tasks for a workflow of {}; the state store was altered",
                stored.tasks.len(),
                wf.tasks.len()
            )));
        }
        let reset = wf
            .plan()
            .downstream(index)
            .into_iter()
            .filter(|&i| {
                i == index
                    || matches!(
                        stored.tasks[i].state,
                        store::TaskStatus::Skipped | store::TaskStatus::Cancelled
                    )
            })
            .map(|i| wf.tasks[i].id.clone())
            .collect::<Vec<_>>();
        store
            .acquire(run_id, &self.owner, store::now_ms(), LEASE_TTL_MS)
            .await
            .map(drop)
            .or_else(|e| match e {
                // A finished run has no lease to take: reset it first, then take it.
                StoreError::Conflict(_) => Ok(()),
                e => Err(e),
            })?;
        store.reset_tasks(run_id, &reset).await?;
        self.continue_run(store, run_id, observer, stop).await
    }

    /// Whether task `task` of the stored run may be retried now, and its index: the task exists,
    /// it failed or was cancelled, and the run has ended and is not finishing on this host. The
    /// one statement of the rule, for `bulkhead retry` and the API alike.
    pub fn retry_target(&self, stored: &store::StoredRun, task: &str) -> Result<usize, HostError> {
        let run_id = &stored.run_id;
        let Some(index) = stored.tasks.iter().position(|t| t.task == task) else {
            let known = stored.tasks.iter().map(|t| t.task.as_str());
            return Err(HostError::NoSuchTask(format!(
                "run `{run_id}` has no task `{task}`{}",
                bulkhead_core::suggest::did_you_mean(task, known)
            )));
        };
        if self.is_active(run_id) {
            return Err(HostError::Conflict(format!(
                "run `{run_id}` is still finishing; a task can be retried once the run has ended"
            )));
        }
        if !stored.status.is_final() {
            let how = match stored.status {
                store::RunStatus::Interrupted => {
                    format!("; continue it first with `bulkhead resume {run_id}`")
                }
                _ => String::new(),
            };
            return Err(HostError::Conflict(format!(
                "run `{run_id}` is {}; a task can be retried once the run has ended{how}",
                stored.status.as_str()
            )));
        }
        let state = stored.tasks[index].state;
        if !matches!(
            state,
            store::TaskStatus::Failed | store::TaskStatus::Cancelled
        ) {
            return Err(HostError::Conflict(format!(
                "task `{task}` of run `{run_id}` is {}, not failed; only a failed or cancelled task can be retried",
                state.as_str()
            )));
        }
        Ok(index)
    }

    fn require_store(&self) -> Result<&Arc<dyn Store>, HostError> {
        self.store
            .as_ref()
            .ok_or_else(|| HostError::State("this host records no runs (no state store)".into()))
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        loaded: &Loaded,
        run_id: String,
        params: serde_json::Value,
        resumed: Option<Vec<store::StoredTask>>,
        journal: &dyn Journal,
        observer: &dyn Observer,
        stop: Stop,
    ) -> Result<RunReport, HostError> {
        let runner = SandboxRunner::new(
            self.sandbox.clone(),
            &loaded.workflow,
            loaded.plugins.clone(),
            self.slots.clone(),
            self.live_logs.as_ref().map(|logs| runner::Tapped {
                logs: logs.clone(),
                run_id: run_id.clone(),
            }),
        );
        let request = RunRequest {
            workflow: loaded.workflow.clone(),
            run_id,
            params,
            max_parallel: self.max_parallel,
            resumed,
        };
        let span =
            tracing::info_span!("run", workflow = %loaded.workflow.name, run_id = %request.run_id);
        Ok(
            exec::execute(request, Arc::new(runner), journal, observer, stop)
                .instrument(span)
                .await?,
        )
    }

    /// Copies each plugin of the run into the content-addressed folder; returns their versions.
    fn keep_plugin_copies(&self, loaded: &Loaded) -> Result<Vec<PluginVersion>, HostError> {
        let mut versions: HashMap<String, PluginVersion> = HashMap::new();
        for ((task, plugin), file) in loaded
            .workflow
            .tasks
            .iter()
            .zip(&loaded.plugins)
            .zip(&loaded.files)
        {
            let reference = task.plugin.to_string();
            if versions.contains_key(&reference) {
                continue;
            }
            if let Some(vault) = &self.vault {
                vault.keep(file, &plugin.hash).map_err(HostError::State)?;
            }
            versions.insert(
                reference.clone(),
                PluginVersion {
                    reference,
                    hash: plugin.hash.clone(),
                },
            );
        }
        let mut out: Vec<PluginVersion> = versions.into_values().collect();
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// The workflow of a stored run, with the plugin copies it started with.
    fn stored_workflow(&self, stored: &store::StoredRun) -> Result<Loaded, HostError> {
        let wf = workflow::stored::of_run(stored)?;
        self.check_mounts(&wf)?;
        let vault = self
            .vault
            .as_ref()
            .ok_or_else(|| HostError::State("no vault of plugin copies is configured".into()))?;
        let hashes: HashMap<&str, &str> = stored
            .plugins
            .iter()
            .map(|p| (p.reference.as_str(), p.hash.as_str()))
            .collect();
        let loaded = self
            .registry
            .load_with(&self.sandbox, &wf, |r: &PluginRef| {
                let reference = r.to_string();
                let hash = hashes.get(reference.as_str()).ok_or_else(|| {
                    format!(
                        "run `{}` recorded no version of plugin `{reference}`",
                        stored.run_id
                    )
                })?;
                let path = vault.file(hash).map_err(|e| {
                    format!("the copy of plugin `{reference}` this run started with: {e}")
                })?;
                Ok(PluginFile {
                    name: Registry::name_of(r),
                    path,
                })
            })?;
        for (p, (plugin, _)) in wf.tasks.iter().zip(&loaded) {
            let expected = hashes
                .get(p.plugin.to_string().as_str())
                .copied()
                .unwrap_or("");
            if plugin.hash != expected {
                return Err(HostError::State(format!(
                    "the copy of plugin `{}` does not match the hash the run recorded; the state folder was altered",
                    p.plugin
                )));
            }
        }
        Ok(assemble(wf, stored.workflow_yaml.clone(), None, loaded))
    }
}

fn assemble(
    workflow: Workflow,
    text: String,
    spec: Option<String>,
    loaded: Vec<(Arc<Plugin>, PathBuf)>,
) -> Loaded {
    let (plugins, files) = loaded.into_iter().unzip();
    let workflow = Arc::new(workflow);
    Loaded {
        spec: spec.map(|s| (workflow.clone(), s)),
        workflow,
        plugins,
        files,
        text,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
