//! The sandbox grants nothing by default, and exactly what a task is granted.

use crate::support::{bulkhead, Case, Ran};

#[test]
fn stdin_carries_the_contract_document() {
    let case = Case::new(
        "name: contract
tasks:
  first: {plugin: noop}
  second: {plugin: echo, needs: [first], params: {table: users, n: 3}}
",
    );
    let ran = case.run(&["--param", "day=monday", "--param", "limit=10"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let doc = &ran.task("second")["output"]["received"];
    let run_id = ran.report["run_id"].as_str().unwrap();
    assert_eq!(doc["abi"], 1);
    assert_eq!(doc["workflow"], "contract");
    assert_eq!(doc["run_id"], run_id);
    assert_eq!(doc["task"], "second");
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["idempotency_key"], format!("{run_id}:second").as_str());
    assert_eq!(doc["params"], serde_json::json!({"table": "users", "n": 3}));
    assert_eq!(
        doc["run_params"],
        serde_json::json!({"day": "monday", "limit": 10})
    );
    assert_eq!(doc["inputs"], serde_json::json!({"first": null}));
}

fn probe(case: &Case, secret_env: bool) -> Ran {
    let mut cmd = bulkhead();
    if secret_env {
        cmd.env("BULKHEAD_TEST_SECRET", "hunter2")
            .env("HOME", "/root");
    }
    cmd.arg("run").arg(case.file()).arg("--json");
    Ran::from(cmd.output().expect("run"))
}

#[test]
fn nothing_is_granted_by_default() {
    let case = Case::new(
        "name: deny\ntasks:\n  p: {plugin: probe, params: {read: /etc/passwd, write: /tmp/x}}\n",
    );
    let ran = probe(&case, true);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = &ran.task("p")["output"];
    assert_eq!(
        out["env"],
        serde_json::json!([]),
        "no host environment leaks"
    );
    assert_eq!(
        out["args"],
        serde_json::json!(["probe"]),
        "only the plugin name as argv[0]"
    );
    assert!(
        out["read"]["err"].is_string(),
        "no host files: {}",
        out["read"]
    );
    assert!(
        out["write"]["err"].is_string(),
        "no writes: {}",
        out["write"]
    );
    assert!(
        out["list_root"]["err"].is_string(),
        "no root dir: {}",
        out["list_root"]
    );
}

#[test]
fn env_grants_are_exactly_what_is_listed() {
    let case =
        Case::new("name: env\ntasks:\n  p: {plugin: probe, env: {MODE: strict, LEVEL: '3'}}\n");
    let ran = probe(&case, true);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.task("p")["output"]["env"],
        serde_json::json!(["MODE=strict", "LEVEL=3"])
    );
}

#[test]
fn a_read_only_mount_can_be_read_but_not_written() {
    let case = Case::new(
        "name: ro\ntasks:\n  p:\n    plugin: probe\n    params: {read: /data/in.txt, write: /data/new.txt}\n    mounts: [{host: data, guest: /data}]\n",
    );
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::write(case.path("data/in.txt"), "hello from the host").unwrap();
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = &ran.task("p")["output"];
    assert!(out["read"]["ok"]
        .as_str()
        .unwrap()
        .contains("hello from the host"));
    assert!(
        out["write"]["err"].is_string(),
        "read-only: {}",
        out["write"]
    );
    assert!(
        !case.path("data/new.txt").exists(),
        "nothing was written on the host"
    );
}

#[test]
fn a_writable_mount_can_be_written() {
    let case = Case::new(
        "name: rw\ntasks:\n  p:\n    plugin: probe\n    params: {write: /out/new.txt}\n    mounts: [{host: out, guest: /out, writable: true}]\n",
    );
    std::fs::create_dir(case.path("out")).unwrap();
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.task("p")["output"]["write"]["ok"].is_string());
    assert_eq!(
        std::fs::read_to_string(case.path("out/new.txt")).unwrap(),
        "written by probe"
    );
}

#[test]
fn a_mount_does_not_reach_outside_its_folder() {
    let case = Case::new(
        "name: esc\ntasks:\n  p:\n    plugin: probe\n    params: {read: /data/../secret.txt}\n    mounts: [{host: data, guest: /data}]\n",
    );
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::write(case.path("secret.txt"), "top secret").unwrap();
    let ran = case.run(&[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.task("p")["output"]["read"]["err"].is_string(),
        "{}",
        ran.task("p")["output"]
    );
}
