//! Bulkhead: a sandboxed WebAssembly task host.
//!
//! Data flows one way: a workflow file is parsed and validated ([`workflow`]), its plugins are
//! found and compiled ([`registry`], [`sandbox`]), the planner ([`plan`]) says which tasks may
//! run, the executor ([`exec`]) runs them in sandboxes and applies retries, and the result is a
//! [`report::RunReport`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use bulkhead::{Host, HostConfig};
//! let host = Host::new(HostConfig::default())?;
//! let loaded = host.load(std::path::Path::new("workflows/hello.yaml"))?;
//! let report = host.run(&loaded, bulkhead::new_run_id(), serde_json::json!({}), &bulkhead::exec::LogObserver, Default::default()).await;
//! println!("{}", report.status.as_str());
//! # Ok(()) }
//! ```

pub mod exec;
pub mod plan;
pub mod registry;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod store;
mod suggest;
pub mod telemetry;
pub mod workflow;

use exec::{Observer, RunRequest};
use registry::Registry;
use report::RunReport;
use sandbox::{Plugin, Sandbox, SandboxError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use workflow::{Workflow, WorkflowError};

/// Host-wide settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The plugin folder.
    pub plugins_dir: PathBuf,
    /// Where compiled plugins are cached (`None`: no disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Attempts at once across the host.
    pub max_parallel: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            plugins_dir: PathBuf::from("plugins"),
            cache_dir: Some(PathBuf::from(".bulkhead/cache")),
            max_parallel: 256,
        }
    }
}

/// A sandbox and a plugin folder: loads workflows and runs them.
#[derive(Debug)]
pub struct Host {
    sandbox: Arc<Sandbox>,
    registry: Registry,
    max_parallel: usize,
}

/// A workflow with its plugins loaded, ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated workflow.
    pub workflow: Arc<Workflow>,
    /// The plugin of each task, by task index.
    pub plugins: Vec<Arc<Plugin>>,
}

impl Host {
    /// Creates the engine (a pool of `max_parallel` instance slots) and opens the plugin folder.
    pub fn new(config: HostConfig) -> Result<Host, SandboxError> {
        let slots = u32::try_from(config.max_parallel.max(1)).unwrap_or(u32::MAX);
        let mut builder = Sandbox::builder().slots(slots);
        if let Some(dir) = config.cache_dir {
            builder = builder.cache_dir(dir);
        }
        Ok(Host {
            sandbox: Arc::new(builder.build()?),
            registry: Registry::new(config.plugins_dir),
            max_parallel: config.max_parallel.max(1),
        })
    }

    /// The sandbox.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The plugin folder.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads, validates and loads the plugins of a workflow file. Nothing runs.
    pub fn load(&self, path: &Path) -> Result<Loaded, WorkflowError> {
        let workflow = workflow::load(path)?;
        self.prepare(workflow)
    }

    /// Loads the plugins of an already validated workflow.
    pub fn prepare(&self, workflow: Workflow) -> Result<Loaded, WorkflowError> {
        let plugins = self.registry.load_for(&self.sandbox, &workflow)?;
        Ok(Loaded {
            workflow: Arc::new(workflow),
            plugins,
        })
    }

    /// Runs a loaded workflow once, to its end or until `cancel` fires.
    pub async fn run(
        &self,
        loaded: &Loaded,
        run_id: String,
        params: serde_json::Value,
        observer: &dyn Observer,
        cancel: CancellationToken,
    ) -> RunReport {
        let runner = runner::SandboxRunner::new(
            self.sandbox.clone(),
            &loaded.workflow,
            loaded.plugins.clone(),
        );
        let request = RunRequest {
            workflow: loaded.workflow.clone(),
            run_id,
            params,
            max_parallel: self.max_parallel,
        };
        let span =
            tracing::info_span!("run", workflow = %loaded.workflow.name, run_id = %request.run_id);
        exec::execute(request, Arc::new(runner), observer, cancel)
            .instrument(span)
            .await
    }
}

/// A new run id: a UUIDv7, so ids sort by creation time.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
