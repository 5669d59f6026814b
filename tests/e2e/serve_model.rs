//! Many runs on one real server, touched at random (seeded): some cancelled through the API,
//! some through `bulkhead cancel`, failed tasks retried, more runs triggered afterwards. The
//! model says how each run must end; exactly the touched runs may differ from "succeeded", and
//! every run's outputs must be its own.

use crate::serve::{Served, Site};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "model-token";

const SLOW: &str = "name: slow\ntasks:\n  nap: {plugin: sleep, params: {ms: 4000}}\n  after: {plugin: echo, needs: [nap]}\n";
const QUICK: &str = "name: quick\ntasks:\n  greet: {plugin: echo}\n";
const FLAKY: &str = "name: flaky\ndefaults:\n  retry: {max_attempts: 1}\ntasks:\n  first: {plugin: echo}\n  try: {plugin: sleep, params: {ms: 10, fail_until: 2}}\n  last: {plugin: echo, needs: [try]}\n";

/// How a run must end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Succeeded,
    Cancelled,
    /// Failed and left alone.
    Failed,
    /// Failed, then retried by hand: succeeds, with `first` run once.
    Retried,
}

#[derive(Debug)]
struct Expect {
    workflow: &'static str,
    i: u64,
    fate: Fate,
}

fn site() -> Site {
    let site = Site::new();
    site.plugin("sleep");
    site.plugin("echo");
    site.workflow("slow.yaml", SLOW);
    site.workflow("quick.yaml", QUICK);
    site.workflow("flaky.yaml", FLAKY);
    site
}

fn trigger(s: &Served, workflow: &str, i: u64) -> String {
    let (status, body) = s.post(
        "/api/runs",
        Some(TOKEN),
        &json!({"workflow": workflow, "params": {"i": i}}).to_string(),
    );
    assert_eq!(status, 201, "{body}");
    body["run_id"].as_str().unwrap().to_string()
}

/// Polls until `run` has status `status`; panics with the last report after `within`.
fn wait_status(s: &Served, run: &str, status: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = s.get(&format!("/api/runs/{run}"));
        if code == 200 && status.iter().any(|st| body["status"] == *st) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never became {status:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// Retries `task` of the ended `run`, waiting while the run is still finishing on its host.
fn retry(s: &Served, run: &str, task: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = s.post(
            &format!("/api/runs/{run}/tasks/{task}/retry"),
            Some(TOKEN),
            "",
        );
        if code == 202 {
            assert_eq!(body["status"], "retrying", "{body}");
            return;
        }
        assert_eq!(code, 409, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("still finishing"),
            "{body}"
        );
        assert!(Instant::now() < deadline, "cannot retry {run}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cancels `run`; `false` if it had already ended (too late: it keeps its status).
fn cancel_by_api(s: &Served, run: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = s.post(&format!("/api/runs/{run}/cancel"), Some(TOKEN), "");
        if code == 202 {
            assert!(
                body["status"] == "cancelling" || body["status"] == "cancelled",
                "{body}"
            );
            return true;
        }
        assert_eq!(code, 409, "{body}");
        if body["error"].as_str().unwrap().contains("already ended") {
            return false;
        }
        // Otherwise the trigger is being turned into a run right now: try again.
        assert!(
            body["error"].as_str().unwrap().contains("starting"),
            "{body}"
        );
        assert!(Instant::now() < deadline, "cannot cancel {run}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`cancel_by_api`] through `bulkhead cancel`.
fn cancel_by_cli(site: &Site, run: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = site.cli(&["cancel", run]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return true;
        }
        if stderr.contains("already ended") {
            return false;
        }
        assert!(
            stderr.contains("starting"),
            "bulkhead cancel {run}: {stderr}"
        );
        assert!(Instant::now() < deadline, "cannot cancel {run}: {stderr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the server's live event stream (`/api/events`, Server-Sent Events) on a thread of its
/// own, as a browser would; every event's data, in order, lands in the returned list.
fn listen(s: &Served, query: &str) -> std::sync::Arc<std::sync::Mutex<Vec<Value>>> {
    use std::io::BufRead;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .get(&format!("{}/api/events{query}", s.base))
        .header("Accept", "text/event-stream")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let out = seen.clone();
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        let mut name = String::new();
        // Ends when the server goes away.
        for line in reader.lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                assert!(
                    name == "lagged" || v["kind"] == name.as_str(),
                    "event name `{name}` and kind disagree: {v}"
                );
                out.lock().unwrap().push(v);
            }
        }
    });
    seen
}

/// The live events agree with the store: each run's last `run_finished` says its final status,
/// each `attempt_finished` is an attempt the store recorded as ended, and no event names a run
/// the test did not start.
fn check_events(seed: u64, s: &Served, model: &BTreeMap<String, Expect>, events: &[Value]) {
    assert!(
        events.iter().all(|e| e["kind"] != "lagged"),
        "seed {seed}: the listener fell behind"
    );
    for e in events {
        let run = e["run_id"].as_str().unwrap_or("");
        assert!(
            model.contains_key(run),
            "seed {seed}: an event of a run nobody started: {e}"
        );
    }
    for (run, expect) in model {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["run_id"] == run.as_str())
            .collect();
        let (_, report) = s.get(&format!("/api/runs/{run}"));
        let last_end = mine.iter().rev().find(|e| e["kind"] == "run_finished");
        assert_eq!(
            last_end.map(|e| e["status"].clone()),
            Some(report["status"].clone()),
            "seed {seed}: run {run} ({expect:?}): its last run_finished event and the store disagree; events: {mine:?}"
        );
        assert!(
            mine.iter()
                .any(|e| e["kind"] == "run_triggered" && e["workflow"] == expect.workflow),
            "seed {seed}: run {run}: no run_triggered of `{}`",
            expect.workflow
        );
        for (task, t) in report["tasks"].as_object().unwrap() {
            let ended = t["history"].as_array().map_or(0, |h| {
                h.iter()
                    .filter(|a| a["finished_at"].is_string() && a["status"] != "interrupted")
                    .count()
            });
            let finished = mine
                .iter()
                .filter(|e| e["kind"] == "attempt_finished" && e["task"] == task.as_str())
                .count();
            assert_eq!(
                finished, ended,
                "seed {seed}: run {run} task {task}: {finished} attempt_finished events, {ended} attempts ended in the store"
            );
        }
    }
}

fn one_seed(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let site = site();
    let s = site.serve(&["--token", TOKEN]);
    let events = listen(&s, "");
    let flaky_events = listen(&s, "?workflow=flaky");
    let mut model: BTreeMap<String, Expect> = BTreeMap::new();
    let mut i = 0u64;
    let mut add = |s: &Served, model: &mut BTreeMap<String, Expect>, wf: &'static str| {
        i += 1;
        let fate = if wf == "flaky" {
            Fate::Failed
        } else {
            Fate::Succeeded
        };
        model.insert(
            trigger(s, wf, i),
            Expect {
                workflow: wf,
                i,
                fate,
            },
        );
    };
    let mut first_wave: Vec<&'static str> =
        [vec!["slow"; 20], vec!["quick"; 10], vec!["flaky"; 4]].concat();
    first_wave.shuffle(&mut rng);
    for wf in first_wave {
        add(&s, &mut model, wf);
    }

    // Cancel a random subset of the slow runs, half through the API, half through the CLI.
    let mut slow: Vec<String> = model
        .iter()
        .filter(|(_, e)| e.workflow == "slow")
        .map(|(id, _)| id.clone())
        .collect();
    slow.shuffle(&mut rng);
    let n = rng.random_range(3..=8);
    for (k, run) in slow.iter().take(n).enumerate() {
        wait_status(&s, run, &["running"], Duration::from_secs(60));
        let landed = if k % 2 == 0 {
            cancel_by_api(&s, run)
        } else {
            cancel_by_cli(&site, run)
        };
        if landed {
            model.get_mut(run).unwrap().fate = Fate::Cancelled;
        }
    }

    // Retry `try` of a random subset of the flaky runs once they have failed.
    let flaky: Vec<String> = model
        .iter()
        .filter(|(_, e)| e.workflow == "flaky")
        .map(|(id, _)| id.clone())
        .collect();
    for run in &flaky {
        wait_status(&s, run, &["failed"], Duration::from_secs(60));
        if rng.random_bool(0.5) {
            retry(&s, run, "try");
            // The retry runs in the background: wait until it has taken the run over.
            wait_status(&s, run, &["running", "succeeded"], Duration::from_secs(60));
            model.get_mut(run).unwrap().fate = Fate::Retried;
        }
    }

    // Runs started after the cancels must not inherit them.
    let mut second_wave: Vec<&'static str> = [vec!["slow"; 5], vec!["quick"; 5]].concat();
    second_wave.shuffle(&mut rng);
    for wf in second_wave {
        add(&s, &mut model, wf);
    }

    for (run, e) in &model {
        let want = match e.fate {
            Fate::Succeeded | Fate::Retried => "succeeded",
            Fate::Cancelled => "cancelled",
            Fate::Failed => "failed",
        };
        let report = wait_status(
            &s,
            run,
            &[want, "succeeded", "failed", "cancelled"],
            Duration::from_secs(90),
        );
        assert_eq!(
            report["status"], want,
            "seed {seed}: run {run} ({e:?}) ended {}",
            report["status"]
        );
        assert!(
            report["finished_at"].is_string(),
            "an ended run has finished_at: {report}"
        );
        let t = &report["tasks"];
        let params = |task: &str, path: &str| t[task]["output"][path]["run_params"]["i"].clone();
        match (e.workflow, e.fate) {
            ("slow", Fate::Succeeded) => {
                assert_eq!(
                    t["nap"]["output"]["run_params"]["i"],
                    json!(e.i),
                    "{report}"
                );
                assert_eq!(params("after", "received"), json!(e.i), "{report}");
            }
            ("slow", Fate::Cancelled) => {
                assert_eq!(t["nap"]["status"], "cancelled", "{report}");
                assert_eq!(t["after"]["status"], "cancelled", "{report}");
            }
            ("quick", _) => assert_eq!(params("greet", "received"), json!(e.i), "{report}"),
            ("flaky", Fate::Failed) => {
                assert_eq!(t["try"]["status"], "failed", "{report}");
                assert_eq!(t["last"]["status"], "skipped", "{report}");
                assert_eq!(t["first"]["status"], "succeeded", "{report}");
            }
            ("flaky", Fate::Retried) => {
                assert_eq!(
                    t["first"]["attempts"], 1,
                    "succeeded work is not redone: {report}"
                );
                assert_eq!(t["try"]["attempts"], 2, "{report}");
                assert_eq!(params("last", "received"), json!(e.i), "{report}");
            }
            other => panic!("no expectation for {other:?}"),
        }
    }
    let cancelled = model.values().filter(|e| e.fate == Fate::Cancelled).count();
    assert!(
        cancelled > 0,
        "seed {seed}: no cancel landed; the test proves nothing"
    );
    let (_, page) = s.get("/api/runs?status=cancelled&limit=500");
    assert_eq!(
        page["runs"].as_array().unwrap().len(),
        cancelled,
        "seed {seed}: exactly the cancelled runs are cancelled"
    );
    // Every run has ended: its events have all been sent (a run's end is its last). Wait for
    // the listener to have read the last of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ends = |events: &[Value]| {
        model
            .keys()
            .filter(|r| {
                events
                    .iter()
                    .any(|e| e["run_id"] == r.as_str() && e["kind"] == "run_finished")
            })
            .count()
    };
    while ends(&events.lock().unwrap()) < model.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let events = events.lock().unwrap().clone();
    check_events(seed, &s, &model, &events);
    // Filtered by workflow: exactly the events of the flaky runs, the retries' included.
    let of_flaky = |e: &&Value| {
        model
            .get(e["run_id"].as_str().unwrap_or(""))
            .is_some_and(|x| x.workflow == "flaky")
    };
    let want = events.iter().filter(of_flaky).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while flaky_events.lock().unwrap().len() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let flaky_events = flaky_events.lock().unwrap().clone();
    assert_eq!(
        flaky_events.len(),
        events.iter().filter(of_flaky).count(),
        "seed {seed}: ?workflow=flaky saw other events, or missed some: {flaky_events:?}"
    );
    assert!(flaky_events.iter().all(|e| e["workflow"] == "flaky"));
}

#[test]
fn cancelling_runs_at_random_touches_exactly_those_runs() {
    let seeds: Vec<u64> = match std::env::var("BULKHEAD_TEST_SEEDS") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        one_seed(seed);
    }
}

const AGAIN: &str = "name: again\ndefaults:\n  retry: {max_attempts: 1}\ntasks:\n  done: {plugin: echo}\n  work: {plugin: sleep, params: {ms: 3000, fail_until: 2}}\n  after: {plugin: echo, needs: [work]}\n";

#[test]
fn cancelling_a_retry_cancels_only_what_the_retry_started() {
    let site = Site::new();
    site.plugin("sleep");
    site.plugin("echo");
    site.workflow("again.yaml", AGAIN);
    let s = site.serve(&["--token", TOKEN]);
    let run = trigger(&s, "again", 7);
    let failed = wait_status(&s, &run, &["failed"], Duration::from_secs(60));
    let done = failed["tasks"]["done"].clone();
    assert_eq!(done["status"], "succeeded");

    // Retry `work` (attempt 2 sleeps): the run is running again, and not finished.
    retry(&s, &run, "work");
    let running = wait_status(&s, &run, &["running"], Duration::from_secs(60));
    assert_eq!(running["finished_at"], Value::Null, "{running}");
    // While it runs, a second retry is refused.
    let (code, _) = s.post(
        &format!("/api/runs/{run}/tasks/work/retry"),
        Some(TOKEN),
        "",
    );
    assert_eq!(code, 409);
    assert!(
        cancel_by_api(&s, &run),
        "the retry ended before it could be cancelled"
    );
    let cancelled = wait_status(&s, &run, &["cancelled"], Duration::from_secs(60));
    let t = &cancelled["tasks"];
    assert_eq!(
        t["done"]["status"], "succeeded",
        "finished work stays finished: {cancelled}"
    );
    assert_eq!(t["done"]["output"], done["output"]);
    assert_eq!(t["done"]["attempts"], 1);
    assert_eq!(t["work"]["status"], "cancelled");
    assert_eq!(t["after"]["status"], "cancelled");

    // Retry again and let it finish: the status is recomputed from every task.
    retry(&s, &run, "work");
    let ok = wait_status(&s, &run, &["succeeded"], Duration::from_secs(60));
    assert_eq!(ok["tasks"]["done"]["attempts"], 1);
    assert_eq!(
        ok["tasks"]["after"]["output"]["received"]["run_params"]["i"],
        7
    );
    // A finished run cannot be cancelled.
    let (code, body) = s.post(&format!("/api/runs/{run}/cancel"), Some(TOKEN), "");
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("already ended"),
        "{body}"
    );
}
