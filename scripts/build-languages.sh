#!/usr/bin/env bash
# Builds the example plugins written in languages other than Rust (docs/languages/) into
# plugins/ and target/test-plugins/, from source:
#   plugins/c/<name>/<name>.c          -> <name>.wasm  (ABI v1 command; clang-14, wasi-libc)
#   plugins/c-component/<name>/<name>.c -> <name>.wasm (ABI v2 component; clang-14, wit-bindgen's C
#                                      bindings and wasmtime's preview 1 adapter, by tools/c-component)
#   plugins/cpp/<name>/<name>.cpp      -> <name>.wasm  (ABI v1 command; clang++-14, libc++ for WASI)
#   plugins/go/<name>/ (a Go module)   -> <name>.wasm  (ABI v1 command; go, GOOS=wasip1)
#   plugins/zig/<name>/<name>.zig      -> <name>.wasm  (ABI v1 command; zig from PyPI's ziglang)
#   plugins/assemblyscript/<name>/<name>.ts -> <name>.wasm (ABI v1 command; asc + WASI shim)
#   plugins/python/<name>/app.py       -> <name>.wasm  (ABI v2 component; componentize-py)
#   plugins/js/<name>/app.js           -> <name>.wasm  (ABI v2 component; componentize-js)
# Needs the toolchains of scripts/install-toolchains.sh; says which one is missing otherwise.
# Incremental: an example is rebuilt only when a source file is newer than its .wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

missing() {
    echo "build-languages: $1 is not installed; run \`bash scripts/install-toolchains.sh\`" >&2
    exit 1
}
command -v clang-14 >/dev/null 2>&1 || missing "clang-14 (C examples)"
[ -f /usr/lib/wasm32-wasi/libc++.a ] || missing "libc++ for WASI (C++ examples)"
command -v go >/dev/null 2>&1 || missing "go (Go examples)"
python3 -m ziglang version >/dev/null 2>&1 || missing "zig (Zig examples)"
asc=tools/js/node_modules/.bin/asc
[ -x "$asc" ] || missing "asc in tools/js (AssemblyScript examples)"
command -v componentize-py >/dev/null 2>&1 || missing "componentize-py (Python examples)"
componentize_js=tools/js/node_modules/.bin/componentize-js
[ -x "$componentize_js" ] || missing "componentize-js in tools/js (JavaScript examples)"

mkdir -p target/test-plugins target/languages
stale() { # output, sources...
    local out=$1
    shift
    [ ! -f "$out" ] || [ -n "$(find "$@" -newer "$out" -print -quit)" ]
}
publish() { # built wasm
    for dir in plugins target/test-plugins; do
        cmp -s "$1" "$dir/$(basename "$1")" || cp "$1" "$dir/"
    done
}

# examples KIND [EXTRA_SOURCES...]: builds every plugins/KIND/NAME/ with `build_KIND NAME SRC OUT`
# into target/languages/NAME.wasm when a source (or an extra one) is newer, and publishes it.
examples() {
    local kind=$1 src name out
    shift
    for src in plugins/"$kind"/*/; do
        name=$(basename "$src")
        out=target/languages/$name.wasm
        if stale "$out" "$src" "$@"; then
            "build_${kind//-/_}" "$name" "$src" "$out"
        fi
        publish "$out"
    done
}

build_c() {
    clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -o "$3" "$2/$1.c"
}
# C components: wit-bindgen's C bindings of the `plugin` world, compiled with the task into a
# WASI preview 1 reactor module, adapted into a component (tools/c-component, built here).
build_c_component() {
    clang-14 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Werror \
        -I "$bindings" -o "target/languages/$1.core.wasm" \
        "$2/$1.c" "$bindings/plugin.c" "$bindings/plugin_component_type.o"
    "$c_component" new "target/languages/$1.core.wasm" "$3"
}
build_cpp() {
    clang++-14 --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -fno-exceptions -o "$3" "$2/$1.cpp"
}
build_go() {
    (cd "$2" && GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-s -o "$OLDPWD/$3" .)
}
build_zig() {
    # Zig keeps its cache beside the build, not in the source folder.
    python3 -m ziglang build-exe -target wasm32-wasi -O ReleaseSmall \
        --cache-dir target/languages/zig-cache --global-cache-dir target/languages/zig-cache \
        -femit-bin="$3" "$2/$1.zig"
}
build_assemblyscript() {
    "$asc" "$2/$1.ts" --config tools/js/node_modules/@assemblyscript/wasi-shim/asconfig.json -O -o "$3"
}
build_python() {
    # componentize-py writes its bindings next to nothing of ours: run it from a scratch dir.
    (cd target/languages && componentize-py -d ../../wit -w plugin componentize \
        -p "../../$2" app -o "$1.wasm" >/dev/null)
}
build_js() {
    "$componentize_js" --wit wit --world-name plugin --out "$3" "$2/app.js" >/dev/null
}

CARGO_TARGET_DIR="$PWD/target/tools" cargo build --quiet --release --manifest-path tools/c-component/Cargo.toml
c_component=target/tools/release/c-component
bindings=target/languages/c-bindings
if stale "$bindings/plugin.h" wit "$c_component"; then
    "$c_component" bindings wit plugin "$bindings"
fi

examples c
examples c-component "$bindings"
examples cpp
examples go
examples zig
examples assemblyscript
examples python wit
examples js wit
count() { ls "plugins/$1" | wc -l; }
echo "languages: $(count c) C, $(count c-component) C component, $(count cpp) C++, $(count go) Go, $(count zig) Zig, $(count assemblyscript) AssemblyScript, $(count python) Python, $(count js) JavaScript examples built"
