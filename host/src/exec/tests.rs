//! Executor tests with a scripted runner (no wasm): retries, skips, bounds, cancellation, inputs.

use super::*;
use crate::sandbox::FailureKind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a scripted task does on each attempt.
#[derive(Clone)]
enum Script {
    Ok,
    /// Fails with this kind for the first `n` attempts, then succeeds.
    FailFirst(usize, FailureKind),
    /// Sleeps, then succeeds.
    Sleep(Duration),
}

struct Scripted {
    scripts: Vec<Script>,
    calls: Mutex<HashMap<usize, usize>>,
    inputs: Mutex<HashMap<usize, serde_json::Value>>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Scripted {
    fn new(scripts: Vec<Script>) -> Arc<Self> {
        Arc::new(Scripted {
            scripts,
            calls: Mutex::default(),
            inputs: Mutex::default(),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }
}

struct Handle(Arc<Scripted>);

impl Runner for Handle {
    fn run(&self, task: usize, input: Vec<u8>) -> AttemptFuture {
        let s = self.0.clone();
        Box::pin(async move {
            let call = {
                let mut calls = s.calls.lock().unwrap();
                let c = calls.entry(task).or_insert(0);
                *c += 1;
                *c
            };
            s.inputs
                .lock()
                .unwrap()
                .insert(task, serde_json::from_slice(&input).unwrap());
            let now = s.running.fetch_add(1, Ordering::SeqCst) + 1;
            s.peak.fetch_max(now, Ordering::SeqCst);
            let result = match &s.scripts[task] {
                Script::Ok => Ok(serde_json::json!({ "task": task })),
                Script::FailFirst(n, kind) if call <= *n => Err(Failure::new(*kind, "scripted")),
                Script::FailFirst(..) => Ok(serde_json::json!({ "call": call })),
                Script::Sleep(d) => {
                    tokio::time::sleep(*d).await;
                    Ok(serde_json::Value::Null)
                }
            };
            s.running.fetch_sub(1, Ordering::SeqCst);
            AttemptOutcome {
                result,
                duration: Duration::from_micros(5),
                fuel_used: 10,
                peak_memory: 65536,
                log: Vec::new(),
            }
        })
    }
}

fn workflow(yaml: &str) -> Arc<Workflow> {
    Arc::new(crate::workflow::parse(yaml, std::path::Path::new("test.yaml")).unwrap())
}

async fn execute_with(
    wf: Arc<Workflow>,
    s: &Arc<Scripted>,
    max_parallel: usize,
    cancel: CancellationToken,
) -> RunReport {
    let req = RunRequest {
        workflow: wf,
        run_id: "run-1".into(),
        params: serde_json::json!({"day": "monday"}),
        max_parallel,
    };
    execute(req, Arc::new(Handle(s.clone())), &LogObserver, cancel).await
}

const DIAMOND: &str = "
name: diamond
defaults: {retry: {max_attempts: 3, initial_delay: 1ms, jitter: none}}
tasks:
  a: {plugin: p}
  b: {plugin: p, needs: [a]}
  c: {plugin: p, needs: [a]}
  d: {plugin: p, needs: [b, c]}
  lone: {plugin: p}
";

#[tokio::test]
async fn retries_until_success_within_the_budget() {
    let s = Scripted::new(vec![
        Script::FailFirst(2, FailureKind::Transient),
        Script::Ok,
        Script::Ok,
        Script::Ok,
        Script::Ok,
    ]);
    let r = execute_with(workflow(DIAMOND), &s, 8, CancellationToken::new()).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.tasks["a"].attempts, 3);
    assert_eq!(r.tasks["a"].fuel_used, 30);
    assert_eq!(r.tasks["a"].error, None);
    assert_eq!(r.tasks["d"].status, TaskStatus::Succeeded);
}

#[tokio::test]
async fn failure_skips_dependents_and_spares_independent_branches() {
    let s = Scripted::new(vec![
        Script::Ok,
        Script::FailFirst(9, FailureKind::Exit),
        Script::Ok,
        Script::Ok,
        Script::Ok,
    ]);
    let r = execute_with(workflow(DIAMOND), &s, 8, CancellationToken::new()).await;
    assert_eq!(r.status, RunStatus::Failed);
    // `exit` is not in the default `on` list: one attempt only.
    assert_eq!(r.tasks["b"].attempts, 1);
    assert_eq!(r.tasks["b"].status, TaskStatus::Failed);
    assert_eq!(r.tasks["c"].status, TaskStatus::Succeeded);
    assert_eq!(r.tasks["d"].status, TaskStatus::Skipped);
    assert_eq!(r.tasks["d"].attempts, 0);
    assert_eq!(
        r.tasks["d"].error.as_ref().map(|e| e.kind.as_str()),
        Some("skipped")
    );
    assert_eq!(r.tasks["lone"].status, TaskStatus::Succeeded);
}

#[tokio::test]
async fn an_optional_failure_leaves_the_run_successful() {
    let yaml = "name: opt\ntasks:\n  a: {plugin: p, optional: true}\n  b: {plugin: p}\n";
    let s = Scripted::new(vec![Script::FailFirst(9, FailureKind::Trap), Script::Ok]);
    let r = execute_with(workflow(yaml), &s, 8, CancellationToken::new()).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.tasks["a"].status, TaskStatus::Failed);
}

#[tokio::test]
async fn concurrency_is_bounded_by_workflow_and_host() {
    let tasks: String = (0..20)
        .map(|i| format!("  t{i}: {{plugin: p}}\n"))
        .collect();
    let sleep = Script::Sleep(Duration::from_millis(20));
    let s = Scripted::new(vec![sleep.clone(); 20]);
    let wf = workflow(&format!("name: wide\nconcurrency: 5\ntasks:\n{tasks}"));
    execute_with(wf.clone(), &s, 100, CancellationToken::new()).await;
    assert_eq!(s.peak.load(Ordering::SeqCst), 5);
    let s = Scripted::new(vec![sleep; 20]);
    execute_with(wf, &s, 3, CancellationToken::new()).await;
    assert_eq!(s.peak.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn inputs_carry_the_outputs_of_needs() {
    let s = Scripted::new(vec![Script::Ok; 5]);
    execute_with(workflow(DIAMOND), &s, 8, CancellationToken::new()).await;
    let inputs = s.inputs.lock().unwrap();
    let d = &inputs[&3];
    assert_eq!(
        d["inputs"],
        serde_json::json!({"b": {"task": 1}, "c": {"task": 2}})
    );
    assert_eq!(d["run_params"], serde_json::json!({"day": "monday"}));
    assert_eq!(d["idempotency_key"], "run-1:d");
    assert_eq!(d["abi"], 1);
    assert_eq!(inputs[&0]["inputs"], serde_json::json!({}));
}

#[tokio::test]
async fn cancel_interrupts_running_attempts() {
    let yaml = "name: slow\ntasks:\n  a: {plugin: p}\n  b: {plugin: p, needs: [a]}\n";
    let s = Scripted::new(vec![Script::Sleep(Duration::from_secs(60)), Script::Ok]);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let r = execute_with(workflow(yaml), &s, 8, cancel).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.tasks["a"].status, TaskStatus::Cancelled);
    assert_eq!(r.tasks["a"].attempts, 1);
    assert_eq!(r.tasks["b"].status, TaskStatus::Cancelled);
    assert_eq!(r.tasks["b"].attempts, 0);
}
