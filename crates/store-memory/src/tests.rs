//! The memory store against the shared store conformance suite, and what only it promises.

use super::*;
use bulkhead_core::store::suite::new_run;

#[tokio::test]
async fn passes_the_store_conformance_suite() {
    bulkhead_core::store::suite::suite(|| async { Box::new(MemoryStore::new()) as Box<dyn Store> })
        .await;
}

fn started(task: &str, attempt: u32) -> Transition {
    Transition::AttemptStarted {
        task: task.into(),
        attempt,
        at: 1,
    }
}

/// A batch is kept whole or not at all: an attempt recorded twice fails the commit, and the
/// transitions before it in the batch are not kept either.
#[tokio::test]
async fn a_refused_batch_leaves_nothing_behind() {
    let store = MemoryStore::new();
    let me = Owner::new();
    let lease = store.create_run(new_run("r", &me, 1)).await.unwrap();
    store
        .commit("r", &lease, vec![started("a", 1)])
        .await
        .unwrap();
    let err = store
        .commit("r", &lease, vec![started("b", 1), started("a", 1)])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("attempt 1 of task `a`"), "{err}");
    assert!(err.contains(":memory:"), "{err}");
    let run = store.load("r").await.unwrap();
    let attempts: Vec<_> = run
        .attempts
        .iter()
        .map(|a| (a.task.as_str(), a.attempt))
        .collect();
    assert_eq!(attempts, [("a", 1)]);
    // The same task twice in one batch is refused too.
    assert!(store
        .commit("r", &lease, vec![started("b", 1), started("b", 1)])
        .await
        .is_err());
    assert_eq!(store.load("r").await.unwrap().attempts.len(), 1);
}

/// An output is kept as the bytes the executor committed, not a copy of them: a large output
/// costs its size once in memory however many readers ask for it.
#[tokio::test]
async fn an_output_is_shared_not_copied() {
    let store = MemoryStore::new();
    let me = Owner::new();
    let lease = store.create_run(new_run("r", &me, 1)).await.unwrap();
    let output = OutputJson::parse(format!("\"{}\"", "x".repeat(1 << 20))).unwrap();
    store
        .commit(
            "r",
            &lease,
            vec![
                started("a", 1),
                Transition::AttemptEnded {
                    task: "a".into(),
                    attempt: 1,
                    at: 2,
                    end: AttemptEnd::Succeeded(output.clone()),
                    duration_us: 1,
                    fuel_used: 1,
                    peak_memory: 1,
                    log: String::new(),
                    task_state: Some(TaskStatus::Succeeded),
                },
            ],
        )
        .await
        .unwrap();
    let results = store.task_results("r", 0, 1, usize::MAX).await.unwrap();
    let read = results[0].output.as_ref().unwrap();
    assert_eq!(read, &output);
    assert_eq!(read.as_str().as_ptr(), output.as_str().as_ptr());
    let loaded = store.load("r").await.unwrap();
    let kept = loaded.tasks[0].output.as_ref().unwrap();
    assert_eq!(kept.as_str().as_ptr(), output.as_str().as_ptr());
}

/// Two stores are two worlds: a run recorded in one is unknown to the other.
#[tokio::test]
async fn each_store_is_its_own() {
    let (one, other) = (MemoryStore::new(), MemoryStore::new());
    let me = Owner::new();
    one.create_run(new_run("only-here", &me, 1)).await.unwrap();
    assert!(matches!(
        other.load("only-here").await,
        Err(StoreError::UnknownRun(_))
    ));
}
