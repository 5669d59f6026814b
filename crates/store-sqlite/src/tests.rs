//! The SQLite backend against the shared store conformance suite, and what only SQLite has:
//! schema versions, damaged files, concurrent opening.

use super::*;

/// The conformance suite on stores of fresh files, each committing as `commits` says.
async fn suite_on_files(commits: Commits) {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    bulkhead_core::store::suite::suite(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("state-{i}.db"));
        async move { Box::new(SqliteStore::open_with(&path, commits).unwrap()) as Box<dyn Store> }
    })
    .await;
}

#[tokio::test]
async fn passes_the_store_conformance_suite() {
    suite_on_files(Commits::Grouped).await;
}

/// Writes committed in place, as `bulkhead run` opens a file: the same answers as grouped ones.
#[tokio::test]
async fn committing_in_place_passes_the_store_conformance_suite() {
    suite_on_files(Commits::InPlace).await;
}

#[tokio::test]
async fn in_memory_passes_the_store_conformance_suite() {
    bulkhead_core::store::suite::suite(|| async {
        Box::new(SqliteStore::open_in_memory().unwrap()) as Box<dyn Store>
    })
    .await;
}

/// The store in memory is a memdb file (see `open_in_memory`): bounded only by memory, not by
/// memdb's default of 1 GiB, and private to its store.
#[test]
fn a_store_in_memory_has_no_size_cap_and_is_its_own() {
    let store = SqliteStore::open_in_memory().unwrap();
    let Conns::Memory(conn) = &*store.conns else {
        panic!("a store in memory has one connection");
    };
    let mut limit = -1; // Asks for the cap without changing it.
    conn.lock()
        .unwrap()
        .file_control(
            Some(rusqlite::MAIN_DB),
            rusqlite::FileControl::SizeLimit(&mut limit),
        )
        .unwrap();
    assert_eq!(limit, i64::MAX);
    let other = SqliteStore::open_in_memory().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let me = Owner::new();
        store
            .create_run(bulkhead_core::store::suite::new_run("only-here", &me, 1))
            .await
            .unwrap();
        assert!(matches!(
            other.load("only-here").await,
            Err(StoreError::UnknownRun(_))
        ));
    });
}

#[test]
fn sqlite_refuses_a_newer_schema_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO bulkhead_schema (version) VALUES (99)", [])
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the newer database was not altered"
    );
}

#[test]
fn sqlite_names_the_file_when_it_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("state.db"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![b'x'; 8192],
        "the damaged file was not touched"
    );
}

#[test]
fn sqlite_names_a_missing_folder() {
    let err = SqliteStore::open(std::path::Path::new("/nonexistent-dir/state.db")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
}

#[test]
fn two_hosts_opening_a_new_database_at_once_both_succeed() {
    // Regression: both read schema version 0 and both applied migration 1.
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SqliteStore::open(&path).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }
}

#[test]
fn the_schema_version_is_the_last_migration() {
    let numbers: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
    let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(
        numbers, expected,
        "migrations are numbered 1..=SCHEMA_VERSION, in order"
    );
}

/// A stored value this build does not know is an error naming the row, never a default.
#[tokio::test]
async fn a_damaged_row_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let owner = Owner::new();
    store.create_run(run_of("r1", &owner)).await.unwrap();
    let damages = [
        (
            "UPDATE runs SET status = 'exploded'",
            "run `r1`: unknown run status `exploded`",
        ),
        (
            "UPDATE tasks SET status = 'maybe'",
            "run `r1` task `a`: unknown task status `maybe`",
        ),
        (
            "UPDATE tasks SET output = '{not json'",
            "run `r1` task `a`: output is not JSON",
        ),
        (
            "UPDATE runs SET params = 'nope'",
            "run `r1`: params is not JSON",
        ),
    ];
    for (sql, says) in damages {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let before: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare("SELECT r.status, t.status, t.output FROM runs r JOIN tasks t USING (run_key)")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        conn.execute(sql, []).unwrap();
        match store.load("r1").await {
            Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains(says), "{reason}"),
            other => panic!("{sql}: expected a Corrupt error, got {other:?}"),
        }
        // Put the row back for the next damage.
        let (run, task, output) = &before[0];
        conn.execute("UPDATE runs SET status = ?1, params = '{}'", [run])
            .unwrap();
        conn.execute(
            "UPDATE tasks SET status = ?1, output = ?2",
            rusqlite::params![task, output],
        )
        .unwrap();
        assert!(store.load("r1").await.is_ok(), "restored after {sql}");
    }
}

/// A new database file at `path` brought to schema `version` only, as an earlier build left it.
fn database_at_schema(path: &Path, version: i64) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE bulkhead_schema (version INTEGER NOT NULL)")
        .unwrap();
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        conn.execute_batch(sql).unwrap();
        conn.execute("INSERT INTO bulkhead_schema (version) VALUES (?1)", [v])
            .unwrap();
    }
    conn
}

/// A database of an earlier version (schema 4, the workflow's text in `runs`) opens, migrates and
/// still shows its runs: the text moved to `run_definitions`, no stored form (it is validated
/// from the YAML, as before).
#[tokio::test]
async fn a_schema_4_database_upgrades_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = database_at_schema(&path, 4);
        conn.execute(
            "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, workflow_yaml, params, status, created_at)
             VALUES ('old', 'wf', 'abc', '/flows/wf.yaml', 'name: wf', '{}', 'succeeded', 5)",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let run = store.load("old").await.unwrap();
    assert_eq!(run.workflow_yaml, "name: wf");
    assert_eq!(run.workflow_spec, None);
    assert_eq!(run.status, RunStatus::Succeeded);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT max(version) FROM bulkhead_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// A database of schema 7 upgrades its triggers: one whose run exists is closed (`fulfilled_at`
/// from the run's creation), so claims and lists read only the open ones by index; an orphan
/// (claimed, its run never created) and a trigger not yet claimed stay open and are handed out.
#[tokio::test]
async fn a_schema_7_database_closes_the_triggers_whose_runs_exist_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = database_at_schema(&path, 7);
        conn.execute(
            "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, params, status, created_at)
             VALUES ('ran', 'wf', 'abc', '/flows/wf.yaml', '{}', 'succeeded', 40)",
            [],
        )
        .unwrap();
        for (key, run_id, claimed) in [
            ("once:ran", "ran", Some(30)),
            ("once:orphan", "orphan", Some(30)),
            ("once:due", "due", None),
        ] {
            conn.execute(
                "INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id, claimed_at)
                 VALUES (?1, 'once', 'wf', '{}', 20, 10, ?2, ?3)",
                params![key, run_id, claimed],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let claimed = store
        .claim_due(30 + ORPHAN_AFTER_MS + 1, 10, &RunCaps::new())
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["due", "orphan"], "the due one, then the orphan");
    let listed = store.list(&RunFilter::default()).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, vec!["ran"], "a claimed trigger is not a pending run");
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let fulfilled: Vec<(String, Option<i64>)> = conn
        .prepare("SELECT run_id, fulfilled_at FROM triggers ORDER BY run_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        fulfilled,
        vec![
            ("due".to_string(), None),
            ("orphan".to_string(), None),
            ("ran".to_string(), Some(40))
        ]
    );
}

/// A database of schema 8 upgrades to 9: the two indexes of every trigger ever fired are gone,
/// and its unclaimed triggers, of a capped workflow and of any other, are still counted as
/// pending and claimed (now through the partial index of open triggers); a fulfilled one is not.
#[tokio::test]
async fn a_schema_8_database_drops_the_full_trigger_indexes_and_still_claims_its_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = database_at_schema(&path, 8);
        for (key, workflow, run_id, fulfilled) in [
            ("once:capped", "capped", "capped", None),
            ("once:free", "free", "free", None),
            ("once:done", "free", "done", Some(15)),
        ] {
            conn.execute(
                "INSERT INTO triggers (trigger_key, kind, workflow, params, due_at, created_at, run_id, fulfilled_at)
                 VALUES (?1, 'once', ?2, '{}', 20, 10, ?3, ?4)",
                params![key, workflow, run_id, fulfilled],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.pending_triggers().await.unwrap(),
        2,
        "the two open ones"
    );
    let caps = RunCaps::from([("capped".to_string(), 1)]);
    let claimed = store.claim_due(30, 10, &caps).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.run_id.as_str()).collect();
    assert_eq!(ids, vec!["capped", "free"]);
    assert_eq!(store.pending_triggers().await.unwrap(), 0);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'triggers' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        vec![
            "triggers_by_workflow",
            "triggers_open",
            "triggers_open_by_run",
            "triggers_open_by_workflow"
        ]
    );
}

/// Writes a schema-9 run at `path`: run `old` of two tasks in file order `b`, `a` (so that file
/// order and name order differ), `b` succeeded at its second attempt, `a` still pending; and a
/// second run `other` with one task of the same name, so that rows of two runs must stay apart.
fn schema_9_runs(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "INSERT INTO runs (run_id, workflow, workflow_hash, workflow_file, params, status, created_at)
           VALUES ('old', 'wf', 'abc', '/flows/wf.yaml', '{}', 'interrupted', 5),
                  ('other', 'wf', 'abc', '/flows/wf.yaml', '{}', 'succeeded', 6);
         INSERT INTO run_definitions (run_id, workflow_yaml) VALUES ('old', 'name: wf'), ('other', 'name: wf');
         INSERT INTO tasks (run_id, task, position, status, attempts, output, duration_us)
           VALUES ('old', 'b', 0, 'succeeded', 2, '{\"n\": 2}', 30),
                  ('old', 'a', 1, 'pending', 0, NULL, 0),
                  ('other', 'b', 0, 'succeeded', 1, '1', 5);
         INSERT INTO attempts (run_id, task, attempt, status, lease_owner, started_at, finished_at, error_kind, error_message, log)
           VALUES ('old', 'b', 1, 'failed', 'h', 1, 2, 'transient', 'flaky', 'first'),
                  ('old', 'b', 2, 'succeeded', 'h', 3, 4, NULL, NULL, 'second'),
                  ('other', 'b', 1, 'succeeded', 'h', 1, 2, NULL, NULL, 'other log');",
    )
    .unwrap();
}

/// A database of schema 9 upgrades to 10: every task and attempt is filed under its run's key and
/// its task's place, and reads back as before (tasks in file order, attempts with their task's
/// name, logs, results); the run resumes and commits by place; a new run gets a key of its own.
#[tokio::test]
async fn a_schema_9_database_files_its_tasks_by_place_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    schema_9_runs(&database_at_schema(&path, 9));
    let store = SqliteStore::open(&path).unwrap();
    let run = store.load("old").await.unwrap();
    let tasks: Vec<(&str, TaskStatus, u32)> = run
        .tasks
        .iter()
        .map(|t| (t.task.as_str(), t.state, t.attempts))
        .collect();
    assert_eq!(
        tasks,
        vec![
            ("b", TaskStatus::Succeeded, 2),
            ("a", TaskStatus::Pending, 0)
        ]
    );
    assert_eq!(run.tasks[0].duration_us, 30);
    let attempts: Vec<(&str, u32, AttemptStatus)> = run
        .attempts
        .iter()
        .map(|a| (a.task.as_str(), a.attempt, a.status))
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("b", 1, AttemptStatus::Failed),
            ("b", 2, AttemptStatus::Succeeded)
        ]
    );
    let logs: Vec<String> = store
        .logs("old", Some("b"), None)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.log)
        .collect();
    assert_eq!(logs, vec!["first", "second"]);
    let results = store.task_results("old", 0, 10, usize::MAX).await.unwrap();
    assert_eq!(results[0].task, "b");
    assert_eq!(results[0].log, "second");
    assert_eq!(
        results[0].output.as_ref().map(|o| o.value()),
        Some(serde_json::json!({"n": 2}))
    );
    assert_eq!(results[1].task, "a");
    assert_eq!(
        store.logs("other", None, None).await.unwrap()[0].log,
        "other log"
    );
    // The upgraded run goes on, by place.
    let me = Owner::new();
    let lease = store
        .acquire("old", &me, now_ms(), LEASE_TTL_MS)
        .await
        .unwrap();
    store
        .commit(
            "old",
            &lease,
            vec![Transition::AttemptStarted {
                task: "a".into(),
                position: 1,
                attempt: 1,
                at: 7,
            }],
        )
        .await
        .unwrap();
    let run = store.load("old").await.unwrap();
    assert_eq!(
        run.attempts.last().map(|a| (a.task.as_str(), a.attempt)),
        Some(("a", 1))
    );
    assert_eq!(store.load("other").await.unwrap().attempts.len(), 1);
    // A new run's key is not an upgraded run's.
    store.create_run(run_of("new", &me)).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let keys: Vec<(String, i64)> = conn
        .prepare("SELECT run_id, run_key FROM runs ORDER BY run_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.windows(2).all(|w| w[0].1 < w[1].1), "{keys:?}");
    assert_eq!(keys[2].0, "new");
}

/// An attempt whose task has no row (a database altered by hand) would be lost by the upgrade to
/// schema 10: the file is refused, naming the row, and left at schema 9.
#[tokio::test]
async fn a_schema_9_attempt_of_no_task_refuses_the_upgrade_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = database_at_schema(&path, 9);
        schema_9_runs(&conn);
        conn.execute("DELETE FROM tasks WHERE run_id = 'old' AND task = 'b'", [])
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("attempt 1 of task `b` of run `old`") && err.contains("restore a backup"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT max(version) FROM bulkhead_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9, "nothing of the upgrade was kept");
}

/// Creating a run closes the trigger that asked for it, in the same transaction; the claim and
/// the list then read it through no index of open triggers.
#[tokio::test]
async fn creating_a_run_closes_its_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
    let me = Owner::new();
    let trigger = NewTrigger {
        kind: TriggerKind::Once,
        workflow: "wf".into(),
        params: serde_json::json!({}),
        due_at: 5,
        created_at: 1,
        run_id: "r1".into(),
    };
    assert!(store.add_trigger(trigger).await.unwrap());
    assert_eq!(
        store
            .claim_due(10, 10, &RunCaps::new())
            .await
            .unwrap()
            .len(),
        1
    );
    let mut run = run_of("r1", &me);
    run.created_at = 12;
    store.create_run(run).await.unwrap();
    let open: i64 = store
        .read(|conn, path| {
            conn.query_row(
                "SELECT count(*) FROM triggers INDEXED BY triggers_open_by_run WHERE fulfilled_at IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| map(path, e))
        })
        .await
        .unwrap();
    assert_eq!(open, 0, "no open trigger is left");
    let at: Option<i64> = store
        .read(|conn, path| {
            conn.query_row(
                "SELECT fulfilled_at FROM triggers WHERE run_id = 'r1'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| map(path, e))
        })
        .await
        .unwrap();
    assert_eq!(at, Some(12));
}

fn run_of(id: &str, owner: &Owner) -> NewRun {
    bulkhead_core::store::suite::new_run(id, owner, now_ms())
}

/// Writes from many runs at once are committed in groups: each keeps its own outcome (a write
/// that fails rolls back alone, the others in its group land), and every answered write is in
/// the file for a reader that opens it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_commit_in_groups_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let owner = Owner::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (store, owner) = (store.clone(), owner.clone());
        tasks.spawn(async move {
            let id = format!("r{i}");
            match i % 4 {
                // A run id used twice: the second insert fails, alone.
                0 => {
                    store.create_run(run_of(&id, &owner)).await.unwrap();
                    let again = store.create_run(run_of(&id, &owner)).await;
                    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
                }
                // A commit to a run that does not exist fails, alone.
                1 => {
                    let lost = store
                        .commit(&format!("missing{i}"), &Lease::created(&owner), vec![])
                        .await;
                    assert!(matches!(lost, Err(StoreError::UnknownRun(_))), "{lost:?}");
                    store.create_run(run_of(&id, &owner)).await.unwrap();
                }
                // A commit by a host that does not hold the lease is refused.
                2 => {
                    store.create_run(run_of(&id, &owner)).await.unwrap();
                    let other = store
                        .commit(
                            &id,
                            &Lease::created(&Owner("someone-else".into())),
                            vec![Transition::AttemptStarted {
                                task: "a".into(),
                                position: 0,
                                attempt: 1,
                                at: now_ms(),
                            }],
                        )
                        .await;
                    assert!(matches!(other, Err(StoreError::LostLease(_))), "{other:?}");
                }
                _ => {
                    store.create_run(run_of(&id, &owner)).await.unwrap();
                    store
                        .commit(
                            &id,
                            &Lease::created(&owner),
                            vec![Transition::AttemptStarted {
                                task: "a".into(),
                                position: 0,
                                attempt: 1,
                                at: now_ms(),
                            }],
                        )
                        .await
                        .unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 200);
    let attempts: Vec<String> = conn
        .prepare("SELECT r.run_id FROM attempts a JOIN runs r USING (run_key) ORDER BY r.run_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected: Vec<String> = (0..200)
        .filter(|i| i % 4 == 3)
        .map(|i| format!("r{i}"))
        .collect();
    expected.sort();
    assert_eq!(
        attempts, expected,
        "only the lease holder's attempts were written"
    );
}

/// A copy of a database in memory is a database file with the same runs.
#[tokio::test]
async fn a_database_in_memory_copies_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_memory().unwrap();
    let owner = Owner::new();
    store.create_run(run_of("r1", &owner)).await.unwrap();
    // A name a URI would read otherwise: spaces, `?`, `#` and `%`.
    let to = dir.path().join("a copy?x=1#%20.db");
    store.copy_to(&to).unwrap();
    let copy = SqliteStore::open(&to).unwrap();
    assert_eq!(copy.load("r1").await.unwrap().workflow, "wf");
    let again = store.copy_to(&to).unwrap_err().to_string();
    assert!(again.contains("exists"), "{again}");
}

fn started_a(attempt: u32) -> Transition {
    Transition::AttemptStarted {
        task: "a".into(),
        position: 0,
        attempt,
        at: now_ms(),
    }
}

/// A commit whose batch fails part way (here its second transition repeats the first) keeps
/// nothing of the batch, in a file and in memory, and the store takes the next commit: in
/// memory, where a write's savepoint is also its transaction, no transaction is left open.
#[tokio::test]
async fn a_commit_that_fails_part_way_keeps_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        SqliteStore::open(&dir.path().join("state.db")).unwrap(),
        SqliteStore::open_with(&dir.path().join("in-place.db"), Commits::InPlace).unwrap(),
        SqliteStore::open_in_memory().unwrap(),
    ] {
        let owner = Owner::new();
        let lease = store.create_run(run_of("r1", &owner)).await.unwrap();
        let twice = store
            .commit("r1", &lease, vec![started_a(1), started_a(1)])
            .await;
        assert!(twice.is_err(), "{twice:?}");
        assert!(store.load("r1").await.unwrap().attempts.is_empty());
        let in_place = match &*store.conns {
            Conns::Memory(conn)
            | Conns::File {
                writes: conn::Writes::InPlace(conn),
                ..
            } => Some(conn),
            Conns::File { .. } => None,
        };
        if let Some(conn) = in_place {
            assert!(
                conn.lock().unwrap().is_autocommit(),
                "a transaction was left open"
            );
        }
        store
            .commit("r1", &lease, vec![started_a(1)])
            .await
            .unwrap();
        assert_eq!(store.load("r1").await.unwrap().attempts.len(), 1);
    }
}

/// A commit moves a lease's expiry forward once it is a second old, not in every commit: the
/// run row is not rewritten by each of a run's many commits, and the lease always keeps
/// nearly its whole time to live.
#[tokio::test]
async fn a_commit_renews_a_stale_lease_and_leaves_a_fresh_one() {
    let store = SqliteStore::open_in_memory().unwrap();
    let owner = Owner::new();
    let mut run = run_of("r1", &owner);
    run.lease_expires_at = now_ms() + 5_000;
    let lease = store.create_run(run).await.unwrap();
    let before = now_ms();
    store
        .commit("r1", &lease, vec![started_a(1)])
        .await
        .unwrap();
    let renewed = store.load("r1").await.unwrap().lease_expires_at.unwrap();
    assert!(
        renewed >= before + LEASE_TTL_MS,
        "{renewed} < {before} + TTL"
    );
    store.commit("r1", &lease, vec![]).await.unwrap();
    let kept = store.load("r1").await.unwrap().lease_expires_at.unwrap();
    // Unless this machine took a whole step between the two commits.
    let slow = now_ms() - before >= LEASE_EXTEND_STEP_MS;
    assert!(kept == renewed || slow, "a fresh lease was written again");
}

#[test]
fn a_lease_is_renewed_once_its_expiry_is_a_step_old() {
    let until = 1_000_000;
    assert!(renews(None, until));
    assert!(renews(Some(0), until));
    assert!(renews(Some(until - LEASE_EXTEND_STEP_MS), until));
    assert!(!renews(Some(until - LEASE_EXTEND_STEP_MS + 1), until));
    assert!(!renews(Some(until), until));
}

/// `gc` removes a run's tasks and attempts with it (the foreign keys on `run_key` cascade), so a
/// run created afterwards, which may be given the freed key again, starts with rows of its own
/// only.
#[tokio::test]
async fn gc_removes_a_runs_rows_and_a_later_run_may_reuse_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let me = Owner::new();
    let lease = store
        .create_run(bulkhead_core::store::suite::new_run("old", &me, 10))
        .await
        .unwrap();
    store
        .commit(
            "old",
            &lease,
            vec![
                started_a(1),
                Transition::RunEnded {
                    status: RunStatus::Failed,
                    at: 20,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.gc(1000).await.unwrap(), vec!["old".to_string()]);
    let count = |table: &str| -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("tasks"), count("attempts")), (0, 0));
    let lease = store.create_run(run_of("new", &me)).await.unwrap();
    store
        .commit("new", &lease, vec![started_a(1)])
        .await
        .unwrap();
    let run = store.load("new").await.unwrap();
    assert_eq!(run.tasks.len(), 2);
    assert_eq!(run.attempts.len(), 1);
    assert_eq!(run.attempts[0].status, AttemptStatus::Running);
    let key: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT run_key FROM runs WHERE run_id = 'new'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(key, 1, "the freed key is given again");
}

/// A run whose row lost its `run_key` (a database altered by hand) is an error naming the run
/// wherever its tasks are read or written, never a run without tasks.
#[tokio::test]
async fn a_run_without_its_key_is_an_error_naming_it_not_an_empty_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let me = Owner::new();
    let lease = store.create_run(run_of("r1", &me)).await.unwrap();
    // By hand, past the foreign keys that would refuse it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; UPDATE runs SET run_key = NULL")
        .unwrap();
    let says = |e: StoreError| match e {
        StoreError::Corrupt { reason, .. } => {
            assert!(reason.contains("run `r1` has no run_key"), "{reason}")
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    };
    says(store.load("r1").await.unwrap_err());
    says(store.logs("r1", None, None).await.unwrap_err());
    says(
        store
            .task_results("r1", 0, 10, usize::MAX)
            .await
            .unwrap_err(),
    );
    says(
        store
            .commit("r1", &lease, vec![started_a(1)])
            .await
            .unwrap_err(),
    );
    says(
        store
            .reset_tasks("r1", &["a".to_string()])
            .await
            .unwrap_err(),
    );
}

/// The claim's statements stay compiled from one claim to the next, whatever limit is bound
/// (`serve` claims as many triggers as it has free slots, a new number at nearly every claim).
/// The same statement with a plain `LIMIT ?2` is compiled again at each new limit: that is how
/// this SQLite plans a bound limit, and it shows the counter sees a recompile.
#[test]
fn the_claims_are_not_compiled_again_when_their_limit_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let recompiles = |sql: &str, extra: &[rusqlite::types::Value]| -> i32 {
        let mut stmt = conn.prepare(sql).unwrap();
        for limit in [1_i64, 5, 2, 64, 3] {
            let mut values: Vec<rusqlite::types::Value> = vec![1_000_i64.into(), limit.into()];
            values.extend_from_slice(extra);
            let rows: Vec<Trigger> = stmt
                .query_map(rusqlite::params_from_iter(values), trigger_row)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(rows.is_empty());
        }
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    };
    let orphan_after = [ORPHAN_AFTER_MS.into()];
    let workflow = ["capped".to_string().into()];
    let two = ["a".to_string().into(), "b".to_string().into()];
    let claims: [(String, &[rusqlite::types::Value]); 4] = [
        (claim_orphans_sql(), &orphan_after),
        (claim_capped_sql(), &workflow),
        (claim_others_sql(0), &[]),
        (claim_others_sql(2), &two),
    ];
    for (sql, extra) in &claims {
        assert_eq!(recompiles(sql, extra), 0, "compiled again: {sql}");
        let plain = sql.replace("LIMIT CAST(?2 AS INTEGER)", "LIMIT ?2");
        assert_ne!(&plain, sql);
        assert!(
            recompiles(&plain, extra) >= 4,
            "a bound LIMIT was expected to be compiled again at each new value: {plain}"
        );
    }
}
