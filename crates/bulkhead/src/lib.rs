//! Bulkhead: a sandboxed WebAssembly task host. This crate is the `bulkhead` command; the library
//! part re-exports the crates it is built from, so `bulkhead::workflow` and friends keep working.
//!
//! The crates, bottom to top (docs/architecture.md draws the graph):
//! `bulkhead-abi` (the plugin wire contract), `bulkhead-core` (workflow spec, planner, executor,
//! retries, reports, cron and the `Store` contract; no runtime), `bulkhead-sandbox` (wasmtime),
//! `bulkhead-store-sqlite`, `bulkhead-host` (joins them), `bulkhead-server` (serve, API, metrics,
//! UI) and this one (the command line).

pub use bulkhead_core::{
    contract, exec, new_run_id, plan, report, store, suggest, text, trigger, workflow,
};
pub use bulkhead_host::{
    registry, runner, ErrorClass, FolderVault, Guarded, Host, HostConfig, HostError, Loaded,
    PluginVault,
};
pub use bulkhead_sandbox as sandbox;
pub use bulkhead_server::{api, metrics, serve};
pub use bulkhead_store_postgres::{self as store_postgres, PostgresStore};
pub use bulkhead_store_sqlite::{Commits, SqliteStore};

pub mod fuzz;
pub mod telemetry;
