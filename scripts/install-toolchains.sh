#!/usr/bin/env bash
# Installs the toolchains of the language examples (docs/languages/), where missing:
#   C (ABI v1):       Debian's clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32
#   C++ (ABI v1):     the same, with Debian's libc++-14-dev-wasm32 (libc++ and libc++abi for WASI)
#   Go (ABI v1):      Debian's golang-go from bookworm-backports (1.23; Debian 12's own 1.19
#                     predates GOOS=wasip1), the backports source added if missing
#   Zig (ABI v1):     ziglang from PyPI (pinned: Zig's standard library changes between releases)
#   Python (ABI v2):  componentize-py from PyPI (pinned: its output is what the tests check)
#   JavaScript (ABI v2): componentize-js from npm, into tools/js (pinned in its package.json)
#   AssemblyScript (ABI v1): assemblyscript and @assemblyscript/wasi-shim from npm, into tools/js
# Idempotent and quick when everything is there; `.ci/run` runs it on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY=0.25.1
ZIG=0.17.1

apt_missing=()
command -v clang-14 >/dev/null 2>&1 || apt_missing+=(clang-14)
command -v wasm-ld-14 >/dev/null 2>&1 || apt_missing+=(lld-14)
[ -f /usr/lib/wasm32-wasi/libc.a ] || apt_missing+=(wasi-libc)
ls /usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 ||
    apt_missing+=(libclang-rt-14-dev-wasm32)
[ -f /usr/lib/wasm32-wasi/libc++.a ] || apt_missing+=(libc++-14-dev-wasm32 libc++abi-14-dev-wasm32)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "install-toolchains: apt-get install ${apt_missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

# Go 1.21 or newer (GOOS=wasip1): Debian 12 has it in bookworm-backports only.
go_ok() { command -v go >/dev/null 2>&1 && go env GOVERSION | grep -Eq '^go1\.(2[1-9]|[3-9][0-9])'; }
if ! go_ok; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" >/etc/apt/sources.list.d/bookworm-backports.list
    fi
    echo "install-toolchains: apt-get install -t bookworm-backports golang-go"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-go >/dev/null
    hash -r
    go_ok || { echo "install-toolchains: Go >= 1.21 is still missing" >&2; exit 1; }
fi

if [ "$(python3 -m ziglang version 2>/dev/null)" != "$ZIG" ]; then
    echo "install-toolchains: pip install ziglang==$ZIG"
    python3 -m pip install --quiet --disable-pip-version-check "ziglang==$ZIG"
fi

if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY" ]; then
    echo "install-toolchains: pip install componentize-py==$COMPONENTIZE_PY"
    python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
if [ ! -x tools/js/node_modules/.bin/componentize-js ] || [ ! -d tools/js/node_modules/@bytecodealliance/preview2-shim ] ||
    [ ! -x tools/js/node_modules/.bin/asc ] || [ ! -d tools/js/node_modules/@assemblyscript/wasi-shim ]; then
    echo "install-toolchains: npm ci in tools/js (componentize-js, assemblyscript)"
    npm ci --prefix tools/js --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "toolchains: clang $(clang-14 --version | head -1 | awk '{print $NF}'), $(go env GOVERSION), zig $(python3 -m ziglang version), $(componentize-py --version), componentize-js $(node -p "require('./tools/js/node_modules/@bytecodealliance/componentize-js/package.json').version")"
