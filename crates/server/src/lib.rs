//! `bulkhead serve`: the long-running host. It keeps the workflow and plugin folders loaded
//! ([`serve`]), fires schedules and triggers, and serves the HTTP API, the web UI ([`api`]) and
//! Prometheus metrics ([`metrics`]). It drives a `bulkhead_host::Host`, like the command line.

pub mod api;
pub mod metrics;
pub mod serve;
