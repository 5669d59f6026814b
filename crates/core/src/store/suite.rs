//! The trait-level suite: every backend must pass the same tests.

//! The conformance suite of the [`Store`] contract: every backend runs it (`suite(|| async { ... })`) in its
//! tests, so two backends cannot drift apart. Exported with the `testing` feature.
#![allow(missing_docs, clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// A run of tasks `a` and `b` held by `owner`, for a backend's own tests too.
pub fn new_run(id: &str, owner: &Owner, created_at: i64) -> NewRun {
    NewRun {
        run_id: id.into(),
        workflow: "wf".into(),
        workflow_hash: "abc".into(),
        workflow_file: "/flows/wf.yaml".into(),
        workflow_yaml: "name: wf".into(),
        workflow_spec: "{}".into(),
        params: json!({"day": "monday"}),
        plugins: vec![PluginVersion {
            reference: "p".into(),
            hash: "h1".into(),
        }],
        tasks: vec!["a".into(), "b".into()],
        owner: owner.0.clone(),
        created_at,
        lease_expires_at: now_ms() + LEASE_TTL_MS,
    }
}

/// The place of `task` in [`new_run`]'s task list.
fn place(task: &str) -> u32 {
    match task {
        "a" => 0,
        "b" => 1,
        other => panic!("the suite's runs have no task `{other}`"),
    }
}

fn ended(task: &str, attempt: u32, end: AttemptEnd, state: Option<TaskStatus>) -> Transition {
    Transition::AttemptEnded {
        task: task.into(),
        position: place(task),
        attempt,
        at: 5,
        end,
        duration_us: 100,
        fuel_used: 7,
        peak_memory: 65536 * attempt as u64,
        log: format!("log of {task} #{attempt}"),
        task_state: state,
    }
}

fn started(task: &str, attempt: u32) -> Transition {
    Transition::AttemptStarted {
        task: task.into(),
        position: place(task),
        attempt,
        at: 1,
    }
}

/// The progress of `run_id` as the run list gives it.
async fn progress(store: &dyn Store, run_id: &str) -> Option<RunProgress> {
    let listed = store.list(&RunFilter::default()).await.unwrap();
    listed
        .iter()
        .find(|r| r.run_id == run_id)
        .unwrap_or_else(|| panic!("{run_id} is not listed"))
        .progress
}

async fn records_a_run_through_commits(store: &dyn Store) {
    let me = Owner::new();
    store.create_run(new_run("r1", &me, 10)).await.unwrap();
    let fail = AttemptEnd::Failed {
        kind: "transient".into(),
        message: "later".into(),
        exit_code: Some(75),
    };
    store
        .commit("r1", &Lease::created(&me), vec![started("a", 1)])
        .await
        .unwrap();
    // The summary counts the tasks by state and the attempts running now.
    assert_eq!(
        progress(store, "r1").await,
        Some(RunProgress {
            tasks: 2,
            running: 1,
            ..RunProgress::default()
        })
    );
    store
        .commit(
            "r1",
            &Lease::created(&me),
            vec![ended("a", 1, fail, None), started("a", 2)],
        )
        .await
        .unwrap();
    store
        .commit(
            "r1",
            &Lease::created(&me),
            vec![ended(
                "a",
                2,
                AttemptEnd::Succeeded(OutputJson::of(&json!({"n": 1}))),
                Some(TaskStatus::Succeeded),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        progress(store, "r1").await,
        Some(RunProgress {
            tasks: 2,
            succeeded: 1,
            ..RunProgress::default()
        })
    );
    let run = store.load("r1").await.unwrap();
    assert_eq!(
        run.workflow_spec.as_deref(),
        Some("{}"),
        "the stored workflow comes back as written"
    );
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.params, json!({"day": "monday"}));
    assert_eq!(run.plugins[0].hash, "h1");
    let a = &run.tasks[0];
    assert_eq!(
        (a.state, a.attempts, a.uncounted),
        (TaskStatus::Succeeded, 2, 0)
    );
    assert_eq!(a.output.as_ref().map(|o| o.value()), Some(json!({"n": 1})));
    assert_eq!(
        a.error, None,
        "a success clears the error of an earlier attempt"
    );
    assert_eq!(
        (a.duration_us, a.fuel_used, a.peak_memory),
        (200, 14, 131072)
    );
    assert_eq!(run.attempts.len(), 2);
    assert_eq!(run.attempts[0].error.as_ref().map(|e| e.2), Some(Some(75)));
    assert_eq!(run.tasks[1].state, TaskStatus::Pending);

    store
        .commit(
            "r1",
            &Lease::created(&me),
            vec![
                Transition::TaskDecided {
                    task: "b".into(),
                    position: 1,
                    state: TaskStatus::Skipped,
                    message: "needs a".into(),
                },
                Transition::RunEnded {
                    status: RunStatus::Succeeded,
                    at: 99,
                },
            ],
        )
        .await
        .unwrap();
    let run = store.load("r1").await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.finished_at, Some(99));
    assert_eq!(run.tasks[1].state, TaskStatus::Skipped);
    assert_eq!(run.lease_owner, None);
    let logs = store.logs("r1", Some("a"), None).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.log.as_str()).collect::<Vec<_>>(),
        vec!["log of a #1", "log of a #2"]
    );
    assert_eq!(store.logs("r1", None, Some(2)).await.unwrap().len(), 1);
    assert!(matches!(
        store.logs("nope", None, None).await,
        Err(StoreError::UnknownRun(_))
    ));
    let results = store.task_results("r1", 0, 10, usize::MAX).await.unwrap();
    assert_eq!(
        results,
        vec![
            TaskResult {
                task: "a".into(),
                output: Some(OutputJson::of(&json!({"n": 1}))),
                log: "log of a #2".into()
            },
            TaskResult {
                task: "b".into(),
                output: None,
                log: String::new()
            }
        ],
        "each task's output and its last attempt's log, in file order (b never ran)"
    );
    assert_eq!(
        store.task_results("r1", 1, 10, usize::MAX).await.unwrap(),
        results[1..]
    );
    assert_eq!(
        store.task_results("r1", 0, 1, usize::MAX).await.unwrap(),
        results[..1]
    );
    assert!(store
        .task_results("r1", 2, 10, usize::MAX)
        .await
        .unwrap()
        .is_empty());
    // A byte bound ends the page after the task that crosses it, never before the first.
    assert_eq!(
        store.task_results("r1", 0, 10, 1).await.unwrap(),
        results[..1]
    );
    assert_eq!(
        store.task_results("r1", 0, 10, 0).await.unwrap(),
        results[..1]
    );
    let a_bytes = results[0].output.as_ref().map_or(0, |o| o.bytes().len()) + results[0].log.len();
    assert_eq!(
        store.task_results("r1", 0, 10, a_bytes).await.unwrap(),
        results[..1],
        "a's bytes reach the bound"
    );
    assert_eq!(
        store.task_results("r1", 0, 10, a_bytes + 1).await.unwrap(),
        results,
        "b is read while the sum is under the bound"
    );
    assert_eq!(
        store.task_results("r1", 1, 10, 0).await.unwrap(),
        results[1..]
    );
    assert!(matches!(
        store.task_results("nope", 0, 1, usize::MAX).await,
        Err(StoreError::UnknownRun(_))
    ));
}

async fn leases_keep_two_hosts_apart(store: &dyn Store) {
    let me = Owner::new();
    let other = Owner("elsewhere:1:x".into());
    store.create_run(new_run("r2", &me, 10)).await.unwrap();
    store
        .commit("r2", &Lease::created(&me), vec![started("a", 1)])
        .await
        .unwrap();
    let now = now_ms();
    match store.acquire("r2", &other, now, 1000).await {
        Err(StoreError::Held { owner, .. }) => assert_eq!(owner, me.0),
        other => panic!("expected Held, got {other:?}"),
    }
    assert!(
        store.unfinished(now).await.unwrap().is_empty(),
        "a live lease is not unfinished"
    );
    // The lease expires: the other host takes over; the attempt in flight becomes interrupted.
    let later = now + LEASE_TTL_MS + 1;
    assert_eq!(
        store.unfinished(later).await.unwrap(),
        vec!["r2".to_string()]
    );
    let theirs = store.acquire("r2", &other, later, 1000).await.unwrap();
    assert_eq!(theirs.owner, other.0);
    assert_eq!(
        theirs.generation,
        Lease::FIRST + 1,
        "a take raises the generation"
    );
    let run = store.load("r2").await.unwrap();
    assert_eq!(run.attempts[0].status, AttemptStatus::Interrupted);
    assert_eq!((run.tasks[0].attempts, run.tasks[0].uncounted), (1, 1));
    // The first host lost the run: its commits are refused.
    assert!(matches!(
        store.commit("r2", &Lease::created(&me), vec![]).await,
        Err(StoreError::LostLease(_))
    ));
    store
        .commit("r2", &theirs, vec![started("a", 2)])
        .await
        .unwrap();
    // The fencing token is the generation, not only the owner: after another take by the same
    // owner, a commit under the lease it held before is refused.
    let again = store
        .acquire("r2", &other, later + 2 * LEASE_TTL_MS, 1000)
        .await
        .unwrap();
    assert_eq!(again.generation, theirs.generation + 1);
    assert!(matches!(
        store.commit("r2", &theirs, vec![]).await,
        Err(StoreError::LostLease(_))
    ));
    store.release("r2", &theirs).await.unwrap();
    store.commit("r2", &again, vec![]).await.unwrap();
    // ... and a stale release leaves the current lease in place.
    match store.acquire("r2", &me, now_ms(), 1000).await {
        Err(StoreError::Held { owner, .. }) => assert_eq!(owner, other.0),
        other => panic!("expected Held after a stale release, got {other:?}"),
    }
}

async fn a_dead_local_holder_is_taken_over_at_once(store: &dyn Store) {
    let me = Owner::new();
    let host = me.0.split(':').next().unwrap().to_string();
    // PIDs are below 2^22 on Linux: this one cannot be alive.
    let dead = Owner(format!("{host}:4294967:dead"));
    store.create_run(new_run("r3", &dead, 10)).await.unwrap();
    if cfg!(target_os = "linux") {
        store.acquire("r3", &me, now_ms(), 1000).await.unwrap();
    }
}

async fn lists_filters_and_collects_garbage(store: &dyn Store) {
    let me = Owner::new();
    for (i, id) in ["g1", "g2", "g3"].iter().enumerate() {
        let mut run = new_run(id, &me, 100 + i as i64);
        run.plugins[0].hash = format!("hash-{id}");
        if *id == "g3" {
            run.workflow = "other".into();
        }
        store.create_run(run).await.unwrap();
    }
    store
        .commit(
            "g1",
            &Lease::created(&me),
            vec![Transition::RunEnded {
                status: RunStatus::Failed,
                at: 150,
            }],
        )
        .await
        .unwrap();
    let all = store.list(&RunFilter::default()).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, vec!["g3", "g2", "g1"], "newest first");
    let wf = store
        .list(&RunFilter {
            workflow: Some("wf".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(wf.len(), 2);
    let failed = store
        .list(&RunFilter {
            status: Some(RunStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].finished_at.as_deref(),
        Some(rfc3339(150).as_str())
    );
    assert_eq!(
        store
            .list(&RunFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    // Only finished runs older than the cut go.
    assert_eq!(store.gc(1000).await.unwrap(), vec!["g1".to_string()]);
    assert!(matches!(
        store.load("g1").await,
        Err(StoreError::UnknownRun(_))
    ));
    let hashes = store.plugin_hashes_in_use().await.unwrap();
    assert_eq!(hashes, vec!["hash-g2".to_string(), "hash-g3".to_string()]);
}

async fn cancel_and_manual_retry(store: &dyn Store) {
    let me = Owner::new();
    store.create_run(new_run("c1", &me, 10)).await.unwrap();
    // Held by a live host: the request is passed on through the next commit.
    assert_eq!(
        store.request_cancel("c1", now_ms()).await.unwrap(),
        CancelOutcome::Asked
    );
    assert!(
        store
            .commit("c1", &Lease::created(&me), vec![])
            .await
            .unwrap()
            .cancel_requested
    );
    // Nobody holds it: cancelled at once.
    store.release("c1", &Lease::created(&me)).await.unwrap();
    store
        .commit("c1", &Lease::created(&me), vec![])
        .await
        .unwrap_err();
    store.create_run(new_run("c2", &me, 11)).await.unwrap();
    store.release("c2", &Lease::created(&me)).await.unwrap();
    assert_eq!(
        store.request_cancel("c2", now_ms()).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.request_cancel("c2", now_ms()).await.unwrap(),
        CancelOutcome::AlreadyEnded(RunStatus::Cancelled),
        "a second cancel changes nothing and says so"
    );
    let run = store.load("c2").await.unwrap();
    assert!(run.tasks.iter().all(|t| t.state == TaskStatus::Cancelled));
    assert!(
        store.acquire("c2", &me, now_ms(), 1000).await.is_err(),
        "a cancelled run is not resumed"
    );

    // Manual retry: the failed task and its skipped dependent go back to pending with a fresh budget.
    store.create_run(new_run("m1", &me, 12)).await.unwrap();
    let fail = AttemptEnd::Failed {
        kind: "exit".into(),
        message: "bad".into(),
        exit_code: Some(1),
    };
    store
        .commit(
            "m1",
            &Lease::created(&me),
            vec![
                started("a", 1),
                ended("a", 1, fail, Some(TaskStatus::Failed)),
                Transition::TaskDecided {
                    task: "b".into(),
                    position: 1,
                    state: TaskStatus::Skipped,
                    message: "x".into(),
                },
                Transition::RunEnded {
                    status: RunStatus::Failed,
                    at: 20,
                },
            ],
        )
        .await
        .unwrap();
    store
        .reset_tasks("m1", &["a".into(), "b".into()])
        .await
        .unwrap();
    let run = store.load("m1").await.unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(
        (
            run.tasks[0].state,
            run.tasks[0].attempts,
            run.tasks[0].uncounted
        ),
        (TaskStatus::Pending, 1, 1)
    );
    assert_eq!(run.tasks[0].error, None);
    store.acquire("m1", &me, now_ms(), 1000).await.unwrap();
}

/// A trigger not yet due is listed as a pending run with its due time, can be cancelled (then
/// it is never handed out and is listed as cancelled), and a started run shows its due time.
async fn pending_runs_are_listed_and_cancellable(store: &dyn Store) {
    let me = Owner::new();
    let once = |run_id: &str, due_at| NewTrigger {
        kind: TriggerKind::Once,
        workflow: "wf".into(),
        params: json!({}),
        due_at,
        created_at: 1,
        run_id: run_id.into(),
    };
    for (id, due) in [("t1", 100), ("t2", 5_000), ("t3", 6_000), ("t4", 7_000)] {
        assert!(store.add_trigger(once(id, due)).await.unwrap());
    }
    assert_eq!(store.pending_triggers().await.unwrap(), 4);
    let claimed = store.claim_due(200, 10, &RunCaps::new()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.pending_triggers().await.unwrap(), 3);
    store.create_run(new_run("t1", &me, 200)).await.unwrap();
    let pending = store
        .list(&RunFilter {
            status: Some(RunStatus::Pending),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = pending.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, vec!["t4", "t3", "t2"], "pending runs, newest first");
    assert_eq!(pending[2].due_at.as_deref(), Some(rfc3339(5_000).as_str()));
    assert_eq!(pending[2].started_at, None, "not started");
    assert_eq!(pending[2].finished_at, None);
    let all = store.list(&RunFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4, "started and pending runs together");
    let started = all.iter().find(|r| r.run_id == "t1").unwrap();
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.due_at.as_deref(), Some(rfc3339(100).as_str()));
    assert!(started.started_at.is_some());

    assert_eq!(
        store.request_cancel("t2", 300).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        store.request_cancel("t2", 301).await.unwrap(),
        CancelOutcome::AlreadyEnded(RunStatus::Cancelled)
    );
    assert_eq!(store.pending_triggers().await.unwrap(), 2, "t3 and t4");
    let t2 = store.trigger_of_run("t2").await.unwrap().unwrap();
    assert_eq!(t2.status(), RunStatus::Cancelled);
    let due = store.claim_due(10_000, 10, &RunCaps::new()).await.unwrap();
    let ids: Vec<&str> = due.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["t3", "t4"], "a cancelled trigger never starts");
    // t3 was claimed: it is starting, so a cancel now is refused rather than lost.
    assert!(matches!(
        store.request_cancel("t3", 10_001).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .fail_trigger(&due[1].key, "no workflow")
        .await
        .unwrap();
    let page = store
        .list(&RunFilter {
            limit: 2,
            before: Some("t4".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<(&str, RunStatus)> = page.iter().map(|r| (r.run_id.as_str(), r.status)).collect();
    assert_eq!(
        got,
        vec![("t2", RunStatus::Cancelled), ("t1", RunStatus::Running)],
        "t3 is claimed and its run is being created: listed once it exists"
    );
    assert_eq!(page[0].finished_at.as_deref(), Some(rfc3339(300).as_str()));
    let failed = store
        .list(&RunFilter {
            status: Some(RunStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].run_id, "t4");
    assert!(matches!(
        store.request_cancel("nope", 1).await,
        Err(StoreError::UnknownRun(_))
    ));

    // gc takes runs that never started (cancelled, failed to start) with the finished ones,
    // and the triggers of the runs it deletes: none comes back as pending, none is handed out.
    store
        .commit(
            "t1",
            &Lease::created(&me),
            vec![Transition::RunEnded {
                status: RunStatus::Succeeded,
                at: 250,
            }],
        )
        .await
        .unwrap();
    let gone = store.gc(i64::MAX).await.unwrap();
    assert_eq!(
        gone,
        vec!["t1", "t2", "t4"],
        "finished, cancelled and failed"
    );
    let left = store.list(&RunFilter::default()).await.unwrap();
    let ids: Vec<&str> = left.iter().map(|r| r.run_id.as_str()).collect();
    assert!(ids.is_empty(), "{ids:?}");
    assert!(store.trigger_of_run("t1").await.unwrap().is_none());
    assert!(
        store
            .claim_due(i64::MAX - ORPHAN_AFTER_MS * 2, 10, &RunCaps::new())
            .await
            .unwrap()
            .iter()
            .all(|t| t.run_id == "t3"),
        "a collected run's trigger is never handed out again"
    );
}

/// Runs every case on a fresh store from `make`.
async fn triggers_fire_once(store: &dyn Store) {
    let me = Owner::new();
    let cron = |due_at| NewTrigger {
        kind: TriggerKind::Cron,
        workflow: "wf".into(),
        params: json!({}),
        due_at,
        created_at: 1,
        run_id: format!("run-{due_at}"),
    };
    assert!(store.add_trigger(cron(100)).await.unwrap());
    assert!(
        !store.add_trigger(cron(100)).await.unwrap(),
        "the same scheduled time fires once"
    );
    assert!(store.add_trigger(cron(300)).await.unwrap());
    let once = NewTrigger {
        kind: TriggerKind::Once,
        run_id: "run-once".into(),
        due_at: 200,
        ..cron(0)
    };
    assert!(store.add_trigger(once).await.unwrap());
    assert_eq!(store.last_cron_fire("wf").await.unwrap(), Some(300));
    assert_eq!(store.last_cron_fire("other").await.unwrap(), None);

    let first = store.claim_due(250, 10, &RunCaps::new()).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["run-100", "run-once"], "due ones, oldest first");
    // Claimed once: a second claim at the same instant finds nothing new.
    assert!(store
        .claim_due(250, 10, &RunCaps::new())
        .await
        .unwrap()
        .is_empty());
    // The host died before creating run-100's run: a later claim hands it out again.
    let mut run = new_run("run-once", &me, 5);
    run.tasks = vec![];
    store.create_run(run).await.unwrap();
    assert!(
        store
            .claim_due(260, 10, &RunCaps::new())
            .await
            .unwrap()
            .is_empty(),
        "its run may still be being created"
    );
    let later = 250 + ORPHAN_AFTER_MS + 1;
    let again = store.claim_due(later, 10, &RunCaps::new()).await.unwrap();
    let ids: Vec<&str> = again.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["run-300", "run-100"],
        "run-300 is due now; run-100 is an orphan"
    );
    assert!(
        store
            .claim_due(later + 1, 10, &RunCaps::new())
            .await
            .unwrap()
            .is_empty(),
        "a reclaimed orphan is stamped again: handed out once, not at every tick"
    );
    store
        .fail_trigger(&again[1].key, "workflow gone")
        .await
        .unwrap();
    let much_later = later + 2 * ORPHAN_AFTER_MS;
    let last: Vec<String> = store
        .claim_due(much_later, 10, &RunCaps::new())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.run_id)
        .collect();
    assert_eq!(
        last,
        vec!["run-300".to_string()],
        "a failed trigger is not handed out again"
    );
    let t = store.trigger_of_run("run-300").await.unwrap().unwrap();
    assert_eq!(
        (t.kind, t.due_at, t.claimed_at),
        (TriggerKind::Cron, 300, Some(much_later)),
        "stamped when it was last handed out (as an orphan)"
    );
    assert!(store.trigger_of_run("nope").await.unwrap().is_none());
}

async fn pages_through_runs(store: &dyn Store) {
    let me = Owner::new();
    for i in 0..5 {
        store
            .create_run(new_run(&format!("p{i}"), &me, 10 + i))
            .await
            .unwrap();
    }
    let page = store
        .list(&RunFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        vec!["p4", "p3"]
    );
    let next = RunFilter {
        limit: 2,
        before: Some("p3".into()),
        ..Default::default()
    };
    let page = store.list(&next).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        vec!["p2", "p1"]
    );
}

/// Runs every check of the suite, each against a fresh, empty store from `make`. Panics on the
/// first behaviour that differs from the contract.
pub async fn suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn Store>>,
{
    triggers_fire_once(&*make().await).await;
    pending_runs_are_listed_and_cancellable(&*make().await).await;
    pages_through_runs(&*make().await).await;
    records_a_run_through_commits(&*make().await).await;
    leases_keep_two_hosts_apart(&*make().await).await;
    a_dead_local_holder_is_taken_over_at_once(&*make().await).await;
    lists_filters_and_collects_garbage(&*make().await).await;
    cancel_and_manual_retry(&*make().await).await;
    a_started_attempt_counts_before_it_ends(&*make().await).await;
    assert!(matches!(
        make().await.load("missing").await,
        Err(StoreError::UnknownRun(_))
    ));
    a_run_id_is_used_once(&*make().await).await;
    a_run_is_recorded_with_its_first_batch_or_not_at_all(&*make().await).await;
    hosts_are_listed_while_they_beat(&*make().await).await;
    max_active_runs_bounds_what_is_claimed(&*make().await).await;
}

/// A task's `attempts` counts an attempt from its start: while it runs, after a cancel left it
/// interrupted, and through a manual retry, which makes every attempt so far uncounted.
async fn a_started_attempt_counts_before_it_ends(store: &dyn Store) {
    let me = Owner::new();
    // Each task's name, state, attempts and uncounted attempts, as `load` gives them.
    let counts = || async {
        let run = store.load("s1").await.unwrap();
        run.tasks
            .into_iter()
            .map(|t| (t.task, t.state, t.attempts, t.uncounted))
            .collect::<Vec<_>>()
    };
    store.create_run(new_run("s1", &me, 10)).await.unwrap();
    let lease = Lease::created(&me);
    let fail = AttemptEnd::Failed {
        kind: "transient".into(),
        message: "again".into(),
        exit_code: None,
    };
    store
        .commit("s1", &lease, vec![started("a", 1), started("b", 1)])
        .await
        .unwrap();
    store
        .commit(
            "s1",
            &lease,
            vec![ended("a", 1, fail, None), started("a", 2)],
        )
        .await
        .unwrap();
    assert_eq!(
        counts().await,
        [
            ("a".to_string(), TaskStatus::Pending, 2, 0),
            ("b".to_string(), TaskStatus::Pending, 1, 0)
        ],
        "attempts running count as started"
    );
    // The host goes away; a cancel interrupts what it left running.
    store.release("s1", &lease).await.unwrap();
    assert_eq!(
        store.request_cancel("s1", now_ms()).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        counts().await,
        [
            ("a".to_string(), TaskStatus::Cancelled, 2, 0),
            ("b".to_string(), TaskStatus::Cancelled, 1, 0)
        ]
    );
    store
        .reset_tasks("s1", &["a".into(), "b".into()])
        .await
        .unwrap();
    assert_eq!(
        counts().await,
        [
            ("a".to_string(), TaskStatus::Pending, 2, 2),
            ("b".to_string(), TaskStatus::Pending, 1, 1)
        ],
        "a manual retry leaves every attempt so far uncounted"
    );
}

/// A capped workflow's triggers are claimed only while it has fewer active runs (unfinished,
/// or claimed and being created) than its cap, oldest first; other workflows are not held back.
async fn max_active_runs_bounds_what_is_claimed(store: &dyn Store) {
    let me = Owner::new();
    let trigger = |workflow: &str, run_id: &str, due_at| NewTrigger {
        kind: TriggerKind::Once,
        workflow: workflow.into(),
        params: json!({}),
        due_at,
        created_at: 1,
        run_id: run_id.into(),
    };
    for (i, id) in ["c1", "c2", "c3", "c4", "c5", "c6"].iter().enumerate() {
        let due = 100 * (i as i64 + 1);
        assert!(store.add_trigger(trigger("capped", id, due)).await.unwrap());
    }
    for (i, id) in ["f1", "f2", "f3"].iter().enumerate() {
        let due = 100 * (i as i64 + 1);
        assert!(store.add_trigger(trigger("free", id, due)).await.unwrap());
    }
    let caps: RunCaps = [("capped".to_string(), 2)].into();
    let ids = |ts: Vec<Trigger>| ts.into_iter().map(|t| t.run_id).collect::<Vec<_>>();
    let start = |id: &str| {
        let mut run = new_run(id, &me, 1_000);
        run.workflow = "capped".into();
        run
    };
    let end = |id: &'static str| {
        let lease = Lease::created(&me);
        async move {
            store
                .commit(
                    id,
                    &lease,
                    vec![Transition::RunEnded {
                        status: RunStatus::Succeeded,
                        at: 2_000,
                    }],
                )
                .await
                .unwrap();
        }
    };

    let first = ids(store.claim_due(1_000, 10, &caps).await.unwrap());
    assert_eq!(
        first,
        vec!["c1", "f1", "c2", "f2", "f3"],
        "two of `capped`, every `free`"
    );
    assert!(
        store.claim_due(1_001, 10, &caps).await.unwrap().is_empty(),
        "claimed runs being created count"
    );
    for free in ["f1", "f2", "f3"] {
        store.create_run(new_run(free, &me, 1_000)).await.unwrap();
    }
    store.create_run(start("c1")).await.unwrap();
    store.create_run(start("c2")).await.unwrap();
    assert!(
        store.claim_due(1_002, 10, &caps).await.unwrap().is_empty(),
        "running runs count"
    );
    end("c1").await;
    assert_eq!(
        ids(store.claim_due(1_003, 10, &caps).await.unwrap()),
        vec!["c3"],
        "one ended: one more, the oldest"
    );
    // A cancelled trigger neither starts nor counts.
    assert_eq!(
        store.request_cancel("c4", 1_004).await.unwrap(),
        CancelOutcome::Cancelled
    );
    end("c2").await;
    assert_eq!(
        ids(store.claim_due(1_005, 1, &caps).await.unwrap()),
        vec!["c5"],
        "`limit` holds too"
    );
    // c3 and c5 were claimed and their runs never created (their host died): they still count,
    // and come back once as orphans, not as room for c6.
    let later = 1_005 + ORPHAN_AFTER_MS + 1;
    assert_eq!(
        ids(store.claim_due(later, 10, &caps).await.unwrap()),
        vec!["c3", "c5"]
    );
    assert!(store
        .claim_due(later + 1, 10, &caps)
        .await
        .unwrap()
        .is_empty());
    store.create_run(start("c3")).await.unwrap();
    store.create_run(start("c5")).await.unwrap();
    end("c3").await;
    assert_eq!(
        ids(store.claim_due(later + 2, 10, &caps).await.unwrap()),
        vec!["c6"]
    );
    // Unfinished runs of the workflow count however they were started (a `bulkhead run`).
    store.create_run(start("direct")).await.unwrap();
    end("c5").await;
    assert!(store
        .add_trigger(trigger("capped", "c7", 700))
        .await
        .unwrap());
    assert!(
        store
            .claim_due(later + 3, 10, &caps)
            .await
            .unwrap()
            .is_empty(),
        "c6 and `direct` are active"
    );
    // Without a cap, the caller takes every due trigger.
    assert_eq!(
        ids(store
            .claim_due(later + 4, 10, &RunCaps::new())
            .await
            .unwrap()),
        vec!["c7"]
    );
}

async fn hosts_are_listed_while_they_beat(store: &dyn Store) {
    let now = now_ms();
    let beat = |owner: &str, at: i64, in_use: u32| HostBeat {
        owner: owner.into(),
        started_at: now - 1000,
        last_seen: at,
        slots: 8,
        slots_in_use: in_use,
        runs: in_use / 2,
    };
    assert!(store.hosts(now, HOST_ALIVE_MS).await.unwrap().is_empty());
    store.heartbeat(&beat("a:1:x", now, 2)).await.unwrap();
    store.heartbeat(&beat("b:2:y", now, 6)).await.unwrap();
    // A second beat replaces the first.
    store.heartbeat(&beat("a:1:x", now, 4)).await.unwrap();
    let alive = store.hosts(now, HOST_ALIVE_MS).await.unwrap();
    assert_eq!(
        alive
            .iter()
            .map(|h| (
                h.owner.as_str(),
                h.slots,
                h.slots_in_use,
                h.runs,
                h.started_at
            ))
            .collect::<Vec<_>>(),
        vec![
            ("a:1:x", 8, 4, 2, now - 1000),
            ("b:2:y", 8, 6, 3, now - 1000)
        ]
    );
    for h in &alive {
        assert!(
            (h.last_seen - now).abs() < 5_000,
            "last seen about now: {h:?}"
        );
    }
    // Silent for longer than HOST_ALIVE_MS: not listed.
    let later = now + HOST_ALIVE_MS + 5_000;
    assert!(store.hosts(later, HOST_ALIVE_MS).await.unwrap().is_empty());
}

async fn a_run_id_is_used_once(store: &dyn Store) {
    let owner = Owner::new();
    store
        .create_run(new_run("dup", &owner, now_ms()))
        .await
        .unwrap();
    match store.create_run(new_run("dup", &owner, now_ms())).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("dup"), "{m}"),
        other => panic!("a second run `dup` must be a conflict, got {other:?}"),
    }
    assert_eq!(
        store.load("dup").await.unwrap().tasks.len(),
        2,
        "the first run is intact"
    );
}

/// `create_run_with`: the run and its first batch are one transaction. A batch that fails
/// leaves no trace of the run (its id can be used again), and a second run of a used id
/// writes none of its batch.
async fn a_run_is_recorded_with_its_first_batch_or_not_at_all(store: &dyn Store) {
    let owner = Owner::new();
    let lease = store
        .create_run_with(new_run("w1", &owner, now_ms()), vec![started("a", 1)])
        .await
        .unwrap();
    let run = store.load("w1").await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.lease_owner.as_deref(), Some(owner.0.as_str()));
    let shown: Vec<(&str, u32, AttemptStatus)> = run
        .attempts
        .iter()
        .map(|a| (a.task.as_str(), a.attempt, a.status))
        .collect();
    assert_eq!(shown, vec![("a", 1, AttemptStatus::Running)]);
    assert_eq!(run.tasks[0].attempts, 1, "a's start counts at once");
    // The lease it returned is the run's: later commits go on from the first batch.
    store
        .commit(
            "w1",
            &lease,
            vec![
                ended(
                    "a",
                    1,
                    AttemptEnd::Succeeded(OutputJson::of(&json!({"n": 1}))),
                    Some(TaskStatus::Succeeded),
                ),
                started("b", 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.load("w1").await.unwrap().attempts.len(), 2);

    // The same attempt started twice: the batch fails, and so does the run's record.
    let twice = store
        .create_run_with(
            new_run("w2", &owner, now_ms()),
            vec![started("a", 1), started("a", 1)],
        )
        .await;
    assert!(twice.is_err(), "a batch that cannot be written: {twice:?}");
    assert!(
        matches!(store.load("w2").await, Err(StoreError::UnknownRun(_))),
        "nothing of w2 is stored"
    );
    store
        .create_run_with(new_run("w2", &owner, now_ms()), vec![started("b", 1)])
        .await
        .expect("the id of a run that was never recorded is free");
    assert_eq!(store.load("w2").await.unwrap().attempts.len(), 1);

    // A used id: a conflict, and the first run gains nothing of the second's batch.
    match store
        .create_run_with(new_run("w1", &owner, now_ms()), vec![started("a", 2)])
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("w1"), "{m}"),
        other => panic!("a second run `w1` must be a conflict, got {other:?}"),
    }
    assert_eq!(store.load("w1").await.unwrap().attempts.len(), 2);

    // A first batch may end the run (a host told to stop before anything started).
    store
        .create_run_with(
            new_run("w3", &owner, now_ms()),
            vec![Transition::RunEnded {
                status: RunStatus::Interrupted,
                at: now_ms(),
            }],
        )
        .await
        .unwrap();
    let w3 = store.load("w3").await.unwrap();
    assert_eq!(w3.status, RunStatus::Interrupted);
    assert_eq!(w3.lease_owner, None, "the run's end gave its lease up");
}
