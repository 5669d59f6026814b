//! Compile bombs: a plugin whose compilation would take too long or too much memory, or that
//! declares what no sandbox slot can hold, is a `load` failure naming the bound, found early;
//! a stop interrupts a compile.

use crate::support::{bulkhead, test_plugins, Case};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len(), out);
    out.extend_from_slice(body);
}

/// A WASI command module (`_start`, one memory) with `functions` functions of body `body`
/// (without the final `end`), and `tables` tables of one element.
fn module(functions: usize, body: &[u8], tables: usize) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions));
    section(3, &funcs, &mut m);
    if tables > 0 {
        let mut t = Vec::new();
        leb(tables, &mut t);
        for _ in 0..tables {
            t.extend_from_slice(&[0x70, 0, 1]);
        }
        section(4, &t, &mut m);
    }
    section(5, &[1, 0, 1], &mut m);
    section(
        7,
        &[
            2, 6, b'_', b's', b't', b'a', b'r', b't', 0, 0, 6, b'm', b'e', b'm', b'o', b'r', b'y',
            2, 0,
        ],
        &mut m,
    );
    let mut one = vec![0u8]; // no locals
    one.extend_from_slice(body);
    one.push(0x0b);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        leb(one.len(), &mut code);
        code.extend_from_slice(&one);
    }
    section(10, &code, &mut m);
    m
}

/// Blocks nested `depth` deep: cheap to write, slow to compile (the audit's 344 KB took 34 s).
fn nested_blocks(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth * 3);
    for _ in 0..depth {
        body.extend_from_slice(&[0x02, 0x40]);
    }
    body.extend(std::iter::repeat_n(0x0bu8, depth));
    body
}

/// A plugin folder holding `name.wasm` = `bytes`, beside a workflow with one task using it and
/// an independent task using `noop`.
fn case_with(name: &str, bytes: &[u8]) -> (Case, PathBuf) {
    let case = Case::new(&format!(
        "name: bomb\ntasks:\n  t: {{plugin: {name}}}\n  other: {{plugin: noop}}\n"
    ));
    let plugins = case.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(plugins.join(format!("{name}.wasm")), bytes).unwrap();
    std::fs::copy(test_plugins().join("noop.wasm"), plugins.join("noop.wasm")).unwrap();
    (case, plugins)
}

fn run_with(case: &Case, plugins: &Path, extra: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = case
        .bulkhead()
        .env("BULKHEAD_PLUGINS", plugins)
        .env("BULKHEAD_CACHE_DIR", case.path("cache"))
        .args(extra)
        .arg("run")
        .arg(case.file())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_compile_bomb_is_stopped_at_the_compile_time_bound() {
    let (case, plugins) = case_with("bomb", &module(1, &nested_blocks(150_000), 0));
    let (code, stderr, took) = run_with(&case, &plugins, &["--compile-timeout", "1s"]);
    assert_eq!(
        code, 2,
        "a plugin that does not load is invalid input: {stderr}"
    );
    assert!(
        stderr.contains("plugin `bomb`")
            && stderr.contains("compile time bound")
            && stderr.contains("--compile-timeout"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(30),
        "stopped near the bound, took {took:?}"
    );
}

#[test]
fn a_compile_that_needs_too_much_memory_is_stopped_at_the_memory_bound() {
    // Many small functions: the compiler's memory grows with each (the audit's million took
    // 5.9 GB).
    let (case, plugins) = case_with("wide", &module(300_000, &[0x01, 0x01, 0x01], 0));
    let (code, stderr, _) = run_with(&case, &plugins, &["--compile-memory", "64MiB"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("plugin `wide`")
            && stderr.contains("compile memory bound")
            && stderr.contains("--compile-memory"),
        "{stderr}"
    );
}

#[test]
fn what_no_sandbox_slot_can_hold_is_refused_before_compiling() {
    // Five tables and a body that takes minutes to compile: the declaration check answers
    // first, so the error names the tables, not the compile time.
    let (case, plugins) = case_with("tables", &module(1, &nested_blocks(150_000), 5));
    let (code, stderr, took) = run_with(&case, &plugins, &["--compile-timeout", "600s"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("plugin `tables`: defines more than 4 tables"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(20),
        "refused without compiling, took {took:?}"
    );
}

#[test]
fn a_plugin_over_the_module_size_bound_is_refused_naming_the_bound() {
    let (case, plugins) = case_with("big", &module(1, &[], 0));
    let (code, stderr, _) = run_with(&case, &plugins, &["--max-module-size", "10KiB"]);
    // noop is bigger than 10 KiB too; both are named.
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("plugin `noop`: is ") && stderr.contains("module size bound"),
        "{stderr}"
    );
    let (code, stderr, _) = run_with(&case, &plugins, &[]);
    assert_eq!(
        code, 0,
        "under the default bound both load and run: {stderr}"
    );
}

/// The pids of running `bulkhead __compile` processes whose parent is `parent`.
fn compile_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // stat: pid (comm) state ppid ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && cmdline.split(|b| *b == 0).any(|a| a == b"__compile") {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_stop_interrupts_a_compile_and_nothing_runs() {
    let (case, plugins) = case_with("bomb", &module(1, &nested_blocks(150_000), 0));
    let child = bulkhead()
        .env("BULKHEAD_STORE", case.store())
        .env("BULKHEAD_PLUGINS", &plugins)
        .env("BULKHEAD_CACHE_DIR", case.path("cache"))
        .args(["run", "--compile-timeout", "600s"])
        .arg(case.file())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let compiler = loop {
        if let Some(c) = compile_children(pid).first() {
            break *c;
        }
        assert!(Instant::now() < deadline, "no compiler process appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped_at = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(20),
        "the stop did not wait for the compile: {:?}",
        stopped_at.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing ran"), "{stderr}");
    assert!(
        !stderr.contains("workflow `bomb` ("),
        "no run was started: {stderr}"
    );
    assert!(
        !Path::new(&format!("/proc/{compiler}")).exists(),
        "the compiler process {compiler} is gone"
    );
}

#[test]
fn a_huge_plugin_file_is_refused_without_being_read() {
    // A 64 GiB file (sparse: it takes no disk) in the plugin folder. Reading it would take
    // minutes and all the memory there is; its size alone refuses it.
    let site = crate::serve::Site::new();
    site.plugin("noop");
    let huge = std::fs::File::create(site.path("plugins/huge.wasm")).unwrap();
    huge.set_len(64 << 30).unwrap();
    drop(huge);
    let started = Instant::now();
    let out = bulkhead()
        .env("BULKHEAD_PLUGINS", site.path("plugins"))
        .args(["plugins", "--json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let huge = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "huge")
        .unwrap();
    assert_eq!(huge["loads"], false);
    let error = huge["error"].as_str().unwrap();
    assert!(
        error.contains("is 64 GiB but plugins may be at most 128 MiB"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let s = site.serve(&[]);
    let (code, plugins) = s.get("/api/plugins");
    assert_eq!(code, 200);
    let huge = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "huge")
        .unwrap_or_else(|| panic!("{plugins}"));
    assert!(
        huge["error"]
            .as_str()
            .unwrap()
            .contains("module size bound"),
        "{huge}"
    );
    let noop = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "noop")
        .unwrap();
    assert_eq!(
        noop["error"],
        serde_json::Value::Null,
        "the other plugin loads"
    );
}
