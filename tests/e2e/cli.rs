//! The other subcommands and argument errors.

use crate::support::{bulkhead, root, test_plugins, Case};

/// The example plugin folder (built, with the test plugins, on first use).
fn examples() -> std::path::PathBuf {
    test_plugins();
    root().join("plugins")
}

#[test]
fn graph_prints_dot_and_mermaid() {
    let case = Case::new("name: g\ntasks:\n  a: {plugin: noop}\n  b: {plugin: noop, needs: [a]}\n");
    let out = bulkhead().arg("graph").arg(case.file()).output().unwrap();
    assert!(out.status.success());
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph \"g\""), "{dot}");
    assert!(dot.contains("\"a\" -> \"b\";"), "{dot}");
    let out = bulkhead()
        .args(["graph", "--format", "mermaid"])
        .arg(case.file())
        .output()
        .unwrap();
    let mermaid = String::from_utf8(out.stdout).unwrap();
    assert!(mermaid.contains("t0 --> t1"), "{mermaid}");
}

#[test]
fn plugins_lists_and_the_second_load_comes_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let list = || {
        let out = bulkhead()
            .args(["plugins", "--json"])
            .env("BULKHEAD_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = list();
    let rows = first.as_array().unwrap();
    let echo = rows
        .iter()
        .find(|r| r["name"] == "echo")
        .expect("echo listed");
    assert_eq!(echo["loads"], true);
    assert_eq!(echo["abi"], "v1 (wasi preview 1 command)");
    assert!(
        echo["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "wasi_snapshot_preview1::fd_write"),
        "{echo}"
    );
    let fetch = rows
        .iter()
        .find(|r| r["name"] == "fetch")
        .expect("fetch listed");
    assert_eq!(fetch["abi"], "v2 (component)", "{fetch}");
    let imports: Vec<&str> = fetch["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.as_str())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2"))
            && imports
                .iter()
                .any(|i| i.starts_with("bulkhead:plugin/log@0.1.0")),
        "{imports:?}"
    );
    assert_eq!(echo["hash"].as_str().unwrap().len(), 64);
    assert_eq!(echo["cached"], false, "first load compiles");
    let second = list();
    assert!(second
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["loads"] == true)
        .all(|r| r["cached"] == true));
}

#[test]
fn a_broken_plugin_is_reported_by_name_and_others_still_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm\x01\0\0\0garbage").unwrap();
    std::fs::copy(
        crate::support::test_plugins().join("noop.wasm"),
        dir.path().join("noop.wasm"),
    )
    .unwrap();
    // A valid module without `_start` (a library, not a command).
    std::fs::write(dir.path().join("lib.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = bulkhead()
        .args(["plugins", "--json"])
        .env("BULKHEAD_PLUGINS", dir.path())
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("broken")["loads"], false);
    assert!(by("broken")["error"]
        .as_str()
        .unwrap()
        .contains("does not compile"));
    assert!(by("lib")["error"].as_str().unwrap().contains("no `_start`"));
    assert_eq!(by("noop")["loads"], true);

    let case = Case::new("name: b\ntasks:\n  x: {plugin: broken}\n  y: {plugin: noop}\n");
    let out = bulkhead()
        .arg("run")
        .arg(case.file())
        .env("BULKHEAD_PLUGINS", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task `x`") && err.contains("plugin `broken`"),
        "{err}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    let case = Case::new("name: a\ntasks:\n  a: {plugin: noop}\n");
    let out = bulkhead()
        .arg("run")
        .arg(case.file())
        .args(["--param", "novalue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
    let out = bulkhead()
        .args(["run", "does-not-exist.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.yaml"));
    let out = bulkhead()
        .arg("run")
        .arg(case.file())
        .args(["--max-parallel", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `bench` refuses counts that cannot be measured, naming the option, before it measures
/// anything; it used to turn `--repeat 0` into 1 and `--clients 0` into 1 silently, and
/// `--tasks 0` failed on a workflow file the user never wrote.
#[test]
fn bench_refuses_counts_it_cannot_measure_naming_the_option() {
    for (option, value, says) in [
        ("--tasks", "0", "0 is not in 1.."),
        ("--repeat", "0", "0 is not in 1.."),
        ("--max-parallel", "0", "0 is not in 1.."),
        ("--clients", "0", "0 is not in 1.."),
        ("--fanout-dependents", "0", "0 is not in 1.."),
        ("--scale", "1000,0", "at least one task"),
        ("--scale", "1k", "`1k` is not a task count"),
    ] {
        let out = bulkhead().args(["bench", option, value]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option} {value}: {err}");
        assert!(
            err.contains(option) && err.contains(says),
            "{option} {value}: {err}"
        );
    }
}

#[test]
fn the_example_workflows_validate_and_run() {
    let out = bulkhead()
        .env("BULKHEAD_PLUGINS", examples())
        .arg("validate")
        .arg(root().join("workflows/etl.yaml"))
        .arg(root().join("workflows/hello.yaml"))
        .arg(root().join("workflows/resilience.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bulkhead()
        .env("BULKHEAD_PLUGINS", examples())
        .args(["run", "--json"])
        .arg(root().join("workflows/hello.yaml"))
        .output()
        .unwrap();
    let ran = crate::support::Ran::from(out);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.task("greet_both")["output"],
        serde_json::json!({"greeting": "hello, everyone!", "inputs": 2})
    );
    // The hand-written WAT plugin got the task document on stdin.
    assert!(
        ran.task("measure")["output"]["input_bytes"]
            .as_u64()
            .unwrap()
            > 100
    );
}

/// A folder holding the ETL example with its input data and an empty `out/`.
fn etl_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    for f in ["users.csv", "orders.csv"] {
        std::fs::copy(
            root().join("workflows/data").join(f),
            dir.path().join("data").join(f),
        )
        .unwrap();
    }
    std::fs::copy(
        root().join("workflows/etl.yaml"),
        dir.path().join("etl.yaml"),
    )
    .unwrap();
    dir
}

fn run_etl(dir: &std::path::Path) -> crate::support::Ran {
    let out = bulkhead()
        .env("BULKHEAD_PLUGINS", examples())
        .args(["run", "--json"])
        .arg(dir.join("etl.yaml"))
        .output()
        .unwrap();
    crate::support::Ran::from(out)
}

#[test]
fn the_etl_example_writes_its_report() {
    let dir = etl_site();
    let ran = run_etl(dir.path());
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // Two users lack something (no email; no country match) and one order has a bad amount.
    assert_eq!(ran.task("clean_users")["output"]["dropped"], 1);
    assert_eq!(ran.task("clean_orders")["output"]["dropped"], 1);
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(report.contains("| 137.49 | 3 | uk |"), "{report}");
    assert!(report.contains("| 66.0 | 3 | us |"), "{report}");
}

#[test]
fn concurrent_etl_runs_writing_one_report_all_succeed() {
    // Each run writes out/report.md through a temporary file: the temporary names must not
    // collide, or one run's rename takes another's file away and that run fails.
    let dir = etl_site();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || run_etl(&path))
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let ran = r.join().unwrap();
        assert_eq!(
            ran.code,
            0,
            "run {i}: {:?} {}",
            ran.ended("report"),
            ran.message("report")
        );
    }
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(report.contains("| 137.49 | 3 | uk |"), "{report}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "report.md")
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn the_resilience_example_contains_every_failure() {
    let out = bulkhead()
        .env("BULKHEAD_PLUGINS", examples())
        .args(["run", "--json"])
        .arg(root().join("workflows/resilience.yaml"))
        .output()
        .unwrap();
    let ran = crate::support::Ran::from(out);
    assert_eq!(ran.code, 0, "the failures are optional: {}", ran.stderr);
    assert_eq!(ran.task("flaky_fetch")["attempts"], 3);
    assert_eq!(ran.ended("use_fetch").0, "succeeded");
    assert_eq!(ran.ended("crashes"), ("failed".into(), "trap".into()));
    assert_eq!(ran.task("crashes")["attempts"], 3);
    assert_eq!(ran.ended("after_crash").0, "skipped");
    assert_eq!(
        ran.ended("loops_forever"),
        ("failed".into(), "timeout".into())
    );
    assert_eq!(ran.ended("memory_hog"), ("failed".into(), "memory".into()));
    assert_eq!(
        ran.ended("output_flood"),
        ("failed".into(), "output_too_large".into())
    );
}

#[test]
fn bench_prints_the_scale_curve_serve_load_postgres_hosts_history_fan_out_and_large_plugins() {
    // The Python and JavaScript no-op components of the large-plugin figures; and with them the
    // plugin folder holds components that take long to compile, which the serve figures must
    // not wait for (their servers get the plugins their workflows name, and no others).
    crate::languages::build_languages();
    let dir = tempfile::tempdir().unwrap();
    let out = bulkhead()
        .current_dir(dir.path())
        .args(["bench", "--tasks", "200", "--repeat", "1", "--no-python"])
        .args([
            "--scale",
            "100,2000",
            "--serve-runs",
            "40",
            "--history",
            "700",
            "--cluster-runs",
            "30",
        ])
        .arg("--postgres")
        .arg(crate::postgres::server())
        .args([
            "--fanout-mib",
            "1",
            "--fanout-dependents",
            "3",
            "--large-attempts",
            "10",
            "--json",
            "--plugins",
        ])
        .arg(crate::support::root().join("plugins"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let figures: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The tests run a debug build, and the bench says which build it measured.
    assert_eq!(figures["build"], "debug", "{figures}");
    assert!(stderr.contains("debug build, "), "{stderr}");
    let curve = figures["scale"].as_array().unwrap();
    assert_eq!(curve.len(), 2, "{figures}");
    for (row, tasks) in curve.iter().zip([100, 2000]) {
        assert_eq!(row["tasks"], tasks);
        for store in ["memory", "sqlite"] {
            let rate = row[store]["tasks_per_s"].as_f64().unwrap();
            let peak = row[store]["peak_rss_mib"].as_f64().unwrap();
            assert!(rate > 0.0 && peak > 1.0, "{store} at {tasks}: {row}");
        }
        // The first run of a new file, which validates its YAML, on its own.
        let first = row["memory_first"]["tasks_per_s"].as_f64().unwrap();
        assert!(first > 0.0, "{row}");
    }
    assert!(stderr.contains("memory tasks/s"), "{stderr}");
    // Serve: both workflows, every run checked in the store (the bench fails otherwise).
    let serve = figures["serve"].as_array().unwrap();
    assert_eq!(serve.len(), 2, "{figures}");
    for (load, tasks) in serve.iter().zip([1, 10]) {
        assert_eq!(load["tasks_per_run"], tasks, "{load}");
        assert!(load["runs_per_s"].as_f64().unwrap() > 0.0, "{load}");
        assert!(
            load["trigger_to_first_attempt_ms"]["p99"]
                .as_f64()
                .is_some(),
            "{load}"
        );
    }
    // Where the per-task time goes: the floor under the whole attempt under the whole task.
    let floor = figures["instantiate_us"]["p50"].as_f64().unwrap();
    let attempt = figures["sandboxed_attempt_us"]["p50"].as_f64().unwrap();
    assert!(floor > 0.0 && attempt > 0.0, "{figures}");
    assert!(stderr.contains("bare instantiation"), "{stderr}");
    // SQLite and PostgreSQL with 1, 2 and 3 hosts, side by side; every run checked.
    let cluster = figures["cluster"].as_array().unwrap();
    let shape: Vec<(String, u64)> = cluster
        .iter()
        .map(|l| {
            (
                l["store"].as_str().unwrap().to_string(),
                l["hosts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("sqlite", 1),
            ("postgres", 1),
            ("postgres", 2),
            ("postgres", 3)
        ]
        .map(|(s, h)| (s.to_string(), h))
        .to_vec()
    );
    for load in cluster {
        assert!(load["runs_per_s"].as_f64().unwrap() > 0.0, "{load}");
        assert!(load["overhead_us_per_task_vs_sqlite"].is_number(), "{load}");
    }
    // History: paged to the end, every run once.
    let history = &figures["history"];
    assert_eq!(history["runs"], 700);
    assert_eq!(history["paging"]["pages"], 2, "{history}");
    // Fan-out: one copy in the store, whatever the number of dependents.
    let fanout = &figures["fanout"];
    let stored = fanout["sqlite"]["store_mib"].as_f64().unwrap();
    assert!((1.0..2.0).contains(&stored), "{fanout}");
    // Large plugins: both interpreters' no-op components, each attempt timed.
    for language in ["python", "javascript"] {
        let large = &figures["large_plugins"][language];
        let p50 = large["attempt_ms"]["p50"].as_f64().unwrap_or(0.0);
        assert!(p50 > 0.0, "{language}: {large}");
        assert_eq!(large["attempt_ms"]["samples"], 9, "{language}: {large}");
        assert!(large["compile_s"].as_f64().unwrap_or(0.0) > 0.0, "{large}");
    }
    assert!(stderr.contains("JavaScript component js_noop"), "{stderr}");
    // The targets, each judged on this run's figures: the per-task and serve ones were measured;
    // the 100,000-task, Python and million-task ones were not (no such step: `--scale 100,2000`,
    // `--no-python`), and say so instead of passing or failing.
    let targets = figures["targets"].as_array().unwrap();
    let judged: Vec<(&str, bool)> = targets
        .iter()
        .filter_map(|t| Some((t["target"].as_str()?, t["met"].is_boolean())))
        .collect();
    assert_eq!(judged.len(), 9, "{figures}");
    for (target, measured) in judged {
        let expected = target.starts_with("per-task") || target.starts_with("serve");
        assert_eq!(measured, expected, "{target}: {figures}");
    }
    assert!(
        stderr.contains("targets (each met, not met, or not measured by this run):"),
        "{stderr}"
    );
    assert!(stderr.contains("not measured by this run"), "{stderr}");
}

#[test]
fn a_component_that_imports_what_the_host_does_not_give_is_refused_naming_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // A component whose only import is an interface no host grants.
    crate::support::wat2wasm(
        r#"(component
  (import "evil:host/steal@1.0.0" (instance (export "grab" (func))))
)"#,
        &plugins.join("steal.wasm"),
    );
    std::fs::write(
        dir.path().join("wf.yaml"),
        "name: steal\ntasks:\n  a: {plugin: steal}\n",
    )
    .unwrap();
    let out = bulkhead()
        .args(["plugins", "--json"])
        .env("BULKHEAD_PLUGINS", &plugins)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steal = &rows[0];
    assert_eq!(steal["loads"], false, "{steal}");
    let error = steal["error"].as_str().unwrap();
    assert!(
        error.contains("evil:host/steal@1.0.0") && error.contains("may import only"),
        "{error}"
    );
    // The workflow using it does not run, and says why, naming the task and the import.
    let out = bulkhead()
        .arg("run")
        .arg(dir.path().join("wf.yaml"))
        .env("BULKHEAD_PLUGINS", &plugins)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("task `a`") && stderr.contains("evil:host/steal@1.0.0"),
        "{stderr}"
    );
}

/// A large workflow file is validated on its first run and read from the cache after; an edit
/// is seen at once (the cache is keyed by the file's bytes), including one that breaks it.
#[test]
fn a_large_workflow_is_validated_once_and_an_edit_is_seen() {
    let mut yaml = String::from("name: long\ntasks:\n  t0: {plugin: noop}\n");
    for i in 1..2000 {
        yaml.push_str(&format!("  t{i}: {{plugin: noop, needs: [t{}]}}\n", i - 1));
    }
    assert!(yaml.len() > 64 * 1024, "large enough to be cached");
    let case = Case::new(&yaml);
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let out = case
            .bulkhead()
            .env("BULKHEAD_CACHE_DIR", cache.path())
            .env("BULKHEAD_STORE", ":memory:")
            .env("RUST_LOG", "bulkhead_host=debug")
            .args(["run", "--json"])
            .arg(case.file())
            .output()
            .unwrap();
        crate::support::Ran::from(out)
    };
    let from_cache = "validated workflow read from the cache";
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stderr.contains(from_cache), "{}", first.stderr);
    let entries = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".workflow"))
        .count();
    assert_eq!(entries, 1);
    let second = run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains(from_cache), "{}", second.stderr);
    assert_eq!(second.report["status"], "succeeded");
    assert_eq!(second.report["tasks"].as_object().unwrap().len(), 2000);
    assert_eq!(second.report["tasks"]["t1999"]["status"], "succeeded");
    // One more task, needing one that does not exist: refused, not served from the cache.
    std::fs::write(
        case.file(),
        format!("{yaml}  extra: {{plugin: noop, needs: [nowhere]}}\n"),
    )
    .unwrap();
    let edited = run();
    assert_eq!(edited.code, 2, "{}", edited.stderr);
    assert!(edited.stderr.contains("nowhere"), "{}", edited.stderr);
}
