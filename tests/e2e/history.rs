//! Run history and remediation through the state store: runs, show, logs, retry, cancel, gc,
//! graceful stop, pinned plugin versions, and clear errors for a bad store.

use crate::support::{test_plugins, Case, Ran};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_for_run(case: &Case, child: &mut std::process::Child) -> String {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("the host exited early ({status}): {err}");
        }
        let runs = json(case.bulkhead().args(["runs", "--json"]).output().unwrap());
        if let Some(id) = runs[0]["run_id"].as_str() {
            return id.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn retry_runs_a_failed_task_and_the_dependents_it_skipped() {
    let case = Case::new(
        "name: fix\ntasks:\n  flaky: {plugin: flaky, params: {succeed_on: 2}}\n  child: {plugin: echo, needs: [flaky]}\n  other: {plugin: noop}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.ended("child").0, "skipped");
    let id = ran.report["run_id"].as_str().unwrap().to_string();

    let out = case
        .bulkhead()
        .args(["retry", "--json", &id, "child"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a skipped task is not retried by itself"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not failed"));

    let retried = Ran::from(
        case.bulkhead()
            .args(["retry", "--json", &id, "flaky"])
            .output()
            .unwrap(),
    );
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert_eq!(
        retried.report["run_id"],
        id.as_str(),
        "the same run goes on"
    );
    assert_eq!(retried.task("flaky")["attempts"], 2);
    assert_eq!(retried.task("flaky")["output"]["attempt"], 2);
    assert_eq!(retried.ended("child").0, "succeeded");
    assert_eq!(
        retried.task("child")["output"]["received"]["inputs"]["flaky"]["attempt"],
        2
    );
    let shown = json(
        case.bulkhead()
            .args(["show", "--json", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(
        shown["tasks"]["flaky"]["history"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        shown["tasks"]["flaky"]["history"][0]["error"]["kind"],
        "transient"
    );
    assert_eq!(
        shown["tasks"]["other"]["attempts"], 1,
        "a task that had succeeded did not run again"
    );
}

#[test]
fn cancel_stops_a_run_held_by_another_process() {
    let case = Case::new("name: long\ntasks:\n  nap: {plugin: sleep, params: {ms: 60000}, limits: {timeout: 120s}}\n");
    let mut child = case
        .bulkhead()
        .args(["run", "--json"])
        .arg(case.file())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_run(&case, &mut child);
    let out = case.bulkhead().args(["cancel", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    let ran = Ran::from(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the host noticed the cancel"
    );
    assert_eq!(ran.code, 1);
    assert_eq!(ran.report["status"], "cancelled");
    assert_eq!(ran.ended("nap"), ("cancelled".into(), "cancelled".into()));
    let out = case.bulkhead().args(["resume", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a cancelled run is not resumed");
}

#[test]
fn logs_runs_and_gc() {
    let case = Case::new("name: hist\ntasks:\n  bad: {plugin: panic, retry: {max_attempts: 2, initial_delay: 1ms}}\n");
    let first = case.run(&[]);
    let second = Case::run(&case, &[]);
    assert_eq!((first.code, second.code), (1, 1));
    let id = first.report["run_id"].as_str().unwrap();

    let out = case
        .bulkhead()
        .args(["logs", id, "bad", "--attempt", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("== bad attempt 2 ==") && text.contains("about to fail"),
        "{text}"
    );
    assert!(!text.contains("attempt 1 =="), "{text}");

    let runs = json(case.bulkhead().args(["runs", "--json"]).output().unwrap());
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["run_id"], second.report["run_id"], "newest first");
    for key in ["run_id", "workflow", "status", "started_at", "finished_at"] {
        assert!(runs[0].get(key).is_some(), "{key} missing");
    }
    assert_eq!(runs[0]["status"], "failed");
    let one = json(
        case.bulkhead()
            .args([
                "runs",
                "--json",
                "--limit",
                "1",
                "--workflow",
                "hist",
                "--status",
                "failed",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(one.as_array().unwrap().len(), 1);
    let none = json(
        case.bulkhead()
            .args(["runs", "--json", "--workflow", "other"])
            .output()
            .unwrap(),
    );
    assert!(none.as_array().unwrap().is_empty());
    let out = case
        .bulkhead()
        .args(["runs", "--status", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let copies = case.path("state.db-plugins");
    assert_eq!(
        std::fs::read_dir(&copies).unwrap().count(),
        1,
        "one plugin copy, kept once"
    );
    let out = case
        .bulkhead()
        .args(["gc", "--older-than", "1h"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        json(case.bulkhead().args(["runs", "--json"]).output().unwrap())
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = case
        .bulkhead()
        .args(["gc", "--older-than", "0s"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("deleted 2 runs and 1 plugin copies"));
    assert!(
        json(case.bulkhead().args(["runs", "--json"]).output().unwrap())
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn sigterm_lets_running_attempts_finish_and_resume_does_the_rest() {
    let case = Case::new(
        "name: term\ntasks:\n  first: {plugin: sleep, params: {ms: 800}}\n  second: {plugin: echo, needs: [first]}\n",
    );
    let mut child = case
        .bulkhead()
        .args(["run", "--json", "--grace", "10s"])
        .arg(case.file())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = wait_for_run(&case, &mut child);
    let id = crate::support::wait_for_attempt(&case.store(), "first");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let ran = Ran::from(child.wait_with_output().unwrap());
    assert_eq!(ran.report["status"], "interrupted", "{}", ran.stderr);
    assert_eq!(
        ran.ended("first").0,
        "succeeded",
        "finished within the grace period"
    );
    assert_eq!(ran.ended("second").0, "pending");
    let resumed = Ran::from(
        case.bulkhead()
            .args(["resume", "--json", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed.task("first")["attempts"], 1);
    assert_eq!(
        resumed.task("second")["output"]["received"]["inputs"]["first"]["slept_ms"],
        800
    );
}

#[test]
fn resume_uses_the_plugin_version_the_run_started_with() {
    let case = Case::new(
        "name: pinned\ntasks:\n  a: {plugin: sleep, params: {ms: 10}}\n  b: {plugin: sleep, needs: [a], params: {ms: 2000}}\n  c: {plugin: sleep, needs: [b], params: {ms: 10}}\n",
    );
    let plugins = case.path("myplugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        test_plugins().join("sleep.wasm"),
        plugins.join("sleep.wasm"),
    )
    .unwrap();
    let mut child = case
        .bulkhead()
        .env("BULKHEAD_PLUGINS", &plugins)
        .args(["run"])
        .arg(case.file())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_run(&case, &mut child);
    // Killed while `b` runs: `a` is done, `b` (2 s) has started.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = json(
            case.bulkhead()
                .args(["show", &id, "--json"])
                .output()
                .unwrap(),
        );
        if shown["tasks"]["a"]["status"] == "succeeded" && shown["tasks"]["b"]["attempts"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "b never started: {shown}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The plugin folder changes: `sleep` now prints garbage.
    std::fs::copy(
        test_plugins().join("badjson.wasm"),
        plugins.join("sleep.wasm"),
    )
    .unwrap();
    let resumed = Ran::from(
        case.bulkhead()
            .env("BULKHEAD_PLUGINS", &plugins)
            .args(["resume", "--json", &id])
            .output()
            .unwrap(),
    );
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed.task("c")["output"]["slept_ms"], 10);
    assert_eq!(resumed.task("a")["attempts"], 1);
    // A new run picks the new version up.
    let fresh = Ran::from(
        case.bulkhead()
            .env("BULKHEAD_PLUGINS", &plugins)
            .args(["run", "--json"])
            .arg(case.file())
            .output()
            .unwrap(),
    );
    assert_eq!(fresh.ended("a"), ("failed".into(), "invalid_output".into()));
}

#[test]
fn a_damaged_store_is_named_and_left_alone() {
    let case = Case::new("name: x\ntasks:\n  a: {plugin: noop}\n");
    std::fs::write(case.store(), vec![0x42; 16384]).unwrap();
    for args in [vec!["runs"], vec!["run", case.file().to_str().unwrap()]] {
        let out = case.bulkhead().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("state.db") && err.contains("damaged"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(std::fs::read(case.store()).unwrap(), vec![0x42; 16384]);
}

#[test]
fn a_missing_state_folder_is_named() {
    let case = Case::new("name: x\ntasks:\n  a: {plugin: noop}\n");
    let out = case
        .bulkhead()
        .env("BULKHEAD_STORE", "/nonexistent/state/bulkhead.db")
        .arg("runs")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("/nonexistent/state") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn a_locked_store_is_reported_not_waited_on_forever() {
    let case = Case::new("name: x\ntasks:\n  a: {plugin: noop}\n");
    assert_eq!(case.run(&[]).code, 0);
    let conn = rusqlite::Connection::open(case.store()).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let out = case
        .bulkhead()
        .arg("run")
        .arg(case.file())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("locked by another process") && err.contains("state.db"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    conn.execute_batch("ROLLBACK").unwrap();
}

/// Makes a file immutable (even for root) while alive.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_read_only_store_is_named_and_nothing_runs() {
    let case = Case::new("name: x\ntasks:\n  a: {plugin: probe, params: {write: /out/ran.txt}, mounts: [{host: out, guest: /out, writable: true}]}\n");
    std::fs::create_dir(case.path("out")).unwrap();
    assert_eq!(case.run(&[]).code, 0);
    std::fs::remove_file(case.path("out/ran.txt")).unwrap();
    // Tests run as root, which ignores file modes; the immutable attribute binds root too.
    let locked = std::process::Command::new("chattr")
        .arg("+i")
        .arg(case.store())
        .status();
    if !locked.is_ok_and(|s| s.success()) {
        // Gated, never silent: a machine without `chattr +i` (not root, or a filesystem without
        // the immutable attribute) must say so to skip this test.
        assert!(
            std::env::var_os("BULKHEAD_TESTS_WITHOUT_CHATTR").is_some(),
            "chattr +i failed here; set BULKHEAD_TESTS_WITHOUT_CHATTR=1 to skip this test"
        );
        eprintln!("SKIPPED a_read_only_store_is_named_and_nothing_runs: BULKHEAD_TESTS_WITHOUT_CHATTR is set");
        return;
    }
    let _guard = Immutable(case.store());
    let before = std::fs::read(case.store()).unwrap();
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("state.db") && ran.stderr.contains("read-only"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("nothing ran"), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("bulkhead resume"),
        "no resume hint for a run that was never recorded"
    );
    assert!(!case.path("out/ran.txt").exists(), "the task did not run");
    assert!(!ran.stderr.contains("panicked"));
    assert_eq!(
        std::fs::read(case.store()).unwrap(),
        before,
        "the store is untouched"
    );
    // Reading the history still works.
    let out = case.bulkhead().args(["runs", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plugin_text_cannot_drive_the_terminal() {
    // A window title, a clipboard write (OSC 52), a screen clear and a right-to-left override.
    let hostile = "\\u001b]0;owned\\u0007\\u001b]52;c;aGk=\\u0007\\u001b[2J\\u202e";
    let case = Case::new(&format!(
        "name: term\ntasks:\n  t: {{plugin: exit, params: {{code: 3, say: \"{hostile}\"}}}}\n"
    ));
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1);
    let id = ran.report["run_id"].as_str().unwrap().to_string();
    for args in [vec!["logs", id.as_str()], vec!["show", id.as_str()]] {
        let out = case.bulkhead().args(&args).output().unwrap();
        let all = [out.stdout, out.stderr].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(!all.contains(&0x1b), "{args:?} printed a raw ESC: {text}");
        assert!(
            !text.contains('\u{202e}'),
            "{args:?} printed a raw bidi override"
        );
        if args[0] == "logs" {
            assert!(text.contains("\\x1b]0;owned\\x07"), "{text}");
        }
    }
    let raw = case
        .bulkhead()
        .args(["logs", &id, "--raw"])
        .output()
        .unwrap();
    assert!(raw.stdout.contains(&0x1b), "--raw keeps the bytes");
}

#[test]
fn plugin_copies_live_beside_the_store_never_in_the_users_plugin_folder() {
    // `--store state.db` beside the user's own `plugins/`: copies once went into that folder,
    // and `gc` deleted files there.
    let case = Case::new("name: own\ntasks:\n  bad: {plugin: exit, params: {code: 3}}\n");
    let plugins = case.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(test_plugins().join("exit.wasm"), plugins.join("exit.wasm")).unwrap();
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let run = |extra: &[&str]| {
        let out = case
            .bulkhead()
            .env("BULKHEAD_PLUGINS", &plugins)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.stdout,
        )
    };
    let file = case.file();
    let (code, stderr, stdout) = run(&["run", "--json", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let id = report["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        listing(&plugins),
        ["exit.wasm"],
        "nothing written to the user's folder"
    );
    let copies = case.path("state.db-plugins");
    let kept = listing(&copies);
    assert_eq!(kept.len(), 1, "{kept:?}");

    // A store from before: its copies in `plugins/` beside it. They are adopted, and the run
    // retries with exactly that copy.
    std::fs::rename(copies.join(&kept[0]), plugins.join(&kept[0])).unwrap();
    std::fs::remove_dir(&copies).unwrap();
    std::fs::write(
        plugins.join(format!("{}.wasm", "0".repeat(64))),
        b"not a copy",
    )
    .unwrap();
    let (code, stderr, _) = run(&["retry", &id, "bad"]);
    assert_eq!(
        code,
        Some(1),
        "the task fails again, with the copy it started with: {stderr}"
    );
    assert!(!stderr.contains("is missing"), "{stderr}");
    assert_eq!(listing(&copies), kept, "only the real copy was adopted");

    let (code, stderr, _) = run(&["gc", "--older-than", "0s"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        listing(&copies).is_empty(),
        "gc deletes the copies no run needs"
    );
    let mut left = vec![
        kept[0].clone(),
        "exit.wasm".to_string(),
        format!("{}.wasm", "0".repeat(64)),
    ];
    left.sort();
    assert_eq!(
        listing(&plugins),
        left,
        "gc never touches the user's folder"
    );
}

#[test]
fn the_report_of_a_run_and_the_report_shown_later_agree_field_by_field() {
    // One report is built from the executor's records as the run ends, the other from the
    // store's rows; TaskReport::new makes both, and here they must agree on every field the
    // stored one has (the run's report has no attempt history, the shown one no logs).
    let case = Case::new(
        "name: agree\ndefaults: {retry: {max_attempts: 2, initial_delay: 1ms, jitter: none, on: [transient]}}\ntasks:\n  flaky: {plugin: flaky, params: {succeed_on: 2}}\n  echo: {plugin: echo, needs: [flaky], params: {x: 1}}\n  bad: {plugin: exit, params: {code: 3}}\n  after_bad: {plugin: noop, needs: [bad]}\n  maybe: {plugin: trap, optional: true}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let id = ran.report["run_id"].as_str().unwrap().to_string();
    let shown = json(
        case.bulkhead()
            .args(["show", "--json", &id])
            .output()
            .unwrap(),
    );
    for field in ["run_id", "workflow", "status"] {
        assert_eq!(ran.report[field], shown[field], "{field}");
    }
    let tasks = ran.report["tasks"].as_object().unwrap();
    assert_eq!(tasks.len(), 5);
    let shown_tasks = shown["tasks"].as_object().unwrap();
    assert_eq!(
        tasks.keys().collect::<Vec<_>>(),
        shown_tasks.keys().collect::<Vec<_>>(),
        "the same tasks in the same order"
    );
    for (task, r) in tasks {
        let s = &shown_tasks[task];
        for field in [
            "status",
            "attempts",
            "error",
            "output",
            "duration_ms",
            "duration_us",
            "fuel_used",
            "peak_memory",
            "plugin",
            "optional",
        ] {
            assert_eq!(r[field], s[field], "task {task}, field {field}");
        }
    }
    assert_eq!(
        shown["tasks"]["flaky"]["history"].as_array().unwrap().len(),
        2
    );
}

/// A run gives its lease up in the commit that records its end (a host does not write again to
/// release it): after a run that succeeded and one that failed, neither holds a lease.
#[test]
fn a_run_that_ended_holds_no_lease() {
    let ok =
        Case::new("name: fine\ntasks:\n  a: {plugin: noop}\n  b: {plugin: noop, needs: [a]}\n");
    assert_eq!(ok.run(&[]).code, 0);
    let bad = Case::new("name: bad\ntasks:\n  a: {plugin: exit, params: {code: 3}}\n");
    let ran = bad.run(&[]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    for case in [&ok, &bad] {
        let conn = rusqlite::Connection::open(case.store()).unwrap();
        let leases: Vec<(String, Option<String>, Option<i64>)> = conn
            .prepare("SELECT status, lease_owner, lease_expires_at FROM runs")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(
            (leases[0].1.as_deref(), leases[0].2),
            (None, None),
            "{leases:?}"
        );
    }
}

/// A run of up to 1,000 tasks is recorded by the commit of its first starts (one write with
/// them); a larger one by a write of its own first. When the recording fails, whether at the
/// run's row or at its first attempt, the whole of it is rolled back: the command says the run
/// was not recorded, and the store holds nothing of it.
#[test]
fn a_run_whose_record_cannot_be_written_is_not_recorded_and_nothing_of_it_stays() {
    let mut large = String::from("name: large\ntasks:\n");
    for i in 0..1_001 {
        large.push_str(&format!("  t{i}: {{plugin: noop}}\n"));
    }
    let small = "name: w\ntasks:\n  a: {plugin: noop}\n  b: {plugin: noop, needs: [a]}\n";
    for (yaml, tasks) in [(small, 2), (large.as_str(), 1_001)] {
        let case = Case::new(yaml);
        assert_eq!(case.run(&[]).code, 0, "the first run makes the store");
        for table in ["runs", "attempts"] {
            let conn = rusqlite::Connection::open(case.store()).unwrap();
            conn.execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ))
            .unwrap();
            drop(conn);
            let ran = case.run(&[]);
            let refused = ran.stderr.contains("refused by the test");
            match (tasks, table) {
                // A large run is recorded before it starts anything: refused at its first
                // attempt, the run exists and its commit failed.
                (1_001, "attempts") => assert!(
                    ran.code == 1 && refused && !ran.stderr.contains("not recorded"),
                    "{tasks} tasks, refused at {table}: {}",
                    ran.stderr
                ),
                _ => assert!(
                    ran.code == 1
                        && refused
                        && ran
                            .stderr
                            .contains("the run was not recorded and nothing ran"),
                    "{tasks} tasks, refused at {table}: {}",
                    ran.stderr
                ),
            }
            let conn = rusqlite::Connection::open(case.store()).unwrap();
            let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
            let runs = match (tasks, table) {
                (1_001, "attempts") => 2,
                _ => 1,
            };
            assert_eq!(
                (
                    count("SELECT count(*) FROM runs"),
                    count("SELECT count(*) FROM attempts"),
                    count("SELECT count(*) FROM tasks"),
                ),
                (runs, tasks, tasks * runs),
                "{tasks} tasks, refused at {table}: what is stored"
            );
            conn.execute_batch("DROP TRIGGER refuse").unwrap();
        }
        assert_eq!(case.run(&[]).code, 0, "with the store writable again");
    }
}
