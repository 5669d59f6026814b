//! The examples in languages other than Rust (docs/languages/), built from source by
//! scripts/build-languages.sh with the toolchains of scripts/install-toolchains.sh, run in
//! workflows: their outputs, logs, transient failures and retries, beside Rust tasks.

use crate::support::{root, Case, Ran};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Serves workflows/data/rates.json to every request on 127.0.0.1; returns the port and the
/// count of requests it answered.
fn rates_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let body = std::fs::read(root().join("workflows/data/rates.json")).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, hits)
}

/// Builds the language examples into the test plugin folder, once.
pub(crate) fn build_languages() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        crate::support::test_plugins();
        let out = Command::new("bash")
            .arg(root().join("scripts/build-languages.sh"))
            .output()
            .expect("run scripts/build-languages.sh");
        assert!(
            out.status.success(),
            "building the language examples failed (toolchains: `bash scripts/install-toolchains.sh`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `bulkhead run --json` of the case's workflow with the example plugins of plugins/.
fn run_with_examples(case: &Case) -> Ran {
    let mut cmd = case.bulkhead();
    cmd.env("BULKHEAD_PLUGINS", root().join("plugins"))
        .arg("run")
        .arg(case.file())
        .arg("--json");
    Ran::from(cmd.output().expect("run bulkhead"))
}

/// The column `name` of workflows/data/orders.csv, read here without Bulkhead: the oracle.
fn column(name: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(root().join("workflows/data/orders.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == name).unwrap();
    lines
        .filter_map(|l| Some(l.split(',').nth(col)?.trim().to_string()))
        .collect()
}

/// The amounts of workflows/data/orders.csv.
fn amounts() -> Vec<f64> {
    column("amount")
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect()
}

#[test]
fn the_mixed_language_workflow_runs_eight_languages_end_to_end() {
    build_languages();
    // workflows/languages.yaml as it is, but with the rates on a port of this test's own.
    let (port, hits) = rates_server();
    let yaml = std::fs::read_to_string(root().join("workflows/languages.yaml"))
        .unwrap()
        .replace("127.0.0.1:8900", &format!("127.0.0.1:{port}"));
    let case = Case::new(&yaml);
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::create_dir(case.path("out")).unwrap();
    std::fs::copy(
        root().join("workflows/data/orders.csv"),
        case.path("data/orders.csv"),
    )
    .unwrap();
    let ran = run_with_examples(&case);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let stats = &ran.task("order_stats")["output"];
    let amounts = amounts();
    let sum: f64 = amounts.iter().sum();
    assert_eq!(
        stats["count"].as_u64(),
        Some(amounts.len() as u64),
        "{stats}"
    );
    assert!(
        (stats["sum"].as_f64().unwrap() - sum).abs() < 1e-9,
        "{stats} vs {sum}"
    );
    let max = amounts.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(stats["max"].as_f64(), Some(max), "{stats}");
    let log = ran.task("order_stats")["log"].as_str().unwrap_or("");
    assert!(
        log.contains(r#""msg":"summarised""#),
        "Python's log calls are records: {log}"
    );
    let converted = &ran.task("convert")["output"]["converted"];
    let eur = (sum * 0.92 * 100.0).round() / 100.0;
    assert_eq!(
        converted["EUR"].as_f64(),
        Some(eur),
        "{}",
        ran.task("convert")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one request for the rates");
    let log = ran.task("convert")["log"].as_str().unwrap_or("");
    assert!(
        log.contains(r#""msg":"http request""#) && log.contains(r#""status":200"#),
        "{log}"
    );
    let fp = &ran.task("fingerprint")["output"];
    assert_eq!(fp["language"], "c", "{fp}");
    assert_eq!(fp["fnv1a64"].as_str().map(str::len), Some(16), "{fp}");
    assert!(
        fp["input_bytes"].as_u64().unwrap() > 100,
        "the C task saw the cleaned rows: {fp}"
    );
    assert_eq!(ran.task("announce")["output"]["inputs_seen"], 2);

    // C++: rows and distinct users of the cleaned rows (`clean` drops a row whose amount is
    // not a number).
    let users: Vec<String> = column("user_id")
        .into_iter()
        .zip(column("amount"))
        .filter(|(_, amount)| amount.parse::<f64>().is_ok())
        .map(|(user, _)| user)
        .collect();
    let distinct: std::collections::BTreeSet<&String> = users.iter().collect();
    let cpp = &ran.task("distinct_users")["output"];
    assert_eq!(cpp["language"], "c++", "{cpp}");
    assert_eq!(cpp["rows"].as_u64(), Some(users.len() as u64), "{cpp}");
    assert_eq!(
        cpp["distinct"].as_u64(),
        Some(distinct.len() as u64),
        "{cpp}"
    );
    // Zig: the Python task's sum against the threshold of the workflow file (100).
    let zig = &ran.task("threshold")["output"];
    assert_eq!(zig["language"], "zig", "{zig}");
    assert!((zig["sum"].as_f64().unwrap() - sum).abs() < 1e-9, "{zig}");
    assert_eq!(zig["above"].as_bool(), Some(sum > 100.0), "{zig}");
    // AssemblyScript: the label the parameters give for Zig's answer.
    let label = &ran.task("label")["output"];
    assert_eq!(label["language"], "assemblyscript", "{label}");
    let expected = if sum > 100.0 {
        "big week"
    } else {
        "quiet week"
    };
    assert_eq!(label["label"], expected, "{label}");
    assert!(
        ran.task("label")["log"]
            .as_str()
            .unwrap_or("")
            .contains(r#""msg":"labelled""#),
        "{}",
        ran.task("label")
    );
    // The C component: its typed inputs (two upstream outputs) and its typed log.
    let c2 = ran.task("inputs_size");
    assert_eq!(c2["output"]["abi"], 2, "{c2}");
    assert_eq!(c2["output"]["upstream_tasks"], 2, "{c2}");
    assert!(
        c2["output"]["input_bytes"].as_u64().unwrap_or(0) > 20,
        "{c2}"
    );
    assert!(
        c2["log"]
            .as_str()
            .unwrap_or("")
            .contains(r#""msg":"measured""#),
        "{c2}"
    );
    // Go: the summary in the writable mount, one section per upstream output.
    let go = &ran.task("write_summary")["output"];
    assert_eq!(go["language"], "go", "{go}");
    assert_eq!(
        go["sections"],
        serde_json::json!([
            "announce",
            "convert",
            "distinct_users",
            "inputs_size",
            "label"
        ]),
        "{go}"
    );
    let written = std::fs::read_to_string(case.path("out/languages.md")).unwrap();
    assert_eq!(go["bytes"].as_u64(), Some(written.len() as u64), "{go}");
    assert!(
        written.starts_with("# Orders in eight languages\n") && written.contains("## label"),
        "{written}"
    );
    assert!(written.contains(expected), "{written}");
}

#[test]
fn cpp_go_zig_assemblyscript_and_c_component_tasks_fail_transiently_and_are_retried() {
    build_languages();
    let case = Case::new(
        "name: failing_commands
defaults:
  retry: {max_attempts: 3, backoff: fixed, initial_delay: 10ms}
tasks:
  cpp: {plugin: distinct, params: {field: user_id, fail: transient}}
  go: {plugin: write_summary, params: {path: /out/x.md, fail: transient}, mounts: [{host: out, guest: /out, writable: true}]}
  zig: {plugin: threshold, params: {threshold: 1, fail: transient}}
  assemblyscript: {plugin: label, params: {fail: transient}}
  c_component: {plugin: inputs_size, params: {fail: transient}}
  cpp_bad: {plugin: distinct, params: {}}
  go_bad: {plugin: write_summary, params: {path: /nowhere/x.md}}
  zig_bad: {plugin: threshold, params: {}}
",
    );
    std::fs::create_dir(case.path("out")).unwrap();
    let ran = run_with_examples(&case);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    for task in ["cpp", "go", "zig", "assemblyscript", "c_component"] {
        let t = ran.task(task);
        assert_eq!(
            (t["status"].as_str(), t["attempts"].as_u64()),
            (Some("failed"), Some(3)),
            "{task}: {t}"
        );
        assert_eq!(t["error"]["kind"], "transient", "exit 75 is transient: {t}");
        assert!(
            t["log"]
                .as_str()
                .unwrap_or("")
                .contains("asked to fail; try again"),
            "{task}: {t}"
        );
    }
    assert!(
        std::fs::read_dir(case.path("out"))
            .unwrap()
            .next()
            .is_none(),
        "nothing written by a failed attempt"
    );
    // A missing parameter or a file outside every mount: a permanent failure, said in the log.
    for (task, says) in [
        ("cpp_bad", "params.field"),
        ("go_bad", "cannot write /nowhere/x.md"),
        ("zig_bad", "params.threshold"),
    ] {
        let t = ran.task(task);
        assert_eq!(
            (t["status"].as_str(), t["attempts"].as_u64()),
            (Some("failed"), Some(1)),
            "{task}: {t}"
        );
        assert_eq!(t["error"]["kind"], "exit", "{task}: {t}");
        assert!(
            t["log"].as_str().unwrap_or("").contains(says),
            "{task} says {says}: {t}"
        );
    }
}

#[test]
fn python_and_c_tasks_fail_transiently_and_are_retried_and_a_python_error_is_reported() {
    build_languages();
    let case = Case::new(
        "name: failing
defaults:
  retry: {max_attempts: 2, backoff: fixed, initial_delay: 10ms}
tasks:
  rows: {plugin: extract_csv, params: {path: /data/rows.csv}, mounts: [{host: data, guest: /data}]}
  py_flaky: {plugin: summarize, needs: [rows], params: {field: amount, fail: transient, fail_until: 2}}
  py_bad: {plugin: summarize, needs: [rows], params: {field: price}}
  c_flaky: {plugin: fingerprint, params: {fail: transient}}
  js_denied: {plugin: convert, needs: [py_flaky], params: {rates_url: \"http://127.0.0.1:9/rates.json\", strict: true}}
",
    );
    std::fs::create_dir(case.path("data")).unwrap();
    std::fs::write(case.path("data/rows.csv"), "id,amount\n1,2\n2,3.5\n").unwrap();
    let ran = run_with_examples(&case);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let flaky = ran.task("py_flaky");
    assert_eq!(
        (flaky["status"].as_str(), flaky["attempts"].as_u64()),
        (Some("succeeded"), Some(2)),
        "{flaky}"
    );
    assert_eq!(flaky["output"]["sum"].as_f64(), Some(5.5), "{flaky}");
    assert_eq!(ran.ended("py_bad"), ("failed".into(), "exit".into()));
    assert!(
        ran.message("py_bad")
            .contains("no upstream row has a numeric `price`"),
        "{}",
        ran.message("py_bad")
    );
    let c = ran.task("c_flaky");
    assert_eq!(
        (c["status"].as_str(), c["attempts"].as_u64()),
        (Some("failed"), Some(2)),
        "{c}"
    );
    assert_eq!(c["error"]["kind"], "transient", "exit 75 is transient: {c}");
    // No `http:` grant: the request is refused in the host, the task fails transiently.
    let js = ran.task("js_denied");
    assert_eq!(
        (js["status"].as_str(), js["attempts"].as_u64()),
        (Some("failed"), Some(2)),
        "{js}"
    );
    assert_eq!(js["error"]["kind"], "transient", "{js}");
    assert!(
        js["log"]
            .as_str()
            .unwrap_or("")
            .contains("has no `http:` grant"),
        "{js}"
    );
}
