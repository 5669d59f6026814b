#!/usr/bin/env bash
# Builds the example plugins into plugins/*.wasm and the test plugins into target/test-plugins/.
# Needs the wasm32-wasip1 target (installed here if missing). Incremental: fast when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    rustup target add wasm32-wasip1
fi

build() { # manifest, target dir, output folder
    local manifest=$1 target=$2 out=$3
    CARGO_TARGET_DIR="$target" cargo build --quiet --release --target wasm32-wasip1 --manifest-path "$manifest"
    mkdir -p "$out"
    for wasm in "$target"/wasm32-wasip1/release/*.wasm; do
        # Copy only when changed, so the plugin folder's timestamps mean something.
        cmp -s "$wasm" "$out/$(basename "$wasm")" || cp "$wasm" "$out/"
    done
}

build plugins/Cargo.toml target/wasm-plugins plugins

# Plugins written in WebAssembly text (no SDK, no compiler: the contract is language-neutral),
# assembled by tools/wat2wasm (the `wat` crate), so nothing beyond Rust is needed. The tool
# (target/tools/release/wat2wasm) is also used by tests that write their own WAT.
CARGO_TARGET_DIR="$PWD/target/tools" cargo build --quiet --release --manifest-path tools/wat2wasm/Cargo.toml
for wat in plugins/wat/*.wat; do
    out="plugins/$(basename "${wat%.wat}").wasm"
    if [ ! -f "$out" ] || [ "$wat" -nt "$out" ]; then
        target/tools/release/wat2wasm "$wat" "$out"
    fi
done
build tests/plugins/Cargo.toml target/wasm-tests target/test-plugins

# Component plugins (ABI v2, wit/plugin.wit), built for wasm32-wasip2; the tests use them too.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
CARGO_TARGET_DIR="$PWD/target/wasm-components" cargo build --quiet --release --target wasm32-wasip2 \
    --manifest-path plugins/components/Cargo.toml
for wasm in target/wasm-components/wasm32-wasip2/release/*.wasm; do
    for out in plugins target/test-plugins; do
        cmp -s "$wasm" "$out/$(basename "$wasm")" || cp "$wasm" "$out/"
    done
done
echo "plugins: $(ls plugins/*.wasm | wc -l) examples in plugins/, $(ls target/test-plugins/*.wasm | wc -l) test plugins in target/test-plugins/"
