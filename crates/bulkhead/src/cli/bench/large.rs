//! Large plugins start fast: an interpreter packed into a component (CPython by componentize-py,
//! about 18 MB; SpiderMonkey by componentize-js, about 12 MB) is compiled once and cached, and
//! every attempt is a fresh instance of it. Timed per attempt (the whole sandboxed attempt:
//! instance, WASI context, limits, the call, the outcome), beside starting the same interpreter
//! natively (`python3 -c pass`, `node -e 0`) in the same benchmark run.

use super::{median, percentile, tempfile_dir};
use bulkhead::sandbox::Sandbox;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The ABI v1 input document a component's `task` is read from.
const DOC: &[u8] = br#"{"abi":1,"workflow":"bench","run_id":"r","task":"t","attempt":1,"idempotency_key":"r:t","params":null,"run_params":{},"inputs":{}}"#;

/// The large components timed: (language, plugin name, native interpreter it is compared with).
const LARGE: &[(&str, &str, &str)] = &[
    ("Python", "py_noop", "python3"),
    ("JavaScript", "js_noop", "node"),
];

/// Per-attempt figures of the no-op components of `LARGE` found in `plugins`, and the start-up
/// of the native interpreters. `Ok(None)` (and a line saying why) when none is built.
pub(super) async fn large_plugins(
    plugins: &Path,
    attempts: usize,
    compiler: bulkhead::sandbox::compile::Compiler,
) -> Result<Option<serde_json::Value>, String> {
    let python3 = super::python_interpreter();
    let python = python3
        .as_deref()
        .and_then(|exe| native(&[exe, "-c", "pass"], 20));
    let node = native(&["node", "-e", "0"], 20);
    let mut out = serde_json::Map::new();
    for &(language, name, interpreter) in LARGE {
        let path = plugins.join(format!("{name}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "large plugins: {language} skipped: no {} (build it: bash scripts/install-toolchains.sh && bash scripts/build-languages.sh)",
                path.display()
            );
            continue;
        };
        let (native_ms, native_name) = match interpreter {
            "python3" => (
                python,
                format!("{} -c pass", python3.as_deref().unwrap_or("python3")),
            ),
            _ => (node, "node -e 0".to_string()),
        };
        let figures = one(name, &bytes, attempts, compiler.clone()).await?;
        let p50 = figures.p50;
        eprintln!(
            "large plugins: {language} component {name} ({:.1} MB): compiled in {:.1} s once, loaded from the cache in {:.0} ms; per attempt p50 {p50:.2} ms, p99 {:.2} ms (the first {:.2} ms), sandboxed",
            bytes.len() as f64 / 1e6,
            figures.compile_s,
            figures.cached_ms,
            figures.p99,
            figures.first,
        );
        match native_ms {
            Some(t) => eprintln!(
                "  native {native_name}: {t:.1} ms per start ({:.0}x the sandboxed attempt)",
                t / p50
            ),
            None => eprintln!("  native {native_name}: not installed here"),
        }
        out.insert(
            language.to_lowercase(),
            json!({
                "plugin": name,
                "component_bytes": bytes.len(),
                "compile_s": figures.compile_s,
                "cached_load_ms": figures.cached_ms,
                "attempt_ms": {"p50": p50, "p99": figures.p99, "first": figures.first, "samples": figures.samples},
                "native": native_name,
                "native_ms": native_ms,
                "native_over_attempt": native_ms.map(|n| n / p50),
            }),
        );
    }
    Ok((!out.is_empty()).then_some(serde_json::Value::Object(out)))
}

/// What one large component costs.
struct Figures {
    compile_s: f64,
    cached_ms: f64,
    first: f64,
    p50: f64,
    p99: f64,
    samples: usize,
}

/// Compiles `name` into a fresh cache, loads it again from there, then times `attempts`
/// attempts one by one.
async fn one(
    name: &str,
    bytes: &[u8],
    attempts: usize,
    compiler: bulkhead::sandbox::compile::Compiler,
) -> Result<Figures, String> {
    let cache = tempfile_dir()?;
    let sandbox = Sandbox::builder()
        .slots(4)
        .cache_dir(&cache)
        .compiler(compiler)
        .build()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    sandbox.load(name, bytes).map_err(|e| e.to_string())?;
    let compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let plugin = sandbox.load(name, bytes).map_err(|e| e.to_string())?;
    let cached_ms = t.elapsed().as_secs_f64() * 1e3;
    if !plugin.from_cache {
        return Err(format!(
            "the second load of {name} did not come from the cache"
        ));
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
            return Err(format!("{name} failed: {}: {}", f.kind, f.message));
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    Ok(Figures {
        compile_s,
        cached_ms,
        first,
        p50: percentile(&rest, 0.5),
        p99: percentile(&rest, 0.99),
        samples: rest.len(),
    })
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
