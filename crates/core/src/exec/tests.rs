//! Executor tests with a scripted runner (no wasm): retries, skips, bounds, cancellation, inputs.

use super::*;
use crate::contract::FailureKind;
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
    /// The runner itself panics: an injected fault of the host.
    Panic,
    /// The runner panics when asked to start the attempt, before it returns the attempt's
    /// future.
    PanicAtStart,
}

struct Scripted {
    scripts: Vec<Script>,
    /// Starts committed so far, as `(task id, attempt)`, when a journal records them.
    committed: Mutex<Vec<(String, u32)>>,
    /// Tasks whose successful end has been committed, when a journal records them.
    committed_done: Mutex<Vec<String>>,
    /// When set (`(id, needs)` of every task): each attempt checks, as it starts running, that
    /// its start and the successful ends of its needs were committed before it, and writes down
    /// any that were not.
    write_ahead: Option<Vec<(String, Vec<usize>)>>,
    /// What the write-ahead check found missing, and how many attempts it checked.
    violations: Mutex<Vec<String>>,
    checked: AtomicUsize,
    calls: Mutex<HashMap<usize, usize>>,
    inputs: Mutex<HashMap<usize, serde_json::Value>>,
    running: AtomicUsize,
    peak: AtomicUsize,
    /// Per task, whether its last attempt ran in a task of its own (spawned) rather than on
    /// the caller's (the executor's) task.
    spawned: Mutex<HashMap<usize, bool>>,
}

impl Scripted {
    fn new(scripts: Vec<Script>) -> Arc<Self> {
        Arc::new(Scripted {
            scripts,
            committed: Mutex::default(),
            committed_done: Mutex::default(),
            write_ahead: None,
            violations: Mutex::default(),
            checked: AtomicUsize::new(0),
            calls: Mutex::default(),
            inputs: Mutex::default(),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            spawned: Mutex::default(),
        })
    }
}

struct Handle(Arc<Scripted>);

impl Runner for Handle {
    fn run(&self, task: usize, input: Vec<bytes::Bytes>) -> AttemptFuture {
        let s = self.0.clone();
        if matches!(s.scripts[task], Script::PanicAtStart) {
            panic!("injected fault at start");
        }
        Box::pin(async move {
            let call = {
                let mut calls = s.calls.lock().unwrap();
                let c = calls.entry(task).or_insert(0);
                *c += 1;
                *c
            };
            if let Some(tasks) = &s.write_ahead {
                let (id, needs) = &tasks[task];
                let call = call as u32;
                if !s.committed.lock().unwrap().contains(&(id.clone(), call)) {
                    s.violations.lock().unwrap().push(format!(
                        "{id} attempt {call} ran before its start was committed"
                    ));
                }
                let done = s.committed_done.lock().unwrap();
                for &n in needs {
                    if !done.contains(&tasks[n].0) {
                        s.violations.lock().unwrap().push(format!(
                            "{id} ran before the success of its need {} was committed",
                            tasks[n].0
                        ));
                    }
                }
                s.checked.fetch_add(1, Ordering::SeqCst);
            }
            s.inputs
                .lock()
                .unwrap()
                .insert(task, serde_json::from_slice(&input.concat()).unwrap());
            // The tests call `execute` from the test's own future, which is no spawned task.
            s.spawned
                .lock()
                .unwrap()
                .insert(task, tokio::task::try_id().is_some());
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
                Script::Panic => panic!("injected host fault"),
                Script::PanicAtStart => unreachable!("it panicked before"),
            };
            s.running.fetch_sub(1, Ordering::SeqCst);
            AttemptOutcome {
                result: result.map(|v| crate::contract::OutputJson::of(&v)),
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

/// Records every committed batch, and the starts, for the write-ahead check.
struct Recording {
    batches: Mutex<Vec<Vec<Transition>>>,
    scripted: Arc<Scripted>,
}

impl Scripted {
    /// Notes the starts and successful ends of a committed batch, for the write-ahead check.
    fn record_committed(&self, batch: &[Transition]) {
        for t in batch {
            match t {
                Transition::AttemptStarted { task, attempt, .. } => self
                    .committed
                    .lock()
                    .unwrap()
                    .push((task.clone(), *attempt)),
                Transition::AttemptEnded {
                    task,
                    task_state: Some(TaskStatus::Succeeded),
                    ..
                } => self.committed_done.lock().unwrap().push(task.clone()),
                _ => {}
            }
        }
    }

    /// Scripts whose attempts check, as they start, that `wf`'s write-ahead rule held for them.
    fn checking_write_ahead(scripts: Vec<Script>, wf: &Workflow) -> Arc<Self> {
        let mut scripted = Scripted::new(scripts);
        if let Some(s) = Arc::get_mut(&mut scripted) {
            s.write_ahead = Some(
                wf.tasks
                    .iter()
                    .map(|t| (t.id.clone(), t.needs.clone()))
                    .collect(),
            );
        }
        scripted
    }
}

impl Journal for Recording {
    fn commit(&self, batch: Vec<Transition>) -> journal::CommitFuture<'_> {
        self.scripted.record_committed(&batch);
        self.batches.lock().unwrap().push(batch);
        Box::pin(std::future::ready(Ok(store::Commit::default())))
    }

    fn is_durable(&self) -> bool {
        false
    }
}

fn request(wf: Arc<Workflow>, max_parallel: usize) -> RunRequest {
    RunRequest {
        workflow: wf,
        run_id: "run-1".into(),
        params: serde_json::json!({"day": "monday"}),
        max_parallel,
        resumed: None,
    }
}

async fn execute_with(
    wf: Arc<Workflow>,
    s: &Arc<Scripted>,
    max_parallel: usize,
    stop: Stop,
) -> RunReport {
    execute(
        request(wf, max_parallel),
        Arc::new(Handle(s.clone())),
        &NoJournal,
        &LogObserver,
        stop,
    )
    .await
    .unwrap()
}

/// Executes `wf` on `s`'s scripts with a [`Recording`] journal: the report and every batch
/// committed, in order.
async fn execute_recorded(
    wf: Arc<Workflow>,
    s: &Arc<Scripted>,
) -> (RunReport, Vec<Vec<Transition>>) {
    let journal = Recording {
        batches: Mutex::default(),
        scripted: s.clone(),
    };
    let r = execute(
        request(wf, 8),
        Arc::new(Handle(s.clone())),
        &journal,
        &LogObserver,
        Stop::default(),
    )
    .await
    .unwrap();
    let batches = std::mem::take(&mut *journal.batches.lock().unwrap());
    (r, batches)
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
    let r = execute_with(workflow(DIAMOND), &s, 8, Stop::default()).await;
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
    let r = execute_with(workflow(DIAMOND), &s, 8, Stop::default()).await;
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
    let r = execute_with(workflow(yaml), &s, 8, Stop::default()).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.tasks["a"].status, TaskStatus::Failed);
}

// Time is the subject: the paused clock makes the sleeps exact and instant.
#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_by_workflow_and_host() {
    let tasks: String = (0..20)
        .map(|i| format!("  t{i}: {{plugin: p}}\n"))
        .collect();
    let sleep = Script::Sleep(Duration::from_millis(20));
    let s = Scripted::new(vec![sleep.clone(); 20]);
    let wf = workflow(&format!("name: wide\nconcurrency: 5\ntasks:\n{tasks}"));
    execute_with(wf.clone(), &s, 100, Stop::default()).await;
    assert_eq!(s.peak.load(Ordering::SeqCst), 5);
    let s = Scripted::new(vec![sleep; 20]);
    execute_with(wf, &s, 3, Stop::default()).await;
    assert_eq!(s.peak.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn inputs_carry_the_outputs_of_needs() {
    let s = Scripted::new(vec![Script::Ok; 5]);
    execute_with(workflow(DIAMOND), &s, 8, Stop::default()).await;
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

// Time is the subject: the paused clock makes the sleeps exact and instant.
#[tokio::test(start_paused = true)]
async fn cancel_interrupts_running_attempts() {
    let yaml = "name: slow\ntasks:\n  a: {plugin: p}\n  b: {plugin: p, needs: [a]}\n";
    let s = Scripted::new(vec![Script::Sleep(Duration::from_secs(60)), Script::Ok]);
    let stop = Stop::default();
    let trigger = stop.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let started = tokio::time::Instant::now();
    let r = execute_with(workflow(yaml), &s, 8, stop).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the cancel at 50 ms ended the 60 s attempt"
    );
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.tasks["a"].status, TaskStatus::Cancelled);
    assert_eq!(r.tasks["a"].attempts, 1);
    assert_eq!(r.tasks["b"].status, TaskStatus::Cancelled);
    assert_eq!(r.tasks["b"].attempts, 0);
}

#[tokio::test]
async fn every_transition_is_committed_before_it_is_acted_on() {
    let wf = workflow(DIAMOND);
    let s = Scripted::checking_write_ahead(
        vec![
            Script::FailFirst(1, FailureKind::Trap),
            Script::Ok,
            Script::Ok,
            Script::Ok,
            Script::Ok,
        ],
        &wf,
    );
    let (r, batches) = execute_recorded(wf, &s).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    let all: Vec<&Transition> = batches.iter().flatten().collect();
    let starts = all
        .iter()
        .filter(|t| matches!(t, Transition::AttemptStarted { .. }))
        .count();
    let ends = all
        .iter()
        .filter(|t| matches!(t, Transition::AttemptEnded { .. }))
        .count();
    assert_eq!(
        (starts, ends),
        (6, 6),
        "a's two attempts and one for each other task"
    );
    assert!(matches!(
        all.last(),
        Some(Transition::RunEnded {
            status: store::RunStatus::Succeeded,
            ..
        })
    ));
    // Ends and the starts they allow share a commit: fewer commits than transitions.
    assert!(batches.len() < all.len());
    // The point of the test: each attempt, as it began to run, found its start and its needs'
    // successes already committed.
    assert_eq!(
        s.checked.load(Ordering::SeqCst),
        6,
        "every attempt was checked"
    );
    assert_eq!(*s.violations.lock().unwrap(), Vec::<String>::new());
}

/// The kinds of a batch's transitions, in order, by a letter each: `S`tarted, `E`nded,
/// `D`ecided, `R`un ended.
fn shape(batch: &[Transition]) -> String {
    batch
        .iter()
        .map(|t| match t {
            Transition::AttemptStarted { .. } => 'S',
            Transition::AttemptEnded { .. } => 'E',
            Transition::TaskDecided { .. } => 'D',
            Transition::RunEnded { .. } => 'R',
        })
        .collect()
}

#[tokio::test]
async fn a_run_commits_once_per_step_and_its_last_end_goes_with_the_run_end() {
    // A 1-task run, and a chain of two where the second fails for good.
    for (yaml, scripts, want) in [
        (
            "name: one\ntasks:\n  a: {plugin: p}\n",
            vec![Script::Ok],
            vec!["S", "ER"],
        ),
        (
            "name: two\ntasks:\n  a: {plugin: p}\n  b: {plugin: p, needs: [a]}\n",
            vec![Script::Ok, Script::FailFirst(9, FailureKind::Exit)],
            vec!["S", "ES", "ER"],
        ),
    ] {
        let (r, batches) = execute_recorded(workflow(yaml), &Scripted::new(scripts)).await;
        let shapes: Vec<String> = batches.iter().map(|b| shape(b)).collect();
        assert_eq!(shapes, want, "{yaml}");
        let last = batches.last().and_then(|b| b.last());
        assert!(
            matches!(last, Some(Transition::RunEnded { status, .. }) if *status == r.status),
            "{yaml}: the last commit ends the run as reported"
        );
    }
}

// Time is the subject: the paused clock makes the sleeps exact and instant.
#[tokio::test(start_paused = true)]
async fn a_graceful_stop_lets_running_attempts_finish_and_interrupts_the_rest() {
    let yaml = "name: g\ntasks:\n  quick: {plugin: p}\n  slow: {plugin: p}\n  after: {plugin: p, needs: [quick]}\n";
    let s = Scripted::new(vec![
        Script::Sleep(Duration::from_millis(30)),
        Script::Sleep(Duration::from_secs(60)),
        Script::Ok,
    ]);
    let stop = Stop {
        grace: Duration::from_millis(300),
        ..Stop::default()
    };
    let drain = stop.drain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        drain.cancel();
    });
    let r = execute_with(workflow(yaml), &s, 8, stop).await;
    assert_eq!(r.status, RunStatus::Interrupted);
    assert_eq!(
        r.tasks["quick"].status,
        TaskStatus::Succeeded,
        "finished within the grace period"
    );
    assert_eq!(
        r.tasks["slow"].status,
        TaskStatus::Pending,
        "interrupted, to be resumed"
    );
    assert_eq!(
        r.tasks["after"].status,
        TaskStatus::Pending,
        "not started after the stop"
    );
    assert_eq!(r.tasks["after"].attempts, 0);
}

#[tokio::test]
async fn a_resumed_run_keeps_finished_tasks_and_feeds_their_outputs() {
    let s = Scripted::new(vec![Script::Ok; 5]);
    let done = |task: &str, output: serde_json::Value| store::StoredTask {
        task: task.into(),
        state: store::TaskStatus::Succeeded,
        attempts: 1,
        uncounted: 0,
        output: Some(crate::contract::OutputJson::of(&output)),
        error: None,
        duration_us: 10,
        fuel_used: 1,
        peak_memory: 1,
    };
    let pending = |task: &str, attempts| store::StoredTask {
        state: store::TaskStatus::Pending,
        attempts,
        uncounted: attempts,
        output: None,
        ..done(task, serde_json::Value::Null)
    };
    let mut req = request(workflow(DIAMOND), 8);
    req.resumed = Some(vec![
        done("a", serde_json::json!("from before")),
        done("b", serde_json::json!({"b": "old"})),
        pending("c", 1),
        pending("d", 0),
        pending("lone", 0),
    ]);
    let r = execute(
        req,
        Arc::new(Handle(s.clone())),
        &NoJournal,
        &LogObserver,
        Stop::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    let calls = s.calls.lock().unwrap();
    assert!(
        !calls.contains_key(&0) && !calls.contains_key(&1),
        "finished tasks did not run again"
    );
    let inputs = s.inputs.lock().unwrap();
    assert_eq!(inputs[&2]["inputs"]["a"], "from before");
    assert_eq!(
        inputs[&2]["attempt"], 2,
        "the interrupted attempt 1 is followed by attempt 2"
    );
    assert_eq!(inputs[&3]["inputs"]["b"], serde_json::json!({"b": "old"}));
}

/// Says its commits are durable (and keeps nothing): the executor then leaves logs and outputs
/// to the store.
struct Durable;

impl Journal for Durable {
    fn commit(&self, _batch: Vec<Transition>) -> journal::CommitFuture<'_> {
        Box::pin(std::future::ready(Ok(store::Commit::default())))
    }

    fn is_durable(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_durable_run_keeps_an_output_only_while_a_dependent_may_still_need_it() {
    // b is retried after a's dependents c ended: its later attempts still get a's output.
    let s = Scripted::new(vec![
        Script::Ok,
        Script::FailFirst(2, FailureKind::Transient),
        Script::Ok,
        Script::Ok,
        Script::Ok,
    ]);
    let r = execute(
        request(workflow(DIAMOND), 8),
        Arc::new(Handle(s.clone())),
        &Durable,
        &LogObserver,
        Stop::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.tasks["b"].attempts, 3);
    let inputs = s.inputs.lock().unwrap();
    assert_eq!(
        inputs[&1]["inputs"]["a"],
        serde_json::json!({"task": 0}),
        "b's third attempt got a's output"
    );
    assert_eq!(inputs[&3]["inputs"]["b"], serde_json::json!({"call": 3}));
    assert_eq!(inputs[&3]["inputs"]["c"], serde_json::json!({"task": 2}));
    for (id, t) in &r.tasks {
        assert_eq!(
            t.output.value(),
            serde_json::Value::Null,
            "{id}: the output is in the store only"
        );
        assert_eq!(t.log, "", "{id}: the log is in the store only");
    }
}

#[tokio::test]
async fn a_host_fault_fails_that_attempt_as_host_and_is_not_retried_by_default() {
    // DIAMOND retries up to 3 attempts on the default kinds; `host` is not one of them.
    let s = Scripted::new(vec![
        Script::Ok,
        Script::Panic,
        Script::Ok,
        Script::Ok,
        Script::Ok,
    ]);
    let r = execute_with(workflow(DIAMOND), &s, 8, Stop::default()).await;
    assert_eq!(r.status, RunStatus::Failed);
    let b = &r.tasks["b"];
    assert_eq!(b.status, TaskStatus::Failed);
    assert_eq!(b.attempts, 1, "not retried by default");
    let error = b.error.as_ref().unwrap();
    assert_eq!(error.kind.as_str(), "host");
    assert!(
        error.message.contains("injected host fault"),
        "{}",
        error.message
    );
    assert_eq!(r.tasks["c"].status, TaskStatus::Succeeded);
    assert_eq!(r.tasks["d"].status, TaskStatus::Skipped);
    assert_eq!(r.tasks["lone"].status, TaskStatus::Succeeded);

    // Asked for, it is retried like any other kind.
    let yaml = "name: h\ntasks:\n  a: {plugin: p, retry: {max_attempts: 2, initial_delay: 1ms, on: [host]}}\n";
    let s = Scripted::new(vec![Script::Panic]);
    let r = execute_with(workflow(yaml), &s, 8, Stop::default()).await;
    assert_eq!(r.tasks["a"].attempts, 2);
}

/// A runner that panics as it is asked to start an attempt (not inside the attempt) fails that
/// attempt as `host` too: the executor and the rest of the run go on.
#[tokio::test]
async fn a_runner_that_panics_when_starting_an_attempt_fails_only_that_attempt() {
    let s = Scripted::new(vec![
        Script::Ok,
        Script::PanicAtStart,
        Script::Ok,
        Script::Ok,
        Script::Ok,
    ]);
    let r = execute_with(workflow(DIAMOND), &s, 8, Stop::default()).await;
    let b = &r.tasks["b"];
    assert_eq!(b.status, TaskStatus::Failed);
    let error = b.error.as_ref().unwrap();
    assert_eq!(error.kind.as_str(), "host");
    assert!(
        error.message.contains("injected fault at start"),
        "{}",
        error.message
    );
    assert_eq!(r.tasks["c"].status, TaskStatus::Succeeded);
    assert_eq!(r.tasks["d"].status, TaskStatus::Skipped);
    assert_eq!(r.tasks["lone"].status, TaskStatus::Succeeded);
}

/// After the first task of a chain, each attempt starts alone and runs on the executor's own
/// task (no spawn): a cancel, a graceful stop and a retry timer must still reach the loop while
/// it runs, and attempts that start beside it must still run at the same time.
#[tokio::test(start_paused = true)]
async fn an_attempt_run_on_the_executor_task_still_sees_stops_and_runs_beside_others() {
    let chain = "name: c\ntasks:\n  a: {plugin: p}\n  b: {plugin: p, needs: [a]}\n  c: {plugin: p, needs: [b]}\n";
    // Cancel while `b` (started alone, after `a` ended) sleeps.
    let s = Scripted::new(vec![
        Script::Ok,
        Script::Sleep(Duration::from_secs(60)),
        Script::Ok,
    ]);
    let stop = Stop::default();
    let trigger = stop.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let started = tokio::time::Instant::now();
    let r = execute_with(workflow(chain), &s, 8, stop).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the cancel ended the inline attempt"
    );
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(
        (
            r.tasks["a"].status,
            r.tasks["b"].status,
            r.tasks["b"].attempts
        ),
        (TaskStatus::Succeeded, TaskStatus::Cancelled, 1)
    );

    // A graceful stop lets the inline attempt finish within the grace period.
    let s = Scripted::new(vec![
        Script::Ok,
        Script::Sleep(Duration::from_millis(100)),
        Script::Ok,
    ]);
    let stop = Stop {
        grace: Duration::from_secs(5),
        ..Stop::default()
    };
    let drain = stop.drain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain.cancel();
    });
    let r = execute_with(workflow(chain), &s, 8, stop).await;
    assert_eq!(r.status, RunStatus::Interrupted);
    assert_eq!(
        r.tasks["b"].status,
        TaskStatus::Succeeded,
        "finished in the grace period"
    );
    assert_eq!(r.tasks["c"].attempts, 0, "not started after the stop");

    // `a` and `x` start together (spawned); `x` fails and waits 10 ms to retry; `b` starts
    // alone after `a` and runs inline for 100 ms; `x`'s retry starts beside it, spawned.
    let wide = "name: w\ntasks:\n  a: {plugin: p}\n  x: {plugin: p, retry: {max_attempts: 2, initial_delay: 10ms, jitter: none}}\n  b: {plugin: p, needs: [a]}\n";
    let s = Scripted::new(vec![
        Script::Ok,
        Script::FailFirst(1, FailureKind::Transient),
        Script::Sleep(Duration::from_millis(100)),
    ]);
    let started = tokio::time::Instant::now();
    let r = execute_with(workflow(wide), &s, 8, Stop::default()).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.tasks["x"].attempts, 2);
    let spawned = s.spawned.lock().unwrap().clone();
    assert_eq!(
        (spawned[&0], spawned[&2], spawned[&1]),
        (true, false, true),
        "a spawned (first), b inline, x's retry spawned beside it"
    );
    assert_eq!(
        s.peak.load(Ordering::SeqCst),
        2,
        "x's retry ran while b ran"
    );
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

/// A journal whose commits take time (a file's fsync, a database round trip): each batch is
/// recorded as committed only when its commit resolves, and it notes whether attempts ran while
/// it was in flight.
struct Slow {
    scripted: Arc<Scripted>,
    commits: AtomicUsize,
    /// Commits during which some attempt ended.
    overlapped: AtomicUsize,
    /// Commits in flight at once, at most.
    concurrent: AtomicUsize,
    peak_concurrent: AtomicUsize,
}

impl Journal for Slow {
    fn commit(&self, batch: Vec<Transition>) -> journal::CommitFuture<'_> {
        Box::pin(async move {
            let now = self.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_concurrent.fetch_max(now, Ordering::SeqCst);
            // Attempts ended so far: begun, less those still running.
            let ended = || {
                self.scripted.calls.lock().unwrap().values().sum::<usize>()
                    - self.scripted.running.load(Ordering::SeqCst)
            };
            let before = ended();
            tokio::time::sleep(Duration::from_millis(2)).await;
            if ended() > before {
                self.overlapped.fetch_add(1, Ordering::SeqCst);
            }
            self.scripted.record_committed(&batch);
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.concurrent.fetch_sub(1, Ordering::SeqCst);
            Ok(store::Commit::default())
        })
    }

    fn is_durable(&self) -> bool {
        false
    }
}

// Time is the subject: the paused clock makes every commit take exactly 2 ms.
#[tokio::test(start_paused = true)]
async fn attempts_run_while_the_next_batch_is_committed_and_still_wait_for_their_own() {
    // Ten chains of three, at most four attempts at once, attempts of 1 to 5 ms: many rounds of
    // commits, each begun when the first attempt of a round ends.
    let mut yaml = String::from("name: chains\ntasks:\n");
    for c in 0..10 {
        yaml.push_str(&format!("  c{c}a: {{plugin: p}}\n  c{c}b: {{plugin: p, needs: [c{c}a]}}\n  c{c}c: {{plugin: p, needs: [c{c}b]}}\n"));
    }
    let wf = workflow(&yaml);
    let scripted = Scripted::checking_write_ahead(
        (0..30)
            .map(|i| Script::Sleep(Duration::from_millis(1 + (i * 7) % 5)))
            .collect(),
        &wf,
    );
    let journal = Slow {
        scripted: scripted.clone(),
        commits: AtomicUsize::new(0),
        overlapped: AtomicUsize::new(0),
        concurrent: AtomicUsize::new(0),
        peak_concurrent: AtomicUsize::new(0),
    };
    let r = execute(
        request(wf, 4),
        Arc::new(Handle(scripted.clone())),
        &journal,
        &LogObserver,
        Stop::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(r.tasks.values().all(|t| t.attempts == 1));
    assert_eq!(scripted.checked.load(Ordering::SeqCst), 30);
    assert_eq!(
        *scripted.violations.lock().unwrap(),
        Vec::<String>::new(),
        "an attempt ran before its start or a need's success was durable"
    );
    assert_eq!(
        journal.peak_concurrent.load(Ordering::SeqCst),
        1,
        "one commit at a time, in order"
    );
    assert!(scripted.peak.load(Ordering::SeqCst) <= 4);
    let (commits, overlapped) = (
        journal.commits.load(Ordering::SeqCst),
        journal.overlapped.load(Ordering::SeqCst),
    );
    assert!(
        overlapped * 2 >= commits,
        "attempts ended during only {overlapped} of {commits} commits"
    );
}
