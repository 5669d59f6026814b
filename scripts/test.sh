#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the crate layering, the example and test
# plugins (Rust, C, Python), unit, property and end-to-end tests (which run the real binary on real compiled plugins), then the real
# third-party clients against a live server (tests/conformance/run.sh) and the web UI in a real
# browser (tests/ui/run.sh). Same as CI.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-layers.sh
bash scripts/build-plugins.sh
# The C and Python examples, from source (toolchains: scripts/install-toolchains.sh).
bash scripts/build-languages.sh
# `cargo test` also builds target/debug/bulkhead, the binary the end-to-end and conformance
# tests run; a separate `cargo build` would only rebuild our crates without the `testing` feature.
cargo test --workspace
# The three-host test once more, with another seed: a different host killed and another
# stopped, at another moment (the run above used seed 1; `BULKHEAD_CLUSTER_SEED` picks).
# `--workspace` keeps the features of the build above: `-p bulkhead` would rebuild.
BULKHEAD_CLUSTER_SEED=4 cargo test --workspace --test e2e -- --exact \
    postgres::three_hosts_share_the_work_and_survive_a_kill_and_a_stop
bash tests/conformance/run.sh
# The web UI in a real browser (Chromium via Playwright, axe-core), against a live server.
bash tests/ui/run.sh
