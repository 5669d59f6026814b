//! Durable runs: SIGKILL the host at any point, resume, and nothing finished runs twice.

use crate::support::{Case, Ran};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// 12 ledger tasks in three layers of four; each in a later layer needs two of the layer before.
fn ledger_workflow(ms: &[u64; 12]) -> (String, HashMap<String, u64>) {
    let mut yaml = String::from("name: ledger\nconcurrency: 3\ntasks:\n");
    let mut value: HashMap<String, u64> = HashMap::new();
    for (i, sleep) in ms.iter().enumerate() {
        let id = format!("t{i}");
        let needs: Vec<String> = if i < 4 {
            vec![]
        } else {
            vec![
                format!("t{}", i - 4),
                format!("t{}", (i - 4 + 1) % 4 + (i / 4 - 1) * 4),
            ]
        };
        let v = 1 + needs.iter().map(|n| value[n]).sum::<u64>();
        value.insert(id.clone(), v);
        yaml.push_str(&format!(
            "  {id}:\n    plugin: ledger\n    params: {{ms: {}}}\n    needs: [{}]\n    mounts: [{{host: ledger, guest: /ledger, writable: true}}]\n",
            sleep,
            needs.join(", ")
        ));
    }
    (yaml, value)
}

fn ledger_counts(case: &Case) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(case.path("ledger/ledger.txt")).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        *counts
            .entry(line.split(' ').next().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn show(case: &Case, run_id: &str) -> serde_json::Value {
    let out = case
        .bulkhead()
        .args(["show", "--json", run_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn runs(case: &Case) -> Vec<serde_json::Value> {
    let out = case.bulkhead().args(["runs", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Starts a run, SIGKILLs it after `kill_after`, resumes, and checks exactly-once and the outputs.
/// Returns whether the kill landed before the run ended.
pub(crate) fn kill_and_resume(ms: &[u64; 12], kill_after: Duration) -> bool {
    kill_and_resume_in(ms, kill_after, None)
}

/// [`kill_and_resume`] with the runs in `store` (a PostgreSQL URL) instead of a SQLite file.
pub(crate) fn kill_and_resume_in(
    ms: &[u64; 12],
    kill_after: Duration,
    store: Option<&str>,
) -> bool {
    let (yaml, expected) = ledger_workflow(ms);
    let mut case = Case::new(&yaml);
    case.store_url = store.map(str::to_string);
    std::fs::create_dir(case.path("ledger")).unwrap();
    let mut child = case
        .bulkhead()
        .args(["run", "--json"])
        .arg(case.file())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(kill_after);
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    let killed = status.code().is_none();

    let listed = runs(&case);
    if listed.is_empty() {
        // Killed before the run was recorded: nothing may have run.
        assert!(
            ledger_counts(&case).is_empty(),
            "a task ran before its run was recorded"
        );
        return killed;
    }
    assert_eq!(listed.len(), 1);
    let run_id = listed[0]["run_id"].as_str().unwrap().to_string();
    let before = show(&case, &run_id);
    let done_before: Vec<String> = before["tasks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["status"] == "succeeded")
        .map(|(id, _)| id.clone())
        .collect();

    let out = case
        .bulkhead()
        .args(["resume", "--all", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let after = show(&case, &run_id);
    assert_eq!(after["status"], "succeeded", "{after:#}");
    let counts = ledger_counts(&case);
    for (id, value) in &expected {
        let t = &after["tasks"][id];
        assert_eq!(t["status"], "succeeded", "task {id}");
        assert_eq!(t["output"]["value"], *value, "output of {id}");
        assert!(counts.get(id).copied().unwrap_or(0) >= 1, "{id} never ran");
    }
    for id in &done_before {
        assert_eq!(
            counts.get(id).copied(),
            Some(1),
            "{id} had succeeded before the kill but ran again"
        );
    }
    // Every task's attempts carry the same idempotency key across the kill.
    let text = std::fs::read_to_string(case.path("ledger/ledger.txt")).unwrap();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[2], format!("{run_id}:{}", parts[0]));
    }
    killed && before["status"] != "succeeded"
}

#[test]
fn killed_while_attempts_run() {
    // Slow tasks: the kill lands inside attempts of the second layer.
    assert!(kill_and_resume(
        &[50, 50, 50, 50, 400, 400, 400, 400, 50, 50, 50, 50],
        Duration::from_millis(300)
    ));
}

#[test]
fn killed_between_quick_steps() {
    // Quick tasks: the kill lands between an attempt's end and its dependents' start, or amid commits.
    assert!(kill_and_resume(&[5; 12], Duration::from_millis(30)));
}

#[test]
fn killed_at_random_points() {
    let mut seed: u64 = std::env::var("BULKHEAD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    let mut mid_run = 0;
    for _ in 0..30 {
        let mut ms = [0u64; 12];
        for m in ms.iter_mut() {
            *m = next() % 60;
        }
        // A run takes about 10 ms to start and 100 to 300 ms to finish.
        let kill_after = Duration::from_millis(5 + next() % 200);
        if kill_and_resume(&ms, kill_after) {
            mid_run += 1;
        }
    }
    eprintln!(
        "30 kills, {mid_run} in the middle of a run, in {:?}",
        started.elapsed()
    );
    assert!(
        mid_run >= 5,
        "only {mid_run} kills landed mid-run; the test did not test much"
    );
}

#[test]
fn resume_refuses_a_finished_run_and_an_unknown_one() {
    let case = Case::new("name: fine\ntasks:\n  a: {plugin: noop}\n");
    let ran: Ran = case.run(&[]);
    assert_eq!(ran.code, 0);
    let id = ran.report["run_id"].as_str().unwrap();
    let out = case.bulkhead().args(["resume", id]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already ended"));
    let out = case
        .bulkhead()
        .args(["resume", "no-such-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run `no-such-run`"));
}

/// What a report says that does not depend on the run: its id (also inside outputs and keys),
/// clocks and timings removed.
fn comparable(ran: &Ran) -> serde_json::Value {
    let id = ran.report["run_id"].as_str().expect("a run id").to_string();
    let text = serde_json::to_string(&ran.report)
        .unwrap()
        .replace(&id, "RUN");
    let mut report: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["started_at", "finished_at", "duration_ms"] {
        report.as_object_mut().unwrap().remove(key);
    }
    for task in report["tasks"].as_object_mut().unwrap().values_mut() {
        for key in ["duration_ms", "duration_us", "fuel_used", "peak_memory"] {
            task.as_object_mut().unwrap().remove(key);
        }
    }
    report
}

/// `bulkhead run --store :memory:` records the run nowhere (no later process could read it),
/// so its report comes from the executor alone, not read back from a store: it must say what
/// the report of the same run recorded in a file says, task by task.
#[test]
fn a_run_in_memory_reports_what_a_recorded_run_reports() {
    let case = Case::new(
        "name: same
tasks:
  a: {plugin: echo, params: {n: 1}}
  retried:
    plugin: flaky
    needs: [a]
    retry: {max_attempts: 3, initial_delay: 1ms, backoff: fixed}
  says:
    plugin: exit
    params: {code: 3, say: a line of log}
  skipped: {plugin: noop, needs: [says]}
  optional: {plugin: panic, optional: true}
",
    );
    let recorded = case.run(&[]);
    let in_memory: Ran = crate::support::bulkhead()
        .args(["run", "--json"])
        .arg(case.file())
        .output()
        .unwrap()
        .into();
    assert_eq!(recorded.code, 1, "{}", recorded.stderr);
    assert_eq!(in_memory.code, 1, "{}", in_memory.stderr);
    assert!(case.store().exists(), "the recorded run has its file");
    // The cases the comparison covers are there.
    assert_eq!(in_memory.task("a")["output"]["received"]["params"]["n"], 1);
    assert_eq!(in_memory.task("retried")["attempts"], 3);
    assert!(in_memory.task("says")["log"]
        .as_str()
        .unwrap()
        .contains("a line of log"));
    assert_eq!(in_memory.ended("skipped").0, "skipped");
    assert_eq!(
        in_memory.ended("optional"),
        ("failed".into(), "trap".into())
    );
    assert_eq!(comparable(&in_memory), comparable(&recorded));
}

/// The `--json` report of a recorded run reads its tasks' outputs back from the store a page at
/// a time (1,024 tasks), the next page while this one is written: every task gets its own
/// output, across page boundaries.
#[test]
fn a_large_recorded_report_has_every_output_in_its_place() {
    let n = 2_500;
    let mut yaml = String::from("name: pages\ntasks:\n");
    for i in 0..n {
        yaml.push_str(&format!("  t{i}: {{plugin: echo, params: {{n: {i}}}}}\n"));
    }
    let case = Case::new(&yaml);
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let tasks = ran.report["tasks"].as_object().unwrap();
    assert_eq!(tasks.len(), n);
    for i in 0..n {
        let id = format!("t{i}");
        assert_eq!(tasks[&id]["output"]["received"]["params"]["n"], i, "{id}");
    }
}

/// Nothing of another process's run is in memory: resume and retry with `--store :memory:` say
/// so and where to look, instead of "no run".
#[test]
fn resume_and_retry_in_memory_say_that_memory_keeps_no_run() {
    for args in [
        vec!["resume", "some-run"],
        vec!["resume", "--all"],
        vec!["retry", "some-run", "t"],
    ] {
        let out = crate::support::bulkhead().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`--store :memory:` keeps no run"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("help: pass the `--store`"),
            "{args:?}: {stderr}"
        );
    }
}

/// `bulkhead run` commits on its own thread, each commit a transaction of its own: processes
/// that run at once on one SQLite file take turns at its write lock. Six runs of a 300-task
/// graph at once all end, each with every task recorded as the report said, and `show` reads
/// back for each exactly what its own process reported.
#[test]
fn runs_of_several_processes_on_one_file_are_each_recorded_whole() {
    let mut yaml = String::from("name: many\ntasks:\n");
    for l in 0..30 {
        for i in 0..10 {
            match l {
                0 => yaml.push_str(&format!(
                    "  t{l}_{i}: {{plugin: echo, params: {{i: {i}}}}}\n"
                )),
                _ => yaml.push_str(&format!(
                    "  t{l}_{i}: {{plugin: noop, needs: [t{}_{i}, t{}_{}]}}\n",
                    l - 1,
                    l - 1,
                    (i + 1) % 10
                )),
            }
        }
    }
    let case = std::sync::Arc::new(Case::new(&yaml));
    let processes: Vec<_> = (0..6)
        .map(|_| {
            let case = case.clone();
            std::thread::spawn(move || case.run(&[]))
        })
        .collect();
    let reports: Vec<Ran> = processes.into_iter().map(|p| p.join().unwrap()).collect();
    for ran in &reports {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let id = ran.report["run_id"].as_str().unwrap();
        let shown = show(&case, id);
        assert_eq!(shown["status"], "succeeded", "{id}");
        let tasks = shown["tasks"].as_object().unwrap();
        assert_eq!(tasks.len(), 300, "{id}");
        for (task, t) in tasks {
            assert_eq!(t["status"], "succeeded", "{id} {task}");
            assert_eq!(t["attempts"], 1, "{id} {task}");
            assert_eq!(t["output"], ran.task(task)["output"], "{id} {task}");
        }
    }
    let listed = runs(&case);
    assert_eq!(listed.len(), 6);
    assert!(
        listed.iter().all(|r| r["status"] == "succeeded"),
        "{listed:?}"
    );
}
