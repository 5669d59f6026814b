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
cargo test --workspace
cargo build -p bulkhead
bash tests/conformance/run.sh
