//! Sleeping plugins do not hold threads; Ctrl-C cancels cleanly.

use crate::support::{bulkhead, Case, Ran};
use std::time::{Duration, Instant};

fn threads_of(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
}

#[test]
fn three_hundred_sleepers_share_a_few_threads() {
    let tasks: String = (0..300)
        .map(|i| format!("  s{i}: {{plugin: sleep, params: {{ms: 1000}}}}\n"))
        .collect();
    let case = Case::new(&format!(
        "name: sleepers\nconcurrency: 300\ntasks:\n{tasks}"
    ));
    let started = Instant::now();
    let child = bulkhead()
        .args(["run", "--json", "--max-parallel", "300"])
        .arg(case.file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let threads = threads_of(child.id());
    let ran = Ran::from(child.wait_with_output().unwrap());
    let elapsed = started.elapsed();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.report["tasks"].as_object().unwrap().len(), 300);
    // 300 one-second sleeps one after another would take 300 s.
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    if let Some(n) = threads {
        assert!(n < 40, "{n} threads for 300 sleeping attempts");
    }
    eprintln!("300 x 1 s sleeps: {elapsed:?}, threads mid-run: {threads:?}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_gracefully_and_it_can_be_resumed() {
    let case = Case::new(
        "name: stop\ntasks:\n  busy: {plugin: spin, limits: {timeout: 60s, fuel: 9000000000000000000}}\n  after: {plugin: noop, needs: [busy]}\n",
    );
    let child = case
        .bulkhead()
        .args(["run", "--json", "--grace", "500ms"])
        .arg(case.file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for_attempt(&case.store(), "busy");
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ran = Ran::from(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.report["status"], "interrupted");
    assert_eq!(
        ran.ended("busy").0,
        "pending",
        "interrupted after the grace period"
    );
    assert_eq!(ran.ended("after").0, "pending");
    assert!(ran.stderr.contains("bulkhead resume"), "{}", ran.stderr);
    let run_id = ran.report["run_id"].as_str().unwrap().to_string();
    let out = case
        .bulkhead()
        .args(["show", "--json", &run_id])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "interrupted");
    assert_eq!(
        shown["tasks"]["busy"]["history"][0]["status"],
        "interrupted"
    );
}

#[test]
fn a_plugin_with_four_tables_does_not_starve_other_tasks() {
    // The pool once had one table per slot while a module may define four: one such plugin
    // made ordinary tasks fail with "maximum concurrent limit of tables reached".
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    crate::support::wat2wasm(
        r#"(module
  (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))"#,
        &plugins.join("four.wasm"),
    );
    std::fs::copy(
        crate::support::test_plugins().join("noop.wasm"),
        plugins.join("noop.wasm"),
    )
    .unwrap();
    let mut yaml = String::from("name: tables\ntasks:\n");
    for i in 0..3 {
        yaml.push_str(&format!("  four{i}: {{plugin: four}}\n"));
    }
    for i in 0..8 {
        yaml.push_str(&format!("  noop{i}: {{plugin: noop}}\n"));
    }
    let case = Case::new(&yaml);
    let out = case
        .bulkhead()
        .env("BULKHEAD_PLUGINS", &plugins)
        .args(["run", "--json", "--max-parallel", "2"])
        .arg(case.file())
        .output()
        .unwrap();
    let ran = crate::support::Ran::from(out);
    assert_eq!(ran.code, 0, "{}\n{}", ran.stderr, ran.report);
}

#[test]
fn host_memory_stays_flat_however_much_the_tasks_log() {
    // 120 tasks that each log 1 MiB (their cap): the host once kept every finished task's log
    // and output in memory until the run ended (300 such tasks: 650 MiB). Now they are in the
    // store, and the --json report reads them back as it is written.
    let mut yaml = String::from("name: logs\ntasks:\n");
    for i in 0..120 {
        yaml.push_str(&format!("  f{i}: {{plugin: logflood}}\n"));
    }
    let case = Case::new(&yaml);
    let mut child = case
        .bulkhead()
        .args(["run", "--json", "--max-parallel", "2"])
        .arg(case.file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).unwrap();
        text
    });
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let report: serde_json::Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
    assert_eq!(report["status"], "succeeded");
    let logged: usize = report["tasks"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["log"].as_str().unwrap().len())
        .sum();
    assert!(
        logged >= 120 << 20,
        "every log is in the report: {logged} bytes"
    );
    assert!(peak_kib > 0, "the host's memory was read");
    assert!(
        peak_kib < 100 << 10,
        "the host held {peak_kib} KiB at its peak for {logged} bytes of logs"
    );
}
