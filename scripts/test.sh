#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the crate layering, the example and test
# plugins, unit, property and end-to-end tests (which run the real binary on real compiled plugins), then the real
# third-party clients against a live server (tests/conformance/run.sh). Same as CI.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-layers.sh
bash scripts/build-plugins.sh
# `cargo test` also builds target/debug/bulkhead, the binary the end-to-end and conformance
# tests run; a separate `cargo build` would only rebuild our crates without the `testing` feature.
cargo test --workspace
bash tests/conformance/run.sh
