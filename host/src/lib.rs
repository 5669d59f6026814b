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
//! let report = host.run(&loaded, bulkhead::new_run_id(), serde_json::json!({}), &bulkhead::exec::LogObserver, Default::default()).await?;
//! println!("{}", report.status.as_str());
//! # Ok(()) }
//! ```

pub mod api;
pub mod exec;
pub mod fuzz;
mod host;
pub mod metrics;
pub mod plan;
pub mod registry;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod suggest;
pub mod telemetry;
pub mod text;
pub mod trigger;
pub mod workflow;

pub use host::{Guarded, Host, HostConfig, HostError, Loaded};

/// A new run id: a UUIDv7, so ids sort by creation time.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
