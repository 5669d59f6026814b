#!/usr/bin/env bash
# Browser tests of the web UI against a real `bulkhead serve` (tests/ui/ui.test.mjs): Playwright
# (npm playwright-core) driving Debian's Chromium, axe-core for accessibility. Needs the binary
# (target/debug/bulkhead), the test plugins (scripts/build-plugins.sh), Chromium
# (`apt-get install chromium`) and `npm ci` in tests/ui; `.ci/run` installs the last two.
# Screenshots of every step go to target/ui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${BULKHEAD_BIN:-$root/target/debug/bulkhead}
chromium=${CHROMIUM:-$(command -v chromium || true)}
[ -x "$bin" ] || { echo "ui: no $bin (cargo build first)" >&2; exit 1; }
[ -n "$chromium" ] || { echo "ui: Chromium is not installed (apt-get install chromium)" >&2; exit 1; }
[ -d tests/ui/node_modules/playwright-core ] || { echo "ui: run \`npm ci --prefix tests/ui\`" >&2; exit 1; }

work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/workflows" "$work/plugins"
for p in echo flaky sleep noop ticker; do cp "target/test-plugins/$p.wasm" "$work/plugins/"; done

cat >"$work/workflows/typed.yaml" <<'YAML'
name: typed
description: A small pipeline with typed parameters.
params:
  day: {type: string, required: true, description: the day to process}
  limit: {type: integer, default: 100}
  mode: {enum: [fast, full], default: fast}
  dry_run: {type: boolean, default: false}
tasks:
  extract: {plugin: echo}
  clean_a: {plugin: sleep, needs: [extract], params: {ms: 300}}
  clean_b: {plugin: sleep, needs: [extract], params: {ms: 500}}
  join: {plugin: echo, needs: [clean_a, clean_b]}
  report: {plugin: echo, needs: [join]}
YAML
cat >"$work/workflows/retrying.yaml" <<'YAML'
name: retrying
description: A task that fails transiently twice and gives up; the rest of the graph goes on.
defaults:
  retry: {max_attempts: 2, backoff: fixed, initial_delay: 300ms}
tasks:
  start: {plugin: echo}
  flaky: {plugin: flaky, needs: [start], params: {succeed_on: 5}}
  after: {plugin: echo, needs: [flaky]}
  other: {plugin: echo, needs: [start]}
YAML
cat >"$work/workflows/ticking.yaml" <<'YAML'
name: ticking
description: One task whose log grows for four seconds.
tasks:
  tick: {plugin: ticker, params: {n: 40, ms: 100}}
YAML
cat >"$work/workflows/slow.yaml" <<'YAML'
name: slow
schedule: "0 3 * * *"
timezone: Europe/Berlin
tasks:
  wait: {plugin: sleep, params: {ms: 60000}, limits: {timeout: 5m}}
YAML
# A broken file whose error is long: it must not push the page's controls off screen.
{
    echo "name: broken"
    echo "tasks:"
    echo "  a: {plugin: noop, needs: [$(python3 -c "print(', '.join('missing_task_with_a_long_name_%d' % i for i in range(40)))")]}"
} >"$work/workflows/broken.yaml"
python3 - "$work/workflows/big.yaml" <<'PY'
import sys
# 1,000 no-op tasks in 20 layers of 50, each needing two of the layer before.
lines = ["name: big", "tasks:"]
for layer in range(20):
    for i in range(50):
        needs = "" if layer == 0 else f", needs: [t{layer-1}_{i}, t{layer-1}_{(i + 1) % 50}]"
        lines.append(f"  t{layer}_{i}: {{plugin: noop{needs}}}")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY

# 100,000 finished runs of a workflow `history` in the store, for the runs page's speed: one
# real run, copied with older ids (UUIDv7: the time is the id's first 48 bits).
cat >"$work/history.yaml" <<'YAML'
name: history
tasks:
  a: {plugin: noop}
YAML
cp "$work/history.yaml" "$work/workflows/"
"$bin" run "$work/history.yaml" --plugins "$work/plugins" --store "$work/state.db" >/dev/null 2>&1
python3 - "$work/state.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
(seed,) = db.execute("SELECT run_id FROM runs WHERE workflow = 'history'").fetchone()
cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
start = int(time.time() * 1000) - 30 * 86400 * 1000
# Each copy gets a run key of its own (schema 10: the key its tasks would be filed under).
rest = ", ".join(c for c in cols if c not in ("run_id", "run_key"))
(top,) = db.execute("SELECT max(run_key) FROM runs").fetchone()
db.execute(f"""
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
  INSERT INTO runs (run_id, run_key, {rest})
  SELECT printf('%08x-%04x-7000-8000-%012x', (({start} + i * 20) >> 16), (({start} + i * 20) & 65535), i), {top} + 1 + i, {rest}
    FROM n, runs WHERE runs.run_id = ?""", (seed,))
db.commit()
print("ui: seeded", db.execute("SELECT count(*) FROM runs").fetchone()[0], "runs")
PY

token=ui-test-token
"$bin" serve --listen 127.0.0.1:0 --workflows "$work/workflows" --plugins "$work/plugins" \
    --store "$work/state.db" --token "$token" --token-for-reads >"$work/serve.log" 2>&1 &
server=$!
base=
for _ in $(seq 1 300); do
    base=$(sed -n 's/^.*listening on \(http:\/\/[^ ]*\).*$/\1/p' "$work/serve.log" | head -1)
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
[ -n "$base" ] || { echo "ui: the server did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
echo "ui: server at $base"

mkdir -p target/ui-screenshots
BASE=$base TOKEN=$token CHROMIUM=$chromium SCREENSHOTS=$root/target/ui-screenshots \
    node --test --test-concurrency=1 tests/ui/ui.test.mjs || { tail -30 "$work/serve.log" >&2; exit 1; }
kill -0 "$server" 2>/dev/null || { echo "ui: the server died" >&2; cat "$work/serve.log" >&2; exit 1; }
echo "ui: passed; screenshots in target/ui-screenshots/"
