#!/usr/bin/env bash
# Checks the crate layering of docs/architecture.md on the resolved dependency graph: each crate
# must not depend, even indirectly, on the crates listed for it. The compiler already refuses a
# `use` of a crate that is not a dependency; this refuses the dependency itself.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
check() { # crate, forbidden crates...
    local crate=$1
    shift
    local deps
    deps=$(cargo tree --offline -p "$crate" -e normal --prefix none -f '{p}' | awk '{print $1}' | sort -u)
    for bad in "$@"; do
        if grep -qx -- "$bad" <<<"$deps"; then
            echo "layering: $crate depends on $bad (see docs/architecture.md, Crates)" >&2
            fail=1
        fi
    done
}
runtimes=(wasmtime wasmtime-wasi cranelift-codegen rusqlite libsqlite3-sys tokio-postgres axum hyper clap prometheus-client)
check bulkhead-abi tokio bulkhead-core "${runtimes[@]}"
check bulkhead-core bulkhead-sandbox bulkhead-store-sqlite bulkhead-store-postgres bulkhead-host bulkhead-server "${runtimes[@]}"
# The sandbox sends the outgoing HTTP it grants (wasmtime-wasi-http, hyper's client), so hyper is
# allowed below the server; serving HTTP (axum) is not.
check bulkhead-sandbox bulkhead-store-sqlite bulkhead-store-postgres bulkhead-host bulkhead-server rusqlite tokio-postgres axum clap
check bulkhead-store-sqlite bulkhead-store-postgres bulkhead-sandbox bulkhead-host bulkhead-server wasmtime tokio-postgres axum hyper clap
check bulkhead-store-postgres bulkhead-store-sqlite bulkhead-sandbox bulkhead-host bulkhead-server wasmtime rusqlite axum hyper clap
check bulkhead-host bulkhead-server axum clap prometheus-client
check bulkhead-server clap
check bulkhead-sdk bulkhead-core tokio wasmtime
[ "$fail" = 0 ] && echo "layering: every crate depends only on the layers below it"
exit "$fail"
