use super::*;
use std::path::Path;

fn problems(yaml: &str) -> Vec<String> {
    match parse(yaml, Path::new("wf.yaml")) {
        Ok(_) => Vec::new(),
        Err(WorkflowError::Invalid { problems, .. }) => {
            problems.iter().map(|p| p.to_string()).collect()
        }
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn the_checked_in_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/workflow.schema.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == json_schema(),
        "docs/workflow.schema.json is stale: run `cargo run -p bulkhead -- schema > docs/workflow.schema.json`"
    );
}

#[test]
fn the_schema_rejects_unknown_keys() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["RawTask"]["additionalProperties"], false);
}

#[test]
fn defaults_and_overrides_merge_key_by_key() {
    let wf = parse(
        "name: m
defaults:
  limits: {memory: 32MiB, timeout: 5s}
  retry: {max_attempts: 4, on: [exit]}
tasks:
  a: {plugin: p, limits: {timeout: 1s}, retry: {initial_delay: 10ms}}
  b: {plugin: p}
",
        Path::new("wf.yaml"),
    )
    .unwrap();
    let a = &wf.tasks[0];
    assert_eq!(a.limits.memory, 32 << 20);
    assert_eq!(a.limits.timeout, std::time::Duration::from_secs(1));
    assert_eq!(a.limits.fuel, crate::contract::Limits::default().fuel);
    assert_eq!(a.retry.max_attempts, 4);
    assert_eq!(a.retry.initial_delay, std::time::Duration::from_millis(10));
    assert_eq!(a.retry.on, vec![crate::contract::FailureKind::Exit]);
    assert_eq!(
        wf.tasks[1].limits.timeout,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn plugin_paths_resolve_against_the_workflow_folder() {
    let wf = parse(
        "name: p\ntasks:\n  a: {plugin: ../bin/x.wasm}\n",
        Path::new("/srv/flows/wf.yaml"),
    )
    .unwrap();
    assert_eq!(
        wf.tasks[0].plugin,
        PluginRef::Path("/srv/flows/../bin/x.wasm".into())
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let found = problems("name: x\ntasks:\n  a: {plugin: p, needs: [zz]}\n  b: {plugin: p, needs: [b]}\n  c: {plugin: p, limits: {fuel: 0}}\n");
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn schedule_accepts_one_or_many() {
    let one = parse(
        "name: s\nschedule: '@hourly'\ntasks:\n  a: {plugin: p}\n",
        Path::new("w.yaml"),
    )
    .unwrap();
    assert_eq!(one.schedule.unwrap().expressions, vec!["@hourly"]);
    let many = parse(
        "name: s\nschedule: ['0 1 * * *', '0 2 * * *']\ntasks:\n  a: {plugin: p}\n",
        Path::new("w.yaml"),
    )
    .unwrap();
    let many = many.schedule.unwrap();
    assert_eq!(many.expressions.len(), 2);
    assert_eq!(many.catchup, crate::trigger::Catchup::Latest);
    let bad = problems(
        "name: s\nschedule: '0 2 * *'\ntimezone: Mars/Olympus\ntasks:\n  a: {plugin: p}\n",
    );
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].contains("field `schedule`") && bad[0].contains("has 4 fields"),
        "{bad:?}"
    );
    assert!(
        bad[1].contains("field `timezone`") && bad[1].contains("not an IANA time zone"),
        "{bad:?}"
    );
}

#[test]
fn bad_names_and_values_are_refused() {
    assert!(
        problems("name: n\ntasks:\n  a: {plugin: p, limits: {fuel: 9300000000000000000}}\n")[0]
            .contains("more than the most fuel")
    );
    assert!(problems("name: 'bad name'\ntasks:\n  a: {plugin: p}\n")[0]
        .contains("not a valid workflow name"));
    assert!(
        problems("name: n\nconcurrency: 0\ntasks:\n  a: {plugin: p}\n")[0].contains("at least 1")
    );
    let runs = problems("name: n\nmax_active_runs: 0\ntasks:\n  a: {plugin: p}\n");
    assert!(runs[0].contains("max_active_runs") && runs[0].contains("at least 1"));
    assert!(problems("name: n\ntasks:\n  a: {plugin: 'x/y'}\n")[0].contains("not a plugin name"));
    assert!(
        problems("name: n\ntasks:\n  a: {plugin: p, retry: {multiplier: 0.5}}\n")[0]
            .contains("at least 1")
    );
    assert!(
        problems("name: n\ntasks:\n  a: {plugin: p, limits: {memory: 8GiB}}\n")[0]
            .contains("out of range")
    );
    assert!(
        problems("name: n\ntasks:\n  a: {plugin: p, env: {'A=B': x}}\n")[0]
            .contains("not a valid variable")
    );
    assert!(
        problems("name: n\ntasks:\n  a: {plugin: p, needs: [b, b]}\n  b: {plugin: p}\n")[0]
            .contains("listed twice")
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Random workflow-shaped YAML: known and unknown keys, odd values, random `needs`.
    fn yamlish() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("plugin"),
            Just("needs"),
            Just("params"),
            Just("retry"),
            Just("limits"),
            Just("env"),
            Just("mounts"),
            Just("optional"),
            Just("priority"),
            Just("neds"),
            Just("plugn"),
        ];
        let value = prop_oneof![
            Just("p".to_string()),
            Just("[a, b, t0]".to_string()),
            Just("{max_attempts: 0}".to_string()),
            Just("{timeout: 30}".to_string()),
            Just("{memory: 99GiB}".to_string()),
            Just("-3".to_string()),
            Just("true".to_string()),
            Just("[{host: nowhere, guest: rel}]".to_string()),
            "[a-z]{0,6}".prop_map(|s| s),
        ];
        let task = proptest::collection::vec((key, value), 0..5).prop_map(|kv| {
            kv.into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        proptest::collection::vec(task, 0..6).prop_map(|tasks| {
            let mut y = String::from("name: fuzz\ntasks:\n");
            for (i, t) in tasks.iter().enumerate() {
                y.push_str(&format!("  t{i}: {{{t}}}\n"));
            }
            y
        })
    }

    proptest! {
        /// Whatever the input, validation answers with a workflow or with problems; it never
        /// panics, and every problem has a message.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            match parse(&text, Path::new("fuzz.yaml")) {
                Ok(_) => {}
                Err(WorkflowError::Invalid { problems, .. }) => prop_assert!(problems.iter().all(|p| !p.message.is_empty())),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn workflow_shaped_yaml_is_valid_or_explained(yaml in yamlish()) {
            match parse(&yaml, Path::new("fuzz.yaml")) {
                Ok(wf) => {
                    // A valid workflow has no cycles and only known needs.
                    for (i, t) in wf.tasks.iter().enumerate() {
                        prop_assert!(t.needs.iter().all(|&n| n < wf.tasks.len() && n != i));
                    }
                }
                Err(WorkflowError::Invalid { problems, .. }) => prop_assert!(!problems.is_empty()),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}

mod stored_form {
    use super::*;
    use crate::workflow::stored::{from_spec, to_spec};

    const RICH: &str = "
name: rich
description: every kind of field
concurrency: 3
max_active_runs: 2
schedule: ['0 2 * * *', '@hourly']
timezone: Europe/Berlin
defaults: {retry: {max_attempts: 4, backoff: fixed, initial_delay: 2s, on: [exit, host]}}
tasks:
  a: {plugin: p, params: {x: [1, 2]}, env: {K: v}, priority: 5}
  b: {plugin: ../bin/q.wasm, needs: [a], optional: true, limits: {fuel: 1000, memory: 2MiB, timeout: 3s}}
";

    #[test]
    fn a_validated_workflow_reads_back_the_same_without_validating_again() {
        let wf = parse(RICH, Path::new("/flows/rich.yaml")).unwrap();
        let back = from_spec(&to_spec(&wf)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{wf:?}"));
        let s = back.schedule.as_ref().unwrap();
        assert_eq!(s.expressions, vec!["0 2 * * *", "@hourly"]);
        assert_eq!(s.timezone.name(), "Europe/Berlin");
    }

    #[test]
    fn format_1_of_earlier_builds_still_reads() {
        let wf = parse(RICH, Path::new("/flows/rich.yaml")).unwrap();
        let v1 = serde_json::json!({"format": 1, "workflow": wf}).to_string();
        let back = from_spec(&v1).unwrap();
        assert_eq!(format!("{back:?}"), format!("{wf:?}"));
    }

    #[test]
    fn shared_settings_are_stored_once_not_per_task() {
        let mut yaml = String::from("name: big\ndefaults: {retry: {max_attempts: 3}}\ntasks:\n");
        for i in 0..1000 {
            yaml.push_str(&format!(
                "  t{i}: {{plugin: noop, needs: [{}]}}\n",
                match i {
                    0 => String::new(),
                    _ => format!("t{}", i - 1),
                }
            ));
        }
        yaml.push_str("  odd: {plugin: other, limits: {fuel: 5}, priority: 2}\n");
        let wf = parse(&yaml, Path::new("big.yaml")).unwrap();
        let spec = to_spec(&wf);
        assert!(
            spec.len() < 1001 * 40,
            "{} bytes for 1001 tasks",
            spec.len()
        );
        let v: serde_json::Value = serde_json::from_str(&spec).unwrap();
        assert_eq!(v["workflow"]["plugins"].as_array().unwrap().len(), 2);
        assert_eq!(v["workflow"]["limits"].as_array().unwrap().len(), 2);
        assert_eq!(v["workflow"]["retries"].as_array().unwrap().len(), 1);
        let back = from_spec(&spec).unwrap();
        assert_eq!(format!("{back:?}"), format!("{wf:?}"));
    }

    #[test]
    fn a_stored_workflow_with_a_mount_reads_back_after_the_folder_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let file = dir.path().join("m.yaml");
        let yaml = "name: m\ntasks:\n  a: {plugin: p, mounts: [{host: data, guest: /data}]}\n";
        let wf = parse(yaml, &file).unwrap();
        let spec = to_spec(&wf);
        std::fs::remove_dir(dir.path().join("data")).unwrap();
        assert!(
            parse(yaml, &file).is_err(),
            "validating again would refuse it"
        );
        let back = from_spec(&spec).unwrap();
        assert_eq!(back.tasks[0].grants.mounts, wf.tasks[0].grants.mounts);
    }

    #[test]
    fn a_damaged_or_newer_stored_workflow_is_an_error_not_a_panic() {
        let wf = parse(RICH, Path::new("/flows/rich.yaml")).unwrap();
        let good: serde_json::Value = serde_json::from_str(&to_spec(&wf)).unwrap();
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            edit(&mut v);
            from_spec(&v.to_string()).unwrap_err()
        };
        assert!(with(&|v| v["format"] = 3.into()).contains("format 3"));
        assert!(with(&|v| v["workflow"]["tasks"][1]["limits"] = 9.into())
            .contains("task `b` names limits number 9 of 2 stored"));
        assert!(
            with(&|v| v["workflow"]["retries"] = serde_json::json!([])).contains("retry policy")
        );
        assert!(
            with(&|v| v["workflow"]["tasks"][1]["needs"] = serde_json::json!([7]))
                .contains("needs task number 7")
        );
        assert!(
            with(&|v| v["workflow"]["tasks"][0]["needs"] = serde_json::json!([1]))
                .contains("cycle")
        );
        assert!(
            with(&|v| v["workflow"]["tasks"][0]["needs"] = serde_json::json!([0]))
                .contains("needs itself")
        );
        assert!(with(&|v| v["workflow"]["tasks"][1]["id"] = "a".into()).contains("twice"));
        assert!(
            with(&|v| v["workflow"]["schedule"]["timezone"] = "Mars/Olympus".into())
                .contains("Mars")
        );
        assert!(from_spec("{}")
            .unwrap_err()
            .contains("not a stored workflow"));
    }
}

/// The streaming parser is only a faster way to read what serde_yaml reads: on documents full of
/// scalars whose type YAML dialects disagree on (`yes`, `012`, `1_000`, `0x1F`, `~`, `.inf`,
/// quoted or not) and keys that repeat, whatever it accepts serde_yaml reads the same, and it never
/// accepts a key written twice.
mod streaming_matches_the_reference {
    use super::super::duplicates::duplicate_keys;
    use super::super::raw::RawWorkflow;
    use super::super::validate::streamed;
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Yes",
        "NO",
        "true",
        "True",
        "FALSE",
        "null",
        "Null",
        "~",
        "",
        "012",
        "00",
        "0",
        "-0",
        "1_000",
        "0x1F",
        "-0x1f",
        "0o17",
        "0b101",
        "1e3",
        "1E+3",
        ".5",
        "-.5",
        "+.7",
        "1.",
        ".inf",
        "-.Inf",
        ".nan",
        "1:20",
        "12:30:00",
        "2001-12-14",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "+5",
        "x y",
        "é",
        "a#b",
        "-",
        "1.0e-3",
        "0.1e+2",
        "NaN",
        "Infinity",
    ];

    fn scalar() -> impl Strategy<Value = String> {
        (proptest::sample::select(WORDS), 0..3u8).prop_map(|(w, quote)| match quote {
            0 if w.is_empty() || w.starts_with('-') && w.len() == 1 => "''".to_string(),
            0 => w.to_string(),
            1 => format!("'{w}'"),
            _ => format!("\"{w}\""),
        })
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = scalar();
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                proptest::collection::vec(
                    (
                        proptest::sample::select(&["a", "b", "c", "yes", "1"][..]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|pairs| {
                    let body: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", body.join(", "))
                }),
            ]
        })
    }

    #[test]
    fn ordinary_files_take_the_streaming_path() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    streamed(&text).is_ok(),
                    "{}: {:?}",
                    path.display(),
                    streamed(&text).err()
                );
                read += 1;
            }
        }
        assert!(
            read >= 3,
            "only {read} example workflows in {}",
            dir.display()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn on_tricky_scalars_and_repeated_keys(
            tasks in proptest::collection::vec(
                (proptest::sample::select(&["a", "b", "c"][..]), value()),
                1..4,
            ),
        ) {
            let mut text = String::from("name: w\ntasks:\n");
            for (id, params) in &tasks {
                text.push_str(&format!("  {id}: {{plugin: p, params: {params}}}\n"));
            }
            if let Ok(fast) = streamed(&text) {
                let reference = serde_yaml::from_str::<RawWorkflow>(&text);
                prop_assert!(reference.is_ok(), "serde_yaml refuses what was accepted:\n{}\n{:?}", text, reference.as_ref().err());
                if let Ok(reference) = reference {
                    prop_assert_eq!(format!("{fast:?}"), format!("{reference:?}"), "{}", text);
                }
                prop_assert!(duplicate_keys(&text).is_empty(), "a duplicate key was accepted:\n{}", text);
            }
        }
    }
}

#[test]
fn tasks_written_alike_share_one_copy_of_their_settings() {
    let yaml = "name: w\ntasks:\n  a: {plugin: p}\n  b: {plugin: p, needs: [a]}\n  c: {plugin: p, limits: {fuel: 5}}\n";
    let wf = parse(yaml, Path::new("w.yaml")).unwrap();
    let [a, b, c] = &wf.tasks[..] else {
        panic!("three tasks")
    };
    assert!(std::sync::Arc::ptr_eq(&a.limits, &b.limits));
    assert!(std::sync::Arc::ptr_eq(&a.retry, &c.retry));
    assert!(!std::sync::Arc::ptr_eq(&a.limits, &c.limits));
    assert_eq!(c.limits.fuel, 5);
    assert_eq!(a.limits.fuel, crate::contract::Limits::default().fuel);
}
