//! Large plugins start fast: an interpreter packed into a component (CPython by componentize-py,
//! about 18 MB) is compiled once and cached, and every attempt is a fresh instance of it. Timed
//! per attempt (the whole sandboxed attempt: instance, WASI context, limits, the call, the
//! outcome), beside starting the same interpreter natively (`python3 -c pass`, `node -e 0`) in
//! the same benchmark run.

use super::{median, percentile, tempfile_dir};
use bulkhead::sandbox::Sandbox;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The ABI v1 input document a component's `task` is read from.
const DOC: &[u8] = br#"{"abi":1,"workflow":"bench","run_id":"r","task":"t","attempt":1,"idempotency_key":"r:t","params":null,"run_params":{},"inputs":{}}"#;

/// Per-attempt figures of the Python no-op component `py_noop.wasm` in `plugins`, and the
/// start-up of native interpreters. `Ok(None)` (and a line saying why) when it is not built.
pub(super) async fn large_plugins(
    plugins: &Path,
    attempts: usize,
    compiler: bulkhead::sandbox::compile::Compiler,
) -> Result<Option<serde_json::Value>, String> {
    let path = plugins.join("py_noop.wasm");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!(
            "large plugins skipped: no {} (build it: bash scripts/install-toolchains.sh && bash scripts/build-languages.sh)",
            path.display()
        );
        return Ok(None);
    };
    let cache = tempfile_dir()?;
    let sandbox = Sandbox::builder()
        .slots(4)
        .cache_dir(&cache)
        .compiler(compiler)
        .build()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    sandbox.load("py_noop", &bytes).map_err(|e| e.to_string())?;
    let compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let plugin = sandbox.load("py_noop", &bytes).map_err(|e| e.to_string())?;
    let cached_ms = t.elapsed().as_secs_f64() * 1e3;
    if !plugin.from_cache {
        return Err("the second load of py_noop did not come from the cache".into());
    }
    let (limits, grants) = (
        bulkhead::contract::Limits::default(),
        bulkhead::contract::Grants::default(),
    );
    let mut times = Vec::with_capacity(attempts);
    for _ in 0..attempts.max(2) {
        let started = Instant::now();
        let outcome = sandbox
            .run(
                &plugin,
                vec![bytes::Bytes::from_static(DOC)],
                &limits,
                &grants,
            )
            .await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if let Err(f) = outcome.result {
            return Err(format!("py_noop failed: {}: {}", f.kind, f.message));
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&rest, 0.5), percentile(&rest, 0.99));
    // The interpreter itself, not a wrapper in front of it (pyenv's `python3` is a shell script).
    let python3 = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let python = python3
        .as_deref()
        .and_then(|exe| native(&[exe, "-c", "pass"], 20));
    let node = native(&["node", "-e", "0"], 20);
    let ratio = |n: Option<f64>| n.map(|n| n / p50);
    eprintln!(
        "large plugins: Python component ({:.1} MB): compiled in {compile_s:.1} s once, loaded from the cache in {cached_ms:.0} ms; per attempt p50 {p50:.2} ms, p99 {p99:.2} ms (the first {first:.2} ms), sandboxed",
        bytes.len() as f64 / 1e6
    );
    let python_name = format!("{} -c pass", python3.as_deref().unwrap_or("python3"));
    for (name, t) in [(python_name.as_str(), python), ("node -e 0", node)] {
        match t {
            Some(t) => eprintln!(
                "  native {name}: {t:.1} ms per start ({:.0}x the sandboxed attempt)",
                t / p50
            ),
            None => eprintln!("  native {name}: not installed here"),
        }
    }
    Ok(Some(json!({
        "python_component_bytes": bytes.len(),
        "compile_s": compile_s,
        "cached_load_ms": cached_ms,
        "attempt_ms": {"p50": p50, "p99": p99, "first": first, "samples": rest.len()},
        "native_python3_ms": python,
        "native_node_ms": node,
        "python3_over_attempt": ratio(python),
        "node_over_attempt": ratio(node),
    })))
}

/// The median wall time of `n` starts of a native command, in ms; `None` when it cannot run.
fn native(argv: &[&str], n: usize) -> Option<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Some(median(times))
}
