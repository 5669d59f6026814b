//! Bulkhead's engine without a runtime: what a workflow is, which of its tasks may run, how a run
//! goes, and what must be stored about it.
//!
//! Data flows one way: a workflow file is parsed and validated ([`workflow`]), the planner
//! ([`plan`]) says which tasks may run, the executor ([`exec`]) runs them through a
//! [`exec::Runner`] and applies retries, commits every transition to a [`store::Store`] before
//! acting on it, and the result is a [`report::RunReport`]. [`trigger`] says when scheduled runs
//! fall due. The sandbox, the database backends and the server are other crates: this one
//! depends on no wasm runtime, database driver, HTTP server or command-line parser.

pub mod contract;
pub mod exec;
pub mod plan;
pub mod report;
pub mod store;
pub mod suggest;
pub mod text;
pub mod trigger;
pub mod workflow;

/// A new run id: a UUIDv7, so ids sort by creation time.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
