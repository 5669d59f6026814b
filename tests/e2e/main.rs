//! End-to-end tests: the real `bulkhead` binary on real compiled plugins (tests/plugins, built for
//! wasm32-wasip1 by scripts/build-plugins.sh on first use). One binary, a module per feature.

mod support;

mod cli;
mod compile;
mod components;
mod durable;
mod failures;
mod history;
mod http;
mod languages;
mod parallel;
mod postgres;
mod retries;
mod sandbox;
mod serve;
mod serve_api;
mod serve_bounds;
mod serve_model;
mod validation;
