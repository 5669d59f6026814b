//! Invalid workflows are refused with a message that names the file, task and field, and nothing
//! runs. Data-driven: each `tests/fixtures/invalid/NAME.yaml` has a `NAME.expected` whose every
//! line must appear in the error output.

use crate::support::{bulkhead, root, Case};

#[test]
fn every_invalid_fixture_is_refused_with_its_expected_message() {
    let dir = root().join("tests/fixtures/invalid");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for yaml in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let expected = std::fs::read_to_string(yaml.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", yaml.display()));
        for command in ["validate", "run"] {
            let out = bulkhead().arg(command).arg(yaml).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} {}: {stderr}",
                yaml.display()
            );
            assert!(out.stdout.is_empty(), "nothing ran for {}", yaml.display());
            for line in expected.lines().filter(|l| !l.is_empty()) {
                assert!(
                    stderr.contains(line),
                    "{command} {}: expected {line:?} in:\n{stderr}",
                    yaml.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures found");
}

#[test]
fn nothing_runs_when_one_task_is_invalid() {
    let case = Case::new(
        "name: half\ntasks:\n  writer:\n    plugin: probe\n    params: {write: /out/ran.txt}\n    mounts: [{host: out, guest: /out, writable: true}]\n  broken: {plugin: noop, needs: [nobody]}\n",
    );
    std::fs::create_dir(case.path("out")).unwrap();
    let ran = case.run(&[]);
    assert_eq!(ran.code, 2);
    assert!(
        !case.path("out/ran.txt").exists(),
        "the valid task did not run"
    );
}

#[test]
fn validate_accepts_a_good_file() {
    let case = Case::new("name: fine\ntasks:\n  a: {plugin: noop}\n");
    let out = bulkhead()
        .arg("validate")
        .arg(case.file())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ok:"));
}
