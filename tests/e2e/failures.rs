//! Every failure kind ends that attempt only, with the right kind and a useful message.

use crate::support::Case;

/// Runs `plugin` as task `t` with `extra` YAML under the task, beside an independent task.
fn fail(plugin: &str, extra: &str) -> crate::support::Ran {
    let case = Case::new(&format!(
        "name: fails\ntasks:\n  t:\n    plugin: {plugin}\n{extra}\n  bystander: {{plugin: noop}}\n"
    ));
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "the run fails: {}", ran.stderr);
    assert_eq!(ran.report["status"], "failed");
    assert_eq!(
        ran.ended("bystander").0,
        "succeeded",
        "an independent task is unaffected"
    );
    ran
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    let ran = fail("panic", "");
    assert_eq!(ran.ended("t"), ("failed".into(), "trap".into()));
    let msg = ran.message("t");
    assert!(msg.contains("boom: bad row 42"), "{msg}");
    assert!(ran.task("t")["log"]
        .as_str()
        .unwrap()
        .contains("about to fail"));
}

#[test]
fn unreachable_is_a_trap() {
    let ran = fail("trap", "");
    assert_eq!(ran.ended("t"), ("failed".into(), "trap".into()));
    assert!(
        ran.message("t").contains("unreachable"),
        "{}",
        ran.message("t")
    );
}

#[test]
fn stack_overflow_is_a_trap() {
    let ran = fail("stack_overflow", "");
    assert_eq!(ran.ended("t"), ("failed".into(), "trap".into()));
    assert!(
        ran.message("t").contains("stack overflow"),
        "{}",
        ran.message("t")
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let ran = fail("spin", "    limits: {fuel: 50000000}");
    assert_eq!(ran.ended("t"), ("failed".into(), "fuel".into()));
    assert!(ran.task("t")["fuel_used"].as_u64().unwrap() >= 50_000_000);
}

#[test]
fn an_endless_loop_with_plenty_of_fuel_times_out() {
    let started = std::time::Instant::now();
    let ran = fail(
        "spin",
        "    limits: {fuel: 9000000000000000000, timeout: 300ms}",
    );
    assert_eq!(ran.ended("t"), ("failed".into(), "timeout".into()));
    assert!(
        started.elapsed().as_secs() < 30,
        "the timeout ended the loop"
    );
}

#[test]
fn a_sleeping_plugin_times_out_too() {
    let ran = fail(
        "sleep",
        "    params: {ms: 60000}\n    limits: {timeout: 200ms}",
    );
    assert_eq!(ran.ended("t"), ("failed".into(), "timeout".into()));
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let ran = fail("membomb", "    limits: {memory: 32MiB}");
    assert_eq!(ran.ended("t"), ("failed".into(), "memory".into()));
    let peak = ran.task("t")["peak_memory"].as_u64().unwrap();
    assert!(peak <= 32 << 20 && peak > 16 << 20, "peak {peak}");
}

#[test]
fn an_output_flood_is_cut_off() {
    let ran = fail("flood", "    limits: {max_output: 64KiB}");
    assert_eq!(ran.ended("t"), ("failed".into(), "output_too_large".into()));
    assert_eq!(ran.task("t")["output"], serde_json::Value::Null);
}

#[test]
fn output_that_is_not_json_is_invalid_output() {
    let ran = fail("badjson", "");
    assert_eq!(ran.ended("t"), ("failed".into(), "invalid_output".into()));
    assert!(
        ran.message("t").contains("this is not json"),
        "{}",
        ran.message("t")
    );
}

#[test]
fn a_nonzero_exit_is_kind_exit_with_its_code() {
    let ran = fail("exit", "    params: {code: 3}");
    assert_eq!(ran.ended("t"), ("failed".into(), "exit".into()));
    assert_eq!(ran.task("t")["error"]["exit_code"], 3);
    assert!(
        ran.message("t").contains("exiting with 3"),
        "{}",
        ran.message("t")
    );
}

#[test]
fn exit_codes_wasi_refuses_are_kind_exit_not_trap() {
    for code in [126, 255, -1] {
        let ran = fail("exit", &format!("    params: {{code: {code}}}"));
        assert_eq!(ran.ended("t"), ("failed".into(), "exit".into()), "{code}");
        assert!(
            ran.message("t").contains("outside 0..=125"),
            "{code}: {}",
            ran.message("t")
        );
    }
}

#[test]
fn exit_75_is_transient() {
    let ran = fail("exit", "    params: {code: 75}");
    assert_eq!(ran.ended("t"), ("failed".into(), "transient".into()));
    assert_eq!(ran.task("t")["error"]["exit_code"], 75);
}

#[test]
fn a_log_flood_is_cut_with_a_marker_and_the_task_succeeds() {
    let case =
        Case::new("name: logs\ntasks:\n  t: {plugin: logflood, limits: {max_logs: 10KiB}}\n");
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.task("t")["output"], serde_json::json!({"ok": true}));
    let log = ran.task("t")["log"].as_str().unwrap();
    assert!(log.contains("log cut at max_logs"), "marker present");
    assert!(
        log.len() < 10 * 1024 + 200,
        "log kept to its cap: {}",
        log.len()
    );
}

#[test]
fn attempts_record_duration_fuel_and_peak_memory() {
    let case = Case::new("name: m\ntasks:\n  t: {plugin: echo}\n");
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let t = ran.task("t");
    assert!(t["fuel_used"].as_u64().unwrap() > 0);
    assert!(t["peak_memory"].as_u64().unwrap() >= 65536);
    assert!(t["duration_us"].as_u64().unwrap() > 0);
}
