// A Bulkhead task in AssemblyScript (ABI v1: a WASI preview 1 command), built with `asc` and
// the WASI shim (@assemblyscript/wasi-shim), which gives `process.stdin`, `process.stdout`,
// `process.stderr` and `process.exit` over WASI calls. It reads the task document on stdin,
// looks in the upstream outputs (`"inputs": ...`) for `"above":true` (the Zig `threshold` task
// in workflows/languages.yaml) and outputs a label for it, taken from `params.above` or
// `params.within`. It logs one structured record to stderr. With `"fail":"transient"` in its
// parameters it exits 75 (EX_TEMPFAIL): the host records a transient failure and retries it.
//
// Build: asc label.ts --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O -o label.wasm

/** The whole of stdin, as UTF-8 text. */
function readStdin(): string {
  let chunks = new Array<ArrayBuffer>();
  let total = 0;
  while (true) {
    const chunk = new ArrayBuffer(65536);
    const n = process.stdin.read(chunk);
    if (n <= 0) break;
    chunks.push(chunk.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    all.set(Uint8Array.wrap(chunks[i]), at);
    at += chunks[i].byteLength;
  }
  return String.UTF8.decode(all.buffer);
}

/** The string value of the first `"key":"..."` in `text` (no escapes), or `fallback`. */
function stringParam(text: string, key: string, fallback: string): string {
  const needle = '"' + key + '":"';
  const at = text.indexOf(needle);
  if (at < 0) return fallback;
  const start = at + needle.length;
  const end = text.indexOf('"', start);
  return end < 0 ? fallback : text.substring(start, end);
}

const doc = readStdin();
if (doc.includes('"fail":"transient"')) {
  process.stderr.write('{"level":"warn","msg":"asked to fail; try again"}\n');
  process.exit(75);
}
const inputs = doc.indexOf('"inputs":');
if (inputs < 0) {
  process.stderr.write('{"level":"error","msg":"the task document has no inputs"}\n');
  process.exit(1);
}
const upstream = doc.substring(inputs);
const above = upstream.includes('"above":true');
const label = above
  ? stringParam(doc, "above", "above the threshold")
  : stringParam(doc, "within", "within the threshold");
process.stdout.write('{"language":"assemblyscript","above":' + (above ? "true" : "false") + ',"label":"' + label + '"}\n');
process.stderr.write('{"level":"info","msg":"labelled","above":' + (above ? "true" : "false") + "}\n");
