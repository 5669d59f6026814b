#!/usr/bin/env bash
# Builds the example plugins written in languages other than Rust (docs/languages/) into
# plugins/ and target/test-plugins/, from source:
#   plugins/c/<name>/<name>.c          -> <name>.wasm  (ABI v1 command; clang-14, wasi-libc)
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

for src in plugins/c/*/; do
    name=$(basename "$src")
    out=target/languages/$name.wasm
    if stale "$out" "$src"; then
        clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -o "$out" "$src/$name.c"
    fi
    publish "$out"
done

for src in plugins/python/*/; do
    name=$(basename "$src")
    out=target/languages/$name.wasm
    if stale "$out" "$src" wit; then
        # componentize-py writes its bindings next to nothing of ours: run it from a scratch dir.
        (cd target/languages && componentize-py -d ../../wit -w plugin componentize \
            -p "../../$src" app -o "$name.wasm" >/dev/null)
    fi
    publish "$out"
done
for src in plugins/js/*/; do
    name=$(basename "$src")
    out=target/languages/$name.wasm
    if stale "$out" "$src" wit; then
        "$componentize_js" --wit wit --world-name plugin --out "$out" "$src/app.js" >/dev/null
    fi
    publish "$out"
done
echo "languages: $(ls plugins/c | wc -l) C, $(ls plugins/python | wc -l) Python, $(ls plugins/js | wc -l) JavaScript examples built"
