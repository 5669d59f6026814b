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

#[test]
fn nested_mounts_are_refused_when_either_is_writable() {
    // The escape: `./data` writable at /data lets a plugin move `data/sub` away and put a link
    // to /etc in its place; the next attempt's read-only /sub would then be the host's /etc.
    let cases = [
        // Within a task.
        ("  a:\n    plugin: probe\n    mounts: [{host: data, guest: /data, writable: true}, {host: data/sub, guest: /sub}]\n", true),
        // Across tasks, the inner one writable.
        ("  a: {plugin: probe, mounts: [{host: data, guest: /data}]}\n  b: {plugin: probe, mounts: [{host: data/sub, guest: /sub, writable: true}]}\n", true),
        // Read-only both: nothing can be moved.
        ("  a: {plugin: probe, mounts: [{host: data, guest: /data}, {host: data/sub, guest: /sub}]}\n", false),
        // The same folder twice, writable: neither can reach the other's root.
        ("  a: {plugin: probe, mounts: [{host: data, guest: /data, writable: true}]}\n  b: {plugin: probe, mounts: [{host: data, guest: /d, writable: true}]}\n", false),
    ];
    for (tasks, refused) in cases {
        let case = Case::new(&format!("name: nested\ntasks:\n{tasks}"));
        std::fs::create_dir_all(case.path("data/sub")).unwrap();
        let out = case
            .bulkhead()
            .arg("validate")
            .arg(case.file())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if refused {
            assert_eq!(out.status.code(), Some(2), "{tasks}: {stderr}");
            assert!(stderr.contains("lies inside"), "{stderr}");
            assert!(
                stderr.contains("nested mounts are refused when either is writable"),
                "{stderr}"
            );
        } else {
            assert!(out.status.success(), "{tasks}: {stderr}");
        }
    }
}

/// Runs the case's workflow, and once its task `wait` has started (the workflow validated, the
/// mounts resolved), calls `change`; returns what the run reported.
fn run_changing_mounts(case: &Case, change: impl FnOnce()) -> crate::support::Ran {
    let child = case
        .bulkhead()
        .args(["run", "--json"])
        .arg(case.file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait_for_attempt(&case.store(), "wait");
    change();
    crate::support::Ran::from(child.wait_with_output().unwrap())
}

/// The run failed, and its task `task` failed as a host fault whose message says `says`.
fn failed_as_host(ran: &crate::support::Ran, task: &str, says: &str) {
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let ended = ran.ended(task);
    assert_eq!(ended, ("failed".into(), "host".into()), "{}", ran.report);
    assert!(ran.message(task).contains(says), "{}", ran.message(task));
}

#[test]
fn a_mount_swapped_for_a_symlink_after_validation_is_refused() {
    // Something else with write access to `data/` (another workflow, another run) swaps the
    // mounted folder for a link to /etc while the run waits: the attempt must not follow it.
    let case = Case::new(
        "name: swap\ntasks:\n  wait: {plugin: sleep, params: {ms: 1500}}\n  p:\n    plugin: probe\n    needs: [wait]\n    params: {read: /sub/passwd}\n    mounts: [{host: data/sub, guest: /sub}]\n",
    );
    std::fs::create_dir_all(case.path("data/sub")).unwrap();
    let ran = run_changing_mounts(&case, || {
        std::fs::rename(case.path("data/sub"), case.path("data/moved")).unwrap();
        std::os::unix::fs::symlink("/etc", case.path("data/sub")).unwrap();
    });
    failed_as_host(&ran, "p", "symbolic link");
    assert!(
        !ran.report.to_string().contains("root:"),
        "the host's /etc/passwd leaked"
    );
}

#[test]
fn a_mount_removed_after_validation_fails_that_attempt_as_a_host_fault() {
    // The stored run needs no folder to be shown; the attempt that needs it fails, as the
    // host's fault (not retried by default), and the independent task still runs.
    let case = Case::new(
        "name: gone\ntasks:\n  wait: {plugin: sleep, params: {ms: 1500}}\n  p:\n    plugin: probe\n    needs: [wait]\n    mounts: [{host: data, guest: /data}]\n  other: {plugin: probe, needs: [wait]}\n",
    );
    std::fs::create_dir_all(case.path("data")).unwrap();
    let ran = run_changing_mounts(&case, || std::fs::remove_dir(case.path("data")).unwrap());
    failed_as_host(&ran, "p", "cannot open mount");
    assert_eq!(ran.task("p")["attempts"], 1, "{}", ran.report);
    assert_eq!(ran.task("other")["status"], "succeeded", "{}", ran.report);
    let run_id = ran.report["run_id"].as_str().unwrap();
    let shown = case
        .bulkhead()
        .args(["show", run_id, "--json"])
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
}

#[test]
fn a_mount_that_reaches_the_hosts_own_files_is_refused() {
    // A writable `host: .` beside the state store let a plugin edit the stored workflows, and
    // one over the cache let it swap compiled code. Read-only is refused too: run data and
    // native code are not a plugin's business.
    let cache = crate::support::root().join("target/e2e-cache");
    let plugins = crate::support::test_plugins().to_path_buf();
    for (host, says) in [
        (".".to_string(), "contains the state store"),
        (cache.display().to_string(), "the compiled-plugin cache"),
        (
            cache.join("sub").display().to_string(),
            "lies inside the compiled-plugin cache",
        ),
        (plugins.display().to_string(), "the plugin folder"),
    ] {
        let case = Case::new(&format!(
            "name: own\ntasks:\n  p:\n    plugin: probe\n    mounts: [{{host: \"{host}\", guest: /x, writable: true}}]\n"
        ));
        std::fs::create_dir_all(cache.join("sub")).unwrap();
        for command in ["run", "validate"] {
            let out = case
                .bulkhead()
                .arg(command)
                .arg(case.file())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {host}: {stderr}");
            assert!(stderr.contains(says), "{command} {host}: {stderr}");
            assert!(stderr.contains("mounts[0].host"), "{stderr}");
        }
    }
}

#[test]
fn a_blocking_file_call_does_not_outlive_its_attempt_or_hang_the_host() {
    // Opening a named pipe nobody writes blocks in the kernel, on a thread no timeout can
    // interrupt. The attempt must end at its timeout, the other tasks go on, and the process
    // must exit instead of waiting for that thread.
    let case = Case::new(
        "name: fifo\ntasks:\n  stuck:\n    plugin: probe\n    params: {read: /data/pipe}\n    mounts: [{host: data, guest: /data}]\n    limits: {timeout: 500ms}\n    retry: {max_attempts: 2, initial_delay: 1ms}\n  after: {plugin: noop}\n",
    );
    std::fs::create_dir(case.path("data")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(case.path("data/pipe"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let started = std::time::Instant::now();
    let ran = case.run(&[]);
    let took = started.elapsed();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.ended("stuck"), ("failed".into(), "timeout".into()));
    assert_eq!(
        ran.task("stuck")["attempts"],
        2,
        "each attempt timed out on its own"
    );
    assert_eq!(ran.ended("after").0, "succeeded");
    assert!(
        took < std::time::Duration::from_secs(20),
        "the host exited without waiting for the stuck threads: {took:?}"
    );
}
