#!/usr/bin/env bash
# Installs the toolchains of the language examples (docs/languages/), where missing:
#   C (ABI v1):       Debian's clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32
#   Python (ABI v2):  componentize-py from PyPI (pinned: its output is what the tests check)
#   JavaScript (ABI v2): componentize-js from npm, into tools/js (pinned in its package.json)
# Idempotent and quick when everything is there; `.ci/run` runs it on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY=0.25.1

apt_missing=()
command -v clang-14 >/dev/null 2>&1 || apt_missing+=(clang-14)
command -v wasm-ld-14 >/dev/null 2>&1 || apt_missing+=(lld-14)
[ -f /usr/lib/wasm32-wasi/libc.a ] || apt_missing+=(wasi-libc)
ls /usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 ||
    apt_missing+=(libclang-rt-14-dev-wasm32)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "install-toolchains: apt-get install ${apt_missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY" ]; then
    echo "install-toolchains: pip install componentize-py==$COMPONENTIZE_PY"
    python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
if [ ! -x tools/js/node_modules/.bin/componentize-js ] || [ ! -d tools/js/node_modules/@bytecodealliance/preview2-shim ]; then
    echo "install-toolchains: npm ci in tools/js (componentize-js)"
    npm ci --prefix tools/js --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "toolchains: clang $(clang-14 --version | head -1 | awk '{print $NF}'), $(componentize-py --version), componentize-js $(node -p "require('./tools/js/node_modules/@bytecodealliance/componentize-js/package.json').version")"
