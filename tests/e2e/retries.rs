//! The retry policy, skips and independent branches, through the real binary.

use crate::support::Case;

#[test]
fn exit_75_twice_then_success_takes_three_attempts() {
    let case = Case::new(
        "name: r\ntasks:\n  t:\n    plugin: flaky\n    retry: {max_attempts: 3, initial_delay: 10ms, backoff: fixed}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.task("t")["attempts"], 3);
    let out = &ran.task("t")["output"];
    assert_eq!(out["attempt"], 3);
    let key = format!("{}:t", ran.report["run_id"].as_str().unwrap());
    assert_eq!(
        out["key"],
        key.as_str(),
        "the idempotency key is stable per task and run"
    );
}

#[test]
fn retries_stop_at_max_attempts() {
    let case = Case::new(
        "name: r\ntasks:\n  t:\n    plugin: flaky\n    params: {succeed_on: 5}\n    retry: {max_attempts: 2, initial_delay: 1ms}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.task("t")["attempts"], 2);
    assert_eq!(ran.ended("t"), ("failed".into(), "transient".into()));
}

#[test]
fn kinds_outside_on_are_not_retried() {
    let case = Case::new(
        "name: r\ndefaults:\n  retry: {max_attempts: 4, initial_delay: 1ms, on: [transient]}\ntasks:\n  t: {plugin: panic}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.task("t")["attempts"], 1);
    let case = Case::new(
        "name: r\ndefaults:\n  retry: {max_attempts: 4, initial_delay: 1ms, on: [trap]}\ntasks:\n  t: {plugin: panic}\n",
    );
    assert_eq!(case.run(&[]).task("t")["attempts"], 4);
}

#[test]
fn a_failed_task_skips_its_dependents_and_other_branches_finish() {
    let case = Case::new(
        "name: s
tasks:
  bad: {plugin: panic}
  child: {plugin: noop, needs: [bad]}
  grandchild: {plugin: noop, needs: [child]}
  left: {plugin: noop}
  right: {plugin: echo, needs: [left]}
",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.ended("bad").0, "failed");
    assert_eq!(ran.ended("child"), ("skipped".into(), "skipped".into()));
    assert_eq!(
        ran.ended("grandchild"),
        ("skipped".into(), "skipped".into())
    );
    assert_eq!(ran.task("grandchild")["attempts"], 0);
    assert_eq!(ran.ended("right").0, "succeeded");
    assert!(
        ran.stderr.contains("1 failed, 2 skipped"),
        "summary: {}",
        ran.stderr
    );
}

#[test]
fn an_optional_failure_does_not_fail_the_run() {
    let case = Case::new(
        "name: o\ntasks:\n  bad: {plugin: panic, optional: true}\n  good: {plugin: noop}\n",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.report["status"], "succeeded");
    assert_eq!(ran.ended("bad").0, "failed");
}
