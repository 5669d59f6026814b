//! ABI v2: a WebAssembly component plugin runs beside ABI v1 commands, under the same limits,
//! with the same failure kinds, retries and logs.

use crate::support::Case;

#[test]
fn a_component_runs_with_the_limits_failure_kinds_and_logs_of_a_command() {
    let case = Case::new(
        "name: mixed
tasks:
  first: {plugin: noop}
  greet: {plugin: greet_component, needs: [first], params: {name: Ada}}
  flaky:
    plugin: greet_component
    params: {fail: transient, fail_until: 2}
    retry: {max_attempts: 3, backoff: fixed, initial_delay: 10ms}
  spin: {plugin: greet_component, params: {spin: true}, limits: {fuel: 10000000}}
  hog: {plugin: greet_component, params: {alloc_mib: 200}, limits: {memory: 64MiB}}
  big: {plugin: greet_component, params: {output_bytes: 2000000}, limits: {max_output: 1MiB}}
  bad: {plugin: greet_component, params: {fail: permanent}}
  boom: {plugin: greet_component, params: {panic: true}}
",
    );
    let ran = case.run(&[]);
    assert_eq!(ran.code, 1, "some tasks fail: {}", ran.stderr);
    let greet = ran.task("greet");
    assert_eq!(greet["status"], "succeeded", "{}", ran.stderr);
    assert_eq!(greet["output"]["greeting"], "Hello, Ada!");
    assert_eq!(greet["output"]["inputs_seen"], 1, "the task saw its input");
    let run_id = ran.report["run_id"].as_str().unwrap();
    assert_eq!(
        greet["output"]["idempotency_key"],
        format!("{run_id}:greet").as_str()
    );
    let log = greet["log"].as_str().unwrap_or_default();
    assert!(
        log.contains(r#""msg":"starting""#) && log.contains(r#""level":"info""#),
        "log calls are structured records of the attempt's log: {log}"
    );
    let flaky = ran.task("flaky");
    assert_eq!(
        (flaky["status"].as_str(), flaky["attempts"].as_u64()),
        (Some("succeeded"), Some(2)),
        "a transient task-error is retried: {flaky}"
    );
    for (task, kind) in [
        ("spin", "fuel"),
        ("hog", "memory"),
        ("big", "output_too_large"),
        ("bad", "exit"),
        ("boom", "trap"),
    ] {
        let t = ran.task(task);
        assert_eq!(t["status"], "failed", "{task}: {t}");
        assert_eq!(t["error"]["kind"], kind, "{task}: {t}");
    }
    assert!(
        ran.message("boom").contains("asked to panic"),
        "the panic message is in the failure: {}",
        ran.message("boom")
    );
}
